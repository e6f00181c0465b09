"""Fixtures the server's tests share: the settings tests' own cache, and the check that a test which drives
a process through an asyncio SDK client (ACP, MCP) left no transport for the garbage collector to close."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
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


@pytest.fixture
def nothing_raises_in_a_finalizer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a ``__del__`` raised during it or in a garbage collection at its end, rather than
    let it surface later in the session (a module uses it for every test with ``pytestmark =
    pytest.mark.usefixtures("nothing_raises_in_a_finalizer")``).

    The case it is for: an asyncio subprocess transport still open when ``asyncio.run`` closes its loop;
    its ``__del__`` raises ``RuntimeError('Event loop is closed')`` into ``sys.unraisablehook`` whenever
    the collector gets to it, which can crash pytest later in the session (tests/server/test_acp.py's
    ``_spawn`` says how, and closes the transport of the ACP SDK's process for that reason)."""
    raised: list[str] = []
    monkeypatch.setattr(
        sys, "unraisablehook", lambda hook: raised.append(f"{hook.object!r}: {hook.exc_value!r}")
    )
    yield
    gc.collect()
    assert raised == [], raised
