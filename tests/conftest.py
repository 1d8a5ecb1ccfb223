"""Fixtures for every test package."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_kiwi():
    """One Kiwi for the whole run: each instance costs ~2 s and ~400 MB."""
    from kiwipiepy import Kiwi

    return Kiwi()


KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"


@pytest.fixture(scope="session")
def korquad_path() -> Path:
    if not KORQUAD.exists():
        pytest.skip(f"KorQuAD dev set not found at {KORQUAD}")
    return KORQUAD


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory):
    """Default settings (default embedding model) with a fresh index directory; skips if it is not provisioned."""
    from app.models import get_spec, is_present
    from app.settings import Settings

    settings = Settings(index_dir=tmp_path_factory.mktemp("index"))
    spec = get_spec(settings.embedding.model)
    if not is_present(spec, settings.model_dir):
        pytest.skip(f"{spec.name} is not provisioned in {settings.model_dir}: run `chulcheo models pull`")
    return settings
