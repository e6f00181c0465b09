"""The language server shows each settings problem once while it lasts (`server.lsp`'s settings reload,
`server.features.configuration.SettingsMessages`): fixed and then back, it is shown again.

`agentls serve` over stdio with a pytest-lsp client. The workspace's ``agentls.toml`` has two invalid
values. Both are shown (``window/showMessage``). One is fixed and the settings are read again
(``workspace/didChangeWatchedFiles``): nothing is shown. It comes back: it is shown again, and the
other one, there all along, is not. The old code showed a problem once in the server's life: back, it
was never shown. Each names the file's line (``agentls.toml:2:``), the editor's settings given or not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.helpers import FAST_SETTINGS, initialize, lsp_server, wait_for
from tests.trusted_settings import settings_workspace

__all__ = ["lsp_server"]  # fixture used below

pytestmark = pytest.mark.timeout(120)

OPTIONS = {**FAST_SETTINGS, "server": {**FAST_SETTINGS["server"], "index_on_start": False}}
BOTH = '[agent]\nmax_steps = 0\n\n[index]\nworkers = "many"\n'


async def test_a_problem_fixed_and_back_is_shown_again_and_one_there_all_along_is_not(
    lsp_server: Callable[..., Awaitable[LanguageClient]], tmp_path: Path
) -> None:
    ws = settings_workspace(tmp_path, BOTH)
    settings = ws / "agentls.toml"
    client = await lsp_server({"XDG_CONFIG_HOME": str(tmp_path / "config")})
    await initialize(client, ws, editor="visual-studio-code", options=OPTIONS)

    def shown(words: str) -> list[str]:
        return [m.message for m in client.messages if words in m.message]

    async def max_steps() -> int:
        stats = await client.protocol.send_request_async("agentls/serverStats", None)
        return int(stats["settings"]["agent"]["max_steps"])

    def changed(text: str) -> None:
        settings.write_text(text)
        change = types.FileEvent(uri=settings.as_uri(), type=types.FileChangeType.Changed)
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[change]))

    await wait_for(lambda: bool(shown("ignoring `agent.max_steps`")), 30)
    [first] = shown("agentls settings:")
    assert "ignoring `index.workers`" in first, first
    default = await max_steps()

    changed('[agent]\nmax_steps = 7\n\n[index]\nworkers = "many"\n')  # fixed

    async def applied() -> bool:
        return await max_steps() == 7

    await wait_for(applied, 30)
    assert len(shown("agentls settings:")) == 1, client.messages

    changed(BOTH)

    async def back() -> bool:
        return await max_steps() == default

    await wait_for(back, 30)
    await wait_for(lambda: len(shown("ignoring `agent.max_steps`")) == 2, 30)
    again = shown("agentls settings:")[1]
    # At its line, though the editor sent settings (initializationOptions): it used to name the file alone.
    assert f"{settings}:2: ignoring `agent.max_steps`" in again and "index.workers" not in again, again
    assert len(shown("ignoring `index.workers`")) == 1, client.messages
