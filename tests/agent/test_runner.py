"""The shared run builder's index opener: the index when there is one, file scans otherwise."""

from __future__ import annotations

from pathlib import Path

from agent.runner import index_opener
from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex

LEXICAL = IndexSettings(embedding=EmbeddingSettings(provider="none"))


def test_opens_the_existing_index_for_search(workspace: Path, cache_dir: Path) -> None:
    WorkspaceIndex(workspace, LEXICAL, cache_dir=cache_dir, env={}).index()
    index = index_opener(workspace, LEXICAL, cache_dir=cache_dir, env={})()
    assert index is not None
    assert index.search("apply_discount")[0].symbol == "apply_discount"


def test_no_index_yet_means_none_so_tools_scan_files(workspace: Path, cache_dir: Path) -> None:
    assert index_opener(workspace, LEXICAL, cache_dir=cache_dir, env={})() is None
