"""Agent runs through the language server, end to end over stdio, as VS Code and Neovim drive them.

Each test starts `agentls serve` with ``ANTHROPIC_BASE_URL`` pointing at the fake Anthropic server
(`tests.fakes.anthropic_server`), which plays scripted assistant turns through the real `anthropic` SDK,
on a writable copy of ``tests/workspaces/stubs``. Indexing at start and verification are off (they have
their own tests) and retries are tiny, so the file runs in well under a minute and a half.

The test client plays the editor: it answers ``workspace/applyEdit`` by applying the edit to its own
copy of the texts (`Editor.apply`), answers ``window/showMessageRequest`` with an action, and records the
``agentls/*`` notifications with their params as plain JSON.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.protocol import JsonRPCNotification
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    CLIENTS,
    initialize,
    open_document,
    request,
    start_server,
    stop,
    stubs_workspace,
    wait_for,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply, fault_401, slow, text, tool_use, turn

__all__ = ["stubs_workspace"]  # a fixture used below

pytestmark = pytest.mark.timeout(60)

EDITOR_TOOL = "str_replace_based_edit_tool"
STUB = "    raise NotImplementedError\n"
BODY = (
    "    if not 0 <= percent <= 100:\n"
    '        raise ValueError("percent must be within 0..100")\n'
    "    return round_money(price * (1 - percent / 100))\n"
)
NEW_TEST = (
    "from shop.pricing import apply_discount\n\n\ndef test_half() -> None:\n"
    "    assert apply_discount(10.0, 50) == 5.0\n"
)
SETTINGS: dict[str, Any] = {
    "index": {"embedding": {"provider": "none"}},
    "server": {"index_on_start": False},
    "agent": {
        "verify": False,
        "context_token_budget": 2000,
        "model": {
            "max_tokens": 1024,
            "timeout": 10.0,
            "max_retries": 1,
            "retry_deadline_seconds": 5.0,
            "retry_base_delay": 0.01,
            "retry_max_delay": 0.05,
        },
    },
}


def stub_edit() -> Reply:
    """The model's ``str_replace`` that gives `apply_discount` in shop/pricing.py its body (STUB -> BODY)."""
    return tool_use(
        EDITOR_TOOL, {"command": "str_replace", "path": "shop/pricing.py", "old_str": STUB, "new_str": BODY}
    )


def plan_and_stub_edit() -> Reply:
    """A run's first model turn on the stubs workspace: a one-line plan and `stub_edit`."""
    return turn(text("Plan: edit the stub."), stub_edit())


def implement_script() -> list[Any]:
    """Implement `apply_discount` in shop/pricing.py and create tests/test_discount.py."""
    return [
        turn(
            text("Spec: apply the discount, reject bad percents. Plan: edit the stub, add a test."),
            stub_edit(),
        ),
        tool_use(EDITOR_TOOL, {"command": "create", "path": "tests/test_discount.py", "file_text": NEW_TEST}),
        text("Implemented `apply_discount` and added a test for it."),
    ]


# --------------------------------------------------------------------------------------------------
# The editor side


def _offset(text: str, line: int, character: int) -> int:
    # The fixture files are ASCII, so UTF-8, UTF-16 and code-point columns agree.
    lines = text.splitlines(keepends=True)
    return sum(len(ln) for ln in lines[:line]) + character if line < len(lines) else len(text)


