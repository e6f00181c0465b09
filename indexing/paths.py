"""Where agentls keeps its files: the cache folder and a workspace's index folder in it.

Standard library only, so that the command line's quick search (`server.cli.quick`) finds them without
importing pydantic and the settings tree (`server.settings` and `indexing.config` re-export these).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["cache_dir", "default_index_location"]


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$AGENTLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/agentls``, else ``~/.cache/agentls``."""
    if env.get("AGENTLS_CACHE_DIR"):
        return Path(env["AGENTLS_CACHE_DIR"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or str(Path.home()), ".cache")
    return Path(base).expanduser() / "agentls"


def default_index_location(root: Path, cache_dir: Path) -> Path:
    """``<cache>/index/<name>-<hash of the absolute root>``: one folder per workspace, outside the repo."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    name = (root.resolve().name or "root")[:64]  # a file name has at most 255 bytes; the hash keeps it unique
    return cache_dir / "index" / f"{name}-{digest}"
