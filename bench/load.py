"""Load on a real `chulcheo serve` (127.0.0.1 only, bounded in clients and time).

Starts the server as a subprocess (real default embedding model, real GGUF LLM, auth on,
one user key), then:

1. search: --search-clients (50) concurrent clients send POST /v1/search back to back for
   --search-seconds (300), queries drawn from the KorQuAD dev questions (seeded);
2. ask: --ask-clients (4) concurrent clients send POST /v1/ask for --ask-seconds (180) with
   the small model (the per-key rate limit is turned off for this key's server).

Every request's latency and status is recorded; the server's RSS (process tree) is sampled
every 5 s. Reported per phase: requests, errors (non-200), throughput (req/s), p50/p95/p99
latency over the whole phase and the median over one-minute windows, and RSS at start, end
and max with its slope (MB per minute, least squares) to show growth or its absence.

The index: --index DIR (e.g. a cached KorQuAD eval index, ~/.cache/chulcheo/eval/<hash>)
or, by default, the bundled sample documents indexed into a temporary directory.

    .venv/bin/python bench/load.py --index ~/.cache/chulcheo/eval/2d532c11ef229ae1 --out load.json
    # memory after 200 questions with the default models, one client, no search phase:
    .venv/bin/python bench/load.py --index ~/.cache/chulcheo/eval/<hash> --search-seconds 0 \
        --ask-clients 1 --ask-count 200 --ask-seconds 7200 --model qwen2.5-coder-1.5b-instruct \
        --max-tokens 256 --out memory.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
KORQUAD = ROOT.parent / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"
FALLBACK_QUERIES = ["연차휴가는 며칠인가요?", "USB 메모리를 써도 되나요?", "식대는 얼마인가요?", "재택근무는 가능한가요?",
                    "건강검진 비용은 얼마까지 지원되나요?", "경조금은 얼마인가요?", "사내 대출 이율은?", "병가는 며칠인가요?"]


def questions(limit: int, seed: int) -> list[str]:
    if not KORQUAD.exists():
        return FALLBACK_QUERIES
    data = json.loads(KORQUAD.read_text(encoding="utf-8"))
    qs = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
    random.Random(seed).shuffle(qs)
    return qs[:limit]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"chulcheo {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.proc, self.every, self.samples = psutil.Process(pid), every, []
        self._halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._halt.is_set():
            self.samples.append((time.monotonic() - start, tree_rss(self.proc)))
            self._halt.wait(self.every)

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join()
        return self.samples


async def run_phase(url: str, path: str, key: str, bodies: list[dict], clients: int, seconds: float,
                    timeout: float, count: int = 0) -> list[tuple[float, float, int]]:
    """(start offset s, latency s, status) of every request; status 0 = transport error.

    count > 0: stop after that many requests in all (the time bound still applies)."""
    records: list[tuple[float, float, int]] = []
    t0 = time.monotonic()
    deadline = t0 + seconds
    headers = {"Authorization": f"Bearer {key}"}

    async def client(i: int) -> None:
        rng = random.Random(i)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as http:
            while time.monotonic() < deadline and not (count and len(records) >= count):
                start = time.monotonic()
                try:
                    status = (await http.post(path, json=rng.choice(bodies))).status_code
                except httpx.HTTPError:
                    status = 0
                records.append((start - t0, time.monotonic() - start, status))

    await asyncio.gather(*(client(i) for i in range(clients)))
    return records


def summarize(records: list[tuple[float, float, int]], seconds: float, rss: list[tuple[float, int]]) -> dict:
    lat = np.array([r[1] for r in records]) * 1000
    ok = sum(r[2] == 200 for r in records)
    windows = []
    for w in range(int(seconds // 60) or 1):
        inside = [r for r in records if w * 60 <= r[0] < (w + 1) * 60]
        if inside:
            wl = np.array([r[1] for r in inside]) * 1000
            windows.append({"requests": len(inside), "p50_ms": float(np.percentile(wl, 50)),
                            "p95_ms": float(np.percentile(wl, 95))})
    t = np.array([s[0] for s in rss]) / 60
    mb = np.array([s[1] for s in rss]) / 2**20
    slope = float(np.polyfit(t, mb, 1)[0]) if len(rss) > 2 else None
    return {
        "requests": len(records), "ok": ok, "errors": len(records) - ok,
        "statuses": {str(s): sum(r[2] == s for r in records) for s in sorted({r[2] for r in records})},
        "throughput_rps": round(len(records) / seconds, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1), "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "window_median_p50_ms": round(float(np.median([w["p50_ms"] for w in windows])), 1) if windows else None,
        "window_median_p95_ms": round(float(np.median([w["p95_ms"] for w in windows])), 1) if windows else None,
        "windows": windows,
        "rss_mb": {"start": round(float(mb[0]), 1), "end": round(float(mb[-1]), 1), "max": round(float(mb.max()), 1),
                   "slope_mb_per_min": None if slope is None else round(slope, 2),
                   "samples": [[round(float(a), 2), round(float(b), 1)] for a, b in zip(t, mb)]},  # (minute, MB)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, help="index to serve (default: the sample documents, indexed now)")
    ap.add_argument("--search-clients", type=int, default=50)
    ap.add_argument("--search-seconds", type=float, default=300)
    ap.add_argument("--ask-clients", type=int, default=4)
    ap.add_argument("--ask-seconds", type=float, default=180)
    ap.add_argument("--ask-count", type=int, default=0, help="stop the ask phase after this many questions (0: time only)")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="chulcheo-load-"))
    index = args.index or work / "index"
    env = os.environ | {
        "CHULCHEO_INDEX_DIR": str(index), "CHULCHEO_STATE_DIR": str(work / "state"),
        "CHULCHEO_GENERATION__MODEL": args.model, "CHULCHEO_GENERATION__MAX_TOKENS": str(args.max_tokens),
        "CHULCHEO_SERVER__ASK_PER_MINUTE": "0",  # measure the server, not the per-key limit
    }
    if args.index is None:
        cli(env, "ingest", "sample_corpus")
    key = json.loads(cli(env, "keys", "create", "--name", "load", "--groups", "*", "--json"))["key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--no-ui"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while not _ready(url):
            if server.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit(f"server did not become ready: {(work / 'serve.log').read_text()[-2000:]}")
            time.sleep(1)
        qs = questions(2000, args.seed)
        report: dict = {"index": str(index), "model": args.model, "max_tokens": args.max_tokens,
                        "cpu": os.cpu_count(), "ready_s": round(time.monotonic() - started, 1)}
        for name, path, bodies, clients, seconds, timeout, count in [
            ("search", "/v1/search", [{"query": q, "k": 10} for q in qs], args.search_clients, args.search_seconds, 60, 0),
            ("ask", "/v1/ask", [{"question": q} for q in qs[:200]], args.ask_clients, args.ask_seconds, 600,
             args.ask_count),
        ]:
            if seconds <= 0:
                continue
            sampler = RssSampler(server.pid)
            sampler.start()
            records = asyncio.run(run_phase(url, path, key, bodies, clients, seconds, timeout, count))
            report[name] = {"clients": clients, "seconds": seconds, **summarize(records, seconds, sampler.stop())}
            s = report[name]
            print(f"{name}: {clients} clients × {seconds:g} s → {s['requests']} requests, {s['errors']} errors, "
                  f"{s['throughput_rps']} req/s, p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms, "
                  f"RSS {s['rss_mb']['start']}→{s['rss_mb']['end']} MB (max {s['rss_mb']['max']}, "
                  f"slope {s['rss_mb']['slope_mb_per_min']} MB/min)", flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
