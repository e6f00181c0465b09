"""The language server asks the editor whether to trust a workspace's sensitive settings (`server.lsp`,
`server.settings_trust`).

`agentls serve` over stdio with a pytest-lsp client: the workspace's ``agentls.toml`` sets the model's
``base_url`` (a password in it) and ``network = "on"``. The client answers ``window/showMessageRequest``:
the question names the keys and values, the password masked; "Trust these settings" applies them at once
(``agentls/serverStats``) and records the trust; "Ignore them" keeps them dropped and is not asked again
when the settings are read again with the same values, only once one changes. A client without
``window.showMessage`` in its capabilities gets the messages, as before. A question left waiting is logged
at once with the command that trusts them later, and a late answer trusts the values it showed.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from server.settings_trust import fingerprint, sensitive_values, settings_trust
from tests.e2e.helpers import FAST_SETTINGS, initialize, lsp_server, wait_for
from tests.trusted_settings import UNWRITABLE, settings_workspace, unwritable_trust_file

__all__ = ["lsp_server"]  # fixture used below

pytestmark = pytest.mark.timeout(90)

PASSWORD = "gw-pass-27182818"
HOSTILE = (
    f'[agent.model]\nbase_url = "http://gw:{PASSWORD}@127.0.0.1:9/v1"\n[agent.sandbox]\nnetwork = "on"\n'
)
OPTIONS = {**FAST_SETTINGS, "server": {**FAST_SETTINGS["server"], "index_on_start": False}}


def _workspace(tmp_path: Path) -> Path:
    return settings_workspace(tmp_path, HOSTILE)


async def _client(make: Callable[..., Awaitable[LanguageClient]], tmp_path: Path) -> LanguageClient:
    return await make({"XDG_CONFIG_HOME": str(tmp_path / "config")})


def _answering(client: LanguageClient, title: str) -> list[str]:
    """The questions the server asks, each answered with the action `title`."""
    asked: list[str] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def answer(params: types.ShowMessageRequestParams) -> types.MessageActionItem:
        asked.append(params.message)
        assert [a.title for a in params.actions or []] == ["Trust these settings", "Ignore them"]
        return types.MessageActionItem(title=title)

    return asked


async def _model_and_network(client: LanguageClient) -> tuple[Any, Any]:
    stats = await client.protocol.send_request_async("agentls/serverStats", None)
    settings = stats["settings"]
    return settings["agent"]["model"]["base_url"], settings["agent"]["sandbox"]["network"]


def _check_question(asked: list[str]) -> None:
    assert len(asked) == 1, asked
    assert "agent.model.base_url = 'http://***@127.0.0.1:9/v1'" in asked[0], asked[0]
    assert "agent.sandbox.network = 'on'" in asked[0] and PASSWORD not in asked[0], asked[0]


async def test_trusting_the_settings_in_the_editors_question_applies_them(
    lsp_server: Callable[..., Awaitable[LanguageClient]], tmp_path: Path
) -> None:
    ws = _workspace(tmp_path)
    client = await _client(lsp_server, tmp_path)
    asked = _answering(client, "Trust these settings")
    await initialize(client, ws, editor="neovim", options=OPTIONS)
    await wait_for(lambda: bool(asked), 30)
    _check_question(asked)

    async def applied() -> bool:
        return await _model_and_network(client) == ("http://***@127.0.0.1:9/v1", "on")

    await wait_for(applied, 30)
    trusted = (tmp_path / "cache" / "settings-trust.json").read_text()
    assert str(ws.resolve()) in trusted and PASSWORD not in trusted
    assert not [m for m in client.messages if "ignoring `agent" in m.message], client.messages


async def test_ignoring_them_keeps_them_dropped_and_the_question_is_not_repeated(
    lsp_server: Callable[..., Awaitable[LanguageClient]], tmp_path: Path
) -> None:
    ws = _workspace(tmp_path)
    client = await _client(lsp_server, tmp_path)
    asked = _answering(client, "Ignore them")
    await initialize(client, ws, editor="visual-studio-code", options=OPTIONS)
    await wait_for(lambda: bool(asked), 30)
    _check_question(asked)
    # the settings read again (the editor's settings changed): the same values are not asked about again
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    await asyncio.sleep(1.0)
    assert len(asked) == 1, asked
    assert await _model_and_network(client) == (None, "off")
    assert not (tmp_path / "cache" / "settings-trust.json").exists()
    assert not [m for m in client.messages if "ignoring `agent" in m.message], client.messages
    # a value changes: asked again
    settings = ws / "agentls.toml"
    settings.write_text(HOSTILE.replace(":9/v1", ":10/v1"))
    change = types.FileEvent(uri=settings.as_uri(), type=types.FileChangeType.Changed)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[change]))
    await wait_for(lambda: len(asked) == 2, 30)
    assert "'http://***@127.0.0.1:10/v1'" in asked[1], asked[1]
    assert await _model_and_network(client) == (None, "off")


async def test_a_client_that_cannot_answer_gets_the_messages(
    lsp_server: Callable[..., Awaitable[LanguageClient]], tmp_path: Path
) -> None:
    ws = _workspace(tmp_path)
    client = await _client(lsp_server, tmp_path)
    asked = _answering(client, "Trust these settings")
    await initialize(client, ws, options=OPTIONS, capabilities=types.ClientCapabilities())

    def said() -> list[str]:
        return [m.message for m in client.messages if "ignoring `agent" in m.message]

    await wait_for(lambda: bool(said()), 30)
    assert "ignoring `agent.model.base_url`" in said()[0] and PASSWORD not in said()[0]
    assert asked == [] and await _model_and_network(client) == (None, "off")


async def test_a_waiting_question_is_logged_with_how_to_trust_later_and_a_late_answer_trusts_what_it_showed(
    lsp_server: Callable[..., Awaitable[LanguageClient]], tmp_path: Path
) -> None:
    """An editor may never answer (a notification nobody clicks): the values stay ignored and the log says
    at once how to trust them later. The file changes while the question waits: its new values get their
    own question, and a late "Trust" of the first trusts the values it showed, not the file's new ones; a
    dismissed question is logged with the command too."""
    ws = _workspace(tmp_path)
    client = await _client(lsp_server, tmp_path)
    asked: list[str] = []
    answers: list[asyncio.Future[types.MessageActionItem | None]] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    async def held(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        asked.append(params.message)
        answers.append(asyncio.get_running_loop().create_future())
        return await answers[-1]

    def logged(words: str) -> list[str]:
        return [m.message for m in client.log_messages if words in m.message]

    await initialize(client, ws, editor="visual-studio-code", options=OPTIONS)
    await wait_for(lambda: bool(asked), 30)
    command = f"agentls settings --trust --path {ws}"
    assert f"`{command}`" in asked[0], asked[0]
    await wait_for(lambda: bool(logged("the editor is asked whether to trust them")), 30)
    waiting = logged("the editor is asked whether to trust them")
    assert "ignoring `agent.model.base_url`" in waiting[0] and command in waiting[0], waiting
    assert not any(PASSWORD in line for line in waiting)
    assert await _model_and_network(client) == (None, "off")

    shown = sensitive_values(tomllib.loads(HOSTILE), ws)
    settings = ws / "agentls.toml"
    settings.write_text(HOSTILE.replace(":9/v1", ":10/v1"))
    change = types.FileEvent(uri=settings.as_uri(), type=types.FileChangeType.Changed)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[change]))
    await wait_for(lambda: len(asked) == 2, 30)
    answers[0].set_result(types.MessageActionItem(title="Trust these settings"))
    await wait_for(lambda: bool(logged("other sensitive values than the question showed")), 30)
    store = settings_trust({"AGENTLS_CACHE_DIR": str(tmp_path / "cache")})
    assert store.has(ws, fingerprint(shown))
    assert not store.has(ws, fingerprint(sensitive_values(tomllib.loads(settings.read_text()), ws)))
    assert await _model_and_network(client) == (None, "off")

    answers[1].set_result(None)  # VS Code answers null when the notification is closed
    await wait_for(lambda: bool(logged("was dismissed")), 30)
    assert command in logged("was dismissed")[0]
    assert await _model_and_network(client) == (None, "off")


def _answering_in_process(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Path, Any, list[bool]]:
    """An `AgentlsServer` in this process (its trust file in `cache`) whose editor answers "Trust these
    settings" (`LspEditor.ask`); the workspace, its settings as loaded (sensitive values pending) and, for
    each time the server reads its settings again (replaced), whether the trust was kept by then."""
    from server.lsp import AgentlsServer, LspEditor
    from server.settings import load_settings

    ws = _workspace(tmp_path)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "AGENTLS_CACHE_DIR": str(cache)}
    server = AgentlsServer(env=env, cache_dir=tmp_path / "server-cache")
    loaded = load_settings(ws, env=env)
    assert loaded.pending

    async def ask(self: LspEditor, question: str, options: list[str]) -> str:
        return "Trust these settings"

    reloaded_when: list[bool] = []

    async def reload_settings(**_: Any) -> None:
        reloaded_when.append(settings_trust(env).has(ws, fingerprint(list(loaded.pending))))

    monkeypatch.setattr(LspEditor, "ask", ask)
    monkeypatch.setattr(server, "reload_settings", reload_settings)
    return server, ws, loaded, reloaded_when


def test_the_trust_the_editor_answered_is_written_off_the_loop_and_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Trust these settings": the trust file is written and fsync'd (`agent.trust_store`) on a worker
    thread, not on the event loop the editor's requests wait on, before the settings are read again. The
    server in this process, its editor's answer given by `LspEditor.ask`."""
    import threading

    server, ws, loaded, reloaded_when = _answering_in_process(tmp_path, tmp_path / "cache", monkeypatch)
    real_fsync, synced_on = os.fsync, []

    def fsync(fd: int) -> None:
        synced_on.append(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    asyncio.run(server._settings_trust_question(ws, loaded))
    loop_thread = threading.current_thread().name
    assert len(synced_on) == 2 and loop_thread not in synced_on, synced_on  # the file, then its folder
    assert reloaded_when == [True]


@pytest.mark.parametrize("how", UNWRITABLE)
def test_a_trust_the_editor_answered_that_cannot_be_remembered_is_said_and_the_server_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """ "Trust these settings" with a trust file that cannot be written: a warning message says it could
    not be remembered, which file and why, and how to trust them later; the values stay ignored (the
    settings are not read again as trusted). Before, a folder in the file's place was only logged (the
    settings read again, still ignored), and a cache folder that could not be made raised out of the
    question's task (FileExistsError)."""
    cache = tmp_path / "cache"
    unwritable_trust_file(cache, how, "settings-trust.json")
    server, ws, loaded, reloaded_when = _answering_in_process(tmp_path, cache, monkeypatch)
    shown: list[tuple[str, types.MessageType]] = []
    monkeypatch.setattr(
        server, "show", lambda message, kind=types.MessageType.Info: shown.append((message, kind))
    )
    asyncio.run(server._settings_trust_question(ws, loaded))
    [(said, kind)] = shown
    assert kind == types.MessageType.Warning
    assert "were trusted, but the answer could not be remembered:" in said, said
    assert f"{cache / 'settings-trust.json'} could not be written (" in said, said
    assert f"agentls settings --trust --path {ws}" in said and PASSWORD not in said, said
    assert reloaded_when == []