class Editor:
    """What a real editor would keep: buffers, notifications, edits asked for, questions answered."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.edits: list[types.ApplyWorkspaceEditParams] = []
        self.questions: list[types.ShowMessageRequestParams] = []
        self.away = False
        """The user walked away: questions stay unanswered until the server withdraws them."""
        self.withdrawn: list[types.ShowMessageRequestParams] = []
        """Questions the server cancelled ($/cancelRequest) before they were answered."""
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.lens_refreshes = 0
        converter = client.protocol._converter

        def keep_notification(obj: dict[str, Any], cls: type) -> Any:
            return cls(method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))

        converter.register_structure_hook(JsonRPCNotification, keep_notification)
        for method in ("agentls/proposalReady", "agentls/runFailed"):
            client.feature(method)(self._recorder(method))

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.edits.append(params)
            self.apply(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        async def question(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
            self.questions.append(params)
            if self.away:
                try:
                    await asyncio.Event().wait()  # pygls cancels this on the server's $/cancelRequest
                except asyncio.CancelledError:
                    self.withdrawn.append(params)
                    raise
            return params.actions[0] if params.actions else None

        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def refresh(params: None) -> None:
            self.lens_refreshes += 1

    def _recorder(self, method: str) -> Any:
        def record(params: Any) -> None:
            self.notifications.append((method, dict(params)))

        return record

    def of(self, method: str, run_id: str) -> dict[str, Any] | None:
        return next((p for m, p in self.notifications if m == method and p.get("runId") == run_id), None)

    async def ended(self, run_id: str, timeout: float = 30.0) -> tuple[str, dict[str, Any]]:
        """The notification that ended the run: (method, params)."""
        await wait_for(lambda: any(p.get("runId") == run_id for _, p in self.notifications), timeout=timeout)
        return next((m, p) for m, p in self.notifications if p.get("runId") == run_id)

    def open(self, rel: str) -> str:
        path = self.root / rel
        text = path.read_bytes().decode()  # as an editor holds it: "\r\n" stays
        uri = open_document(self.client, path, text=text)
        self.texts[uri] = text
        self.versions[uri] = 1
        return uri

    def type_text(self, uri: str, text: str) -> None:
        """The user edits a buffer (sent as the whole text, which incremental sync also takes)."""
        self.versions[uri] += 1
        self.texts[uri] = text
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def text_of(self, uri: str) -> str:
        if uri in self.texts:
            return self.texts[uri]
        path = Path(uri.removeprefix("file://"))
        return path.read_bytes().decode()

    def apply(self, edit: types.WorkspaceEdit) -> None:
        """Apply a WorkspaceEdit to the buffers (closed files get buffers too), as an editor does."""
        for change in edit.document_changes or []:
            if isinstance(change, types.CreateFile):
                path = Path(change.uri.removeprefix("file://"))
                assert not path.exists() and change.uri not in self.texts, change.uri
                self.texts[change.uri] = ""
                continue
            assert isinstance(change, types.TextDocumentEdit), change
            uri = change.text_document.uri
            if change.text_document.version is not None:
                assert change.text_document.version == self.versions[uri], "stale version"
            text = self.text_of(uri)
            spans = []
            for e in change.edits:
                assert not isinstance(e, types.SnippetTextEdit), e  # agentls sends none
                start = _offset(text, e.range.start.line, e.range.start.character)
                end = _offset(text, e.range.end.line, e.range.end.character)
                spans.append((start, end, e.new_text))
            for start, end, new in sorted(spans, reverse=True):  # all relative to the old text
                text = text[:start] + new + text[end:]
            if uri in self.versions:
                self.type_text(uri, text)  # the buffer changed: the editor tells the server
            else:
                self.texts[uri] = text


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest_asyncio.fixture
async def editors(tmp_path: Path) -> AsyncIterator[Any]:
    """A factory of (server, editor) pairs; all are stopped afterwards."""
    started: list[LanguageClient] = []

    async def make(root: Path, env: dict[str, str], editor: str = "visual-studio-code") -> Editor:
        client = await start_server(tmp_path / "cache", env)
        started.append(client)
        ed = Editor(client, root)
        # As the agentls plugins do: they handle agentls/proposalReady, so the server asks no question.
        await initialize(client, root, editor=editor, options={**SETTINGS, "agentlsClient": True})
        return ed

    yield make
    for client in started:
        await stop(client)


async def execute(ed: Editor, command: str, argument: dict[str, Any]) -> Any:
    return await ed.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=[argument])
    )


async def implement(ed: Editor, uri: str) -> str:
    lines = ed.text_of(uri).splitlines()
    line = next(i for i, ln in enumerate(lines) if "def apply_discount" in ln)
    answer = await execute(ed, "agentls.implement", {"uri": uri, "position": {"line": line, "character": 4}})
    assert isinstance(answer, dict) and isinstance(answer["runId"], str), answer
    return str(answer["runId"])


async def lenses(ed: Editor, uri: str) -> list[types.CodeLens]:
    found = await ed.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    return list(found or [])


# --------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("editor", CLIENTS)
async def test_implement_preview_lenses_accept(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path, editor: str
) -> None:
    fake.enqueue(*implement_script())
    ed: Editor = await editors(stubs_workspace, fake.env(), editor)
    uri = ed.open("shop/pricing.py")
    before = ed.text_of(uri)

    run_id = await implement(ed, uri)
    method, ready = await ed.ended(run_id)
    assert method == "agentls/proposalReady", ready
    proposal_id = ready["proposalId"]
    assert "apply_discount" in ready["summary"]
    created_uri = (stubs_workspace / "tests/test_discount.py").as_uri()
    assert {(f["uri"], f["kind"]) for f in ready["files"]} == {(uri, "modified"), (created_uri, "created")}

    # $/progress: a cancellable begin, reports with the cost so far, an end.
    runs = [
        r for r in ed.client.progress_reports.values() if r and "apply_discount" in getattr(r[0], "title", "")
    ]
    assert runs, list(ed.client.progress_reports.values())
    reports = runs[0]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and "proposal ready" in (
        reports[-1].message or ""
    )
    assert any(isinstance(r, types.WorkDoneProgressReport) and "so far" in (r.message or "") for r in reports)

    shown = await request(ed.client, "agentls/proposal", {"proposalId": proposal_id})
    assert shown["runId"] == run_id and shown["status"] == "pending"
    assert "+    if not 0 <= percent <= 100:" in shown["diff"] and "b/tests/test_discount.py" in shown["diff"]
    assert {f["uri"] for f in shown["files"]} == {uri, created_uri}
    assert shown["usage"]["output_tokens"] > 0

    listed = await request(ed.client, "agentls/runs", {})
    assert listed[0]["runId"] == run_id and listed[0]["status"] == "proposed"
    assert listed[0]["proposalId"] == proposal_id and listed[0]["cost"] > 0

    # Code lenses at the one hunk of the open document: Accept, Reject, Show diff.
    found = await lenses(ed, uri)
    stub_line = before.splitlines().index(STUB.rstrip("\n"))
    assert [lens.command.title for lens in found if lens.command] == ["Accept", "Reject", "Show diff"]
    assert {lens.range.start.line for lens in found} == {stub_line}
    assert found[0].command is not None and list(found[0].command.arguments or []) == [
        {"proposalId": proposal_id}
    ]

    result = await execute(ed, "agentls.accept", {"proposalId": proposal_id})
    assert result == {"proposalId": proposal_id, "applied": True}
    assert len(ed.edits) == 1
    edit = ed.edits[0].edit
    kinds = [type(c).__name__ for c in edit.document_changes or []]
    assert kinds == ["TextDocumentEdit", "CreateFile", "TextDocumentEdit"], kinds
    first = (edit.document_changes or [])[0]
    assert isinstance(first, types.TextDocumentEdit) and first.text_document.version == 1
    assert len(first.edits) == 1 and first.edits[0].range.start.line == stub_line  # a minimal edit
    if editor == "visual-studio-code":  # change annotations needing confirmation: the refactor preview
        assert edit.change_annotations and edit.change_annotations["agentls"].needs_confirmation
    else:
        assert not edit.change_annotations
    assert ed.text_of(uri) == before.replace(STUB, BODY)
    assert ed.text_of(created_uri) == NEW_TEST
    assert not (stubs_workspace / "tests/test_discount.py").exists()  # the server never writes files

    with pytest.raises(Exception, match="already accepted"):
        await execute(ed, "agentls.accept", {"proposalId": proposal_id})
    with pytest.raises(Exception, match="no proposal prop-nope"):
        await execute(ed, "agentls.accept", {"proposalId": "prop-nope"})
    assert await lenses(ed, uri) == []
    if editor == "visual-studio-code":
        await wait_for(lambda: ed.lens_refreshes >= 2, 5)  # after the proposal, and after the accept


@pytest.mark.parametrize("editor", CLIENTS)
async def test_a_crlf_file_is_edited_and_keeps_crlf(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path, editor: str
) -> None:
    """A Windows file: the model's str_replace, written with "\\n" as it sees the file, applies, and the
    proposal (its diff and the WorkspaceEdit) changes only the stub's line, in "\\r\\n"."""

    def crlf(text: str) -> str:
        return text.replace("\n", "\r\n")

    pricing = stubs_workspace / "shop/pricing.py"
    pricing.write_bytes(pricing.read_bytes().replace(b"\n", b"\r\n"))
    fake.enqueue(*implement_script())
    ed: Editor = await editors(stubs_workspace, fake.env(), editor)
    uri = ed.open("shop/pricing.py")
    before = ed.text_of(uri)
    assert before.count("\r\n") == before.count("\n") > 30

    run_id = await implement(ed, uri)
    method, ready = await ed.ended(run_id)
    assert method == "agentls/proposalReady", ready
    shown = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
    assert "diff --git a/shop/pricing.py b/shop/pricing.py\n" in shown["diff"], shown["diff"]
    section = (
        shown["diff"].split("diff --git a/shop/pricing.py b/shop/pricing.py\n", 1)[1].split("diff --git")[0]
    )
    changed = [
        line
        for line in section.splitlines(keepends=True)
        if line[0] in "+-" and line[:3] not in ("---", "+++")
    ]
    assert changed == ["-" + crlf(STUB)] + ["+" + line for line in crlf(BODY).splitlines(keepends=True)]
    # The model was told the edit worked, and was shown the file without "\r".
    results = [
        block
        for message in fake.message_requests[-1].body["messages"]
        for block in (message["content"] if isinstance(message["content"], list) else [])
        if block.get("type") == "tool_result"
    ]
    assert results and not any(block.get("is_error") for block in results)
    assert "has been edited" in str(results[0]["content"]) and "\\r" not in json.dumps(results)

    result = await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})
    assert result["applied"] is True
    first = (ed.edits[0].edit.document_changes or [])[0]
    assert isinstance(first, types.TextDocumentEdit) and len(first.edits) == 1
    stub_line = before.splitlines().index(STUB.rstrip("\n"))
    assert first.edits[0].range.start.line == stub_line and "\r\n" in first.edits[0].new_text
    assert first.edits[0].new_text.count("\n") == first.edits[0].new_text.count("\r\n")
    after = ed.text_of(uri)
    assert after == before.replace(crlf(STUB), crlf(BODY))
    assert after.count("\n") == after.count("\r\n")


