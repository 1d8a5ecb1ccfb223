"""`chulcheo ingest --ray ADDRESS` on a real two-node Ray cluster gives the index a local ingest gives.

The cluster is started here on loopback (a head and a second node, one CPU each, no dashboard,
no usage stats) and stopped by killing the process groups this module started. The corpus is
small Korean TXT/MD files, a two-page PDF and a file that fails; the model is the real default
embedding model (onnx-int8), both times in a `chulcheo ingest` subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.local_ray import ENV, RAY, local_cluster

pytestmark = pytest.mark.integration
pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["연차휴가는 며칠인가요?", "재택근무는 일주일에 몇 번 가능한가요?", "출장비 정산은 어떻게 하나요?",
           "2024년 매출은 얼마인가요?"]


@pytest.fixture(scope="module")
def ray_cluster():
    """The address of a running two-node local Ray cluster (1 CPU each)."""
    if not RAY.exists():
        pytest.skip(f"{RAY} not found (pip install -e .[ray])")
    with local_cluster(nodes=2, cpus=1) as address:
        yield address


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "규정"
    folder.mkdir()
    (folder / "연차휴가.txt").write_text(
        "연차휴가 규정\n\n연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 유급으로 준다.\n"
        "3년 이상 근속하면 2년마다 1일이 더해지며, 휴가는 최대 25일까지 쌓을 수 있다.\n", encoding="utf-8")
    (folder / "재택근무.md").write_text(
        "# 재택근무\n\n재택근무는 팀장의 승인을 받아 주 2회까지 할 수 있다.\n\n## 근무 시간\n\n"
        "근무 시간은 오전 9시부터 오후 6시까지이며, 메신저에 접속해 있어야 한다.\n", encoding="utf-8")
    (folder / "출장.txt").write_text(
        "출장비 정산\n\n출장비는 실비로 정산하며, 영수증을 출장 후 7일 안에 제출한다. 숙박비는 1박에 10만원까지다.\n",
        encoding="cp949")
    (folder / "깨진.pdf").write_text("PDF가 아닌 글자", encoding="utf-8")  # fails the same way both times
    from tests.pdfs import build_pdf, find_korean_ttf

    font = find_korean_ttf()
    if font is not None:
        (folder / "사업보고서.pdf").write_bytes(build_pdf([
            "2024년 사업보고서\n회사의 2024년 매출은 1,234억원으로 전년보다 12% 늘었다.",
            "영업이익은 300억원이었고, 연구개발비는 매출의 8%였다.",
        ], font))
    return folder


def _ingest(index: Path, folder: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "app", "ingest", str(folder), "--index", str(index), "--json",
                           "--group", "hr", *extra], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_index(local: Path, remote: Path, settings) -> None:
    from app.pipeline import Pipeline
    from retrieval.store import open_index

    a, b = open_index(local), open_index(remote)
    assert [c.chunk_id for c in a.chunks] == [c.chunk_id for c in b.chunks]
    assert a.chunks == b.chunks  # texts, pages, headings, metadata
    rows = list(range(len(a.chunks)))
    assert np.abs(a.dense.vectors(rows) - b.dense.vectors(rows)).max() < 1e-5
    strip = lambda m: {d: {k: v for k, v in e.items() if k != "ingested_at"} for d, e in m["docs"].items()}  # noqa: E731
    assert strip(a.manifest) == strip(b.manifest)
    config = lambda m: {k: m[k] for k in ("embedding", "tokenizer", "bm25", "chunking")}  # noqa: E731
    assert config(a.manifest) == config(b.manifest)
    pa = Pipeline(settings.model_copy(update={"index_dir": local}))
    pb = Pipeline(settings.model_copy(update={"index_dir": remote}), embedder=pa.embedder)
    for query in QUERIES:
        ha, hb = pa.search(query, 5), pb.search(query, 5)
        assert [h.chunk.chunk_id for h in ha] == [h.chunk.chunk_id for h in hb], query
        assert np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-5), query


def test_ray_ingest_equals_local_ingest(ray_cluster, corpus, real_settings, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    a = _ingest(local, corpus)
    b = _ingest(remote, corpus, "--ray", ray_cluster)
    drop = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert drop(b) == drop(a)
    assert a["added"] >= 3 and len(a["failed"]) == 1 and "깨진.pdf" in a["failed"][0]["error"]
    _same_index(local, remote, real_settings)

    # an edit and a new file: only they go to the cluster, and the indexes still agree
    (corpus / "재택근무.md").write_text((corpus / "재택근무.md").read_text(encoding="utf-8")
                                    + "\n재택근무 신청은 전날 오후 5시까지 한다.\n", encoding="utf-8")
    (corpus / "보안.txt").write_text("USB 메모리 사용은 금지한다. 외부 메일로 문서를 보내려면 승인을 받아야 한다.\n",
                                     encoding="utf-8")
    a = _ingest(local, corpus)
    b = _ingest(remote, corpus, "--ray", ray_cluster)
    assert drop(b) == drop(a)
    assert (a["added"], a["updated"]) == (1, 1)
    _same_index(local, remote, real_settings)
