"""Fixtures for every test package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_kiwi():
    """One Kiwi for the whole run: each instance costs ~2 s and ~400 MB."""
    from kiwipiepy import Kiwi

    return Kiwi()
