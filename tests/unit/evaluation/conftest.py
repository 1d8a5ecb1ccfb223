"""Shared by the eval CLI tests: the eval cache inside tmp_path and small chunks."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_eval_cache(monkeypatch, tmp_path) -> None:
    """Cached eval indexes go under tmp_path/cache; chunks of 40 tokens (5 overlapping)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHULCHEO_CHUNK__MAX_TOKENS", "40")
    monkeypatch.setenv("CHULCHEO_CHUNK__OVERLAP_TOKENS", "5")