@pytest.mark.parametrize("editor", CLIENTS)
async def test_a_file_with_classic_mac_line_ends_gets_a_hunk_per_change_at_the_editors_lines(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path, editor: str
) -> None:
    """A file whose lines end in a lone "\\r" has as many lines to the server as the editor shows (git
    sees one): the stub is found at its line, each of the two changes is a hunk with its lens at its own
    line, one of them can be accepted alone, and every line the proposal writes ends in "\\r"."""
    pricing = stubs_workspace / "shop/pricing.py"
    pricing.write_bytes(pricing.read_bytes().replace(b"\n", b"\r"))
    add_stub, add_body = "        ...\n", "        self.prices.append(price)\n"
    fake.enqueue(
        turn(
            text("Implement apply_discount, and Basket.add while at it."),
            stub_edit(),
        ),
        tool_use(
            EDITOR_TOOL,
            {"command": "str_replace", "path": "shop/pricing.py", "old_str": add_stub, "new_str": add_body},
        ),
        text("Implemented `apply_discount` and `Basket.add`."),
    )
    ed: Editor = await editors(stubs_workspace, fake.env(), editor)
    uri = ed.open("shop/pricing.py")
    before = ed.text_of(uri)
    assert "\n" not in before and before.count("\r") > 30
    lines = before.splitlines()
    stub_line, add_line = lines.index(STUB.rstrip("\n")), lines.index(add_stub.rstrip("\n"))

    run_id = await implement(ed, uri)
    method, ready = await ed.ended(run_id)
    assert method == "agentls/proposalReady", ready
    assert {lens.range.start.line for lens in await lenses(ed, uri)} == {stub_line, add_line}
    shown = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
    hunks = next(f for f in shown["files"] if f["path"] == "shop/pricing.py")["hunks"]
    assert [(h["oldStart"], h["oldLines"], h["newLines"]) for h in hunks] == [
        (stub_line + 1, 1, 3),
        (add_line + 1, 1, 1),
    ]

    def mac(text: str) -> str:
        return text.replace("\n", "\r")

    proposal_id = ready["proposalId"]
    answer = await execute(ed, "agentls.accept", {"proposalId": proposal_id, "hunks": [hunks[0]["id"]]})
    assert answer["applied"] is True and answer["pendingHunks"] == [hunks[1]["id"]], answer
    first = (ed.edits[0].edit.document_changes or [])[0]
    assert isinstance(first, types.TextDocumentEdit) and len(first.edits) == 1
    assert first.edits[0].range.start.line == stub_line
    assert ed.text_of(uri) == before.replace(mac(STUB), mac(BODY))
    await execute(ed, "agentls.accept", {"proposalId": proposal_id})
    assert ed.text_of(uri) == before.replace(mac(STUB), mac(BODY)).replace(mac(add_stub), mac(add_body))
    assert "\n" not in ed.text_of(uri)


