"""`search_code` over a real index: the files view the model can ask for (`files: true`)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.overlay import Overlay
from agent.tools import ToolRegistry
from agent.tools.search import SearchCodeTool
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex


def _listed_paths(text: str) -> list[str]:
    return re.findall(r"^\d+\. ([^:\s]+):\d+-\d+", text, re.M)


def test_search_code_can_list_each_file_once(workspace: Path, cache_dir: Path) -> None:
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir, env={})
    index.index()
    registry = ToolRegistry([SearchCodeTool(Overlay(workspace), index)])
    chunks = _listed_paths(registry.execute("search_code", {"query": "price", "limit": 10}).content)
    files = _listed_paths(
        registry.execute("search_code", {"query": "price", "limit": 10, "files": True}).content
    )
    assert len(set(chunks)) < len(chunks), "the fixture should have several matching chunks in one file"
    assert files and len(set(files)) == len(files) > len(set(chunks))
