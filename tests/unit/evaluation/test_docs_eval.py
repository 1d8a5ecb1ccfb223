"""`eval retrieval --docs FOLDER --qa FILE`: real files ingested in place, gold ids naming files or pages.

The fast hash embedder stands in for the model; the documents are TXT files and one PDF.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from evaluation.docs import load_docs_set, resolve_gold
from evaluation.retrieval import EvalInputError, gold_of, judged_ids
from ingest.korquad import write_jsonl
from retrieval.types import Chunk
from tests.fakes import HashEmbedder
from tests.pdfs import build_pdf, find_korean_ttf

runner = CliRunner()

DOCS = {
    "규정/연차.txt": "연차휴가는 입사 1년 후 15일이 주어진다. 미사용 연차는 다음 해로 이월할 수 없다.",
    "규정/보안.txt": "보안 규정에 따라 USB 메모리 사용은 금지한다. 외부 저장장치는 보안팀 승인이 필요하다.",
    "출장.txt": "국내 출장비는 일비 2만원과 숙박비 실비를 지급한다.",
    "급여.md": "# 급여 규정\n\n급여는 매월 25일에 지급하며 휴일이면 전날 지급한다.",
}


@pytest.fixture(autouse=True)
def fast_models(use_model, small_eval_cache):
    use_model(HashEmbedder)


@pytest.fixture
def folder(tmp_path) -> Path:
    """tmp/set/docs/... and tmp/set/qa.jsonl, as bench/devdata lays a set out."""
    docs = tmp_path / "set" / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    (docs / "도면.dwg").write_bytes(b"AC1032")  # no loader: not a document of the set
    return docs


def qa_file(folder: Path, rows: list[dict]) -> Path:
    return write_jsonl(rows, folder.parent / "qa.jsonl")


def evaluate(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["eval", "retrieval", *args])
    data = json.loads(result.stdout.strip().splitlines()[-1]) if "--json" in args and result.exit_code == 0 else None
    return result.exit_code, data, result.stderr


def test_gold_ids_may_be_absolute_relative_to_the_folder_or_to_the_qa_file(folder):
    # The three spellings bench/devdata and people write: absolute doc id, folder-relative, set-relative.
    qa = qa_file(folder, [
        {"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": [str((folder / "규정/연차.txt").resolve())]},
        {"qid": "q2", "query": "USB 메모리를 써도 되나요?", "gold_ids": ["규정/보안.txt"]},
        {"qid": "q3", "query": "출장비 일비는 얼마인가요?", "gold_ids": ["docs/출장.txt"]},
        {"qid": "q4", "query": "급여 지급일은 언제인가요?", "gold_ids": ["급여.md"]},
    ])
    code, data, stderr = evaluate("--docs", str(folder), "--qa", str(qa), "--modes", "bm25,dense", "--json")
    assert code == 0, stderr
    assert (data["dataset"], data["corpus_size"], data["questions"]) == ("docs:set/docs", 4, 4)
    assert data["modes"]["bm25"]["hit@1"] == 1.0  # Kiwi BM25 puts each gold file first
    assert data["questions_with_missing_gold"] == 0 and data["warnings"] == [] and data["documents_failed"] == []
    assert Path(data["index"]["dir"]).name.startswith("docs-")


def test_the_cached_index_is_reused_and_a_changed_file_gets_its_own(folder):
    qa = qa_file(folder, [{"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["규정/연차.txt"]}])
    args = ("--docs", str(folder), "--qa", str(qa), "--modes", "bm25", "--json")
    first, second = evaluate(*args)[1], evaluate(*args)[1]
    assert first["index"]["embedded"] > 0 and second["index"]["embedded"] == 0
    assert first["index"]["dir"] == second["index"]["dir"]
    (folder / "출장.txt").write_text("국내 출장비는 일비 3만원을 지급한다.", encoding="utf-8")
    third = evaluate(*args)[1]
    assert third["index"]["dir"] != first["index"]["dir"]


@pytest.mark.parametrize(
    ("docs", "gold", "named"),
    [
        ("없는폴더", "연차.txt", "no such folder"),
        ("빈폴더", "연차.txt", "no documents"),
        ("docs", "규정/휴가.txt", "'규정/휴가.txt' matches no document"),
    ],
)
def test_bad_inputs_are_one_line_naming_the_input_and_the_reason(folder, docs, gold, named):
    (folder.parent / "빈폴더").mkdir()
    (folder.parent / "빈폴더" / "도면.dwg").write_bytes(b"AC1032")
    qa = qa_file(folder, [{"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": [gold]}])
    code, _, stderr = evaluate("--docs", str(folder.parent / docs), "--qa", str(qa), "--json")
    assert code == 2 and named in stderr and "Traceback" not in stderr
    assert docs in stderr or "qa.jsonl" in stderr


def test_docs_with_corpus_or_distractors_is_refused(folder, tmp_path):
    qa = qa_file(folder, [{"qid": "q1", "query": "연차?", "gold_ids": ["출장.txt"]}])
    corpus = write_jsonl([{"id": "a", "text": "가나다"}], tmp_path / "corpus.jsonl")
    assert evaluate("--docs", str(folder), "--corpus", str(corpus), "--qa", str(qa))[0] == 2
    code, _, stderr = evaluate("--docs", str(folder), "--qa", str(qa), "--distractors", str(corpus))
    assert code == 2 and "--distractors" in stderr
    assert evaluate("--docs", str(folder))[0] == 2  # --qa is needed


def test_a_file_that_fails_to_load_is_left_out_with_a_warning(folder):
    (folder / "깨진.pdf").write_bytes(b"%PDF-1.4 not really")
    qa = qa_file(folder, [
        {"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["규정/연차.txt"]},
        {"qid": "q2", "query": "깨진 문서", "gold_ids": ["깨진.pdf"]},
    ])
    code, data, stderr = evaluate("--docs", str(folder), "--qa", str(qa), "--modes", "bm25", "--json")
    assert code == 0, stderr
    assert data["corpus_size"] == 5 and len(data["documents_failed"]) == 1
    assert data["questions_with_missing_gold"] == 1
    assert any("깨진.pdf" in w for w in data["warnings"]) and "깨진.pdf" in stderr
    assert data["modes"]["bm25"]["recall@10"] == 0.5  # the unindexable gold is a miss


def test_resolve_gold_reads_a_page_suffix_only_when_the_whole_id_is_no_file(tmp_path):
    plain, hashed = tmp_path / "a.pdf", tmp_path / "b#1.txt"
    files = {plain, hashed}
    assert resolve_gold("a.pdf#3", files, (tmp_path,)) == (plain, 3)
    assert resolve_gold(str(plain), files, (tmp_path,)) == (plain, None)
    assert resolve_gold("b#1.txt", files, (tmp_path,)) == (hashed, None)
    assert resolve_gold("a.pdf#x", files, (tmp_path,)) is None
    assert resolve_gold("c.pdf", files, (tmp_path,)) is None


def test_page_gold_judges_hits_by_page_in_that_document_only():
    q = {"qid": "q", "gold_ids": ["/d/a.pdf", "/d/b.txt"], "gold_pages": ["/d/a.pdf#2"]}
    assert gold_of(q) == {"/d/a.pdf#2", "/d/b.txt"}
    chunks = [
        Chunk("c1", "/d/a.pdf", "가", "/d/a.pdf", page=1),
        Chunk("c2", "/d/a.pdf", "나", "/d/a.pdf", page=2),
        Chunk("c3", "/d/b.txt", "다", "/d/b.txt", page=None),
    ]
    assert judged_ids(chunks, q) == ["/d/a.pdf#1", "/d/a.pdf#2", "/d/b.txt"]
    assert judged_ids(chunks, {"gold_ids": ["/d/b.txt"]}) == ["/d/a.pdf", "/d/a.pdf", "/d/b.txt"]


def test_page_zero_is_an_error(folder):
    qa = qa_file(folder, [{"qid": "q1", "query": "연차?", "gold_ids": ["출장.txt#0"]}])
    with pytest.raises(EvalInputError, match="pages count from 1"):
        load_docs_set(folder, qa)


@pytest.mark.skipif(find_korean_ttf() is None, reason="no Hangul TrueType font")
def test_page_gold_in_a_pdf(folder):
    pdf = folder / "복리후생.pdf"
    pdf.write_bytes(build_pdf(
        ["경조사 휴가는 결혼 시 5일을 준다.", "학자금은 자녀 1인당 연 200만원까지 지원한다."], find_korean_ttf()
    ))
    qa = qa_file(folder, [
        {"qid": "p2", "query": "자녀 학자금 지원 한도는?", "gold_ids": ["docs/복리후생.pdf#2"]},
        {"qid": "p1", "query": "결혼하면 경조사 휴가는 며칠?", "gold_ids": ["복리후생.pdf#2"]},  # wrong page
    ])
    eval_set = load_docs_set(folder, qa)
    assert eval_set.questions[0]["gold_ids"] == [str(pdf.resolve())]  # what `eval answers` compares
    assert eval_set.questions[0]["gold_pages"] == [f"{pdf.resolve()}#2"]
    code, data, stderr = evaluate("--docs", str(folder), "--qa", str(qa), "--modes", "bm25", "--json")
    assert code == 0, stderr
    # p2 finds page 2 first; p1 finds page 1 first, which is not its (wrongly named) gold page.
    assert data["modes"]["bm25"]["hit@1"] == 0.5


def test_eval_answers_takes_a_folder_of_documents(folder, monkeypatch):
    import app.pipeline as pipeline_module
    from generation.scripted import ScriptedGenerator

    monkeypatch.setenv("CHULCHEO_ANSWER__SIMILARITY", "false")
    gen = ScriptedGenerator(lambda messages: "연차휴가는 15일입니다." if "연차" in messages[-1].content else "모르겠습니다.")
    monkeypatch.setattr(pipeline_module, "make_generator_from_settings", lambda settings: gen)
    qa = qa_file(folder, [{"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["docs/규정/연차.txt"],
                           "answers": ["15일"]}])
    result = runner.invoke(app, ["eval", "answers", "--docs", str(folder), "--qa", str(qa), "--baselines", "none", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    # gold ids became doc ids (resolved paths), which the hits and citations carry
    assert data["metrics"]["retrieval_recall"] == 1.0 and data["metrics"]["citation_accuracy"] == 1.0
    assert data["dataset"] == "docs:set/docs" and data["metrics"]["containment"] == 1.0
