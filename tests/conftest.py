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


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 with pgvector 0.6.2 (pgserver 0.1.4) for the session; skips without it."""
    pytest.importorskip("psycopg")
    pgserver = pytest.importorskip("pgserver")
    srv = pgserver.get_server(tmp_path_factory.mktemp("pgserver"), cleanup_mode="delete")
    yield srv
    srv.cleanup()


@pytest.fixture
def pg_database(pg_server):
    """make(name) -> the URL of a new, empty database on the session's PostgreSQL."""
    import itertools
    import uuid

    import psycopg

    counter = itertools.count()

    def make(prefix: str = "db") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}_{next(counter)}"
        with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
            conn.execute(f"create database {name}")
        return pg_server.get_uri(name)

    return make
