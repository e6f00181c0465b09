"""Installed dependencies in `search_code` (`agent.depindex`): a package installed in a project's virtual
environment (made in the test) is resolved by the project's Python in the real sandbox, indexed into its
own LanceDB index keyed by distribution and version, searched, and that index is reused by a second
workspace with the same version (its files are not parsed again)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.depindex import DependencyIndexes
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.search import SearchCodeTool

SESSION = '''"""Sessions that retry."""


def retry_with_backoff(call, attempts=3):
    """Call `call` until it succeeds, doubling the pause between attempts."""
    for attempt in range(attempts):
        try:
            return call()
        except OSError:
            pause = 2**attempt
    raise RuntimeError(pause)


class Session:
    """A connection pool with cookies."""
'''


def _project(root: Path) -> Path:
    """A workspace whose .venv has the distribution tinyhttp 1.4.0 (package `tinyhttp`) installed."""
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0.1"\n')
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = root / ".venv" / "lib" / version / "site-packages"
    (site / "tinyhttp").mkdir(parents=True)
    (site / "tinyhttp" / "__init__.py").write_text("from tinyhttp.session import Session\n")
    (site / "tinyhttp" / "session.py").write_text(SESSION)
    info = site / "tinyhttp-1.4.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyhttp\nVersion: 1.4.0\n")
    (info / "top_level.txt").write_text("tinyhttp\n")
    (info / "RECORD").write_text("tinyhttp/__init__.py,,\ntinyhttp/session.py,,\n")
    return root


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxSettings(timeout_seconds=60))


def test_a_dependency_is_indexed_once_per_version_and_searched(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _project(tmp_path / "one")
    tool = SearchCodeTool(Overlay(first), None, DependencyIndexes(first, sandbox, cache))
    text = (
        ToolRegistry([tool])
        .execute("search_code", {"query": "retry with backoff", "dependency": "tinyhttp"})
        .content
    )
    assert text.startswith(f"In tinyhttp 1.4.0 ({first / '.venv'}")
    assert "tinyhttp/session.py:4-" in text and "retry_with_backoff" in text
    assert [p.name for p in (cache / "deps").iterdir()] == ["tinyhttp-1.4.0"]

    # Another workspace with the same version: the same index, nothing parsed again.
    second = _project(tmp_path / "two")
    indexes = DependencyIndexes(second, sandbox, cache)
    dependency, hits = indexes.search("tinyhttp.session", "connection pool cookies", 3)
    assert (dependency.distribution, dependency.version) == ("tinyhttp", "1.4.0")
    assert dependency.folder.is_relative_to(second)
    assert hits and hits[0].path == "session.py" and hits[0].symbol == "Session"
    report = indexes.reports["tinyhttp-1.4.0"]
    assert report.files_indexed == 0 and report.files_seen == 2
    assert [p.name for p in (cache / "deps").iterdir()] == ["tinyhttp-1.4.0"]


def test_what_cannot_be_indexed_says_why(sandbox: Sandbox, tmp_path: Path) -> None:
    root = _project(tmp_path / "one")
    registry = ToolRegistry([SearchCodeTool(Overlay(root), None, DependencyIndexes(root, sandbox, tmp_path))])
    for name, why in (
        ("no_such_pkg", "not importable"),
        ("json", "not from an installed distribution"),
        ("os; rm", "not an import name"),
    ):
        result = registry.execute("search_code", {"query": "x", "dependency": name})
        assert result.is_error and why in result.content, (name, result.content)
    assert not (tmp_path / "deps").exists()
