"""OpenAICompatEmbedder against a scripted /v1/embeddings route (httpx.MockTransport): batches,
order, prompts, normalization, truncation and one clear error per way a server can fail.

The real server (infinity-emb on the real model) is tests/integration/test_embed_server_real.py.
"""

from __future__ import annotations

import json
import socket

import httpx
import numpy as np
import pytest

from app.pipeline import make_embedder
from app.settings import Settings
from retrieval.embed_openai import OpenAICompatEmbedder
from retrieval.errors import EmbeddingServiceError

WORDS = ["연차휴가는", "15일이다.", "재택근무는", "주", "2회까지", "가능하다.", "안녕하세요", "doc:", "q:"]


@pytest.fixture
def model_dir(tmp_path):
    """A model directory with a word-level tokenizer.json, prompts and a 4-d Pooling config."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    path = tmp_path / "tiny-model"
    path.mkdir()
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(["[UNK]", *WORDS])}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "q: ", "document": "doc: "}}), encoding="utf-8")
    (path / "modules.json").write_text(json.dumps([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 4, "pooling_mode_mean_tokens": True}))
    return path


def vector_of(text: str) -> list[float]:
    """What the scripted server returns for a text: not unit length, so normalizing shows."""
    return [float(len(text)), 1.0, 2.0, float(text.count(" "))]


class Server:
    """A scripted /v1/embeddings: records requests, answers rows in reverse index order."""

    def __init__(self, status: int = 200, answer=None) -> None:
        self.requests: list[dict] = []
        self.headers: list[httpx.Headers] = []
        self.status = status
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "invalid api key"}})
        if self.answer is not None:
            return httpx.Response(200, json=self.answer)
        rows = [{"object": "embedding", "index": i, "embedding": vector_of(t)} for i, t in enumerate(body["input"])]
        return httpx.Response(200, json={"object": "list", "data": rows[::-1], "model": body["model"]})


def embedder(model_dir, server: Server | None = None, **kwargs) -> OpenAICompatEmbedder:
    e = OpenAICompatEmbedder("http://embed.test/v1/", "tiny", model_dir, **kwargs)
    if server is not None:
        e._client = httpx.Client(transport=httpx.MockTransport(server), headers=(
            {"Authorization": f"Bearer {kwargs['api_key']}"} if kwargs.get("api_key") else {}))
    return e


def test_batches_in_order_with_prompts_and_unit_rows(model_dir):
    server = Server()
    e = embedder(model_dir, server, batch_size=2)
    texts = ["연차휴가는 15일이다.", "재택근무는 주 2회까지 가능하다.", "안녕하세요"]
    rows = e.embed_documents(texts)
    assert [r["input"] for r in server.requests] == [["doc: " + texts[0], "doc: " + texts[1]], ["doc: " + texts[2]]]
    assert all(r["model"] == "tiny" for r in server.requests)
    expected = np.array([vector_of("doc: " + t) for t in texts], dtype=np.float32)
    assert rows.dtype == np.float32 and rows.shape == (3, 4)
    assert np.allclose(rows, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    query = e.embed_query("안녕하세요")
    assert server.requests[-1]["input"] == ["q: 안녕하세요"] and np.isclose(np.linalg.norm(query), 1.0)
    assert e.dim == 4 and e.model_id == "tiny+openai-compat"
    assert e.count_tokens("연차휴가는 15일이다.") == 2  # local tokenizer, no prompt, no request
    assert len(server.requests) == 3


def test_long_input_is_cut_to_max_seq_length(model_dir):
    server = Server()
    e = embedder(model_dir, server, max_seq_length=3)
    e.embed_documents(["재택근무는 주 2회까지 가능하다."])
    assert server.requests[0]["input"] == ["doc: 재택근무는 주"]


def test_api_key_is_sent_as_bearer(model_dir):
    server = Server()
    e = embedder(model_dir, server, api_key="sk-secret")
    e.embed_documents(["안녕하세요"])
    assert server.headers[-1]["authorization"] == "Bearer sk-secret"


def test_rejected_key_names_the_setting(model_dir):
    with pytest.raises(EmbeddingServiceError, match=r"embed\.test/v1/embeddings: HTTP 401 \(check embedding\.api_key"):
        embedder(model_dir, Server(status=401)).embed_documents(["안녕하세요"])


@pytest.mark.parametrize("answer, problem", [
    ({"data": [{"index": 0, "embedding": [1, 2, 3, 4]}]}, "1 vectors for 2 texts"),
    ({"data": [{"index": 0, "embedding": [1, 2]}, {"index": 1, "embedding": [3, 4]}]}, "2 dimensions"),
    ({"error": "busy"}, "not an embeddings answer"),
    ({"data": [{"index": 0, "embedding": [1, 2, 3, "x"]}, {"index": 1, "embedding": [1, 2, 3, 4]}]},
     "not an embeddings answer"),
])
def test_malformed_answers_are_refused(model_dir, answer, problem):
    with pytest.raises(EmbeddingServiceError, match=problem):
        embedder(model_dir, Server(answer=answer)).embed_documents(["안녕하세요", "재택근무는"])


def test_unreachable_server_is_named(model_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    e = OpenAICompatEmbedder(f"http://127.0.0.1:{port}/v1", "tiny", model_dir, timeout_s=5)
    with pytest.raises(EmbeddingServiceError, match=rf"127\.0\.0\.1:{port}/v1/embeddings: cannot reach"):
        e.embed_documents(["안녕하세요"])


def test_timeout_is_named(model_dir):
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    e = embedder(model_dir, timeout_s=0.5)
    e._client = httpx.Client(transport=httpx.MockTransport(slow))
    with pytest.raises(EmbeddingServiceError, match=r"no answer within 0.5 s \(embedding.timeout_s\)"):
        e.embed_documents(["안녕하세요"])


def test_non_ascii_key_is_refused_up_front(model_dir):
    with pytest.raises(ValueError, match="api_key must be ASCII"):
        OpenAICompatEmbedder("http://embed.test/v1", "tiny", model_dir, api_key="비밀키")


def test_model_directory_is_required(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.json is missing"):
        OpenAICompatEmbedder("http://embed.test/v1", "tiny", tmp_path)


def test_factory_picks_the_server_by_setting(model_dir, tmp_path):
    settings = Settings(index_dir=tmp_path / "index", embedding={
        "model": str(model_dir), "url": "http://gpu-box:7997/v1", "api_key": "k", "timeout_s": 9, "batch_size": 8})
    e = make_embedder(settings)
    assert isinstance(e, OpenAICompatEmbedder)
    assert (e.url, e.api_model, e.api_key, e.timeout_s, e.batch_size) == (
        "http://gpu-box:7997/v1/embeddings", "tiny-model", "k", 9, 8)
    assert not isinstance(make_embedder(Settings(index_dir=tmp_path / "i", embedding={"model": str(model_dir)})),
                          OpenAICompatEmbedder)
