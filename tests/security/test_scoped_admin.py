"""An admin of group a (adm_a) stays inside group a: keys, uploads, deletes, jobs, documents.

Contract: adm_a cannot create a key for "*", "b" or "a,b" (403), revoke root or user_b (403/404),
upload into b (403), delete b's document (403/404; user_b still finds it), or see b's jobs or
documents; it can create a user key for a (201) and upload into a.
"""

from __future__ import annotations

import pytest

from tests.security.live import DOC_NAME, MARK, SECRET, LiveServer
from tests.security.probes import HealthMonitor

pytestmark = pytest.mark.security


@pytest.mark.parametrize("groups", [["*"], ["b"], ["a", "b"]], ids=["star", "b", "a+b"])
def test_scoped_admin_cannot_create_keys_beyond_its_groups(live: LiveServer, groups):
    name = f"escalate_{'_'.join(g.replace('*', 'all') for g in groups)}"
    with HealthMonitor(live.url) as hz:
        r = live.call("POST", "/v1/keys", "adm_a", json={"name": name, "role": "admin", "groups": groups})
    if r.status_code == 201:  # do not leave the escalated key behind for later tests
        live.call("DELETE", f"/v1/keys/{name}", "root")
    assert r.status_code == 403, (f"adm_a (admin of a) creating an admin key for groups {groups}: "
                                  f"{r.status_code} {r.text[:300]} (must be 403)")
    assert hz.problem("while adm_a created a key") is None, hz.problem("while adm_a created a key")


@pytest.mark.parametrize("victim", ["root", "user_b"])
def test_scoped_admin_cannot_revoke_keys_outside_its_groups(live: LiveServer, victim):
    r = live.call("DELETE", f"/v1/keys/{victim}", "adm_a")
    still = live.call("GET", "/v1/me", victim)
    assert r.status_code in (403, 404) and still.status_code == 200, (
        f"adm_a revoking {victim}: {r.status_code} {r.text[:200]}; {victim}'s key afterwards: {still.status_code}")


def test_scoped_admin_cannot_upload_into_another_group(live: LiveServer):
    with HealthMonitor(live.url) as hz:
        r = live.upload("adm_a", "침투.txt", "B팀 문서인 척하는 침투 문서이다.".encode(), "b", wait=True)
    planted = [h for h in live.search("user_b", "침투 문서") if "침투" in h["text"]]
    assert r.status_code == 403 and not planted, (
        f"adm_a uploading into group b: {r.status_code} {r.text[:300]} (must be 403); "
        f"user_b now finds {len(planted)} planted chunk(s)")
    assert hz.problem("during adm_a's upload into b") is None, hz.problem("during adm_a's upload into b")


def test_scoped_admin_cannot_delete_another_groups_document(live: LiveServer):
    doc_ids = live.doc_ids("b")
    assert doc_ids, f"harness: group b's document is not indexed: {live.documents()}"
    r = live.call("DELETE", "/v1/documents", "adm_a", params={"doc_id": doc_ids})
    found = live.finds("user_b", SECRET["b"], MARK["b"])
    assert r.status_code in (403, 404) and found, (
        f"adm_a deleting group b's document: {r.status_code} {r.text[:300]} (must be 403 or 404); "
        f"user_b {'still finds' if found else 'no longer finds'} its secret")


def test_scoped_admin_does_not_see_another_groups_jobs(live: LiveServer):
    b_jobs = live.job_ids("b")
    assert b_jobs, "harness: root sees no upload job of group b"
    listed = live.call("GET", "/v1/jobs", "adm_a")
    problems = []
    if listed.status_code == 200:
        seen = [j for j in listed.json().get("jobs", []) if (j.get("detail") or {}).get("group") == "b"
                or DOC_NAME["b"] in str(j)]
        if seen:
            problems.append(f"GET /v1/jobs lists {len(seen)} job(s) of group b, e.g. {seen[0]}")
    elif listed.status_code != 403:
        problems.append(f"GET /v1/jobs: {listed.status_code} {listed.text[:200]}")
    for job_id in b_jobs[:2]:
        r = live.call("GET", f"/v1/jobs/{job_id}", "adm_a")
        if r.status_code not in (403, 404):
            problems.append(f"GET /v1/jobs/{job_id} (group b's upload): {r.status_code} {r.text[:300]}")
    assert not problems, "adm_a sees group b's jobs:\n" + "\n".join(problems)


def test_scoped_admin_does_not_see_another_groups_documents(live: LiveServer):
    docs = live.documents("adm_a")
    foreign = [d for d in docs if d["group"] != "a" or DOC_NAME["b"] in str(d)]
    assert not foreign, f"adm_a's GET /v1/documents lists documents of other groups: {foreign}"


def test_scoped_admin_stats_count_only_its_groups(live: LiveServer):
    stats = live.call("GET", "/v1/stats", "adm_a")
    groups = stats.json().get("groups", {}) if stats.status_code == 200 else {}
    assert stats.status_code in (200, 403, 404) and set(groups) <= {"a"}, (
        f"adm_a's GET /v1/stats counts documents of other groups: {stats.status_code} {stats.text[:300]}")


def test_scoped_admin_manages_its_own_group(live: LiveServer):
    """The other side of the contract (and the harness's control): inside group a, adm_a may act."""
    live.call("DELETE", "/v1/keys/new_user_a", "root")
    r = live.call("POST", "/v1/keys", "adm_a", json={"name": "new_user_a", "role": "user", "groups": ["a"]})
    assert r.status_code == 201, f"adm_a creating a user key for its own group a: {r.status_code} {r.text[:300]}"
    fact = "A팀 점심 회식은 금요일 정오에 한다."
    up = live.upload("adm_a", "A팀_회식.txt", fact.encode(), "a", wait=True)
    assert up.status_code == 200 and up.json()["job"]["status"] == "done", f"adm_a uploading into a: {up.text[:300]}"
    assert live.finds("user_a", "A팀 점심 회식", "금요일 정오"), "user_a does not find the document adm_a uploaded into a"
    live.call("DELETE", "/v1/keys/new_user_a", "root")
