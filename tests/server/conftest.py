"""Fixtures the server's settings tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The trust file and the user's own settings file of a test are its own, not the machine's (a module
    that needs it for every test says ``pytestmark = pytest.mark.usefixtures("own_cache")``)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return cache
