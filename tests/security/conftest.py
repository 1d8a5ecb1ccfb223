"""Fixtures of the hostile-user suite (marker `security`): one real `chulcheo serve` for the session.

`server` starts it (0.5B GGUF, 64 answer tokens, small limits; own HOME, TMPDIR, state and index
dirs) with groups a and b, one secret document each, and keys root (admin, *), adm_a (admin, a),
user_a (user, a), user_b (user, b). `live` is that server after undoing whatever an earlier attack
broke (a revoked key, a deleted document), so each test starts from the same state; after the
test it waits (bounded) until the server is idle again, so one attack's CPU does not spill into
the next test's latency checks.

CHULCHEO_SECURITY_SOURCE=/path/to/another/checkout runs the server (and its CLI) from that tree,
e.g. `git archive HEAD` unpacked somewhere, to see which tests a change in app/ turned green.

The instruments live beside this file: live.py (the server and its requests), probes.py
(/healthz monitor, CPU, disk), ui_client.py (the web UI's HTTP protocol).
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.security.live import LLM, LiveServer, onnx_copy_usable, start_server
from tests.security.probes import wait_idle

log = logging.getLogger(__name__)

# Cheap, non-destructive attacks first; those that may leave the server burning CPU (or holding
# its answer slot) on a server without the fixes come last, so their damage does not decide the
# outcome of unrelated tests. The footprint check needs every other attack to have run.
MODULE_ORDER = ("test_exposure", "test_routes", "test_scoped_admin", "test_group_names", "test_web_ui",
                "test_stream", "test_chat", "test_mcp", "test_sso_headers", "test_request_size", "test_verify", "test_web_ui_paths", "test_viewer", "test_feedback_review", "test_audit_log", "test_footprint")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's tests in MODULE_ORDER, in place among the rest of the session's tests."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if item.path.parent == here]

    def rank(item: pytest.Item) -> int:
        return MODULE_ORDER.index(item.path.stem) if item.path.stem in MODULE_ORDER else len(MODULE_ORDER)

    ordered = sorted((items[i] for i in slots), key=rank)  # sorted() is stable: file order within a module
    for i, item in zip(slots, ordered):
        items[i] = item


@pytest.fixture(scope="session")
def server(real_settings, tmp_path_factory):
    from app.models import get_spec, is_present

    if not is_present(get_spec(LLM), real_settings.model_dir):
        pytest.skip(f"{LLM} is not provisioned: run `chulcheo models pull {LLM}`")
    extra = {} if onnx_copy_usable(real_settings.model_dir) else {"CHULCHEO_EMBEDDING__BACKEND": "torch"}
    if extra:  # without it the server would export one at its first query: minutes, into the shared model dir
        log.warning("no int8 ONNX copy of the embedding model that the server's code accepts: it embeds with torch")
    with start_server(tmp_path_factory.mktemp("security"), real_settings.model_dir, extra) as running:
        yield running


@pytest.fixture
def live(server: LiveServer):
    assert server.proc.poll() is None, f"chulcheo serve has exited: {server.log_tail()}"
    try:
        httpx.get(server.url + "/healthz", timeout=5)
    except httpx.HTTPError as exc:
        pytest.fail(f"the server no longer answers /healthz ({type(exc).__name__}): an earlier attack hung it")
    repaired = server.restore()
    if repaired:  # shown with a failing test's output: an earlier attack did this damage
        print(f"restored after an earlier attack: {', '.join(repaired)}")
    yield server
    try:
        responsive = server.proc.poll() is None and httpx.get(server.url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        responsive = False
    if not responsive:  # hung (or gone): nothing to wait for; later tests report what they find
        print("the server does not answer /healthz after the test")
        return
    left = wait_idle(server.pid, limit=45)
    if left >= 25:
        print(f"server still at {left:.0f} % CPU 45 s after the test")
