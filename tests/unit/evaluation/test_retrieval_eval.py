"""`chulcheo eval retrieval`: the --json contract, hand-checked metrics, caching and the fusion grid.

A fast hash embedder stands in for the model (it counts its calls) and one Kiwi is shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from app.cli import app
from evaluation.retrieval import EVAL_MODES, grid_configs, sample_questions
from retrieval.store import current_generation_path, read_manifest
from tests.fakes import HashEmbedder

runner = CliRunner()

METRICS = ("hit@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")

CORPUS = [
    {"id": "연차", "text": "연차휴가는 입사 1년 후 15일이 주어진다. 미사용 연차는 다음 해로 이월할 수 없다."},
    {"id": "병가", "text": "병가는 연간 60일 이내로 쓸 수 있으며 진단서를 제출해야 한다."},
    {"id": "보안", "text": "보안 규정에 따라 USB 메모리 사용은 금지한다. 외부 저장장치는 보안팀 승인이 필요하다."},
    {"id": "출장", "text": "국내 출장비는 일비 2만원과 숙박비 실비를 지급한다."},
    {"id": "급여", "text": "급여는 매월 25일에 지급하며 휴일이면 전날 지급한다.", "metadata": {"title": "급여 규정"}},
    {"id": "교육", "text": "신입사원 교육은 입사 후 2주 동안 진행된다."},
]
QA = [
    {"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["연차"]},
    {"qid": "q2", "query": "USB 메모리를 써도 되나요?", "gold_ids": ["보안"]},
    {"qid": "q3", "query": "출장비 일비는 얼마인가요?", "gold_ids": ["출장"]},
    {"qid": "q4", "query": "급여 지급일은 언제인가요?", "gold_ids": ["급여"]},
    {"qid": "q5", "query": "퇴직금 중간정산이 되나요?", "gold_ids": ["퇴직금"]},  # gold not in the corpus
]


class CountingModel(HashEmbedder):
    """The fake embedder, counting embed_documents / embed_query calls over all instances."""

    calls: ClassVar[dict[str, int]] = {"embed_documents": 0, "embed_query": 0}

    def embed_documents(self, texts):
        CountingModel.calls["embed_documents"] += 1
        return super().embed_documents(texts)

    def embed_query(self, text):
        CountingModel.calls["embed_query"] += 1
        return super().embed_query(text)



@pytest.fixture(autouse=True)
def fast_models(use_model, monkeypatch, small_eval_cache):
    """The counting fake embedder, and the eval cache kept inside tmp_path."""
    use_model(CountingModel)
    monkeypatch.setattr(CountingModel, "calls", {"embed_documents": 0, "embed_query": 0})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    return write_jsonl(tmp_path / "corpus.jsonl", CORPUS), write_jsonl(tmp_path / "qa.jsonl", QA)


def evaluate(*args: str) -> tuple[int, dict | None, str]:
    """(exit code, the --json object or None, stderr)."""
    result = runner.invoke(app, ["eval", "retrieval", *args])
    lines = result.stdout.strip().splitlines()
    data = json.loads(lines[-1]) if "--json" in args and result.exit_code == 0 else None
    return result.exit_code, data, result.stderr


def corpus_args(files) -> list[str]:
    corpus, qa = files
    return ["--corpus", str(corpus), "--qa", str(qa)]


def test_json_contract_has_every_mode_with_metrics_in_range(files):
    code, data, _ = evaluate(*corpus_args(files), "--json")
    assert code == 0
    assert {"dataset", "corpus_size", "chunks", "questions", "k", "modes", "settings", "warnings"} <= set(data)
    assert "grid" not in data
    assert (data["dataset"], data["corpus_size"], data["questions"], data["k"]) == ("jsonl:qa.jsonl", 6, 5, 10)
    assert data["chunks"] >= 6
    assert list(data["modes"]) == list(EVAL_MODES)
    for mode, m in data["modes"].items():
        assert all(0.0 <= m[name] <= 1.0 for name in METRICS), mode
        assert m["n"] == 5 and 0.0 <= m["latency_ms_p50"] <= m["latency_ms_p95"]
    assert data["settings"]["chunk_max_tokens"] == 40
    assert data["settings"]["embedding_model_id"] == "test-hash-bigram-256"
    assert {"bm25_k1", "bm25_b", "rrf_k", "weights", "norm", "candidates"} <= set(data["settings"])


def test_hand_checked_bm25_hits_and_missing_gold_counts_as_a_miss(files):
    # Kiwi BM25 puts each answerable question's document first (연차/휴가, usb/메모리, 출장/일비,
    # 급여/지급); q5's gold is not in the corpus, so it is a miss that stays in the mean: 4/5.
    code, data, stderr = evaluate(*corpus_args(files), "--modes", "bm25,bm25-whitespace", "--json")
    assert code == 0
    assert list(data["modes"]) == ["bm25", "bm25-whitespace"]
    bm25 = data["modes"]["bm25"]
    assert (bm25["hit@1"], bm25["recall@10"], bm25["mrr@10"], bm25["n"]) == (0.8, 0.8, 0.8, 5)
    # Whitespace tokens only match whole words: "급여" never equals "급여는", "출장비" never "출장비는".
    assert data["modes"]["bm25-whitespace"]["hit@1"] < bm25["hit@1"]
    assert data["questions_with_missing_gold"] == 1
    assert data["warnings"] == ["1 questions have gold ids missing from the corpus"]
    assert "1 questions have gold ids missing from the corpus" in stderr


def test_whitespace_baseline_indexes_the_context_prefix_when_the_index_does(files, tmp_path, monkeypatch):
    # "급여 규정" is only in 급여's title: with context_prefix the baseline must see it too.
    qa = write_jsonl(tmp_path / "title.jsonl", [{"qid": "t", "query": "규정", "gold_ids": ["급여"]}])
    args = ["--corpus", str(files[0]), "--qa", str(qa), "--modes", "bm25-whitespace", "--json"]
    monkeypatch.setenv("CHULCHEO_CHUNK__CONTEXT_PREFIX", "false")
    assert evaluate(*args)[1]["modes"]["bm25-whitespace"]["hit@1"] == 0.0
    monkeypatch.setenv("CHULCHEO_CHUNK__CONTEXT_PREFIX", "true")
    assert evaluate(*args)[1]["modes"]["bm25-whitespace"]["hit@1"] == 1.0


def test_single_question_found_first_gives_hit_at_1_of_1(files, tmp_path):
    qa = write_jsonl(tmp_path / "one.jsonl", [QA[1]])
    code, data, _ = evaluate("--corpus", str(files[0]), "--qa", str(qa), "--modes", "bm25", "--json")
    assert code == 0
    assert {name: data["modes"]["bm25"][name] for name in METRICS} == dict.fromkeys(METRICS, 1.0)
    assert data["warnings"] == []


def test_human_output_is_a_table(files):
    result = runner.invoke(app, ["eval", "retrieval", *corpus_args(files), "--fusion-grid"])
    assert result.exit_code == 0, result.output
    for text in ("hybrid-weighted", "bm25-whitespace", "nDCG@10", "p95 ms", "rrf k=60", "weighted 0.3/0.7 zscore"):
        assert text in result.stdout


def test_distractors_are_pooled_and_a_colliding_id_is_an_error(files, tmp_path):
    extra = write_jsonl(tmp_path / "extra.jsonl", [
        {"id": "주차", "text": "본사 주차장은 임직원 차량 1대만 등록할 수 있다."},
        {"id": "식대", "text": "점심 식대는 월 20만원까지 지원한다."},
    ])
    code, data, _ = evaluate(*corpus_args(files), "--distractors", str(extra), "--modes", "bm25", "--json")
    assert code == 0 and data["corpus_size"] == 8
    clash = write_jsonl(tmp_path / "clash.jsonl", [{"id": "보안", "text": "보안 점검은 분기마다 한다."}])
    code, _, stderr = evaluate(*corpus_args(files), "--distractors", str(clash), "--json")
    assert code == 2
    assert "'보안'" in stderr and "clash.jsonl" in stderr and "Traceback" not in stderr


def test_second_run_reuses_the_cached_index_and_embeds_nothing(files, tmp_path):
    code, first, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--json")
    assert code == 0 and CountingModel.calls["embed_documents"] > 0 and first["index"]["embedded"] > 0
    assert Path(first["index"]["dir"]).is_relative_to(tmp_path / "cache" / "chulcheo" / "eval")
    CountingModel.calls["embed_documents"] = 0
    code, second, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--json")
    assert code == 0 and CountingModel.calls["embed_documents"] == 0
    assert second["index"] == first["index"] | {"embedded": 0, "seconds": second["index"]["seconds"]}
    assert second["modes"] == first["modes"] | {"bm25": second["modes"]["bm25"]}
    assert second["modes"]["bm25"]["hit@1"] == first["modes"]["bm25"]["hit@1"]


def test_a_cached_index_with_line_ids_as_doc_ids_converges_to_the_same_numbers(files, monkeypatch):
    # Indexes built before doc ids held the corpus path called each document by its line id.
    with monkeypatch.context() as old_ids:
        for module in ("ingest.loaders.jsonl", "evaluation.retrieval"):
            old_ids.setattr(f"{module}.jsonl_doc_id", lambda source, record_id: record_id)
        code, before, _ = evaluate(*corpus_args(files), "--json")
    assert code == 0
    CountingModel.calls["embed_documents"] = 0
    code, after, _ = evaluate(*corpus_args(files), "--json")
    assert code == 0 and CountingModel.calls["embed_documents"] == 0  # every vector is reused
    assert after["index"]["dir"] == before["index"]["dir"] and after["chunks"] == before["chunks"]
    strip = lambda modes: {m: {k: v for k, v in r.items() if not k.startswith("latency")} for m, r in modes.items()}  # noqa: E731
    assert strip(after["modes"]) == strip(before["modes"])
    index = Path(after["index"]["dir"])
    corpus = (index / "eval_corpus.jsonl").resolve()
    docs = read_manifest(current_generation_path(index))["docs"]
    assert set(docs) == {f"{corpus}#{row['id']}" for row in CORPUS}  # the old ids are gone


def test_changed_bm25_parameters_rescore_the_cached_index_without_embedding(files, monkeypatch):
    _, first, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--json")
    monkeypatch.setenv("CHULCHEO_RETRIEVAL__BM25_K1", "0.9")
    CountingModel.calls["embed_documents"] = 0
    code, second, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--json")
    assert code == 0 and CountingModel.calls["embed_documents"] == 0
    assert second["index"]["dir"] == first["index"]["dir"] and second["settings"]["bm25_k1"] == 0.9


def test_a_changed_corpus_gets_its_own_index_dir(files, tmp_path):
    _, first, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--json")
    corpus = write_jsonl(tmp_path / "corpus2.jsonl", CORPUS[:-1])
    _, second, _ = evaluate("--corpus", str(corpus), "--qa", str(files[1]), "--modes", "bm25", "--json")
    assert first["index"]["dir"] != second["index"]["dir"] and second["corpus_size"] == 5


def test_fusion_grid_embeds_each_query_once(files):
    code, data, _ = evaluate(*corpus_args(files), "--modes", "bm25", "--fusion-grid", "--json")
    assert code == 0
    assert CountingModel.calls["embed_query"] == 5  # bm25 mode embeds nothing; the grid once per query
    grid = data["grid"]
    assert len(grid) == len(grid_configs(50)) == 19
    assert grid[-1]["name"] == "adaptive 0.5/0.5" and grid[-1]["norm"] == "zscore-pool"
    assert [r["rrf_k"] for r in grid if r["method"] == "rrf"] == [10, 30, 60]
    weighted = [r for r in grid if r["method"] == "weighted"]
    assert {(tuple(r["weights"]), r["norm"]) for r in weighted} == {
        ((w, round(1 - w, 2)), norm) for w in (0.3, 0.4, 0.5, 0.6, 0.7) for norm in ("minmax", "zscore", "zscore-pool")
    }
    assert all(0.0 <= r[name] <= 1.0 for r in grid for name in METRICS)
    assert all(r["n"] == 5 for r in grid)


def test_each_mode_embeds_its_queries_itself(files):
    code, _, _ = evaluate(*corpus_args(files), "--json")
    assert code == 0
    # dense, hybrid-rrf and hybrid-weighted each embed every query, plus one untimed warm-up
    assert CountingModel.calls["embed_query"] == 3 * 5 + 1


def test_korquad_dataset(tmp_path):
    squad = {"version": "KorQuAD_v1.0_dev", "data": [
        {"title": "세종", "paragraphs": [
            {"context": "세종은 1443년에 훈민정음을 창제하였다.", "qas": [
                {"id": "1-0", "question": "훈민정음은 언제 창제되었나?", "answers": [{"text": "1443년", "answer_start": 4}]},
            ]},
            {"context": "세종은 집현전을 설치하여 학자를 양성하였다.", "qas": [
                {"id": "1-1", "question": "세종이 학자를 기르려고 설치한 기관은?", "answers": [{"text": "집현전", "answer_start": 4}]},
            ]},
        ]},
        {"title": "이순신", "paragraphs": [
            {"context": "이순신은 1597년 명량 해전에서 13척으로 승리하였다.", "qas": [
                {"id": "2-0", "question": "명량 해전에서 이순신이 이끈 배는 몇 척인가?", "answers": [{"text": "13척", "answer_start": 21}]},
            ]},
        ]},
    ]}
    path = tmp_path / "KorQuAD_tiny.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    code, data, _ = evaluate("--dataset", "korquad", str(path), "--modes", "bm25", "--json")
    assert code == 0
    assert (data["dataset"], data["corpus_size"], data["questions"]) == ("korquad:KorQuAD_tiny.json", 3, 3)
    assert data["modes"]["bm25"]["hit@1"] == 1.0 and data["warnings"] == []
    assert evaluate("--dataset", "squad", str(path))[0] == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"paragraphs": []}]}', encoding="utf-8")
    code, _, stderr = evaluate("--dataset", "korquad", str(broken))
    assert code == 2 and "broken.json" in stderr


@pytest.mark.parametrize(
    ("which", "line", "named"),
    [
        ("qa", '{"qid": "x", "query": "연차는?", "gold_ids": "연차"}', "qa.jsonl:3"),
        ("qa", "not json", "qa.jsonl:3"),
        ("corpus", '{"id": "빈", "text": "  "}', "corpus.jsonl:3"),
    ],
)
def test_bad_jsonl_line_exits_2_naming_file_and_line(files, which, line, named):
    corpus, qa = files
    target = qa if which == "qa" else corpus
    rows = target.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(rows[:2] + [line] + rows[2:]) + "\n", encoding="utf-8")
    code, _, stderr = evaluate(*corpus_args(files), "--json")
    assert code == 2
    assert named in stderr and len(stderr.strip().splitlines()) == 1


def test_limit_takes_a_seeded_sample(files):
    _, data, _ = evaluate(*corpus_args(files), "--limit", "2", "--modes", "bm25", "--json")
    assert data["questions"] == 2 and data["modes"]["bm25"]["n"] == 2
    assert sample_questions(QA, 2, 13) == sample_questions(QA, 2, 13) != sample_questions(QA, 2, 14)
    assert sorted(q["qid"] for q in sample_questions(QA, None, 13)) == [q["qid"] for q in QA]


def test_bad_arguments_exit_2(files, tmp_path):
    corpus, qa = files
    assert evaluate()[0] == 2
    assert evaluate("--corpus", str(corpus))[0] == 2
    assert evaluate(*corpus_args(files), "--dataset", "korquad", str(qa))[0] == 2
    code, _, stderr = evaluate(*corpus_args(files), "--modes", "bm25,fuzzy")
    assert code == 2 and "'fuzzy'" in stderr
    assert evaluate(*corpus_args(files), "--modes", " , ")[0] == 2


def test_an_index_holding_other_documents_is_refused(files, tmp_path):
    index = tmp_path / "index"
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "회의록", "text": "3월 회의에서 예산을 확정했다."}])
    assert runner.invoke(app, ["ingest", str(other), "--index", str(index)]).exit_code == 0
    code, _, stderr = evaluate(*corpus_args(files), "--index", str(index), "--json")
    assert code == 2 and str(index) in stderr and "'회의록'" in stderr
