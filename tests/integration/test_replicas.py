"""Two real `chulcheo serve` replicas over one PostgreSQL (state.url + index.url) act as one:
an upload through one is searchable from the other, a key revoked on one is refused by both,
each job runs once, a replica killed mid-job leaves its job to the other, rate limits and the
audit log are shared. PostgreSQL 16 + pgvector come from pgserver, started by the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import HR_SECRET, ROOT, free_port, stop, wait_until_up

pytestmark = pytest.mark.integration

psycopg = pytest.importorskip("psycopg")  # the database comes from the pg_server fixture (tests/conftest.py)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Cluster:
    """The database, the shared files folder and the replicas' processes."""

    def __init__(self, base: Path, state_url: str, index_url: str, llm: str) -> None:
        self.base, self.state_url = base, state_url
        self.env = os.environ | {
            "CHULCHEO_STATE__URL": state_url, "CHULCHEO_INDEX__URL": index_url,
            "CHULCHEO_STATE__FILES_DIR": str(base / "shared-files"), "CHULCHEO_STATE__JOB_POLL_S": "0.5",
            "CHULCHEO_GENERATION__MODEL": llm, "CHULCHEO_GENERATION__MAX_TOKENS": "64",
            "CHULCHEO_SERVER__FEEDBACK_PER_MINUTE": "1", "CHULCHEO_SERVER__FEEDBACK_BURST": "3",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def replica_env(self, name: str) -> dict[str, str]:
        # each replica has its own local folders: only Postgres and the files folder are shared
        return self.env | {"CHULCHEO_INDEX_DIR": str(self.base / name / "index"),
                           "CHULCHEO_STATE_DIR": str(self.base / name / "state")}

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=self.replica_env("cli"),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, name: str) -> None:
        port = free_port()
        log = (self.base / f"{name}.log").open("w", encoding="utf-8")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=ROOT,
                                            env=self.replica_env(name), stdout=log, stderr=subprocess.STDOUT)
        self.urls[name] = f"http://127.0.0.1:{port}"

    def wait_up(self, name: str) -> None:
        wait_until_up(self.procs[name], f"{self.urls[name]}/healthz", self.base / f"{name}.log", f"replica {name}", 300)

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(encoding="utf-8", errors="replace")[-3000:]

    def call(self, name: str, method: str, path: str, key: str, **kw) -> httpx.Response:
        return httpx.request(method, f"{self.urls[name]}{path}", headers=bearer(key), timeout=300, **kw)

    def job_row(self, job_id: str) -> dict:
        with psycopg.connect(self.state_url) as conn:
            row = conn.execute("select status, replica, attempts from jobs where id = %s", (job_id,)).fetchone()
        return {"status": row[0], "replica": row[1], "attempts": row[2]}

    def wait_job(self, name: str, job_id: str, key: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.call(name, "GET", f"/v1/jobs/{job_id}", key).json()
            if job["status"] in ("done", "failed"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(real_settings, tmp_path_factory, pg_server):
    from app.models import get_spec, is_present

    llm = get_spec("qwen2.5-coder-0.5b-instruct")
    if not is_present(llm, real_settings.model_dir):
        pytest.skip(f"{llm.name} is not provisioned: run `chulcheo models pull {llm.name}`")
    base = tmp_path_factory.mktemp("replicas")
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute("create database replicas_state")
        conn.execute("create database replicas_index")
    c = Cluster(base, pg_server.get_uri("replicas_state"), pg_server.get_uri("replicas_index"), llm.name)
    try:
        keys = {}
        for name, role, groups in (("admin", "admin", "*"), ("hr_kim", "user", "hr"), ("pub_lee", "user", "public")):
            keys[name] = json.loads(c.cli("keys", "create", "--name", name, "--role", role, "--groups", groups,
                                          "--json"))["key"]
        c.keys = keys
        for name in ("a", "b"):
            c.start(name)
        for name in ("a", "b"):
            c.wait_up(name)
        yield c
    finally:
        for proc in c.procs.values():
            if proc.poll() is None:
                stop(proc)


def test_an_upload_through_one_replica_is_searchable_from_the_other_within_its_groups(cluster):
    k = cluster.keys
    r = cluster.call("a", "POST", "/v1/documents", k["admin"], data={"group": "hr"},
                     files={"file": ("임원보수.txt", f"임원 보수 규정\n\n{HR_SECRET}\n".encode())})
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    job = cluster.wait_job("b", job_id, k["admin"])  # the job is seen (and maybe run) by the other replica
    assert job["status"] == "done", job
    assert cluster.job_row(job_id)["attempts"] == 1  # ran exactly once
    hits = cluster.call("b", "POST", "/v1/search", k["hr_kim"], json={"query": "임원 보수 한도"}).json()["hits"]
    assert hits and "48억" in hits[0]["text"] and hits[0]["group"] == "hr"
    for name in ("a", "b"):  # another group's key finds nothing of it on either replica
        r = cluster.call(name, "POST", "/v1/search", k["pub_lee"], json={"query": HR_SECRET, "k": 20})
        assert r.status_code == 200 and all(h["group"] == "public" for h in r.json()["hits"]), r.text
    docs = cluster.call("b", "GET", "/v1/documents", k["admin"]).json()["documents"]
    assert [d["source"] for d in docs] == ["임원보수.txt"] and docs[0]["status"] == "indexed"
    # the audit log is one chain across replicas: the upload made on a is listed by b
    actions = [e["action"] for e in cluster.call("b", "GET", "/v1/audit", k["admin"]).json()["entries"]]
    assert "upload" in actions and "search" in actions


def test_a_key_revoked_on_one_replica_is_refused_by_every_replica(cluster):
    key = json.loads(cluster.call("a", "POST", "/v1/keys", cluster.keys["admin"],
                                  json={"name": "temp_park", "role": "user", "groups": ["public"]}).text)["key"]
    assert cluster.call("b", "GET", "/v1/me", key).status_code == 200  # made on a, known to b
    assert cluster.call("b", "DELETE", "/v1/keys/temp_park", cluster.keys["admin"]).status_code == 200
    for name in ("a", "b"):
        assert cluster.call(name, "GET", "/v1/me", key).status_code == 401


def test_rate_limits_are_shared_by_the_replicas(cluster):
    """feedback_burst=3: three ratings in all, whichever replica they reach; the fourth is 429."""
    body = {"rating": 1, "question": "연차휴가는 며칠인가요?", "answer": "15일입니다.", "citations": []}
    codes = [cluster.call(name, "POST", "/v1/feedback", cluster.keys["pub_lee"], json=body).status_code
             for name in ("a", "b", "a", "b")]
    assert codes == [200, 200, 200, 429], codes
    rows = cluster.call("a", "GET", "/v1/feedback", cluster.keys["admin"]).json()["feedback"]
    assert len(rows) == 3  # ratings stored through both replicas, read from one


def test_a_replica_killed_mid_job_leaves_the_job_to_the_other(cluster):
    k = cluster.keys
    lines = [f"제{i}조(출장 규정 {i}) 국내 출장 {i}일차의 일비는 {i + 1}만 원이며 숙박비는 {i + 5}만 원을 넘을 수 없다."
             for i in range(1, 400)]
    r = cluster.call("a", "POST", "/v1/documents", k["admin"], data={"group": "public"},
                     files={"file": ("출장규정.txt", "\n".join(lines).encode())})
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    deadline = time.monotonic() + 120
    while (row := cluster.job_row(job_id))["status"] == "queued":
        assert time.monotonic() < deadline, "the job was never claimed"
        time.sleep(0.05)
    assert row["status"] == "running", row
    pid = int(row["replica"].rsplit(":", 1)[1])
    killed = next(name for name, p in cluster.procs.items() if p.pid == pid)
    survivor = "b" if killed == "a" else "a"
    os.kill(pid, signal.SIGKILL)  # no clean-up of any kind: its connection drops, its lock goes
    cluster.procs[killed].wait(timeout=30)
    job = cluster.wait_job(survivor, job_id, k["admin"])
    assert job["status"] == "done", job
    row = cluster.job_row(job_id)
    assert row["attempts"] == 2 and row["replica"] != f"{row['replica'].rsplit(':', 1)[0]}:{pid}", row
    hits = cluster.call(survivor, "POST", "/v1/search", k["pub_lee"], json={"query": "출장 17일차 일비"}).json()["hits"]
    assert any("17일차" in h["text"] for h in hits), [h["text"][:40] for h in hits]
    chunks = cluster.call(survivor, "GET", "/v1/documents", k["admin"]).json()["documents"]
    assert sorted(d["source"] for d in chunks) == ["임원보수.txt", "출장규정.txt"]  # nothing lost, nothing doubled