async def test_reject_and_show_diff(editors: Any, fake: FakeAnthropic, stubs_workspace: Path) -> None:
    fake.enqueue(*implement_script())
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    _, ready = await ed.ended(run_id)
    proposal_id = ready["proposalId"]
    assert len(await lenses(ed, uri)) == 3

    shown = await execute(ed, "agentls.showDiff", {"proposalId": proposal_id, "uri": uri})
    assert "+    if not 0 <= percent <= 100:" in shown["diff"] and "test_discount" not in shown["diff"]
    assert ed.client.shown_documents and ed.client.shown_documents[-1].uri == shown["uri"]

    assert await execute(ed, "agentls.reject", {"proposalId": proposal_id}) == {
        "proposalId": proposal_id,
        "rejected": True,
    }
    assert await lenses(ed, uri) == []
    with pytest.raises(Exception, match="was rejected"):
        await execute(ed, "agentls.accept", {"proposalId": proposal_id})
    assert ed.edits == []
    assert "NotImplementedError" in (stubs_workspace / "shop/pricing.py").read_text()


async def test_edits_during_the_run_are_rebased_or_refused(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    script = implement_script()
    fake.enqueue(slow(1.5, then=script[0]), *script[1:], slow(1.5, then=script[0]), *script[1:])
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    original = ed.text_of(uri)

    # An edit elsewhere in the file while the model thinks: the proposal is rebased onto it.
    run_id = await implement(ed, uri)
    await asyncio.sleep(0.3)
    elsewhere = original.replace(
        '"""The rounded sum of `prices`."""', '"""The rounded sum of all `prices`."""'
    )
    assert elsewhere != original
    ed.type_text(uri, elsewhere)
    _, ready = await ed.ended(run_id)
    result = await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})
    assert result["applied"] is True
    assert ed.edits[-1].edit.document_changes[0].text_document.version == 2  # type: ignore[index,union-attr]
    assert ed.text_of(uri) == elsewhere.replace(STUB, BODY)

    # An edit of the very lines the proposal changes: refused, the user's text kept, still pending.
    ed.type_text(uri, original)
    run_id = await implement(ed, uri)
    await asyncio.sleep(0.3)
    mine = original.replace(STUB, "    return price  # mine\n")
    ed.type_text(uri, mine)
    _, ready = await ed.ended(run_id)
    edits_before = len(ed.edits)
    with pytest.raises(Exception, match=r"shop/pricing\.py: you changed line\(s\) \d+"):
        await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})
    assert len(ed.edits) == edits_before and ed.text_of(uri) == mine
    # The agentls plugin shows the refusal from the answer: no message says it a second time.
    assert not [m for m in ed.client.messages if "did not apply" in m.message], ed.client.messages
    shown = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
    assert shown["status"] == "pending"


