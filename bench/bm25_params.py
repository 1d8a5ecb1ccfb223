"""Sweep BM25 k1/b over an existing index's chunks (no embedding needed).

Uses the Kiwi token lists stored in the live generation of INDEX (e.g. the cache dir that
`chulcheo eval retrieval --dataset korquad ...` indexed into) and a QA JSONL or KorQuAD.

    .venv/bin/python bench/bm25_params.py --index ~/.cache/chulcheo/eval/<hash> \
        --dataset korquad ../shared/data/korquad_v1/KorQuAD_v1.0_dev.json --limit 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.chunk import record_id_of  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.bm25 import BM25Index  # noqa: E402
from retrieval.metrics import dedupe, summarize  # noqa: E402
from retrieval.store import open_index  # noqa: E402
from retrieval.tokenize import tokenizer_from_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--dataset", nargs=2, metavar=("korquad", "PATH"), required=True)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--k1", default="0.6,0.9,1.2,1.5,2.0")
    parser.add_argument("--b", default="0.3,0.5,0.75,0.9")
    args = parser.parse_args()

    generation = open_index(args.index)
    tokenizer = tokenizer_from_config(generation.manifest["tokenizer"])
    _, questions = load_korquad(Path(args.dataset[1]))
    random.Random(args.seed).shuffle(questions)
    questions = questions[: args.limit]
    query_tokens = tokenizer.tokenize_many([q["query"] for q in questions])
    doc_of_row = [record_id_of(c) for c in generation.chunks]  # gold ids name corpus lines
    rows = []
    for k1, b in itertools.product(map(float, args.k1.split(",")), map(float, args.b.split(","))):
        index = BM25Index.build(generation.bm25.token_lists, k1=k1, b=b)
        runs = []
        for q, tokens in zip(questions, query_tokens, strict=True):
            ranked = dedupe([doc_of_row[row] for row, _ in index.search(tokens, 30)])[:10]
            runs.append((ranked, set(q["gold_ids"])))
        rows.append({"k1": k1, "b": b} | {m: round(v, 4) for m, v in summarize(runs).items()})
        print(json.dumps(rows[-1]), flush=True)
    best = max(rows, key=lambda r: (r["ndcg@10"], r["hit@1"]))
    print("best by nDCG@10:", json.dumps(best))


if __name__ == "__main__":
    main()
