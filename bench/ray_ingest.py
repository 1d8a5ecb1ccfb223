"""Local ingest against `ingest --ray` on a two-node loopback Ray cluster, same corpus, same model.

Writes N KorQuAD dev paragraphs as F text files (Ray prepares one file per task, so a corpus
of one JSONL file would be one task), starts a cluster of `--nodes` nodes with `--cpus` CPUs
each (bench/local_ray.py), and runs, `--runs` times each into a fresh index:

    chulcheo ingest DOCS --index I --json                 (local)
    chulcheo ingest DOCS --index I --json --ray ADDRESS   (Ray)

Reports wall seconds of the whole command (process start, model loads on the workers) and
the ingest's own seconds, as chunks/hour, median of the runs.

    .venv/bin/python bench/ray_ingest.py --paragraphs 120 --files 24 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit  # noqa: E402
from bench.local_ray import ENV, local_cluster  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def write_files(paragraphs: list, files: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        part = paragraphs[f::files]
        text = "\n\n".join(f"{p['metadata']['title']}\n\n{p['text']}" for p in part)
        (folder / f"문서{f:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def ingest(docs: Path, index: Path, *extra: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "app", "ingest", str(docs), "--index", str(index), "--json", *extra],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "ingest_s": report["seconds"], "chunks": report["chunks"]}


def summary(runs: list[dict]) -> dict:
    chunks = runs[0]["chunks"]
    wall = statistics.median(r["wall_s"] for r in runs)
    own = statistics.median(r["ingest_s"] for r in runs)
    return {"chunks": chunks, "runs": runs, "median_wall_s": round(wall, 1), "median_ingest_s": round(own, 1),
            "chunks_per_hour_wall": round(chunks / wall * 3600), "chunks_per_hour_ingest": round(chunks / own * 3600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=120)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    corpus, _ = load_korquad(args.data)
    work = Path(tempfile.mkdtemp(prefix="chulcheo-bench-ray-"))
    docs = write_files(corpus[: args.paragraphs], args.files, work / "docs")
    local, ray = [], []
    with local_cluster(nodes=args.nodes, cpus=args.cpus) as address:
        for run in range(args.runs):  # interleaved, so both see the same background load
            local.append(ingest(docs, work / f"local-{run}"))
            ray.append(ingest(docs, work / f"ray-{run}", "--ray", address))
            print(json.dumps({"run": run, "local": local[-1], "ray": ray[-1]}), flush=True)
    emit({"paragraphs": args.paragraphs, "files": args.files, "nodes": args.nodes, "cpus_per_node": args.cpus,
          "local": summary(local), "ray": summary(ray)}, args.out)


if __name__ == "__main__":
    main()
