"""A refused command is said once: in its answer to an agentls plugin, also as a message to other clients.

`agentls serve` over stdio with a real pygls client and the fake Messages API: a run proposes a change,
the user then edits the very line it replaces, and ``agentls.accept`` is refused; ``agentls.acceptAndCommit``
is refused too (the workspace is no git repository). Both refusals are error answers. A client that says it
is an agentls plugin (``initializationOptions.agentlsClient: true``) shows that answer itself, so the server
sends no ``window/showMessage`` with it; a generic client, which may ignore a command's answer, gets the
refusal once as an error message as well. An edit the client declines (``workspace/applyEdit`` answered
``applied: false``) is the accept's answer with its ``failureReason``, and likewise a warning message only
for a generic client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCNotification
from pytest_lsp import LanguageClient

from tests.e2e.helpers import initialize, lsp_server, open_document, stubs_workspace, wait_for
from tests.e2e.test_lsp_agent import SETTINGS, STUB, implement_script
from tests.fakes.anthropic_server import FakeAnthropic

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(90)


def record_proposals(client: LanguageClient) -> list[dict[str, Any]]:
    """The ``agentls/proposalReady`` params the server sends, as plain JSON; questions are dismissed."""
    ready: list[dict[str, Any]] = []

    def keep_notification(obj: dict[str, Any], cls: type) -> Any:
        return cls(method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))

    client.protocol._converter.register_structure_hook(JsonRPCNotification, keep_notification)
    client.feature("agentls/proposalReady")(lambda params: ready.append(dict(params)))

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def dismiss(params: types.ShowMessageRequestParams) -> None:
        return None  # a generic client's Accept / Reject / Show diff question: the user closes it

    return ready


async def propose(client: LanguageClient, workspace: Path, plugin: bool) -> tuple[str, str, str]:
    """Initialize (as an agentls plugin or a generic client), implement ``apply_discount`` and wait for
    the proposal: its document's uri, the file's text and the proposal id."""
    ready = record_proposals(client)
    options = {**SETTINGS, "agentlsClient": True} if plugin else SETTINGS
    await initialize(client, workspace, editor="neovim", options=options)
    pricing = workspace / "shop" / "pricing.py"
    uri = open_document(client, pricing)
    original = pricing.read_text()
    line = next(i for i, text in enumerate(original.splitlines()) if "def apply_discount" in text)
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="agentls.implement",
            arguments=[{"uri": uri, "position": {"line": line, "character": 4}}],
        )
    )
    await wait_for(lambda: bool(ready), 60)
    return uri, original, str(ready[0]["proposalId"])


async def refusal(client: LanguageClient, command: str, argument: dict[str, Any]) -> str:
    """The message of the command's error answer (it must be refused)."""
    with pytest.raises(JsonRpcException) as refused:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=[argument])
        )
    assert refused.value.code == types.LSPErrorCodes.RequestFailed.value, refused.value
    return str(refused.value.message)


@pytest.mark.parametrize("plugin", [True, False], ids=["agentls-plugin", "generic-client"])
async def test_a_refusal_is_the_answer_and_a_message_only_for_a_generic_client(
    lsp_server: Any, stubs_workspace: Path, plugin: bool
) -> None:
    with FakeAnthropic() as fake:
        fake.enqueue(*implement_script())
        client: LanguageClient = await lsp_server(fake.env())
        uri, original, proposal_id = await propose(client, stubs_workspace, plugin)

        # The user changes the line the proposal replaces: no rebase keeps both, so the accept is refused.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(
                        text=original.replace(STUB, "    return price  # mine\n")
                    )
                ],
            )
        )
        accept = await refusal(client, "agentls.accept", {"proposalId": proposal_id})
        assert accept.startswith(f"agentls did not apply proposal {proposal_id}: shop/pricing.py"), accept
        commit = await refusal(client, "agentls.acceptAndCommit", {"proposalId": proposal_id})
        assert commit.startswith(f"agentls did not commit proposal {proposal_id}"), commit
        await asyncio.sleep(0.5)  # a message sent with or after the answer would be here by now

    said = [(m.message, m.type) for m in client.messages if "did not" in m.message]
    if plugin:
        assert said == [], said  # the plugin shows the answer: a message too would say it twice
    else:
        assert said == [(accept, types.MessageType.Error), (commit, types.MessageType.Error)], said


@pytest.mark.parametrize("plugin", [True, False], ids=["agentls-plugin", "generic-client"])
async def test_an_edit_the_editor_declined_is_the_answers_reason_and_a_message_only_for_a_generic_client(
    lsp_server: Any, stubs_workspace: Path, plugin: bool
) -> None:
    with FakeAnthropic() as fake:
        fake.enqueue(*implement_script())
        client: LanguageClient = await lsp_server(fake.env())

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def decline(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            return types.ApplyWorkspaceEditResult(applied=False)  # the user discarded the edit's preview

        _, _, proposal_id = await propose(client, stubs_workspace, plugin)
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="agentls.accept", arguments=[{"proposalId": proposal_id}])
        )
        await asyncio.sleep(0.5)  # a message sent with or after the answer would be here by now

    # The answer carries the reason; the plugin says it from there, so the server does not say it too.
    assert (answer["applied"], answer["failureReason"]) == (False, "the editor declined the edit"), answer
    said = [(m.message, m.type) for m in client.messages if "not applied" in m.message]
    if plugin:
        assert said == [], said
    else:
        note = f"proposal {proposal_id} was not applied: the editor declined the edit."
        assert said == [(note, types.MessageType.Warning)], said
