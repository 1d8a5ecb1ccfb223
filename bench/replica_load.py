"""Load on two `chulcheo serve` replicas over one PostgreSQL (state.url + index.url), on loopback.

Starts PostgreSQL 16 + pgvector (pgserver), indexes the sample documents into it (group public),
creates keys in the shared state and starts two replicas with their own local folders (only
Postgres and state.files_dir are shared). Then, for --seconds (300):

- --users (50) concurrent users, each with its own key (half `public`, half `hr`; the default
  per-key rate limits), each on one replica (alternating), loop: search (most requests), list documents, rate an answer, and now
  and then ask a question (real LLM; answer_wait_s is short so a busy model says 503 quickly);
- one admin uploads a small document every --upload-every (10) seconds through alternating
  replicas, half into `hr` with a secret marker that no `public` user may ever see.

Checked at the end: every status is 200/202 or a documented 429/503 (anything else is an
error), every upload's job finished and its document is searchable from BOTH replicas (no lost
upload), and no `public` user ever got an `hr` hit or a marker (no ACL leak).

    .venv/bin/python bench/replica_load.py --out replica_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, cli, free_port, questions  # noqa: E402

DOCUMENTED = {200, 202, 429, 503}


def start_replica(env: dict[str, str], work: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (work / f"{name}.log").open("w")
    renv = env | {"CHULCHEO_INDEX_DIR": str(work / name / "index"), "CHULCHEO_STATE_DIR": str(work / name / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--no-ui"], cwd=ROOT,
                            env=renv, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    started = time.monotonic()
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() - started > 400:
            raise SystemExit(f"replica {url} not ready: {log.read_text()[-2000:]}")
        time.sleep(1)


async def run(urls: list[str], keys: dict[str, str], qs: list[str], users: int, seconds: float,
              upload_every: float, ask_every: int) -> dict:
    records: list[tuple[str, int, float]] = []  # (kind, status, latency s)
    leaks: list[str] = []
    uploads: list[dict] = []
    deadline = time.monotonic() + seconds

    async def user(i: int) -> None:
        group = "hr" if i % 2 else "public"
        rng = random.Random(i)
        headers = {"Authorization": f"Bearer {keys[f'user{i}']}"}  # each user its own key (and rate limits)
        async with httpx.AsyncClient(base_url=urls[i % len(urls)], headers=headers, timeout=300) as http:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                q = rng.choice(qs)
                if n % ask_every == 0:
                    kind, call = "ask", http.post("/v1/ask", json={"question": q})
                elif n % 7 == 0:
                    kind, call = "documents", http.get("/v1/documents")
                elif n % 11 == 0:
                    kind, call = "feedback", http.post("/v1/feedback", json={"rating": 1, "question": q, "answer": "-",
                                                                             "citations": []})
                else:
                    kind, call = "search", http.post("/v1/search", json={"query": q, "k": 10})
                start = time.monotonic()
                try:
                    r = await call
                    status = r.status_code
                except httpx.HTTPError:
                    status, r = 0, None
                records.append((kind, status, time.monotonic() - start))
                if group == "public" and r is not None and status == 200:
                    text = r.text
                    if "기밀표식" in text or '"group":"hr"' in text:
                        leaks.append(f"{kind} {q}: {text[:200]}")

    async def admin() -> None:
        headers = {"Authorization": f"Bearer {keys['admin']}"}
        n = 0
        async with httpx.AsyncClient(headers=headers, timeout=120) as http:
            while time.monotonic() < deadline - upload_every:
                n += 1
                group = "hr" if n % 2 else "public"
                marker = f"기밀표식{n:03d}" if group == "hr" else f"공개공지{n:03d}"
                body = f"제{n}호 공지 {marker}\n\n사내 동호회 {n}번 모임의 지원금은 1인당 {n}만 원이다.\n"
                url = urls[n % len(urls)]
                start = time.monotonic()
                try:
                    r = await http.post(f"{url}/v1/documents", data={"group": group},
                                        files={"file": (f"공지{n:03d}.txt", body.encode())})
                    status = r.status_code
                    job = r.json()["job"]["id"] if status == 202 else None
                except httpx.HTTPError:
                    status, job = 0, None
                records.append(("upload", status, time.monotonic() - start))
                uploads.append({"n": n, "group": group, "marker": marker, "job": job, "status": status})
                await asyncio.sleep(upload_every)

    await asyncio.gather(admin(), *(user(i) for i in range(users)))
    return {"records": records, "leaks": leaks, "uploads": uploads}


def check_uploads(urls: list[str], keys: dict[str, str], uploads: list[dict]) -> list[str]:
    """Every accepted upload's job is done and its marker is found from every replica."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    lost = []
    for u in uploads:
        if u["job"] is None:
            lost.append(f"upload {u['n']}: refused with {u['status']}")
            continue
        deadline = time.monotonic() + 600
        while (job := httpx.get(f"{urls[0]}/v1/jobs/{u['job']}", headers=admin, timeout=60).json())["status"] in (
                "queued", "running") and time.monotonic() < deadline:
            time.sleep(1)
        if job["status"] != "done":
            lost.append(f"upload {u['n']}: job {job['status']} {job.get('error')}")
            continue
        for url in urls:
            hits = httpx.post(f"{url}/v1/search", json={"query": u["marker"], "k": 5}, headers=admin,
                              timeout=60).json()["hits"]
            if not any(u["marker"] in h["text"] for h in hits):
                lost.append(f"upload {u['n']}: not found from {url}")
    return lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--upload-every", type=float, default=10)
    ap.add_argument("--ask-every", type=int, default=25, help="every n-th request of a user is a question")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import pgserver
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="chulcheo-replicas-"))
    pgdir = Path(tempfile.mkdtemp(prefix="chulcheo-pg-"))
    server = pgserver.get_server(pgdir, cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("create database chulcheo_state")
        conn.execute("create database chulcheo_index")
    env = os.environ | {
        "CHULCHEO_STATE__URL": server.get_uri("chulcheo_state"), "CHULCHEO_INDEX__URL": server.get_uri("chulcheo_index"),
        "CHULCHEO_STATE__FILES_DIR": str(work / "files"), "CHULCHEO_GENERATION__MODEL": args.model,
        "CHULCHEO_GENERATION__MAX_TOKENS": "64", "CHULCHEO_SERVER__ANSWER_WAIT_S": "10",
    }
    cenv = env | {"CHULCHEO_INDEX_DIR": str(work / "cli" / "index"), "CHULCHEO_STATE_DIR": str(work / "cli" / "state")}
    cli(cenv, "ingest", "sample_corpus")
    keys = {"admin": json.loads(cli(cenv, "keys", "create", "--name", "admin", "--role", "admin", "--groups", "*",
                                    "--json"))["key"]}
    replicas = [start_replica(env, work, name) for name in ("a", "b")]
    try:
        for (proc, url), name in zip(replicas, ("a", "b")):
            wait_ready(proc, url, work / f"{name}.log")
        urls = [url for _, url in replicas]
        for i in range(args.users):  # made through alternating replicas: each is known to both
            r = httpx.post(f"{urls[i % 2]}/v1/keys", headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=60,
                           json={"name": f"user{i}", "role": "user", "groups": ["hr" if i % 2 else "public"]})
            r.raise_for_status()
            keys[f"user{i}"] = r.json()["key"]
        qs = questions(2000, 7)
        t0 = time.monotonic()
        out = asyncio.run(run(urls, keys, qs, args.users, args.seconds, args.upload_every, args.ask_every))
        elapsed = time.monotonic() - t0
        lost = check_uploads(urls, keys, out["uploads"])
        recs = out["records"]
        report: dict = {"users": args.users, "seconds": args.seconds, "cpu": os.cpu_count(), "model": args.model,
                        "requests": len(recs), "throughput_rps": round(len(recs) / elapsed, 2)}
        for kind in sorted({r[0] for r in recs}):
            mine = [r for r in recs if r[0] == kind]
            lat = np.array([r[2] for r in mine]) * 1000
            report[kind] = {"requests": len(mine),
                            "statuses": {str(s): sum(r[1] == s for r in mine) for s in sorted({r[1] for r in mine})},
                            "p50_ms": round(float(np.percentile(lat, 50)), 1),
                            "p95_ms": round(float(np.percentile(lat, 95)), 1)}
        report["errors"] = sum(r[1] not in DOCUMENTED for r in recs)
        report["uploads"] = len(out["uploads"])
        report["lost_uploads"] = lost
        report["acl_leaks"] = out["leaks"][:20]
        print(json.dumps(report, ensure_ascii=False, indent=1))
        if args.out:
            args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if report["errors"] or lost or out["leaks"]:
            raise SystemExit("FAILED: errors, lost uploads or leaks (see above)")
    finally:
        for proc, _ in replicas:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.cleanup()


if __name__ == "__main__":
    main()
