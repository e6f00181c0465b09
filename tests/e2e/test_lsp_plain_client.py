"""A standard LSP client with no agentls plugin (issue 17 item 8), against `agentls serve` over stdio and
the fake Messages API.

The client behaves like a plain editor: no ``window.workDoneProgress``, no ``agentls/*`` handlers, no
resource operations in workspace edits, ``didChange`` sent only after 0.5 s without typing, and a
``workspace/applyEdit`` refused when its version is stale ("Edits on 'x' require version 1, you have
2", as editors answer). With it: the run's progress arrives as ``window/showMessage`` and
``window/logMessage``; the proposal is announced with ``window/showMessageRequest`` (Accept / Reject /
Show diff); Show diff opens the diff with ``window/showDocument``; Accept right after a keystroke is
retried once the late ``didChange`` arrived and applies; the created file is written by the server once
the user accepted, and a message says so; a dismissed question leaves the proposal pending with code
actions to settle it; an agentls plugin (``agentlsClient: true``) gets no question. A client without
``workspace.applyEdit`` is sent no edit: its accept is refused while a changed file is open in it, and
written by the server once it is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    initialize,
    open_document,
    request,
    start_server,
    stop,
    stubs_workspace,
    wait_for,
)
from tests.e2e.test_lsp_agent import BODY, NEW_TEST, SETTINGS, STUB, implement_script
from tests.fakes.anthropic_server import FakeAnthropic

__all__ = ["stubs_workspace"]  # a fixture used below

pytestmark = pytest.mark.timeout(90)

IDLE = 0.5
"""The plain client sends didChange this long after the last keystroke."""


def plain_capabilities(*, apply_edit: bool = True) -> types.ClientCapabilities:
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=apply_edit,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True, resource_operations=[]
            ),
        ),
        window=types.WindowClientCapabilities(
            work_done_progress=False,
            show_document=types.ShowDocumentClientCapabilities(support=True),
            show_message=types.ShowMessageRequestClientCapabilities(),
        ),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(value_set=["", "quickfix", "source"])
                )
            ),
        ),
    )


def _offset(text: str, line: int, character: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(ln) for ln in lines[:line]) + character if line < len(lines) else len(text)


class PlainEditor:
    """Buffers with their own versions, a debounced didChange, and scripted answers to questions."""

    def __init__(self, client: LanguageClient, answers: list[tuple[str | None, str | None]]) -> None:
        self.client = client
        self.answers = answers  # (keystroke text to insert at the top first, or None; action title or None)
        self.questions: list[types.ShowMessageRequestParams] = []
        self.edit_results: list[types.ApplyWorkspaceEditResult] = []
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            result = self.apply(params.edit)
            self.edit_results.append(result)
            return result

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def question(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
            self.questions.append(params)
            keystroke, title = self.answers.pop(0) if self.answers else (None, None)
            if keystroke is not None:
                uri = next(iter(self.texts))
                self.type(uri, keystroke + self.texts[uri])
            return next((a for a in params.actions or [] if a.title == title), None)

    def open(self, path: Path) -> str:
        uri = open_document(self.client, path)
        self.texts[uri] = path.read_text()
        self.versions[uri] = 1
        return uri

    def type(self, uri: str, text: str) -> None:
        """A keystroke: the buffer changes now, the server hears of it after `IDLE` seconds of quiet."""
        self.texts[uri] = text
        self.versions[uri] += 1
        timer = self._pending.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self._pending[uri] = asyncio.get_running_loop().call_later(IDLE, self._send, uri)

    def _send(self, uri: str) -> None:
        self._pending.pop(uri, None)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=self.texts[uri])],
            )
        )

    def apply(self, edit: types.WorkspaceEdit) -> types.ApplyWorkspaceEditResult:
        changes = list(edit.document_changes or [])
        for change in changes:  # all or nothing, as editors do
            if not isinstance(change, types.TextDocumentEdit):
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="no resource operations")
            uri, version = change.text_document.uri, change.text_document.version
            if uri in self.versions and version is not None and version != self.versions[uri]:
                name = Path(uri).name
                return types.ApplyWorkspaceEditResult(
                    applied=False,
                    failure_reason=f"Edits on '{name}' require version {version}, "
                    f"you have {self.versions[uri]}",
                )
        for change in changes:
            assert isinstance(change, types.TextDocumentEdit)
            uri = change.text_document.uri
            text = self.texts[uri] if uri in self.texts else Path(uri.removeprefix("file://")).read_text()
            spans = []
            for e in change.edits:
                start = _offset(text, e.range.start.line, e.range.start.character)
                end = _offset(text, e.range.end.line, e.range.end.character)
                spans.append((start, end, getattr(e, "new_text", "")))
            for start, end, new in sorted(spans, reverse=True):
                text = text[:start] + new + text[end:]
            if uri in self.versions:
                self.texts[uri] = text
                self.versions[uri] += 1
                self._send(uri)
            else:
                Path(uri.removeprefix("file://")).write_text(text)
        return types.ApplyWorkspaceEditResult(applied=True)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest_asyncio.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[LanguageClient] = []

    async def make(
        root: Path,
        env: dict[str, str],
        answers: list[tuple[str | None, str | None]],
        plugin: bool = False,
        apply_edit: bool = True,
    ) -> PlainEditor:
        client = await start_server(tmp_path / "cache", env)
        started.append(client)
        editor = PlainEditor(client, answers)
        options = {**SETTINGS, "agentlsClient": True} if plugin else SETTINGS
        capabilities = plain_capabilities(apply_edit=apply_edit)
        await initialize(client, root, options=options, capabilities=capabilities)
        return editor

    yield make
    for client in started:
        await stop(client)


async def implement(editor: PlainEditor, uri: str) -> None:
    lines = editor.texts[uri].splitlines()
    line = next(i for i, ln in enumerate(lines) if "def apply_discount" in ln)
    await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="agentls.implement", arguments=[{"uri": uri, "position": {"line": line, "character": 4}}]
        )
    )


def shown(editor: PlainEditor) -> list[str]:
    return [m.message for m in editor.client.messages]


async def test_a_plain_client_sees_progress_is_asked_and_accepts_right_after_a_keystroke(
    plain: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    fake.enqueue(*implement_script())
    editor: PlainEditor = await plain(
        stubs_workspace, fake.env(), [(None, "Show diff"), ("# typed just before accepting\n", "Accept")]
    )
    pricing = stubs_workspace / "shop" / "pricing.py"
    created = stubs_workspace / "tests" / "test_discount.py"
    uri = editor.open(pricing)
    await implement(editor, uri)

    await wait_for(lambda: any("wrote tests/test_discount.py" in m for m in shown(editor)), timeout=60)
    # progress without workDoneProgress: a message when the run starts, log lines while it goes
    assert any(m.startswith("agentls: Implement") for m in shown(editor)), shown(editor)
    logs = [m.message for m in editor.client.log_messages]
    assert any(m.startswith("agentls: Implement") and "proposal ready" in m for m in logs), logs
    # announced with a standard question; Show diff opened the diff, then the question came again
    assert len(editor.questions) == 2
    assert [a.title for a in editor.questions[0].actions or []] == ["Accept", "Reject", "Show diff"]
    assert "shop/pricing.py" in editor.questions[0].message
    assert any(d.uri.endswith(".diff") for d in editor.client.shown_documents)
    # the first edit was refused (the keystroke had not reached the server), the retry applied
    assert [r.applied for r in editor.edit_results] == [False, True], editor.edit_results
    assert "require version" in str(editor.edit_results[0].failure_reason)
    text = editor.texts[uri]
    assert text.startswith("# typed just before accepting\n") and BODY in text
    assert created.read_text() == NEW_TEST  # written by the server after the user accepted
    runs = await request(editor.client, "agentls/runs", {})
    details = await request(editor.client, "agentls/proposal", {"proposalId": runs[0]["proposalId"]})
    assert details["status"] == "accepted"


async def test_a_dismissed_question_leaves_code_actions_to_settle_the_proposal(
    plain: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    fake.enqueue(*implement_script())
    editor: PlainEditor = await plain(stubs_workspace, fake.env(), [(None, None)])
    pricing = stubs_workspace / "shop" / "pricing.py"
    before = pricing.read_text()
    uri = editor.open(pricing)
    await implement(editor, uri)
    await wait_for(lambda: any("still pending" in m for m in shown(editor)), timeout=60)

    found = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(0, 0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    titles = {a.title: a for a in found or [] if isinstance(a, types.CodeAction)}
    accept = [t for t in titles if t.startswith("Accept agentls proposal")]
    reject = [t for t in titles if t.startswith("Reject agentls proposal")]
    assert accept and reject, list(titles)
    command = titles[reject[0]].command
    assert command is not None
    await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    )
    assert editor.edit_results == [] and editor.texts[uri] == before and pricing.read_text() == before
    assert not (stubs_workspace / "tests" / "test_discount.py").exists()


async def test_an_agentls_plugin_is_not_asked(plain: Any, fake: FakeAnthropic, stubs_workspace: Path) -> None:
    fake.enqueue(*implement_script())
    editor: PlainEditor = await plain(stubs_workspace, fake.env(), [], plugin=True)
    uri = editor.open(stubs_workspace / "shop" / "pricing.py")
    await implement(editor, uri)

    async def ready() -> bool:
        runs = await request(editor.client, "agentls/runs", {})
        return bool(runs) and runs[0]["proposalId"] is not None

    await wait_for(ready, timeout=60)
    await asyncio.sleep(0.5)
    assert editor.questions == []
    assert not any(
        "agentlsClient" in m for m in shown(editor) + [m.message for m in editor.client.log_messages]
    )


async def test_a_client_without_apply_edit_is_told_why_and_gets_the_files_written_once_closed(
    plain: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    """A client that does not offer ``workspace.applyEdit`` was sent one anyway (such a client answers
    "Method Not Found", or nothing; this one would apply it, so the test sees it was sent)."""
    fake.enqueue(*implement_script())
    editor: PlainEditor = await plain(stubs_workspace, fake.env(), [(None, None)], apply_edit=False)
    pricing = stubs_workspace / "shop" / "pricing.py"
    created = stubs_workspace / "tests" / "test_discount.py"
    before = pricing.read_text()
    uri = editor.open(pricing)
    await implement(editor, uri)
    await wait_for(lambda: any("still pending" in m for m in shown(editor)), timeout=60)
    runs = await request(editor.client, "agentls/runs", {})
    accept = types.ExecuteCommandParams(
        command="agentls.accept", arguments=[{"proposalId": runs[0]["proposalId"]}]
    )

    with pytest.raises(JsonRpcException) as refused:  # its buffer would no longer be the file
        await editor.client.workspace_execute_command_async(accept)
    message = str(refused.value.message)
    assert "workspace/applyEdit" in message and "shop/pricing.py" in message and "close" in message
    assert pricing.read_text() == before and not created.exists()

    editor.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    result = await editor.client.workspace_execute_command_async(accept)
    assert result == {"proposalId": runs[0]["proposalId"], "applied": True}
    assert editor.edit_results == []  # no workspace/applyEdit was sent
    assert pricing.read_text() == before.replace(STUB, BODY) and created.read_text() == NEW_TEST
    assert any("wrote" in m and "workspace/applyEdit" in m for m in shown(editor)), shown(editor)
