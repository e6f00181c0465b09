"""Fixtures shared by the agent's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import sandbox as sandbox_module


@pytest.fixture
def disk_walks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders the sandbox walks to add up their size (`agent.sandbox._disk_usage`), in order; the
    walks still happen."""
    walked: list[Path] = []
    measure = sandbox_module._disk_usage

    def counted(path: Path) -> int:
        walked.append(path)
        return measure(path)

    monkeypatch.setattr(sandbox_module, "_disk_usage", counted)
    return walked
