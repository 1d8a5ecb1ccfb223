"""The in-process backends fail early and clearly, without loading any model."""

from __future__ import annotations

import sys

import pytest

from generation.errors import BackendUnavailableError, GenerationError
from generation.factory import make_generator
from generation.llama_cpp import LlamaCppGenerator
from generation.transformers import TransformersGenerator


def test_missing_gguf_names_the_path(tmp_path):
    missing = tmp_path / "없는모델.gguf"
    with pytest.raises(GenerationError, match="없는모델.gguf"):
        LlamaCppGenerator(missing)
    with pytest.raises(GenerationError, match="없는모델.gguf"):
        TransformersGenerator(missing)


def test_llama_cpp_model_id_is_name_and_size_and_threads_default_to_cpus(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 12)
    g = LlamaCppGenerator(gguf, context_size=2048)
    assert (g.model_id, g.context_size) == ("tiny.gguf:16", 2048)
    assert g.threads >= 1


def test_missing_llama_cpp_package_names_the_pip_package(tmp_path, monkeypatch):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(BackendUnavailableError, match="pip install .*llama-cpp-python"):
        LlamaCppGenerator(gguf).count_tokens("안녕하세요")


def test_not_a_gguf_is_a_generation_error(tmp_path):
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes("이것은 모델이 아닙니다".encode())
    with pytest.raises(GenerationError, match="broken.gguf"):
        LlamaCppGenerator(broken).warm_up()


def test_transformers_accepts_a_hub_id_without_loading():
    g = TransformersGenerator("org/some-model", context_size=1024)
    assert (g.model_id, g.context_size) == ("org/some-model", 1024)


def test_factory_builds_each_backend(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert isinstance(make_generator("llama_cpp", str(gguf), threads=2), LlamaCppGenerator)
    assert isinstance(make_generator("transformers", str(gguf)), TransformersGenerator)
    remote = make_generator("openai_compat", "qwen", base_url="http://gpu-box:8000/v1")
    assert remote.model_id == "qwen@http://gpu-box:8000/v1"
