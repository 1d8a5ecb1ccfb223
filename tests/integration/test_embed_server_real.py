"""embedding.url against a real OpenAI-compatible embeddings server: infinity-emb on the local model.

infinity-emb 0.0.78 needs numpy<2, which .venv cannot have (numpy 2.4 is pinned), so it lives in
its own venv outside the repo (~/.cache/chulcheo/infinity-venv, pinned by
infinity-constraints.txt beside this file), made here on first use (a few minutes; later runs
reuse it). The server runs the default model's sentence-transformers weights on torch, offline,
with an API key; the vectors must equal the in-process torch embedder's, and an ingest through the
server must give the index an in-process torch ingest gives: the same chunks and search results,
vectors equal on short texts and within cosine 0.9999 on chunk-sized ones (the server runs its
own transformers 4.57 / sentence-transformers 3.4 and batches as it likes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from filelock import FileLock

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("CHULCHEO_INFINITY_VENV", Path.home() / ".cache" / "chulcheo" / "infinity-venv"))
CONSTRAINTS = Path(__file__).with_name("infinity-constraints.txt")
KEY = "sk-embeddings-test"
PASSAGES = [
    "연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 유급으로 준다.",
    "재택근무는 팀장의 승인을 받아 주 2회까지 할 수 있으며, 근무 시간은 오전 9시부터 오후 6시까지다.",
    "회사의 2024년 매출은 1,234억원으로 전년보다 12% 늘었고 영업이익은 300억원이었다.",
    "안녕하세요",
    # a chunk-sized passage: here the server's vectors are not bit-equal (its own transformers and
    # sentence-transformers, batching), max abs 1.5e-3 one at a time, cosine > 0.9999
    "제1장 총칙. 이 규칙은 회사에 근무하는 직원의 복무와 근로조건에 관한 사항을 정함을 목적으로 한다. "
    "직원은 회사의 규칙과 상사의 정당한 지시를 따라야 하며, 직무상 알게 된 비밀을 재직 중은 물론 퇴직 후에도 "
    "누설하여서는 아니 된다. 근로시간은 휴게시간을 제외하고 1일 8시간, 1주 40시간으로 하며, 시업 시각은 "
    "오전 9시, 종업 시각은 오후 6시로 한다. 업무상 필요한 경우 직원의 동의를 얻어 1주 12시간 한도에서 "
    "연장근로를 시킬 수 있다.",
]
QUERIES = ["연차휴가는 며칠인가요?", "재택근무는 일주일에 몇 번 가능한가요?", "작년 매출액은 얼마였나요?"]


def infinity_venv() -> Path:
    """infinity_emb of the pinned separate venv, made first if missing (under a lock)."""
    binary = VENV / "bin" / "infinity_emb"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(VENV) + ".lock", timeout=1800):
        if binary.exists():
            return binary
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run([str(base), "-m", "venv", str(VENV)], check=True, timeout=300)
        done = subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "-c", str(CONSTRAINTS),
                               "infinity-emb[server,torch]==0.0.78", "torch==2.13.0"],
                              capture_output=True, text=True, timeout=1500, check=False)
        if done.returncode != 0:
            pytest.fail(f"could not install infinity-emb into {VENV}: {done.stderr[-2000:]}")
    return binary


@pytest.fixture(scope="module")
def model_path(real_settings) -> Path:
    from app.models import resolve_model

    return Path(resolve_model(real_settings.embedding.model, real_settings.model_dir))


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    """The base URL ("http://127.0.0.1:PORT/v1") of a running infinity-emb with KEY."""
    binary = infinity_venv()
    port = free_port()
    log_path = tmp_path_factory.mktemp("infinity") / "server.log"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
                        "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [str(binary), "v2", "--model-id", str(model_path), "--served-model-name", model_path.name,
             "--host", "127.0.0.1", "--port", str(port), "--url-prefix", "/v1", "--engine", "torch",
             "--device", "cpu", "--no-bettertransformer", "--batch-size", "8", "--api-key", KEY],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"infinity_emb exited: {log_path.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"infinity_emb not up in 300 s: {log_path.read_text()[-3000:]}"
            time.sleep(2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def local_torch(model_path, real_settings):
    from retrieval.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(str(model_path), max_seq_length=real_settings.embedding.max_seq_length)


def remote(server, model_path, real_settings, key=KEY):
    from retrieval.embed_openai import OpenAICompatEmbedder

    return OpenAICompatEmbedder(server, model_path.name, model_path, api_key=key, batch_size=3,
                                max_seq_length=real_settings.embedding.max_seq_length)


def test_server_vectors_equal_the_local_model(server, model_path, real_settings, local_torch):
    e = remote(server, model_path, real_settings)
    docs, local_docs = e.embed_documents(PASSAGES), local_torch.embed_documents(PASSAGES)
    assert docs.shape == (len(PASSAGES), local_torch.dim) and np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-5)
    assert np.abs(docs[:4] - local_docs[:4]).max() < 1e-4  # short texts: the same numbers
    assert np.abs(docs - local_docs).max() < 1e-2 and (docs * local_docs).sum(axis=1).min() > 0.9999
    for query in QUERIES:
        assert np.abs(e.embed_query(query) - local_torch.embed_query(query)).max() < 1e-4
    # and the ranking a question gets is the local one
    assert [int(np.argmax(docs @ e.embed_query(q))) for q in QUERIES] == [0, 1, 2]


def test_wrong_key_is_refused_with_a_clear_error(server, model_path, real_settings):
    from retrieval.errors import EmbeddingServiceError

    with pytest.raises(EmbeddingServiceError, match=r"HTTP 401 \(check embedding.api_key"):
        remote(server, model_path, real_settings, key="sk-wrong").embed_documents(["안녕하세요"])


def _ingest(folder: Path, index: Path, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "app", "ingest", str(folder), "--index", str(index), "--json"],
                          cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ingest_through_the_server_gives_the_local_index(server, real_settings, tmp_path):
    from app.pipeline import Pipeline
    from retrieval.store import open_index

    folder = tmp_path / "규정"
    folder.mkdir()
    for i, text in enumerate([*PASSAGES[:3], PASSAGES[-1]]):
        (folder / f"문서{i}.txt").write_text(f"제{i + 1}조\n\n{text}\n", encoding="utf-8")
    via = {"CHULCHEO_EMBEDDING__URL": server, "CHULCHEO_EMBEDDING__API_KEY": KEY}
    torch = {"CHULCHEO_EMBEDDING__BACKEND": "torch"}
    a = _ingest(folder, tmp_path / "local", torch)
    b = _ingest(folder, tmp_path / "server", via)
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    x, y = open_index(tmp_path / "local"), open_index(tmp_path / "server")
    assert x.chunks == y.chunks and len(x.chunks) == 4
    rows = list(range(len(x.chunks)))
    vx, vy = x.dense.vectors(rows), y.dense.vectors(rows)
    assert np.abs(vx - vy).max() < 1e-2 and (vx * vy).sum(axis=1).min() > 0.9999
    assert y.manifest["embedding"]["model_id"] == f"{Path(real_settings.embedding.model).name}+openai-compat"

    settings = real_settings.model_copy(update={
        "embedding": real_settings.embedding.model_copy(update={"url": server, "api_key": KEY})})
    through = Pipeline(settings.model_copy(update={"index_dir": tmp_path / "server"}))
    here = Pipeline(settings.model_copy(update={
        "index_dir": tmp_path / "local", "embedding": real_settings.embedding.model_copy(update={"backend": "torch"})}))
    for query in QUERIES:
        assert [h.chunk.chunk_id for h in through.search(query, 3)] == [h.chunk.chunk_id for h in here.search(query, 3)]
