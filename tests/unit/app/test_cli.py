"""The CLI's --json contracts and exit codes, with a fast fake embedder in place of the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import app.pipeline as pipeline_module
from app.cli import app
from tests.fakes import HashEmbedder

runner = CliRunner()


FakeModel = HashEmbedder


@pytest.fixture(autouse=True)
def fast_models(use_model):
    use_model(FakeModel)


@pytest.fixture
def index(tmp_path, monkeypatch):
    path = tmp_path / "index"
    monkeypatch.setenv("CHULCHEO_INDEX_DIR", str(path))
    monkeypatch.setenv("CHULCHEO_CHUNK__MAX_TOKENS", "40")
    monkeypatch.setenv("CHULCHEO_CHUNK__OVERLAP_TOKENS", "5")
    return path


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "휴가.txt").write_text("연차휴가는 15일이다. 병가는 연간 60일 이내이다.", encoding="utf-8")
    (folder / "보안.md").write_text("# 보안\n\nUSB 메모리 사용은 금지한다.", encoding="utf-8")
    return folder


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


def json_out(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ingest_json_contract(index, docs):
    result = run("ingest", str(docs), "--json")
    assert result.exit_code == 0, result.output
    data = json_out(result)
    # the stable keys; later ones ("replaced") are added, never renamed
    assert {"added", "updated", "unchanged", "deleted", "failed", "chunks", "seconds"} <= set(data)
    assert data.get("replaced", 0) == 0
    assert (data["added"], data["updated"], data["unchanged"], data["deleted"]) == (2, 0, 0, 0)
    assert data["failed"] == [] and data["chunks"] >= 2 and isinstance(data["seconds"], float)
    again = json_out(run("ingest", str(docs), "--json"))
    assert (again["added"], again["unchanged"]) == (0, 2)


def test_ingest_bad_file_exits_1_and_names_it(index, docs):
    (docs / "손상.pdf").write_bytes(b"%PDF-1.4 broken")
    result = run("ingest", str(docs), "--json")
    assert result.exit_code == 1
    data = json_out(result)
    assert data["added"] == 2
    assert [Path(f["path"]).name for f in data["failed"]] == ["손상.pdf"]
    assert "손상.pdf" in data["failed"][0]["error"]


def test_ingest_human_output_lists_failures(index, docs):
    (docs / "빈.txt").write_bytes(b"")
    result = run("ingest", str(docs))
    assert result.exit_code == 1
    assert "빈.txt" in result.output and "추가 2" in result.output


def test_index_option_overrides_env(tmp_path, index, docs):
    other = tmp_path / "other"
    assert run("ingest", str(docs), "--index", str(other), "--json").exit_code == 0
    assert (other / "CURRENT").exists() and not index.exists()


def test_search_json_contract(index, docs):
    run("ingest", str(docs))
    for mode in ("hybrid", "bm25", "dense"):
        result = run("search", "연차휴가 일수", "--k", "2", "--mode", mode, "--json")
        assert result.exit_code == 0, result.output
        data = json_out(result)
        assert data["query"] == "연차휴가 일수"
        hits = data["hits"]
        assert 1 <= len(hits) <= 2
        assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
        assert {"rank", "chunk_id", "doc_id", "source", "page", "score", "text"} <= set(hits[0])
    top = json_out(run("search", "연차휴가 일수", "--mode", "bm25", "--json"))["hits"][0]
    assert "15일" in top["text"] and top["doc_id"].endswith("휴가.txt")


def test_search_batch_writes_one_line_per_query(index, docs, tmp_path):
    run("ingest", str(docs))
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"qid": "q1", "query": "USB 메모리"}\n\n{"qid": 2, "query": "병가 기간"}\nnot json\n',
        encoding="utf-8",
    )
    result = run("search", "--queries", str(queries), "--k", "1")
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert [x["qid"] for x in lines] == ["q1", 2, None]
    assert "USB" in lines[0]["hits"][0]["text"]
    assert "q.jsonl:4" in lines[2]["error"]
    assert result.exit_code == 1


def test_search_needs_query_or_file(index):
    assert run("search").exit_code == 2
    assert run("search", "질문", "--mode", "fuzzy").exit_code == 2


def test_search_without_index_is_a_clear_error(index):
    result = run("search", "안녕하세요")
    assert result.exit_code == 2
    assert "no index" in result.output and "chulcheo ingest" in result.output


def test_docs_list_and_delete(index, docs):
    run("ingest", str(docs), "--group", "hr")
    listed = json_out(run("docs", "list", "--json"))["documents"]
    assert {Path(d["doc_id"]).name for d in listed} == {"휴가.txt", "보안.md"}
    assert all(d["group"] == "hr" and d["chunks"] >= 1 and len(d["sha256"]) == 64 for d in listed)
    target = str(docs / "휴가.txt")  # a path works as well as the id
    result = run("docs", "delete", target, "없는문서", "--json")
    assert result.exit_code == 1
    data = json_out(result)
    assert data == {"deleted": [str((docs / "휴가.txt").resolve())], "missing": ["없는문서"]}
    remaining = json_out(run("docs", "list", "--json"))["documents"]
    assert [Path(d["doc_id"]).name for d in remaining] == ["보안.md"]
    hits = json_out(run("search", "연차휴가", "--json"))["hits"]
    assert all("휴가.txt" not in h["doc_id"] for h in hits)


def test_a_scan_without_ocr_is_listed_as_needing_ocr(index, docs, monkeypatch):
    from tests.unit.ingest.test_ocr import scanned_pdf

    monkeypatch.setenv("CHULCHEO_OCR__ENABLED", "false")
    (docs / "결재.pdf").write_bytes(scanned_pdf(1))
    result = run("ingest", str(docs), "--json")
    assert json_out(result)["needs_ocr"] == [str((docs / "결재.pdf").resolve())]
    listed = json_out(run("docs", "list", "--json"))
    assert {Path(d["doc_id"]).name for d in listed["documents"]} == {"휴가.txt", "보안.md"}
    (waiting,) = listed["needs_ocr"]
    assert waiting["doc_id"].endswith("결재.pdf") and "OCR" in waiting["error"].upper()
    shown = run("docs", "list")
    assert "OCR 필요" in shown.output and "결재.pdf" in shown.output


def test_ingest_sync_deletes_missing(index, docs):
    run("ingest", str(docs))
    (docs / "보안.md").unlink()
    data = json_out(run("ingest", str(docs), "--sync", "--json"))
    assert data["deleted"] == 1


def test_models_list_json(tmp_path, monkeypatch):
    monkeypatch.setenv("CHULCHEO_MODEL_DIR", str(tmp_path / "models"))
    data = json_out(run("models", "list", "--json"))
    assert data["model_dir"] == str(tmp_path / "models")
    names = {m["name"]: m for m in data["models"]}
    assert "embeddinggemma-300m" in names and names["embeddinggemma-300m"]["present"] is False


def test_file_names_with_brackets_are_printed_verbatim(index, docs):
    (docs / "[최종] 규정.txt").write_bytes(b"")
    result = run("ingest", str(docs))
    assert "[최종] 규정.txt" in result.output


def test_k_and_mode_default_to_settings(index, docs, monkeypatch):
    run("ingest", str(docs))
    monkeypatch.setenv("CHULCHEO_RETRIEVAL__K", "1")
    hits = json_out(run("search", "휴가", "--json"))["hits"]
    assert len(hits) == 1


def test_bad_settings_are_one_clear_line(index, monkeypatch):
    monkeypatch.setenv("CHULCHEO_CHUNK__MAX_TOKENS", "-5")
    result = run("docs", "list")
    assert result.exit_code == 2
    assert "chunk.max_tokens" in result.output and "Traceback" not in result.output


def test_query_with_other_embedding_model_is_refused(index, docs, monkeypatch):
    run("ingest", str(docs))

    other = FakeModel()
    other.model_id = "some-other-model"
    monkeypatch.setattr(pipeline_module, "make_embedder", lambda settings: other)
    result = run("search", "휴가")
    assert result.exit_code == 2 and "some-other-model" in result.output


def test_delete_by_jsonl_path_removes_all_its_lines(index, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": "a", "text": "연차휴가는 15일이다."}\n{"id": "b", "text": "병가는 60일이다."}\n',
        encoding="utf-8",
    )
    run("ingest", str(corpus))
    data = json_out(run("docs", "delete", str(corpus), "--json"))
    # a line's document id includes its file (the same line id in another file is another document)
    assert sorted(data["deleted"]) == [f"{corpus.resolve()}#a", f"{corpus.resolve()}#b"] and data["missing"] == []


def test_delete_by_a_bare_line_id_only_when_one_file_has_it(index, tmp_path):
    for name in ("c.jsonl", "d.jsonl"):
        (tmp_path / name).write_text('{"id": "a", "text": "연차휴가는 15일이다."}\n'
                                     f'{{"id": "{name[0]}", "text": "병가는 60일이다."}}\n', encoding="utf-8")
        run("ingest", str(tmp_path / name))
    data = json_out(run("docs", "delete", "c", "a", "--json"))
    assert data["deleted"] == [f"{(tmp_path / 'c.jsonl').resolve()}#c"] and data["missing"] == ["a"]  # "a" is in both


def test_json_output_survives_a_file_name_that_is_not_utf8(capsys):
    from app.cli.common import _emit

    _emit({"failed": [{"path": "docs/\udcb1\udcd4.txt", "error": "file name is not valid UTF-8"}]})
    failed = json.loads(capsys.readouterr().out)["failed"][0]
    assert failed["path"] == "docs/\\xb1\\xd4.txt" and failed["error"].startswith("file name")


def test_index_status_and_compact_json_contracts(index, docs, tmp_path, monkeypatch):
    assert json_out(run("index", "status", "--json")) == {}
    assert run("ingest", str(docs), "--json").exit_code == 0
    extra = tmp_path / "more"
    extra.mkdir()
    for i in range(3):  # one segment per ingest
        (extra / f"추가{i}.txt").write_text(f"{i}번 공지: 주차 등록은 총무팀에 신청한다.", encoding="utf-8")
        assert run("ingest", str(extra / f"추가{i}.txt"), "--json").exit_code == 0
    assert run("docs", "delete", str((docs / "휴가.txt").resolve()), "--json").exit_code == 0  # a row of the first
    assert run("docs", "delete", str((extra / "추가1.txt").resolve()), "--json").exit_code == 0  # all of one
    status = json_out(run("index", "status", "--json"))
    assert status["generation"].startswith("gen-") and len(status["segments"]) == 3  # the emptied one is gone
    assert [s["deleted"] for s in status["segments"]] == [1, 0, 0]
    assert status["chunks"] == sum(s["rows"] - s["deleted"] for s in status["segments"])
    before = json_out(run("search", "주차 등록", "--json"))
    done = json_out(run("index", "compact", "--json"))
    assert done["merged"] == [s["name"] for s in status["segments"]] and done["rows"] == status["chunks"]
    assert set(done) == {"merged", "into", "rows", "seconds"}
    after = json_out(run("index", "status", "--json"))
    assert [s["name"] for s in after["segments"]] == [done["into"]] and after["chunks"] == status["chunks"]
    assert json_out(run("search", "주차 등록", "--json")) == before
    assert json_out(run("index", "compact", "--json"))["merged"] == []
    human = run("index", "status")
    assert human.exit_code == 0 and "세그먼트 1개" in human.stdout
