"""Helpers for end-to-end tests that drive `agentls serve` over stdio with pytest-lsp, as an editor would.

`start_server` starts a server process with an isolated cache (``AGENTLS_CACHE_DIR``) and returns a
pytest-lsp `LanguageClient`; `initialize` sends ``initialize`` and ``initialized`` with the capabilities of
a real editor (``client_capabilities("visual-studio-code")`` or ``("neovim")``). The `lsp` fixture does
both for the common case and shuts everything down afterwards; `stubs_workspace` is a writable copy of
``tests/workspaces/stubs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.protocol import JsonRPCResponseMessage
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

WORKSPACES = Path(__file__).resolve().parent.parent / "workspaces"
CLIENTS = ("visual-studio-code", "neovim")
FAST_SETTINGS: dict[str, Any] = {"index": {"embedding": {"provider": "none"}}, "server": {"index_nice": 0}}
"""initializationOptions that keep indexing fast and offline: lexical search only, and the indexing process
at the test's own priority (`server.index_nice`: at 10 it waits behind the test run's other workers)."""

SERVER_COMMAND = [sys.executable, "-m", "server.cli", "serve"]


def server_env(cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["AGENTLS_CACHE_DIR"] = str(cache)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra or {})
    return env


async def start_server(cache: Path, extra_env: dict[str, str] | None = None) -> LanguageClient:
    """A client connected to a fresh `agentls serve` process."""
    config = ClientServerConfig(server_command=SERVER_COMMAND, server_env=server_env(cache, extra_env))
    client: LanguageClient = await config.start()
    _read_as_editors_do(client)
    return client


def _read_as_editors_do(client: LanguageClient) -> None:
    """Fix two client-side quirks of pygls/lsprotocol, so tests see what VS Code and Neovim see.

    - lsprotocol 2025.0.0 takes any object with a `command` key for a `Command`, so a `CodeAction` that
      carries a command would arrive as a broken `Command` (editors check whether `command` is a string).
    - pygls turns results of custom requests (``agentls/search``) into namedtuples; keep plain JSON.
    """
    converter = client.protocol._converter

    def plain(obj: dict[str, Any], cls: type) -> Any:
        return cls(id=obj["id"], jsonrpc=obj["jsonrpc"], result=obj.get("result"))

    converter.register_structure_hook(JsonRPCResponseMessage, plain)

    def hook(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)  # type: ignore[no-any-return]
        return converter.structure(obj, types.CodeAction)  # type: ignore[no-any-return]

    converter.register_structure_hook(types.Command | types.CodeAction, hook)  # type: ignore[arg-type]


async def initialize(
    client: LanguageClient,
    root: Path | None,
    *,
    editor: str = "visual-studio-code",
    options: dict[str, Any] | None = None,
    capabilities: types.ClientCapabilities | None = None,
) -> types.InitializeResult:
    folders = [types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root is not None else None
    params = types.InitializeParams(
        capabilities=capabilities or client_capabilities(editor),
        root_uri=root.as_uri() if root is not None else None,
        workspace_folders=folders,
        initialization_options=FAST_SETTINGS if options is None else options,
    )
    result: types.InitializeResult = await client.initialize_session(params)
    return result


async def stop(client: LanguageClient) -> None:
    """Shut the server down as an editor does, and make sure its process ends: pytest-lsp's
    `shutdown_session` sends nothing when `initialize` failed (and a failed `shutdown` sends no `exit`),
    and pygls' `stop` then waits for the process forever, so a test that failed there hung in its teardown
    instead of failing. Then `exit` is sent here, and the process is killed if it is still there 10 s
    later."""
    try:
        await asyncio.wait_for(client.shutdown_session(), 20)
    except Exception:
        pass
    process = client._server
    if process is not None and process.returncode is None:
        with contextlib.suppress(Exception):
            client.exit(None)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
    await client.stop()


def open_document(client: LanguageClient, path: Path, version: int = 1, text: str | None = None) -> str:
    uri = path.as_uri()
    language = {".py": "python", ".ts": "typescript", ".go": "go", ".js": "javascript"}.get(path.suffix, "")
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(
                uri=uri, language_id=language, version=version, text=text or path.read_text()
            )
        )
    )
    return uri


def save_document(client: LanguageClient, path: Path, text: str, version: int = 2) -> None:
    """What an editor sends when the user edits an open document to ``text`` and saves it (the file is
    written too)."""
    uri = path.as_uri()
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    path.write_text(text)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def code_actions(
    client: LanguageClient,
    uri: str,
    line: int,
    character: int = 0,
    diagnostics: list[types.Diagnostic] | None = None,
) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(line, character), types.Position(line, character)),
            context=types.CodeActionContext(diagnostics=diagnostics or []),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    """A custom request (``agentls/...``), raw JSON in and out."""
    return await client.protocol.send_request_async(method, params)


def index_progress_ended(client: LanguageClient) -> bool:
    return index_progress_count(client) > 0


def index_progress_count(client: LanguageClient) -> int:
    """How many indexing progresses (begin ... end) the server completed."""
    return sum(
        1
        for reports in client.progress_reports.values()
        if reports
        and isinstance(reports[0], types.WorkDoneProgressBegin)
        and "indexing" in reports[0].title
        and isinstance(reports[-1], types.WorkDoneProgressEnd)
    )


async def wait_for(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `check` until it is true; fail the test with a clear message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(0.1)


@pytest.fixture
def stubs_workspace(tmp_path: Path) -> Path:
    dest = tmp_path / "stubs"
    shutil.copytree(WORKSPACES / "stubs", dest)
    return dest


@pytest_asyncio.fixture
async def lsp_server(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[LanguageClient]]]:
    """A factory of started servers (each with the test's cache dir); all are stopped afterwards."""
    started: list[LanguageClient] = []

    async def make(extra_env: dict[str, str] | None = None) -> LanguageClient:
        client = await start_server(tmp_path / "cache", extra_env)
        started.append(client)
        return client

    yield make
    for client in started:
        await stop(client)
