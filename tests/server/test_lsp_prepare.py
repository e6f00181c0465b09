"""A document edited in the editor, then saved: its rows are prepared while typing pauses, so the save
only writes them (issue 16: a saved file searchable in < 100 ms on the kernel). Driven over stdio as an
editor would (didOpen, didChange, a pause, the file written, didSave, then ``agentls/search``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from indexing.paths import default_index_location
from tests.e2e.helpers import (
    index_progress_ended,
    initialize,
    lsp_server,
    open_document,
    request,
    stubs_workspace,
    wait_for,
)
from tests.indexing.test_prepare import full_text_parts

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(120)


def change(client: LanguageClient, path: Path, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def save(client: LanguageClient, path: Path, text: str) -> None:
    path.write_text(text)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )


async def idle(client: LanguageClient) -> bool:
    """Nothing is running or waiting in the indexing process, a document to prepare included."""
    return bool((await request(client, "agentls/serverStats", None))["indexingIdle"])


async def defined(client: LanguageClient, name: str) -> bool:
    hits = await request(client, "agentls/search", {"query": name})
    return any(h["symbol"] == name for h in hits)


def updates(client: LanguageClient) -> list[str]:
    return [m.message for m in client.log_messages if "re-indexed 1 changed file(s)" in m.message]


async def test_an_edited_document_is_prepared_and_its_save_only_writes(
    lsp_server, stubs_workspace: Path, tmp_path: Path
) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace, editor="visual-studio-code")
    await wait_for(lambda: index_progress_ended(client), 60)
    money = stubs_workspace / "shop" / "money.py"
    open_document(client, money)
    typed = money.read_text() + "\n\ndef ship_quote_okapi(weight: float) -> float:\n    return weight * 2\n"
    change(client, money, typed[:-20], 2)  # typing...
    change(client, money, typed, 3)  # ...then a pause: this text is prepared
    assert not await idle(client)  # the prepare waits for the pause
    await wait_for(lambda: idle(client), 20)
    save(client, money, typed)
    await wait_for(lambda: defined(client, "ship_quote_okapi"), 20)
    await wait_for(lambda: len(updates(client)) == 1, 10)
    assert "(1 prepared while editing)" in updates(client)[0]
    # Then a quiet job puts the saved rows in the full-text index (searches stop reading them one by one).
    await wait_for(lambda: idle(client), 20)
    assert full_text_parts(default_index_location(stubs_workspace, tmp_path / "cache")) == (2, 0)

    # Prepared text that is not what gets saved (changed on disk by another program) is never written.
    typed_again = typed + "\n\ndef typed_only_tapir() -> int:\n    return 1\n"
    change(client, money, typed_again, 4)
    await wait_for(lambda: idle(client), 20)
    save(client, money, typed + "\n\ndef saved_instead_tapir() -> int:\n    return 2\n")
    await wait_for(lambda: defined(client, "saved_instead_tapir"), 20)
    await wait_for(lambda: len(updates(client)) == 2, 10)
    assert "prepared" not in updates(client)[1]
    assert not await defined(client, "typed_only_tapir")
