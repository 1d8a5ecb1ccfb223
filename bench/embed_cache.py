"""Unit selection with and without `answer.embed_cache`, same questions, same run.

Unit selection (answer/select.py) embeds the question's parts and up to 8 source sentences
while the user waits for the first token. This bench times that step (the checker's
preparation of the passages, the question parts, the scored selection) for every question of
a QA set, three ways, interleaved question by question so that all see the same machine load:

- `uncached`: the embedding model for every text (the baseline; `answer.embed_cache = 0`);
- `cached, first ask`: one cache shared by all questions of the first pass, as a server keeps
  it: a question profits only from the sentences earlier questions already brought;
- `cached, asked again`: the later passes over the same questions (every text is cached).

The cache changes no vector (the ONNX embedder embeds one text at a time), so it changes no
selection: the bench counts questions whose picked units differ (must be 0). No LLM runs.

    .venv/bin/python bench/embed_cache.py --docs DOCS --qa QA.jsonl --index IDX --passes 3 --out r.json
    .venv/bin/python bench/embed_cache.py --docs KQPDF/docs --qa KQPDF/qa.jsonl --index IDX2 --limit 100 --passes 2

The index is built from --docs when --index holds none.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit  # noqa: E402

from answer.select import select_for_question  # noqa: E402
from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from evaluation.docs import load_docs_set  # noqa: E402
from evaluation.inputs import sample_questions  # noqa: E402
from grounding import Passage  # noqa: E402
from retrieval import EmbedCache, current_generation_path  # noqa: E402


def selection(pipeline: Pipeline, query: str, hits, embed) -> tuple[float, list]:
    """Seconds for preparing the passages and selecting units, and the picked units' texts."""
    started = time.perf_counter()
    session = pipeline.checker.session([Passage.from_hit(h) for h in hits], query)
    _, picks = select_for_question(pipeline.kiwi, query, session.prepared, embed=embed)
    seconds = time.perf_counter() - started
    return seconds, [[s.unit.text for s in sel.units] for sel in picks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--qa", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--limit", type=int, help="a seeded sample of this many questions (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    eval_set = load_docs_set(args.docs, args.qa)
    pipeline = Pipeline(Settings(index_dir=args.index))
    if current_generation_path(args.index) is None:
        pipeline.ingest([args.docs], "public")
    model = pipeline.embedder.embed_documents
    questions = [(q["query"], pipeline.search(q["query"], pipeline.settings.answer.k)) for q in sample_questions(eval_set.questions, args.limit, args.seed)]
    model(["워밍업 문장"])  # loads the model outside the timings
    cache = EmbedCache(model, pipeline.settings.answer.embed_cache or 4096)
    times: dict[str, list[float]] = {"uncached": [], "cached_first_ask": [], "cached_asked_again": []}
    differ = 0
    started = time.perf_counter()
    for n in range(args.passes):
        for query, hits in questions:
            plain, picked = selection(pipeline, query, hits, model)
            cached, picked_cached = selection(pipeline, query, hits, cache)
            times["uncached"].append(plain)
            times["cached_first_ask" if n == 0 else "cached_asked_again"].append(cached)
            differ += picked != picked_cached
    p50 = {k: round(statistics.median(v), 3) for k, v in times.items() if v}
    emit({
        "questions": len(questions), "passes": args.passes, "seconds": round(time.perf_counter() - started, 1),
        "selection_p50_s": p50,
        "speedup_vs_uncached": {k: round(p50["uncached"] / v, 2) for k, v in p50.items() if k != "uncached"},
        "cache_hits": cache.hits, "cache_misses": cache.misses, "selections_that_differ": differ,
    }, args.out)


if __name__ == "__main__":
    main()
