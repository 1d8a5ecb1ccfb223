"""Metrics on a hand-computed toy example."""

import math

import pytest

from retrieval.metrics import dedupe, hit_at, mrr_at, ndcg_at, recall_at, summarize

RANKED = ["연차", "병가", "재택", "연차", "식대"]


def test_hit_and_mrr():
    assert hit_at(RANKED, {"병가"}, 1) == 0.0
    assert hit_at(RANKED, {"병가"}, 2) == 1.0
    assert mrr_at(RANKED, {"재택"}, 10) == pytest.approx(1 / 3)
    assert mrr_at(RANKED, {"없음"}, 10) == 0.0


def test_recall_counts_each_gold_once():
    assert recall_at(RANKED, {"연차", "식대"}, 4) == 0.5
    assert recall_at(RANKED, {"연차", "식대"}, 5) == 1.0
    assert recall_at(RANKED, set(), 5) == 0.0


def test_ndcg_by_hand():
    # gold at ranks 2 and 5 of 2 gold: (1/log2(3) + 1/log2(6)) / (1 + 1/log2(3))
    expected = (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert ndcg_at(RANKED, {"병가", "식대"}, 10) == pytest.approx(expected)
    # a repeated gold id gains once
    assert ndcg_at(["연차", "연차"], {"연차"}, 10) == 1.0


def test_summarize_and_dedupe():
    assert dedupe(RANKED) == ["연차", "병가", "재택", "식대"]
    s = summarize([(["a", "b"], {"a"}), (["b", "a"], {"a"})])
    assert s["hit@1"] == 0.5 and s["mrr@10"] == 0.75 and s["recall@5"] == 1.0
