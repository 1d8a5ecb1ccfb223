"""EmbedCache: vectors of texts already seen come from the cache, in input order, bounded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from retrieval import EmbedCache
from retrieval.embed import embed_apart


class CountingEmbed:
    """A deterministic embedder that records every batch it is asked for."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        rows = np.zeros((len(texts), 4), dtype=np.float32)
        for i, t in enumerate(texts):
            rows[i] = [len(t), sum(map(ord, t)) % 97, t.count("일"), 1.0]
        return rows


def test_second_ask_needs_no_model_call_and_keeps_input_order() -> None:
    model = CountingEmbed()
    cache = EmbedCache(model, max_items=10)
    texts = ["연차휴가는 15일이다.", "병가는 60일이다."]
    first = cache(texts)
    again = cache(list(reversed(texts)))
    assert model.calls == [texts]
    assert np.array_equal(again, first[::-1])
    assert np.array_equal(first, model(texts))
    assert (cache.hits, cache.misses) == (2, 2)


def test_only_the_missing_texts_are_embedded_once_each() -> None:
    model = CountingEmbed()
    cache = EmbedCache(model, max_items=10)
    cache(["연차휴가는 15일이다."])
    out = cache(["병가는 60일이다.", "연차휴가는 15일이다.", "병가는 60일이다."])
    assert model.calls[-1] == ["병가는 60일이다."]
    assert np.array_equal(out[0], out[2])
    assert out.shape == (3, 4)


def test_least_recently_used_is_dropped_past_the_bound() -> None:
    model = CountingEmbed()
    cache = EmbedCache(model, max_items=2)
    cache(["가"]), cache(["나"]), cache(["가"]), cache(["다"])  # "나" is the oldest use now
    model.calls.clear()
    cache(["가", "다"])
    assert model.calls == []
    cache(["나"])
    assert model.calls == [["나"]]


def test_empty_input_and_bad_bound() -> None:
    model = CountingEmbed()
    assert EmbedCache(model, 3)([]).shape == (0, 4)
    with pytest.raises(ValueError, match="max_items"):
        EmbedCache(model, 0)


def test_a_model_returning_the_wrong_row_count_is_an_error_not_a_wrong_vector() -> None:
    cache = EmbedCache(lambda texts: np.zeros((1, 4), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="1 rows for 2 texts"):
        cache(["가", "나"])
    assert cache.misses == 0


def test_threads_share_one_cache() -> None:
    model = CountingEmbed()
    cache = EmbedCache(model, max_items=100)
    texts = [f"제{i}조 문장" for i in range(20)]
    results = []
    workers = [threading.Thread(target=lambda: results.append(cache(texts))) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(np.array_equal(r, results[0]) for r in results)
    assert len(cache._rows) == 20


def test_private_texts_are_embedded_in_the_same_call_but_never_kept_or_looked_up() -> None:
    model = CountingEmbed()
    cache = EmbedCache(model, max_items=10)
    cache(["제15조 연차휴가는 15일이다."])
    out = cache(["연차는 며칠?", "제15조 연차휴가는 15일이다.", "병가는 60일이다."], private=1)
    assert model.calls[-1] == ["연차는 며칠?", "병가는 60일이다."]  # one call: the question, the miss
    assert np.array_equal(out, model(["연차는 며칠?", "제15조 연차휴가는 15일이다.", "병가는 60일이다."]))
    assert "연차는 며칠?" not in cache._rows
    model.calls.clear()
    cache(["연차는 며칠?"], private=1)
    assert model.calls == [["연차는 며칠?"]]  # asked again: still no lookup
    # the same words as a source sentence are a separate matter: a private text never hits them
    cache(["병가는 60일이다."], private=1)
    assert model.calls[-1] == ["병가는 60일이다."]


def test_embed_apart_takes_any_embedding_function() -> None:
    model = CountingEmbed()
    assert embed_apart(model, ["질문"], ["출처 문장"]).shape == (2, 4)
    assert model.calls == [["질문", "출처 문장"]]
    cache = EmbedCache(model, 5)
    embed_apart(cache, ["질문"], ["출처 문장"])
    assert list(cache._rows) == ["출처 문장"]
