"""Files prepared away from the writer (`preparer=`, what `ingest --ray` uses) give the index a
local ingest gives; a Ray cluster that cannot be reached fails fast and changes nothing.

The Ray cluster itself is exercised in tests/integration/test_ray_ingest.py; here an in-process
preparer runs the same `prepare_file` the Ray actors run, over the fast fake embedder.
"""

from __future__ import annotations

import json
import pickle
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import ClusterError, FileTypeMismatch
from ingest.prepare import IngestTools, prepare_file
from ingest.ray_prepare import RayPreparer
from retrieval.store import current_generation_path, open_index

DOCS = {
    "연차.txt": "연차휴가 규정\n\n연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 유급으로 준다. "
               "3년 이상 근속하면 2년마다 1일이 더해진다.\n",
    "재택.md": "# 재택근무\n\n재택근무는 팀장의 승인을 받아 주 2회까지 할 수 있다. 근무 시간은 오전 9시부터 오후 6시까지다.\n",
    "faq.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (
        {"id": "식대", "text": "식대는 월 20만원이다."}, {"id": "출장", "text": "출장비는 실비로 정산한다."})),
    "가짜.pdf": "이것은 PDF가 아니라 글자입니다.",  # fails: the name says PDF
}


class InProcessPreparer:
    """A `Preparer` that runs `prepare_file` here, through pickle, as a Ray actor would."""

    def __init__(self, tools: IngestTools) -> None:
        self.tools = tools
        self.jobs: list[Path] = []

    def prepare(self, jobs, known):
        for job in jobs:
            self.jobs.append(job.path)
            yield pickle.loads(pickle.dumps(prepare_file(pickle.loads(pickle.dumps(job)), self.tools, known)))


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def with_preparer(b):
    b.preparer = InProcessPreparer(IngestTools(b.limits, b.ocr, b.chunker, b.embedder, b.context_prefix))
    return b


def same_index(a: Path, b: Path) -> None:
    x, y = open_index(a), open_index(b)
    assert [c.chunk_id for c in x.chunks] == [c.chunk_id for c in y.chunks]
    assert x.chunks == y.chunks  # texts and metadata
    rows = list(range(len(x.chunks)))
    assert np.abs(x.dense.vectors(rows) - y.dense.vectors(rows)).max() < 1e-5
    docs = lambda g: {d: {k: v for k, v in e.items() if k != "ingested_at"} for d, e in g.manifest["docs"].items()}  # noqa: E731
    assert docs(x) == docs(y)


def test_prepared_elsewhere_gives_the_local_index(tmp_path, builder):
    corpus = write_docs(tmp_path / "docs")
    local = builder(tmp_path / "local").ingest([corpus], "hr")
    remote_builder = with_preparer(builder(tmp_path / "remote"))
    remote = remote_builder.ingest([corpus], "hr")
    assert remote.to_dict() | {"seconds": 0} == local.to_dict() | {"seconds": 0}
    assert len(remote.failed) == 1 and "가짜.pdf" in remote.failed[0]["error"]
    same_index(tmp_path / "local", tmp_path / "remote")

    # an edit: only the changed file is sent, and the index still matches a local update
    (corpus / "재택.md").write_text(DOCS["재택.md"] + "\n재택근무 신청은 전날까지 한다.\n", encoding="utf-8")
    remote_builder.preparer.jobs.clear()
    local = builder(tmp_path / "local").ingest([corpus], "hr")
    remote = remote_builder.ingest([corpus], "hr")
    assert (remote.updated, remote.unchanged, remote.embedded) == (local.updated, local.unchanged, local.embedded) == (1, 3, 1)
    # unchanged files are never sent (a JSONL file is: its documents are its lines)
    assert {p.name for p in remote_builder.preparer.jobs} == {"재택.md", "faq.jsonl", "가짜.pdf"}
    same_index(tmp_path / "local", tmp_path / "remote")


