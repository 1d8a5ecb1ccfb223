"""Property-based tests generated from the API's own OpenAPI document (schemathesis): no 5xx.

Each operation's request strategy is driven by Hypothesis directly (schemathesis' pytest
plugin does not run on this pytest version).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.server.api import create_app

PUBLIC = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture
def served(make_service):
    """(admin key, the API's schema bound to the app)."""
    service = make_service()
    key = service.keys.create("admin", "admin", "*")[1]
    return key, schemathesis.openapi.from_asgi("/openapi.json", create_app(service, ui=False))


def operations(schema) -> list:
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 15, [f"{o.method} {o.path}" for o in ops]  # every route is in the schema
    return ops


def run_each(schema, examples: int, check) -> None:
    for op in operations(schema):
        @given(case=op.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def property_(case):
            check(case)

        property_()


def test_generated_requests_never_get_a_server_error(served):
    key, schema = served

    def check(case):
        # with an admin key, so generated inputs reach the handlers instead of stopping at 401
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
        if response.status_code >= 400:  # every refusal says why (OpenAI's shape on its routes)
            body = response.json()
            why = (body.get("error") or {}).get("message") if "/chat/" in where or "/models" in where else body.get("detail")
            assert why, f"{where}: {response.text[:300]}"

    run_each(schema, 25, check)


def test_generated_requests_without_a_key_are_refused(served):
    _, schema = served

    def check(case):
        response = case.call(headers={})
        assert response.status_code < 500
        assert case.path in PUBLIC or response.status_code == 401, f"{case.method} {case.path}: {response.status_code}"

    run_each(schema, 5, check)
