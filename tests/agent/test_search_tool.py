"""`search_code` over a real index: the files view the model can ask for (`files: true`)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.overlay import Overlay
from agent.tools import ToolRegistry
from agent.tools.search import SearchCodeTool
from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex

LEXICAL = IndexSettings(embedding=EmbeddingSettings(provider="none"))


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


def test_search_code_shows_a_crlf_file_without_cr(tmp_path: Path, cache_dir: Path) -> None:
    """A Windows file's hits read as the editor tool shows it: "\\n" line breaks, no byte order mark."""
    root = tmp_path / "ws"
    root.mkdir()
    source = (
        '\ufeffdef apply_discount(price, percent):\r\n    """Discount a price."""\r\n    return price\r\n'
    )
    (root / "pricing.py").write_bytes(source.encode())
    index = WorkspaceIndex(root, LEXICAL, cache_dir=cache_dir, env={})
    index.index()
    found = ToolRegistry([SearchCodeTool(Overlay(root), index)]).execute("search_code", {"query": "discount"})
    assert not found.is_error and "pricing.py:1-3" in found.content
    assert '    """Discount a price."""\n    return price' in found.content
    assert "\r" not in found.content and "\ufeff" not in found.content
