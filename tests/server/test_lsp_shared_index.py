"""The language server on a workspace configured with a shared team index (``index.shared``): its
indexing process indexes only what differs from the base's commit, and ``agentls/search`` answers from
the base and the local index together. Real `agentls serve`, LanceDB, git, and moto's S3 server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex
from indexing.shared import publish
from tests.e2e.helpers import (
    index_progress_ended,
    initialize,
    lsp_server,
    open_document,
    request,
    save_document,
    wait_for,
)
from tests.object_storage import s3

__all__ = ["lsp_server", "s3"]  # fixtures used below

pytestmark = pytest.mark.timeout(180)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True)


async def test_the_server_searches_the_shared_base_and_indexes_only_local_changes(
    lsp_server, s3: str, tmp_path: Path
) -> None:
    team = tmp_path / "team"
    team.mkdir()
    (team / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
    (team / "shipping.py").write_text("def schedule_parcel_pickup(parcel):\n    return parcel.book()\n")
    _git(team, "init", "-q", "-b", "main")
    _git(team, "add", ".")
    _git(team, "commit", "-q", "-m", "base")
    lexical = IndexSettings(
        embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / "publisher-index")
    )
    publish(WorkspaceIndex(team, lexical, cache_dir=tmp_path / "publisher-cache"), f"{s3}/lsp")

    mine = tmp_path / "mine"
    _git(tmp_path, "clone", "-q", str(team), str(mine))
    (mine / "shipping.py").write_text("def schedule_drone_delivery(parcel):\n    return parcel.fly()\n")

    client: LanguageClient = await lsp_server()  # inherits the AWS_* environment pointing at moto
    options = {"index": {"embedding": {"provider": "none"}, "shared": f"{s3}/lsp"}}
    await initialize(client, mine, options=options)
    await wait_for(lambda: index_progress_ended(client), 120)

    async def top(query: str) -> str | None:
        hits = await request(client, "agentls/search", {"query": query, "limit": 3})
        return hits[0]["path"] if hits else None

    assert await top("compute invoice total") == "billing.py"  # the base's rows
    assert await top("drone delivery") == "shipping.py"  # indexed here
    old = await request(client, "agentls/search", {"query": "schedule parcel pickup", "limit": 5})
    assert "schedule_parcel_pickup" not in {h["symbol"] for h in old}  # the base's old version is hidden
    stats = await request(client, "agentls/serverStats", {})
    assert stats["settings"]["index"]["shared"] == f"{s3}/lsp"

    # A saved file goes into the local index and hides its base rows at once.
    billing = mine / "billing.py"
    open_document(client, billing)
    save_document(client, billing, "def compute_refund_total(lines):\n    return -sum(lines)\n")

    async def saved() -> bool:
        hits = await request(client, "agentls/search", {"query": "compute refund total", "limit": 3})
        return any(h["symbol"] == "compute_refund_total" for h in hits)

    await wait_for(saved, 60)
    gone = await request(client, "agentls/search", {"query": "compute invoice total", "limit": 5})
    assert "compute_invoice_total" not in {h["symbol"] for h in gone}, [
        (h["path"], h["symbol"], h["text"]) for h in gone
    ]
