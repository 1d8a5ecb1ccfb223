"""Group names that are path tricks (".", "..", ".staging", "a/b", ".hidden") are refused everywhere.

A group is a folder under uploads/ (and a key's scope), so such a name could write an upload
over another folder or into the staging area. Contract: 422 on key creation and on upload, and
nothing is written outside the state dir.
"""

from __future__ import annotations

import pytest

from tests.security.live import LiveServer
from tests.security.probes import HealthMonitor, files_under

pytestmark = pytest.mark.security

BAD_GROUPS = [".", "..", ".staging", "a/b", ".hidden"]


def written_outside_state(live: LiveServer) -> set:
    """Files under the test's base folder outside the state dir, the index and the harness's own files."""
    keep = (live.state_dir, live.index_dir, live.harness)
    return {p for p in files_under(live.base) if not any(p.is_relative_to(k) for k in keep)}


@pytest.mark.parametrize("group", BAD_GROUPS)
def test_path_like_group_names_are_refused(live: LiveServer, group):
    before = written_outside_state(live)
    name = "grp_" + "".join(c if c.isalnum() else "_" for c in group)
    with HealthMonitor(live.url) as hz:
        key = live.call("POST", "/v1/keys", "root", json={"name": name, "role": "user", "groups": [group]})
        if key.status_code == 201:
            live.call("DELETE", f"/v1/keys/{name}", "root")
        up = live.upload("root", "그룹이름.txt", "그룹 이름 공격 문서이다.".encode(), group, wait=True)
    new_files = sorted(str(p) for p in written_outside_state(live) - before)
    problems = []
    if key.status_code != 422:
        problems.append(f"key with groups [{group!r}]: {key.status_code} {key.text[:200]} (must be 422)")
    if up.status_code != 422:
        stored = (up.json().get("job") or {}).get("detail") if up.headers.get("content-type", "").startswith(
            "application/json") else None
        problems.append(f"upload into group {group!r}: {up.status_code} {up.text[:200]} (must be 422; stored: {stored})")
    if new_files:
        problems.append(f"files written outside the state dir: {new_files}")
    if problem := hz.problem(f"during the group {group!r} attempts"):
        problems.append(problem)
    assert not problems, "\n".join(problems)
