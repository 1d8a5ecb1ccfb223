"""The real CLI in a subprocess, with the real default embedding model, on the sample corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def chulcheo(*args: str, index: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"CHULCHEO_INDEX_DIR": str(index)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=900,
    )


def test_ingest_search_docs_round_trip(real_settings, tmp_path):
    index = tmp_path / "index"
    first = chulcheo("ingest", "sample_corpus", "--json", index=index)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["added"] == 3 and report["failed"] == [] and report["chunks"] >= 3

    found = chulcheo("search", "연차휴가는 며칠인가요?", "--k", "3", "--json", index=index)
    assert found.returncode == 0, found.stderr
    top = json.loads(found.stdout)["hits"][0]
    assert top["source"].endswith("취업규칙.md") and "15일" in top["text"]

    usb = json.loads(chulcheo("search", "USB 메모리를 써도 되나요", "--json", index=index).stdout)
    assert usb["hits"][0]["source"].endswith("정보보안_정책.html")

    again = json.loads(chulcheo("ingest", "sample_corpus", "--json", index=index).stdout)
    assert (again["added"], again["unchanged"]) == (0, 3)

    listed = json.loads(chulcheo("docs", "list", "--json", index=index).stdout)["documents"]
    assert len(listed) == 3


def test_python_dash_m_app_shows_help():
    result = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("ingest", "search", "docs", "models"):
        assert command in result.stdout
