"""The index stays fresh as a developer works, end to end through `agentls serve` with a real pygls client.

Each test changes a real git repository as a developer does, tells the server what the editor's file
watcher reports for it, waits until the server's indexing is idle, and compares its index with a fresh
index of the same tree (every file's content hash and chunk count) and what search answers.

- A folder renamed, moved or deleted: VS Code (by design) reports the folder alone, not its files; the
  old paths vanish from search and the moved files are found at their new paths.
- Another process writing the index when a file changes (``agentls index`` in a terminal, a second
  editor's server on the same workspace): the change is indexed once the index is free, without a
  message to the user; and each server's search sees what the other wrote. When it writes as the server
  starts, the server's first index runs once the index is free (said once).
- The index folder deleted while the server runs (the cache cleared): the next change or search has it
  indexed again in full.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from indexing.config import EmbeddingSettings, IndexSettings, default_index_location
from indexing.lock import IndexLock
from indexing.service import WorkspaceIndex
from tests.e2e.helpers import index_progress_ended, initialize, lsp_server, request, wait_for

__all__ = ["lsp_server"]  # the fixture used below

pytestmark = pytest.mark.timeout(120)

LEXICAL = IndexSettings(embedding=EmbeddingSettings(provider="none"))  # the server's FAST_SETTINGS


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def repository(tmp_path: Path) -> Path:
    """A git repository: main.py, pkg/alpha.py, pkg/sub/{beta,gamma}.py, committed."""
    root = tmp_path / "proj"
    files = {
        "main.py": "def quokka_main():\n    return 3\n",
        "pkg/alpha.py": "def quokka_alpha():\n    return 1\n",
        "pkg/sub/beta.py": "def quokka_beta():\n    return 2\n",
        "pkg/sub/gamma.py": "class QuokkaGamma:\n    def size(self):\n        return 4\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", "start")
    return root


async def indexed(client: LanguageClient, root: Path) -> None:
    """Start the server on `root` and wait for its first index to end."""
    await initialize(client, root)
    await wait_for(lambda: index_progress_ended(client), 60)


def watched(client: LanguageClient, *changes: tuple[Path, types.FileChangeType]) -> None:
    """What the editor's file watcher sends for these changes."""
    events = [types.FileEvent(uri=path.as_uri(), type=kind) for path, kind in changes]
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=events))


async def settled(client: LanguageClient) -> None:
    """Wait until the server has no indexing job running or waiting (it queues them as the events come)."""

    async def idle() -> bool:
        stats = await request(client, "agentls/serverStats", {})
        return bool(stats["indexingIdle"])

    await wait_for(idle, 60)


def rows(root: Path, cache: Path) -> dict[str, tuple[str, int]]:
    """Each indexed file's content hash and chunk count, in the index of `root` under `cache`."""
    index = WorkspaceIndex(root, LEXICAL, cache_dir=cache)
    chunks = index.store.table("chunks").to_arrow().column("path").to_pylist()
    return {path: (record.hash, chunks.count(path)) for path, record in index.store.file_records().items()}


def fresh_rows(root: Path, cache: Path) -> dict[str, tuple[str, int]]:
    """`rows` of a fresh index of the same tree."""
    WorkspaceIndex(root, LEXICAL, cache_dir=cache).index()
    return rows(root, cache)


async def found(client: LanguageClient, query: str) -> list[str]:
    hits = await request(client, "agentls/search", {"query": query, "limit": 20})
    return sorted({hit["path"] for hit in hits})


async def test_a_folder_renamed_then_deleted_leaves_the_index_of_a_fresh_run(
    lsp_server: Any, tmp_path: Path
) -> None:
    root = repository(tmp_path)
    client = await lsp_server()
    await indexed(client, root)
    assert await found(client, "quokka") == ["main.py", "pkg/alpha.py", "pkg/sub/beta.py", "pkg/sub/gamma.py"]

    git(root, "mv", "pkg/sub", "pkg/moved")
    watched(client, (root / "pkg/sub", types.FileChangeType.Deleted))
    watched(client, (root / "pkg/moved", types.FileChangeType.Created))
    await settled(client)
    assert await found(client, "quokka") == [
        "main.py",
        "pkg/alpha.py",
        "pkg/moved/beta.py",
        "pkg/moved/gamma.py",
    ]
    assert rows(root, tmp_path / "cache") == fresh_rows(root, tmp_path / "fresh")

    shutil.rmtree(root / "pkg")
    watched(client, (root / "pkg", types.FileChangeType.Deleted))
    await settled(client)
    assert await found(client, "quokka") == ["main.py"]
    assert rows(root, tmp_path / "cache") == fresh_rows(root, tmp_path / "fresh-after-delete")