def test_excluded_lines_stay_out_when_prepared_elsewhere(tmp_path, builder):
    corpus = write_docs(tmp_path / "docs", {"faq.jsonl": DOCS["faq.jsonl"]})
    drop = f"{(corpus / 'faq.jsonl').resolve()}#출장"
    builder(tmp_path / "local").ingest([corpus], exclude=[drop])
    with_preparer(builder(tmp_path / "remote")).ingest([corpus], exclude=[drop])
    assert drop not in open_index(tmp_path / "remote").manifest["docs"]
    same_index(tmp_path / "local", tmp_path / "remote")


def test_load_errors_survive_the_trip_back_from_a_worker():
    exc = FileTypeMismatch("/d/가짜.pdf", "the name says .pdf but the content is text",
                           named=".pdf", content="text", rename_to=".txt")
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), str(back), back.reason, back.rename_to) == (FileTypeMismatch, str(exc), exc.reason, ".txt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_names_address_and_reason_fast():
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        RayPreparer(address, lambda: None, connect_timeout_s=2).connect()
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert address in message and "refused" in message.lower() and "ray start --head" in message


@pytest.mark.parametrize("address", ["nonsense", "10.0.0.5:port"])
def test_malformed_address_is_refused(address):
    with pytest.raises(ClusterError, match="HOST:PORT"):
        RayPreparer(address, lambda: None).connect()


def test_missing_ray_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ClusterError, match=r"ray package is not installed.*\.\[ray\]"):
        RayPreparer("auto", lambda: None).connect()


def test_unreachable_cluster_keeps_the_index(tmp_path, monkeypatch):
    """Through the pipeline and the CLI: exit 2 with the address, and the live generation stays."""
    from typer.testing import CliRunner

    from app.cli import app as cli_app
    from app.pipeline import Pipeline
    from app.settings import Settings
    from tests.fakes import HashEmbedder

    corpus = write_docs(tmp_path / "docs", {"연차.txt": DOCS["연차.txt"]})
    settings = Settings(index_dir=tmp_path / "index")
    Pipeline(settings, embedder=HashEmbedder()).ingest([corpus])
    before = current_generation_path(settings.index_dir)
    (corpus / "새규정.txt").write_text("새 규정은 다음 달부터 시행한다.\n", encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ClusterError, match=address):
        Pipeline(settings, embedder=HashEmbedder()).ingest([corpus], ray=address)
    assert current_generation_path(settings.index_dir) == before
    assert len(open_index(settings.index_dir).manifest["docs"]) == 1

    monkeypatch.setenv("CHULCHEO_INGEST__RAY", address)  # the setting, as the CLI reads it
    result = CliRunner().invoke(cli_app, ["ingest", str(corpus), "--index", str(settings.index_dir)])
    assert result.exit_code == 2
    assert address in " ".join(result.output.split()) and "no Ray head node answers" in " ".join(result.output.split())
    assert current_generation_path(settings.index_dir) == before


def test_a_worker_failing_mid_ingest_commits_nothing(tmp_path, builder):
    """The preparer raises after the first file (a dead actor): the live generation stays."""
    corpus = write_docs(tmp_path / "docs", {"연차.txt": DOCS["연차.txt"]})
    b = with_preparer(builder(tmp_path / "index"))
    b.ingest([corpus])
    before = current_generation_path(tmp_path / "index")
    write_docs(corpus, {"재택.md": DOCS["재택.md"], "출장.txt": "출장비는 실비로 정산한다.\n"})
    (corpus / "연차.txt").write_text(DOCS["연차.txt"] + "\n연차는 반일 단위로도 쓸 수 있다.\n", encoding="utf-8")
    inner = b.preparer

    class Dying:
        def prepare(self, jobs, known):
            results = inner.prepare(jobs, known)
            yield next(results)
            raise ClusterError("--ray 127.0.0.1:6379: a Ray worker failed on 출장.txt: ActorDiedError; nothing was committed")

    b.preparer = Dying()
    with pytest.raises(ClusterError, match="nothing was committed"):
        b.ingest([corpus])
    assert current_generation_path(tmp_path / "index") == before
    assert [Path(d).name for d in open_index(tmp_path / "index").manifest["docs"]] == ["연차.txt"]
    assert "반일" not in " ".join(c.text for c in open_index(tmp_path / "index").chunks)
