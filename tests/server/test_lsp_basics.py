"""The language server end to end over stdio, with the capabilities of VS Code and of Neovim.

Each test starts `agentls serve` in a subprocess with its own cache folder and lexical-only indexing
(``index.embedding.provider = "none"``), on a writable copy of ``tests/workspaces/stubs``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from server.features.commands import ALL_COMMANDS
from tests.e2e.helpers import (
    CLIENTS,
    FAST_SETTINGS,
    code_actions,
    index_progress_count,
    index_progress_ended,
    initialize,
    lsp_server,
    open_document,
    request,
    save_document,
    stubs_workspace,
    wait_for,
)

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=CLIENTS)
def editor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_initialize_answers_with_capabilities(lsp_server, stubs_workspace: Path, editor: str) -> None:
    client: LanguageClient = await lsp_server()
    result = await initialize(client, stubs_workspace, editor=editor)
    caps = result.capabilities
    assert result.server_info is not None and result.server_info.name == "agentls"
    sync = caps.text_document_sync
    assert (
        isinstance(sync, types.TextDocumentSyncOptions)
        and sync.change == types.TextDocumentSyncKind.Incremental
    )
    assert isinstance(caps.code_action_provider, types.CodeActionOptions)
    assert set(caps.code_action_provider.code_action_kinds or []) == {
        "refactor.rewrite.agentls.implement",
        "quickfix.agentls.fix",
        "refactor.agentls.tests",
        "source.agentls.proposal",  # Accept / Reject / Show diff on files of a pending proposal
    }
    assert caps.execute_command_provider is not None
    assert set(caps.execute_command_provider.commands) == set(ALL_COMMANDS)
    assert caps.code_lens_provider is not None
    assert caps.workspace is not None and caps.workspace.workspace_folders is not None
    assert caps.workspace.workspace_folders.change_notifications is True
    # VS Code 1.65 offers no encodings (utf-16 then); Neovim 0.11 offers utf-8, utf-16 and utf-32.
    assert caps.position_encoding == ("utf-32" if editor == "neovim" else "utf-16")


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["utf-8", "utf-16", "utf-32"], "utf-32"),  # Neovim 0.10+
        (["utf-8", "utf-32"], "utf-32"),
        (["utf-16", "utf-8"], "utf-8"),
    ],
)
async def test_utf32_is_chosen_whenever_offered_else_utf8(
    lsp_server, stubs_workspace: Path, offered: list[str], chosen: str
) -> None:
    client: LanguageClient = await lsp_server()
    caps = client_capabilities("visual-studio-code")
    caps.general = types.GeneralClientCapabilities(position_encodings=offered)
    result = await initialize(client, stubs_workspace, capabilities=caps)
    assert result.capabilities.position_encoding == chosen


async def test_code_actions_on_stubs_and_not_on_finished_functions(
    lsp_server, stubs_workspace: Path, editor: str
) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace, editor=editor)
    pricing = stubs_workspace / "shop" / "pricing.py"
    uri = open_document(client, pricing)
    lines = pricing.read_text().splitlines()

    stub_line = next(i for i, ln in enumerate(lines) if "def apply_discount" in ln)
    found = await code_actions(client, uri, stub_line + 2)  # inside the docstring
    implement = [a for a in found if a.kind == "refactor.rewrite.agentls.implement"]
    assert [a.title for a in implement] == ["Implement `apply_discount` with agentls"]
    command = implement[0].command
    assert command is not None and command.command == "agentls.implement"
    (argument,) = command.arguments or []
    assert argument["uri"] == uri
    assert stub_line <= argument["position"]["line"] < stub_line + 8
    assert any(a.kind == "refactor.agentls.tests" for a in found)

    done_line = next(i for i, ln in enumerate(lines) if "def total" in ln)
    found = await code_actions(client, uri, done_line + 2)
    assert not [a for a in found if a.kind == "refactor.rewrite.agentls.implement"]
    tests = [a for a in found if a.kind == "refactor.agentls.tests"]
    assert [a.title for a in tests] == ["Write tests for `total` with agentls"]
    assert tests[0].command is not None and tests[0].command.command == "agentls.writeTests"

    method_line = next(i for i, ln in enumerate(lines) if "def add" in ln)
    found = await code_actions(client, uri, method_line + 1)
    assert "Implement `add` with agentls" in [a.title for a in found]

    # Outside any function: nothing but what diagnostics ask for.
    assert await code_actions(client, uri, 0) == []


async def test_no_agent_actions_on_a_file_outside_every_workspace_folder(
    lsp_server, stubs_workspace: Path, tmp_path: Path
) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)
    elsewhere = tmp_path / "elsewhere" / "pricing.py"  # the same stub, in a folder the editor did not open
    elsewhere.parent.mkdir()
    elsewhere.write_text((stubs_workspace / "shop" / "pricing.py").read_text())
    uri = open_document(client, elsewhere)
    lines = elsewhere.read_text().splitlines()
    stub_line = next(i for i, ln in enumerate(lines) if "def apply_discount" in ln)
    # Each would be refused when chosen ("not inside a workspace folder"): none is offered.
    assert await code_actions(client, uri, stub_line + 2) == []


async def test_code_actions_in_other_languages(lsp_server, stubs_workspace: Path) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)
    for rel, name in (("web/cart.ts", "parseQuantity"), ("inventory/stock.go", "Reserve")):
        path = stubs_workspace / rel
        uri = open_document(client, path)
        line = next(i for i, ln in enumerate(path.read_text().splitlines()) if name + "(" in ln)
        titles = [a.title for a in await code_actions(client, uri, line)]
        assert f"Implement `{name}` with agentls" in titles, (rel, titles)


async def test_fix_action_on_diagnostics_in_range(lsp_server, stubs_workspace: Path, editor: str) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace, editor=editor)
    uri = open_document(client, stubs_workspace / "shop" / "money.py")
    diagnostic = types.Diagnostic(
        range=types.Range(types.Position(5, 4), types.Position(5, 9)),
        message='"cents" is possibly unbound',
        severity=types.DiagnosticSeverity.Error,
        source="pyright",
    )
    found = await code_actions(client, uri, 5, 6, diagnostics=[diagnostic])
    fixes = [a for a in found if a.kind == "quickfix.agentls.fix"]
    assert len(fixes) == 1
    assert fixes[0].title == 'Fix with agentls: "cents" is possibly unbound'
    assert fixes[0].command is not None and fixes[0].command.command == "agentls.fix"
    (argument,) = fixes[0].command.arguments or []
    assert argument["uri"] == uri
    assert argument["range"] == {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 9}}
    assert argument["diagnostics"][0]["message"] == '"cents" is possibly unbound'
    only = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(5, 6), types.Position(5, 6)),
            context=types.CodeActionContext(diagnostics=[diagnostic], only=["quickfix"]),
        )
    )
    assert [a.kind for a in only or [] if isinstance(a, types.CodeAction)] == ["quickfix.agentls.fix"]


async def test_background_indexing_reports_progress_then_search_finds(
    lsp_server, stubs_workspace: Path, editor: str
) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace, editor=editor)
    await wait_for(lambda: index_progress_ended(client), 120)
    (reports,) = [
        r for r in client.progress_reports.values() if r and isinstance(r[0], types.WorkDoneProgressBegin)
    ]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable is True
    assert any(isinstance(r, types.WorkDoneProgressReport) for r in reports)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and "Indexed" in (reports[-1].message or "")

    hits = await request(client, "agentls/search", {"query": "apply discount percent", "limit": 5})
    assert hits, "the search found nothing"
    top = hits[0]
    assert top["path"] == "shop/pricing.py" and top["symbol"] == "apply_discount"
    assert top["uri"] == (stubs_workspace / "shop" / "pricing.py").as_uri()
    text = (stubs_workspace / "shop" / "pricing.py").read_text().splitlines()
    assert "def apply_discount" in "\n".join(
        text[top["range"]["start"]["line"] : top["range"]["end"]["line"] + 1]
    )
    assert {"kind", "score", "text"} <= set(top)

    files = await request(client, "agentls/search", {"query": "price", "limit": 10, "files": True})
    chunks = await request(client, "agentls/search", {"query": "price", "limit": 10})
    assert len({h["path"] for h in files}) == len(files) > len({h["path"] for h in chunks})


async def test_saved_edit_becomes_searchable(lsp_server, stubs_workspace: Path) -> None:
    client: LanguageClient = await lsp_server()
    caps = client_capabilities("neovim")
    caps.general = types.GeneralClientCapabilities(position_encodings=["utf-8", "utf-16"])  # no utf-32
    await initialize(client, stubs_workspace, capabilities=caps)
    await wait_for(lambda: index_progress_ended(client), 120)
    money = stubs_workspace / "shop" / "money.py"
    open_document(client, money)
    added = 'def shipping_quote_zebra(weight: float) -> float:\n    """Quote 😀."""\n    return "½ €" * 2\n'
    new_text = money.read_text() + "\n\n" + added
    save_document(client, money, new_text)

    async def found() -> bool:
        hits = await request(client, "agentls/search", {"query": "shipping_quote_zebra"})
        return any(h["symbol"] == "shipping_quote_zebra" for h in hits)

    await wait_for(found, 60)
    hits = await request(client, "agentls/search", {"query": "shipping_quote_zebra"})
    hit = next(h for h in hits if h["symbol"] == "shipping_quote_zebra")
    # utf-8 was negotiated: the end of the last line is counted in bytes.
    last = new_text.splitlines()[hit["range"]["end"]["line"]]
    assert last == '    return "½ €" * 2'
    assert hit["range"]["end"]["character"] == len(last.encode("utf-8")) != len(last)


async def test_search_ranges_in_the_negotiated_encoding(
    lsp_server, stubs_workspace: Path, editor: str
) -> None:
    source = (
        "def greet_unicode_visitor(name: str) -> str:\n"
        '    """Say hello."""\n'
        '    return f"héllo 😀 中文 {name}"\n'
    )
    (stubs_workspace / "shop" / "greet.py").write_text(source)
    client: LanguageClient = await lsp_server()
    result = await initialize(client, stubs_workspace, editor=editor)
    encoding = result.capabilities.position_encoding
    await wait_for(lambda: index_progress_ended(client), 120)
    hits = await request(client, "agentls/search", {"query": "greet_unicode_visitor"})
    hit = next(h for h in hits if h["symbol"] == "greet_unicode_visitor")
    last = '    return f"héllo 😀 中文 {name}"'
    units = {
        "utf-8": len(last.encode("utf-8")),
        "utf-16": len(last.encode("utf-16-le")) // 2,
        "utf-32": len(last),
    }[str(encoding)]
    assert hit["range"] == {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": units}}


async def test_settings_from_initialization_options_and_configuration(
    lsp_server, stubs_workspace: Path
) -> None:
    client: LanguageClient = await lsp_server()
    client.set_configuration({"server": {"log_level": "debug"}}, section="agentls")
    options = {"index": {"embedding": {"provider": "none"}, "max_file_bytes": 300}}
    await initialize(client, stubs_workspace, options=options)

    async def loaded() -> bool:
        stats = await request(client, "agentls/serverStats", None)
        return bool(stats["settings"]["server"]["log_level"] == "debug")

    await wait_for(loaded, 30)
    stats = await request(client, "agentls/serverStats", None)
    assert stats["settings"]["index"]["max_file_bytes"] == 300  # from initializationOptions
    assert stats["settings"]["index"]["embedding"]["provider"] == "none"
    # The size limit applies to open documents: pricing.py is larger than 300 bytes.
    pricing = stubs_workspace / "shop" / "pricing.py"
    uri = open_document(client, pricing)
    assert await code_actions(client, uri, 8) == []
    await wait_for(lambda: any("larger than 300 bytes" in m.message for m in client.log_messages), 10)

    # Re-read on didChangeConfiguration.
    client.set_configuration({"server": {"log_level": "warning"}}, section="agentls")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

    async def reloaded() -> bool:
        stats = await request(client, "agentls/serverStats", None)
        return bool(stats["settings"]["server"]["log_level"] == "warning")

    await wait_for(reloaded, 30)


async def test_settings_from_agentls_toml(lsp_server, stubs_workspace: Path) -> None:
    (stubs_workspace / "agentls.toml").write_text("[index]\nmax_file_bytes = 4242\n")
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)

    async def loaded() -> bool:
        stats = await request(client, "agentls/serverStats", None)
        return bool(stats["settings"]["index"]["max_file_bytes"] == 4242)

    await wait_for(loaded, 30)


async def test_invalid_setting_is_reported_and_falls_back(
    lsp_server, stubs_workspace: Path, editor: str
) -> None:
    client: LanguageClient = await lsp_server()
    options = {
        **FAST_SETTINGS,
        "server": {"log_level": "chatty"},
        "index": {"embedding": {"provider": "none"}, "max_file_bytes": -5},
    }
    await initialize(client, stubs_workspace, editor=editor, options=options)
    await wait_for(lambda: any("agentls settings" in m.message for m in client.messages), 30)
    message = next(m for m in client.messages if "agentls settings" in m.message)
    assert message.type == types.MessageType.Warning
    assert "index.max_file_bytes" in message.message and "server.log_level" in message.message
    assert "default" in message.message
    stats = await request(client, "agentls/serverStats", None)
    assert stats["settings"]["index"]["max_file_bytes"] == 1_000_000
    assert stats["settings"]["server"]["log_level"] == "info"
    assert stats["settings"]["index"]["embedding"]["provider"] == "none"  # the valid part is kept


async def test_reindex_command_and_a_command_refused_with_the_tasks_message(
    lsp_server, stubs_workspace: Path
) -> None:
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)
    await wait_for(lambda: index_progress_ended(client), 120)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="agentls.reindex", arguments=[{}])
    )
    assert result == {"folders": [str(stubs_workspace)]}
    await wait_for(lambda: index_progress_count(client) >= 2, 120)
    # `total` has a body: nothing to implement, and the answer says so (runs: tests/e2e/test_lsp_agent.py).
    with pytest.raises(Exception, match="already has a body"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="agentls.implement",
                arguments=[
                    {
                        "uri": (stubs_workspace / "shop/pricing.py").as_uri(),
                        "position": {"line": 14, "character": 0},
                    }
                ],
            )
        )


async def test_workspace_folders_added_and_removed(lsp_server, stubs_workspace: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "lib.py").write_text("def zanzibar_unique_helper():\n    return 42\n")
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)
    await wait_for(lambda: index_progress_ended(client), 120)
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=other.as_uri(), name="other")], removed=[]
            )
        )
    )

    async def found() -> bool:
        hits = await request(client, "agentls/search", {"query": "zanzibar_unique_helper"})
        return any(h["path"] == "lib.py" for h in hits)

    await wait_for(found, 60)
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[], removed=[types.WorkspaceFolder(uri=other.as_uri(), name="other")]
            )
        )
    )

    async def gone() -> bool:
        stats = await request(client, "agentls/serverStats", None)
        return stats["folders"] == [str(stubs_workspace)]

    await wait_for(gone, 30)
    hits = await request(client, "agentls/search", {"query": "zanzibar_unique_helper"})
    assert not any(h["path"] == "lib.py" for h in hits)


async def test_without_file_watchers_changes_outside_the_editor_are_found_quietly(
    lsp_server, stubs_workspace: Path
) -> None:
    """Neovim 0.7 cannot register file watchers: a quiet periodic refresh finds files changed on disk
    (a `git checkout`, a formatter), without showing another indexing progress."""
    client: LanguageClient = await lsp_server()
    options = {**FAST_SETTINGS, "server": {**FAST_SETTINGS["server"], "refresh_seconds": 0.5}}
    await initialize(client, stubs_workspace, editor="neovim", options=options)
    await wait_for(lambda: index_progress_ended(client), 120)
    (stubs_workspace / "shop" / "outside.py").write_text(
        "def reconcile_ledger_quokka(entries):\n    return sorted(entries)\n"
    )

    async def found() -> bool:
        hits = await request(client, "agentls/search", {"query": "reconcile_ledger_quokka"})
        return any(h["symbol"] == "reconcile_ledger_quokka" for h in hits)

    await wait_for(found, 60)
    assert index_progress_count(client) == 1  # the refresh showed no progress of its own
    await wait_for(
        lambda: any("refreshed" in m.message and " 1 indexed" in m.message for m in client.log_messages), 10
    )