async def test_cancel_ends_a_run_at_once_not_at_the_models_reply(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    fake.enqueue(slow(20, then=text("too late")))
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)

    def model_called() -> bool:  # progress said "step 1": the model call is under way
        return any(
            isinstance(r, types.WorkDoneProgressReport) and (r.message or "").startswith("step 1")
            for reports in ed.client.progress_reports.values()
            for r in reports
        )

    # A run's first model call waits for the index to open in the server (importing LanceDB alone takes
    # seconds on a loaded 2-core machine); the cancel measured below is what must be quick.
    await wait_for(model_called, 60)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    answer = await execute(ed, "agentls.cancel", {"runId": run_id})
    assert answer == {"runId": run_id, "status": "cancelling"}
    method, params = await ed.ended(run_id, timeout=15)
    elapsed = time.monotonic() - started
    assert method == "agentls/runFailed" and params["status"] == "cancelled", params
    # The model's reply is 20 s away: the cancel ended the run (within a second here; 10 s leaves room for a
    # loaded machine).
    assert elapsed < 10, f"the run took {elapsed:.2f} s to end after agentls.cancel"
    listed = await request(ed.client, "agentls/runs", {})
    assert listed[0]["status"] == "cancelled"
    with pytest.raises(Exception, match="no run nope"):
        await execute(ed, "agentls.cancel", {"runId": "nope"})


