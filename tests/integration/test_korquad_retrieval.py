"""Real default embedding model + FAISS + Kiwi BM25 on KorQuAD 1.0 dev paragraphs.

Acceptance (foundation issue): with a few hundred paragraphs indexed, each question's gold
paragraph is in the top 5 for at least 95 % of 200 questions.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.pipeline import Pipeline
from ingest.chunk import record_id_of
from ingest.korquad import load_korquad, write_jsonl
from retrieval.metrics import dedupe, summarize

pytestmark = pytest.mark.integration

QUESTIONS = 200
PARAGRAPHS = 300


@pytest.fixture(scope="module")
def korquad_index(real_settings, korquad_path, tmp_path_factory):
    corpus, questions = load_korquad(korquad_path)
    rng = random.Random(2)
    sample = rng.sample(questions, QUESTIONS)
    gold = {pid for q in sample for pid in q["gold_ids"]}
    others = [c for c in corpus if c["id"] not in gold]
    chosen = [c for c in corpus if c["id"] in gold] + rng.sample(others, max(0, PARAGRAPHS - len(gold)))
    path = write_jsonl(chosen, tmp_path_factory.mktemp("korquad") / "korquad.jsonl")
    pipeline = Pipeline(real_settings)
    report = pipeline.ingest([path])
    assert report.failed == []
    assert report.added == len(chosen)
    return pipeline, sample


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_gold_paragraph_in_top5(korquad_index, mode):
    pipeline, sample = korquad_index
    runs = []
    for q in sample:
        hits = pipeline.search(q["query"], 10, mode=mode)
        runs.append((dedupe([record_id_of(h.chunk) for h in hits]), set(q["gold_ids"])))  # gold ids are line ids
    metrics = summarize(runs)
    print(mode, metrics)
    floor = 0.95 if mode == "hybrid" else 0.85
    assert metrics["recall@5"] >= floor, metrics


def test_reingest_of_unchanged_corpus_embeds_nothing(korquad_index):
    pipeline, _ = korquad_index
    docs = pipeline.documents()
    report = pipeline.ingest([Path(docs[0].source)])
    assert report.added == report.updated == 0 and report.unchanged == len(docs)
