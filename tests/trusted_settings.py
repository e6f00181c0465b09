"""Trusting a test workspace's sensitive settings (`server.settings_trust`) the way the user does, through
the real trust file of the test's own cache: what ``agentls settings --trust --yes --path ROOT`` writes."""

from __future__ import annotations

from pathlib import Path

from server.settings import workspace_settings
from server.settings_trust import fingerprint, sensitive_values, settings_trust


def trust_workspace_settings(root: Path, cache: Path) -> None:
    """Trust the values of the sensitive settings `root`'s agentls.toml (or pyproject.toml) sets now, in the
    trust file of the agentls cache `cache` (the ``AGENTLS_CACHE_DIR`` the code under test is given)."""
    raw, _, sources = workspace_settings(root)
    assert sources, f"{root} has no settings file to trust"
    found = sensitive_values(raw, root)
    settings_trust({"AGENTLS_CACHE_DIR": str(cache)}).add(root, fingerprint(found), settings=sources[0])


def settings_workspace(tmp_path: Path, toml: str) -> Path:
    """A workspace ``tmp_path/ws`` whose agentls.toml is `toml` (its sensitive values not trusted), with one
    Python file."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text(toml)
    (ws / "app.py").write_text("def f():\n    return 1\n")
    return ws


UNWRITABLE = ("folder in its place", "cache is a file")
"""The ways `unwritable_trust_file` makes a trust file one that cannot be written."""


def unwritable_trust_file(cache: Path, how: str, name: str) -> None:
    """The trust file `name` (``settings-trust.json``, ``mcp-trust.json``) of the agentls cache `cache`
    cannot be written: a folder stands in its place (`how` "folder in its place"), or the cache's folder
    cannot be made (a file is there: "cache is a file")."""
    if how == "folder in its place":
        (cache / name).mkdir(parents=True)
    else:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("not a folder")
