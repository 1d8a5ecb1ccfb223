"""Fixtures of the hostile-user suite (marker `security`): one real `chulcheo serve` for the session.

`server` starts it (0.5B GGUF, 64 answer tokens, small limits; own HOME, TMPDIR, state and index
dirs) with groups a and b, one secret document each, and keys root (admin, *), adm_a (admin, a),
user_a (user, a), user_b (user, b). `live` is that server after undoing whatever an earlier attack
broke (a revoked key, a deleted document), so each test starts from the same state; after the
test it waits (bounded) until the server is idle again, so one attack's CPU does not spill into
the next test's latency checks.

The instruments live beside this file: live.py (the server and its requests), probes.py
(/healthz monitor, CPU, disk), gradio_client.py (the web UI's HTTP protocol).
"""

from __future__ import annotations

import logging

import pytest

from tests.security.live import LLM, LiveServer, start_server
from tests.security.probes import wait_idle

log = logging.getLogger(__name__)

# Cheap, non-destructive attacks first; those that may leave the server burning CPU (or holding
# its answer slot) on a server without the fixes come last, so their damage does not decide the
# outcome of unrelated tests. The footprint check needs every other attack to have run.
MODULE_ORDER = ("test_exposure", "test_routes", "test_scoped_admin", "test_group_names", "test_web_ui",
                "test_stream", "test_request_size", "test_verify", "test_footprint")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's tests in MODULE_ORDER, in place among the rest of the session's tests."""
    slots = [i for i, item in enumerate(items) if "tests/security/" in item.nodeid]

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        return MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)

    ordered = sorted((items[i] for i in slots), key=rank)  # sorted() is stable: file order within a module
    for i, item in zip(slots, ordered):
        items[i] = item


@pytest.fixture(scope="session")
def server(real_settings, tmp_path_factory):
    from app.models import get_spec, is_present

    if not is_present(get_spec(LLM), real_settings.model_dir):
        pytest.skip(f"{LLM} is not provisioned: run `chulcheo models pull {LLM}`")
    extra = {} if _onnx_copy_usable(real_settings) else {"CHULCHEO_EMBEDDING__BACKEND": "torch"}
    if extra:
        log.warning("no usable int8 ONNX copy of %s: the server embeds with torch", real_settings.embedding.model)
    with start_server(tmp_path_factory.mktemp("security"), real_settings.model_dir, extra) as running:
        yield running


def _onnx_copy_usable(settings) -> bool:
    """Is the default embedding backend's ONNX copy in place? Without it the server would export
    one at its first query (minutes, outside the state dir); the suite then uses the torch backend."""
    from app.models import get_spec, model_path
    from retrieval.embed_onnx import OnnxModelError, read_export

    if settings.embedding.backend != "onnx-int8":
        return True
    try:
        return read_export(model_path(get_spec(settings.embedding.model), settings.model_dir)) is not None
    except OnnxModelError:
        return False


@pytest.fixture
def live(server: LiveServer):
    assert server.proc.poll() is None, f"chulcheo serve has exited: {server.log_tail()}"
    repaired = server.restore()
    if repaired:  # shown with a failing test's output: an earlier attack did this damage
        print(f"restored after an earlier attack: {', '.join(repaired)}")
    yield server
    if server.proc.poll() is None:
        left = wait_idle(server.pid, limit=60)
        if left >= 25:
            print(f"server still at {left:.0f} % CPU 60 s after the test")