async def test_failed_runs_are_reported(editors: Any, fake: FakeAnthropic, stubs_workspace: Path) -> None:
    fake.enqueue(fault_401())
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    method, params = await ed.ended(run_id)
    assert method == "agentls/runFailed" and params["status"] == "failed"
    assert "API key" in params["message"] or "ANTHROPIC_API_KEY" in params["message"], params
    await wait_for(lambda: any(m.type == types.MessageType.Error for m in ed.client.messages), 5)

    # Not a stub: the command itself is refused with the task's message.
    with pytest.raises(Exception, match="already has a body"):
        line = ed.text_of(uri).splitlines().index("def total(prices: list[float]) -> float:")
        await execute(ed, "agentls.implement", {"uri": uri, "position": {"line": line, "character": 0}})


async def test_missing_api_key(editors: Any, stubs_workspace: Path) -> None:
    ed: Editor = await editors(stubs_workspace, {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""})
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    method, params = await ed.ended(run_id)
    assert method == "agentls/runFailed" and "ANTHROPIC_API_KEY" in params["message"]
    await wait_for(
        lambda: any("ANTHROPIC_API_KEY" in m.message for m in ed.client.messages if m.type.value == 1), 5
    )


async def test_ask_with_a_clarifying_question(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    fake.enqueue(
        tool_use("ask_user", {"question": "Prices in which currency?", "options": ["EUR", "USD"]}),
        text("Prices are plain floats rounded by `round_money`; the currency is EUR."),
    )
    ed: Editor = await editors(stubs_workspace, fake.env())
    answer = await execute(ed, "agentls.ask", {"question": "How are prices rounded?"})
    method, ready = await ed.ended(answer["runId"])
    assert method == "agentls/proposalReady" and ready["files"] == []
    assert "round_money" in ready["summary"]
    assert [q.message for q in ed.questions] == ["agentls asks: Prices in which currency?"]
    assert [a.title for a in ed.questions[0].actions or []] == ["EUR", "USD"]
    assert "EUR" in str(fake.message_requests[1].body["messages"][-1]["content"])  # the answer reached it
    await wait_for(lambda: any("round_money" in m.message for m in ed.client.messages), 5)
    with pytest.raises(Exception, match="no changes"):
        await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})


async def test_a_run_a_setting_of_the_user_stops_is_the_users_to_fix_not_a_bug(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path, tmp_path: Path
) -> None:
    """The user's own settings give the solo role a model of another provider: the run cannot be built.
    The editor's message names the setting and how to fix it, and does not call it a bug of agentls."""
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text('[agent.roles.solo.model]\nprovider = "openai"\n')
    ed: Editor = await editors(stubs_workspace, {**fake.env(), "XDG_CONFIG_HOME": str(config)})
    run_id = await implement(ed, ed.open("shop/pricing.py"))
    method, params = await ed.ended(run_id)
    assert method == "agentls/runFailed" and params["status"] == "failed", params
    await wait_for(lambda: any(m.type == types.MessageType.Error for m in ed.client.messages), 5)
    [shown] = [m.message for m in ed.client.messages if m.type == types.MessageType.Error]
    assert "This is a bug" not in shown, shown
    assert "remove provider from [agent.roles.solo.model]" in shown and params["message"] in shown
    assert "This is a setting, not a bug in agentls: change it in" in shown
    # the file and line that set it: the language server checks the settings before the index is opened
    assert f"{config / 'agentls' / 'agentls.toml'}:2: [agent.roles.solo.model]" in shown, shown
    assert fake.message_requests == []
