"""`search_code` over a real index: the files view the model can ask for (`files: true`)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.overlay import Overlay
from agent.tools import ToolRegistry
from agent.tools.search import FindSymbolTool, SearchCodeTool
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


def test_a_folder_as_path_scopes_find_symbol_and_search_code_to_that_folder(
    tmp_path: Path, cache_dir: Path
) -> None:
    """`path` is a folder or a file, however the model writes it (`api`, `./api/`, absolute): find_symbol
    finds what is under the folder (it matched only a file's exact path, and answered "No `X`" for a
    folder), and search_code's definition look-up keeps out a sibling folder that shares the prefix
    (`api_v2` is not under `api`). A folder that does not exist is said so (not "no match under it")."""
    root = tmp_path / "ws"
    (root / "api").mkdir(parents=True)
    (root / "api_v2").mkdir()
    (root / "api" / "routes.py").write_text("def register_routes(app):\n    return app\n")
    (root / "api_v2" / "config.py").write_text("def parse_config(text):\n    return text\n")
    index = WorkspaceIndex(root, LEXICAL, cache_dir=cache_dir, env={})
    index.index()
    overlay = Overlay(root)
    registry = ToolRegistry([SearchCodeTool(overlay, index), FindSymbolTool(overlay, index)])
    for path in ("api", "./api/", str(root / "api"), "api/routes.py"):
        found = registry.execute("find_symbol", {"name": "register_routes", "path": path})
        assert found.content.startswith("api/routes.py:1:5  definition function register_routes"), path
    other = registry.execute("find_symbol", {"name": "parse_config", "path": "api"})
    assert other.content == "No `parse_config` in the index under api."
    assert "api_v2/config.py:1" in registry.execute("find_symbol", {"name": "parse_config"}).content

    scoped = registry.execute("search_code", {"query": "parse_config", "path": "api"})
    assert scoped.content == "No code matches 'parse_config' under api.", scoped.content
    assert "api_v2/config.py:1-2" in registry.execute("search_code", {"query": "parse_config"}).content
    for tool, input in (
        ("search_code", {"query": "register_routes"}),
        ("find_symbol", {"name": "register_routes"}),
    ):
        wrong = registry.execute(tool, {**input, "path": "src/api"})  # a folder the project does not have
        assert wrong.is_error and wrong.content.startswith(
            "There is no file or folder src/api in the workspace"
        )