async def test_a_change_while_another_process_writes_the_index_is_indexed_once_it_is_free(
    lsp_server: Any, tmp_path: Path
) -> None:
    root = repository(tmp_path)
    client = await lsp_server()
    await indexed(client, root)
    other = IndexLock(default_index_location(root, tmp_path / "cache") / ".lock")
    other.acquire()  # as `agentls index`, or a second editor's server saving the same file, holds it
    try:
        (root / "main.py").write_text("def wallaby_main():\n    return 3\n")
        watched(client, (root / "main.py", types.FileChangeType.Changed))
        await asyncio.sleep(1.5)  # the update is refused, and tried again
    finally:
        other.release()
    await settled(client)
    assert await found(client, "wallaby_main") == ["main.py"]
    assert rows(root, tmp_path / "cache") == fresh_rows(root, tmp_path / "fresh")
    assert not [m.message for m in client.messages if "another agentls indexer" in m.message]


async def test_two_servers_on_one_workspace_search_what_the_other_wrote(
    lsp_server: Any, tmp_path: Path
) -> None:
    root = repository(tmp_path)
    first, second = await lsp_server(), await lsp_server()
    await indexed(first, root)
    await indexed(second, root)
    for client in (first, second):  # each has its reader of the index open
        assert "pkg/alpha.py" in await found(client, "quokka")
    (root / "pkg/alpha.py").write_text("def koala_marsupial():\n    return 1\n")
    watched(second, (root / "pkg/alpha.py", types.FileChangeType.Changed))  # only its editor saw it
    await settled(second)
    assert await found(second, "koala_marsupial") == ["pkg/alpha.py"]

    async def first_sees_it() -> bool:
        return await found(first, "koala_marsupial") == ["pkg/alpha.py"]

    await wait_for(first_sees_it, 10)


async def test_the_index_folder_deleted_while_the_server_runs_is_built_again(
    lsp_server: Any, tmp_path: Path
) -> None:
    root = repository(tmp_path)
    client = await lsp_server()
    await indexed(client, root)
    location = default_index_location(root, tmp_path / "cache")
    everything = ["main.py", "pkg/alpha.py", "pkg/sub/beta.py", "pkg/sub/gamma.py"]

    shutil.rmtree(location)  # then a file changes: the update builds the whole index, not that file's
    (root / "pkg/alpha.py").write_text("def quokka_alpha():\n    return 10\n")
    watched(client, (root / "pkg/alpha.py", types.FileChangeType.Changed))
    await settled(client)
    assert await found(client, "quokka") == everything
    assert rows(root, tmp_path / "cache") == fresh_rows(root, tmp_path / "fresh")

    shutil.rmtree(location)  # then a search comes first: it says the index is being built
    with pytest.raises(JsonRpcException, match="still being built"):
        await found(client, "quokka")

    async def found_everything() -> bool:
        try:
            return await found(client, "quokka") == everything
        except JsonRpcException:  # still being built
            return False

    await wait_for(found_everything, 30)
    assert not [m.message for m in client.messages if "could not index" in m.message]


async def test_a_first_index_refused_by_another_writer_runs_once_the_index_is_free(
    lsp_server: Any, tmp_path: Path
) -> None:
    """The editor starts while ``agentls index`` runs in a terminal: the server's first index is refused,
    said once, and run (quietly) once the index is free, with what changed meanwhile."""
    root = repository(tmp_path)
    WorkspaceIndex(root, LEXICAL, cache_dir=tmp_path / "cache").index()
    other = IndexLock(default_index_location(root, tmp_path / "cache") / ".lock")
    other.acquire()
    try:
        client = await lsp_server()
        await indexed(client, root)
        (root / "pkg/sub/beta.py").write_text("def bandicoot_beta():\n    return 2\n")
        await asyncio.sleep(1)
    finally:
        other.release()
    await settled(client)
    assert await found(client, "bandicoot") == ["pkg/sub/beta.py"]
    assert rows(root, tmp_path / "cache") == fresh_rows(root, tmp_path / "fresh")
    told = [m.message for m in client.messages if "another agentls indexer" in m.message]
    assert len(told) == 1 and "until agentls can index it" in told[0], told
