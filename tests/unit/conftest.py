"""Fixtures shared by the unit tests of several packages (shared_kiwi is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import app.pipeline as pipeline_module


@pytest.fixture
def use_model(monkeypatch, shared_kiwi) -> Callable[[Callable[[], object]], None]:
    """use_model(factory): every pipeline the CLI builds gets factory() as its embedder.

    Each CLI call builds a fresh pipeline; loading Kiwi (~2 s) each time would dominate the
    tests, so all of them share one.
    """
    import kiwipiepy

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)

    def install(factory: Callable[[], object]) -> None:
        monkeypatch.setattr(pipeline_module, "make_embedder", lambda settings: factory())

    return install
