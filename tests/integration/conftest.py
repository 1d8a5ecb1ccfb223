"""Integration tests run the real default models; they skip with a reason where one is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models import is_present, get_spec
from app.settings import Settings

KORQUAD = Path(__file__).resolve().parents[3] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"


@pytest.fixture(scope="session")
def korquad_path() -> Path:
    if not KORQUAD.exists():
        pytest.skip(f"KorQuAD dev set not found at {KORQUAD}")
    return KORQUAD


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    """Default settings (default embedding model) with a fresh index directory."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("index"))
    spec = get_spec(settings.embedding.model)
    if not is_present(spec, settings.model_dir):
        pytest.skip(f"{spec.name} is not provisioned in {settings.model_dir}: run `chulcheo models pull`")
    return settings
