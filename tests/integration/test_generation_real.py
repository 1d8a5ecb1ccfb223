"""The three Generator backends with the REAL small model (qwen2.5-coder-0.5b-instruct, GGUF).

- llama_cpp: in-process llama-cpp-python.
- openai_compat: llama-cpp-python's own OpenAI-compatible server, started here as a subprocess.
- transformers: the same GGUF dequantized by transformers (needs `gguf`; slow).

Each runs the shared GeneratorContract with small max_tokens, n_ctx 2048 and 2 threads.
Load and answer times go to the log (`pytest -o log_cli=true --log-cli-level=INFO`).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.models import ModelNotProvisionedError, resolve_model
from tests.integration.conftest import stop
from app.settings import Settings
from generation.errors import GenerationError
from generation.llama_cpp import LlamaCppGenerator
from generation.openai_compat import OpenAICompatGenerator
from generation.types import GenerationParams, Message
from tests.contracts.test_generator_contract import GeneratorContract

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)

SMALL_MODEL = "qwen2.5-coder-0.5b-instruct"
N_CTX, THREADS = 2048, 2
ASK = [Message("user", "다음 문장을 그대로 따라 쓰세요: 안녕하세요")]
REPO = Path(__file__).resolve().parents[2]
# `python -m llama_cpp.server`, with the same AMX guard as LlamaCppGenerator (see
# generation.llama_cpp.build_has_amx): an AMX build crashes on this kind of VM otherwise.
SERVER_BOOT = (
    "import contextlib, runpy\n"
    "from generation.llama_cpp import build_has_amx, without_extra_buffers\n"
    "with without_extra_buffers() if build_has_amx() else contextlib.nullcontext():\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


@pytest.fixture(scope="module")
def small_gguf() -> Path:
    model_dir = Settings().model_dir
    try:
        return Path(resolve_model(SMALL_MODEL, model_dir))
    except ModelNotProvisionedError:
        pytest.skip(f"{SMALL_MODEL} is not provisioned in {model_dir}: run `chulcheo models pull {SMALL_MODEL}`")


def _warmed(generator, label: str):
    """Load the model now, so load time is logged apart from answer time."""
    started = time.monotonic()
    generator.warm_up()
    logger.info("%s: loaded %s in %.2fs", label, generator.model_id, time.monotonic() - started)
    return generator


def _timed_answer(generator, label: str) -> str:
    started = time.monotonic()
    completion = generator.generate(ASK, GenerationParams(max_tokens=32, temperature=0.0))
    logger.info(
        "%s: 32-token-max answer %r (%s tokens) in %.2fs",
        label, completion.text, completion.completion_tokens, time.monotonic() - started,
    )
    return completion.text


# --------------------------------------------------------------------------- llama_cpp


class TestLlamaCppContract(GeneratorContract):
    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls, small_gguf):
        return _warmed(LlamaCppGenerator(small_gguf, context_size=N_CTX, threads=THREADS), "llama_cpp")

    def test_copies_korean_greeting(self, generator):
        assert "안녕하세요" in _timed_answer(generator, "llama_cpp")

    def test_count_tokens_uses_the_model_vocabulary(self, generator):
        # Qwen2.5's vocabulary holds whole Korean syllable runs: far fewer tokens than characters.
        assert generator.count_tokens("안녕하세요") < len("안녕하세요")

    def test_prompt_beyond_the_window_is_a_generation_error(self, generator):
        with pytest.raises(GenerationError, match="llama_cpp"):
            generator.generate([Message("user", "연차휴가 " * 3000)], GenerationParams(max_tokens=8))


# --------------------------------------------------------------------------- openai_compat


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(small_gguf, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on a free port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable, "-c", SERVER_BOOT,
        "--model", str(small_gguf), "--model_alias", SMALL_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(N_CTX), "--n_threads", str(THREADS),
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _wait_until_serving(base_url, process, log_path)
            logger.info("llama_cpp.server ready on %s in %.1fs", base_url, time.monotonic() - started)
            yield base_url
        finally:
            stop(process, timeout=10)


def _wait_until_serving(base_url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer {base_url}/models within {timeout_s}s")


class TestOpenAICompatContract(GeneratorContract):
    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls, llama_server):
        g = OpenAICompatGenerator(llama_server, SMALL_MODEL, timeout_s=120, context_size=N_CTX)
        yield g
        g.close()

    def test_copies_korean_greeting(self, generator):
        assert "안녕하세요" in _timed_answer(generator, "openai_compat")

    def test_estimate_is_not_below_the_real_token_count(self, generator, small_gguf):
        text = "연차휴가는 입사 1년 후 15일이 부여되며, 3억원 이하의 출장비는 팀장이 승인합니다."
        with httpx.Client() as client:
            response = client.post(generator.base_url.removesuffix("/v1") + "/extras/tokenize", json={"input": text})
        if response.status_code != 200:
            pytest.skip(f"server has no tokenize endpoint (HTTP {response.status_code})")
        assert generator.count_tokens(text) >= len(response.json()["tokens"])


# --------------------------------------------------------------------------- transformers


@pytest.mark.slow
class TestTransformersGgufContract(GeneratorContract):
    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls, small_gguf):
        from generation.transformers import TransformersGenerator

        return _warmed(TransformersGenerator(small_gguf, context_size=N_CTX, threads=THREADS), "transformers")

    def test_copies_korean_greeting(self, generator):
        assert "안녕하세요" in _timed_answer(generator, "transformers")
