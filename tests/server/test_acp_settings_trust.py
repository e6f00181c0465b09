"""``agentls acp`` asks whether to trust a workspace's sensitive settings (`server.acp`,
`server.settings_trust`), with ``session/request_permission`` before a prompt's run, as the language
server asks with ``window/showMessageRequest``.

The agent runs in this process (`AgentlsAcpAgent`, its real settings, trust file and runs) and talks to a
recording ACP client: the workspace's ``agentls.toml`` points the model at a dead endpoint (a password in
its URL) and raises the sandbox's memory limit. "Trust these settings" applies them and remembers them;
"Ignore them" keeps them out, says so with the command that trusts them, and is not asked again while the
process runs; no answer keeps them out and asks again next prompt; a cancel ends the prompt without a run.

The workspace's MCP servers are asked about the same way, after the settings (`agent.mcp.trust`): the
server here is a Python that leaves a marker file when it runs, so whether the run started it is seen.
"Trust and start" remembers it in the MCP trust file and the run starts it; "Don't start" leaves it out and
is not asked again while the process runs; no answer leaves it out with a warning and asks again.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from acp import text_block
from acp.schema import DeniedOutcome, RequestPermissionResponse

from server.acp import DONT_START_MCP, IGNORE_SETTINGS, TRUST_MCP, TRUST_SETTINGS, AgentlsAcpAgent
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text
from tests.server.test_acp import RecordingClient

PASSWORD = "gw-pass-27182818"
HOSTILE = (
    f'[agent.model]\nbase_url = "http://gw:{PASSWORD}@127.0.0.1:9/v1"\nmax_retries = 0\n'
    "[agent.sandbox]\nmemory_mb = 65536\n"
)


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text(HOSTILE)
    (ws / "app.py").write_text("def f():\n    return 1\n")
    return ws


def _agent(client: RecordingClient, tmp_path: Path, fake: FakeAnthropic | None = None) -> AgentlsAcpAgent:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(AGENTLS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    if fake is not None:  # the user's own endpoint: the model the run reaches when the workspace's is ignored
        env.update(ANTHROPIC_API_KEY=FAKE_API_KEY, ANTHROPIC_BASE_URL=fake.url)
    agent = AgentlsAcpAgent(env)
    agent.on_connect(client)  # type: ignore[arg-type]
    return agent


async def _session(agent: AgentlsAcpAgent, ws: Path) -> Any:
    return agent.sessions[(await agent.new_session(cwd=str(ws), mcp_servers=[])).session_id]


def _warnings(client: RecordingClient) -> list[str]:
    return [
        u.content.text.strip()
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk"
        and (u.field_meta or {}).get("agentls", {}).get("subject") == "settings"
    ]


def _check_question(client: RecordingClient) -> None:
    [(tool_call, options)] = client.permissions
    assert [(o.option_id, o.name) for o in options] == [
        (TRUST_SETTINGS, "Trust these settings"),
        (IGNORE_SETTINGS, "Ignore them"),
    ]
    shown = tool_call.content[0].content.text
    assert "agent.model.base_url = 'http://***@127.0.0.1:9/v1'" in shown and PASSWORD not in shown, shown
    assert "agent.sandbox.memory_mb = 65536" in shown, shown
    started = [u for u in client.updates if getattr(u, "session_update", "") == "tool_call"]
    assert [u.tool_call_id for u in started] == [tool_call.tool_call_id]  # shown before it is asked


def test_trusting_them_applies_them_and_remembers_them(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    client = RecordingClient(TRUST_SETTINGS)
    agent = _agent(client, tmp_path)

    async def go() -> tuple[Any, Any]:
        first = await agent._settings(await _session(agent, ws))
        return first, await agent._settings(await _session(agent, ws))

    first, second = asyncio.run(go())
    _check_question(client)  # asked once: the second session's settings are trusted
    for settings in (first, second):
        assert settings.agent.model.base_url == f"http://gw:{PASSWORD}@127.0.0.1:9/v1"
        assert settings.agent.sandbox.memory_mb == 65536
    trusted = (tmp_path / "cache" / "settings-trust.json").read_text()
    assert str(ws.resolve()) in trusted and PASSWORD not in trusted
    assert _warnings(client) == []


def test_ignoring_them_keeps_them_out_says_how_to_trust_them_and_is_not_asked_again(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = _workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."), text("Still 1."))
    client = RecordingClient(IGNORE_SETTINGS)
    agent = _agent(client, tmp_path, fake_anthropic)

    async def go() -> list[str]:
        session = await _session(agent, ws)
        stops = []
        for words in ("What does f return?", "And now?"):  # two prompts of one session
            reply = await agent.prompt(session_id=session.session_id, prompt=[text_block(words)])
            stops.append(str(reply.stop_reason))
        later = await _session(agent, ws)  # another session of the same process
        assert (await agent._settings(later)).agent.sandbox.memory_mb == 2048
        return stops

    assert asyncio.run(go()) == ["end_turn", "end_turn"]
    _check_question(client)
    # the runs went on without them: the model the user set (not the workspace's dead one) answered
    assert len(fake_anthropic.message_requests) == 2
    said = [str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates]
    warning = next(line for line in said if "are not trusted" in line)
    assert said.index(warning) < said.index("f returns 1.")  # the session's first message
    assert _warnings(client) == [warning.strip()] * 2  # once per session
    assert f"run `agentls settings --trust --path {ws}` in a terminal" in warning
    assert "agent.sandbox.memory_mb = 65536" in warning and PASSWORD not in warning
    assert not (tmp_path / "cache" / "settings-trust.json").exists()


def test_no_answer_keeps_them_out_and_asks_again_next_time(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    client = RecordingClient(None)  # the client answers "cancelled": nobody chose
    agent = _agent(client, tmp_path)

    async def go() -> list[Any]:
        session = await _session(agent, ws)
        return [await agent._settings(session), await agent._settings(session)]

    for settings in asyncio.run(go()):
        assert settings.agent.model.base_url is None and settings.agent.sandbox.memory_mb == 2048
    assert len(client.permissions) == 2
    assert len(_warnings(client)) == 1


class CancellingClient(RecordingClient):
    """The user cancels the prompt while the question is open: the client answers it "cancelled"."""

    agent: AgentlsAcpAgent

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        self.permissions.append((tool_call, options))
        await self.agent.cancel(session_id=session_id)
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))


def test_a_cancel_while_asked_ends_the_prompt_without_a_run(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    client = CancellingClient(None)
    agent = client.agent = _agent(client, tmp_path)  # no API key: a run would be refused, not started

    async def go() -> str:
        session = await _session(agent, ws)
        reply = await agent.prompt(session_id=session.session_id, prompt=[text_block("What does f return?")])
        return str(reply.stop_reason)

    assert asyncio.run(go()) == "cancelled"
    assert len(client.permissions) == 1 and _warnings(client) == []
    assert not (tmp_path / "cache" / "runs").exists()


def _mcp_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace whose agentls.toml configures an MCP server (no sensitive settings), and the file the
    server writes when it runs."""
    ws = tmp_path / "ws"
    ws.mkdir()
    marker = tmp_path / "server-ran"
    (ws / "agentls.toml").write_text(
        f'[mcp.servers.tracker]\ncommand = "{sys.executable}"\n'
        f'args = ["-c", "open({str(marker)!r}, \'w\')", "--verbose"]\n'
    )
    (ws / "app.py").write_text("def f():\n    return 1\n")
    return ws, marker


def _mcp_warnings(client: RecordingClient) -> list[str]:
    return [
        u.content.text.strip()
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk"
        and (u.field_meta or {}).get("agentls", {}).get("subject") == "mcp_server"
    ]


def _check_mcp_question(client: RecordingClient, asked: int = 1) -> None:
    assert len(client.permissions) == asked
    for tool_call, options in client.permissions:
        assert [(o.option_id, o.name) for o in options] == [
            (TRUST_MCP, "Trust and start"),
            (DONT_START_MCP, "Don't start"),
        ]
        shown = tool_call.content[0].content.text
        assert "the MCP server `tracker`" in shown and sys.executable in shown and "--verbose" in shown, shown


async def _mcp_settings(agent: AgentlsAcpAgent, session: Any) -> Any:
    settings = await agent._settings(session)
    return await agent._mcp_servers(session, settings)


def test_trusting_an_mcp_server_remembers_it_and_the_run_starts_it(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws, marker = _mcp_workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."))
    client = RecordingClient(TRUST_MCP)
    agent = _agent(client, tmp_path, fake_anthropic)

    async def go() -> tuple[str, Any]:
        session = await _session(agent, ws)
        reply = await agent.prompt(session_id=session.session_id, prompt=[text_block("What does f return?")])
        return str(reply.stop_reason), await _mcp_settings(agent, await _session(agent, ws))

    stop, later = asyncio.run(go())
    assert stop == "end_turn"
    _check_mcp_question(client)  # asked once: remembered for the second session
    assert marker.exists()  # the run started it
    assert later.agent.mcp.servers["tracker"].enabled
    assert str(ws.resolve()) in (tmp_path / "cache" / "mcp-trust.json").read_text()
    assert not any("not started" in w for w in _mcp_warnings(client)), _mcp_warnings(client)


def test_dont_start_leaves_the_server_out_and_is_not_asked_again(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws, marker = _mcp_workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."), text("Still 1."))
    client = RecordingClient(DONT_START_MCP)
    agent = _agent(client, tmp_path, fake_anthropic)

    async def go() -> tuple[list[str], Any]:
        session = await _session(agent, ws)
        stops = []
        for words in ("What does f return?", "And now?"):  # two prompts of one session
            reply = await agent.prompt(session_id=session.session_id, prompt=[text_block(words)])
            stops.append(str(reply.stop_reason))
        return stops, await _mcp_settings(agent, await _session(agent, ws))  # another session

    stops, later = asyncio.run(go())
    assert stops == ["end_turn", "end_turn"]
    _check_mcp_question(client)
    assert not marker.exists() and not later.agent.mcp.servers["tracker"].enabled
    assert len(fake_anthropic.message_requests) == 2  # the runs went on without it
    [told] = _mcp_warnings(client)  # the asking session is not told what it chose; the later one once
    assert '"Don\'t start" was chosen for it earlier' in told
    assert f"run `agentls mcp --trust --path {ws}` in a terminal" in told
    assert not (tmp_path / "cache" / "mcp-trust.json").exists()


def test_no_answer_about_an_mcp_server_leaves_it_out_with_a_warning_and_asks_again(tmp_path: Path) -> None:
    ws, marker = _mcp_workspace(tmp_path)
    client = RecordingClient(None)  # the client answers "cancelled": nobody chose
    agent = _agent(client, tmp_path)

    async def go() -> list[Any]:
        session = await _session(agent, ws)
        return [await _mcp_settings(agent, session), await _mcp_settings(agent, session)]

    for settings in asyncio.run(go()):
        assert not settings.agent.mcp.servers["tracker"].enabled
    _check_mcp_question(client, asked=2)
    warnings = _mcp_warnings(client)
    assert len(warnings) == 2 and all(
        w.startswith("warning: The MCP server `tracker` was not started: it is not trusted in this workspace")
        and "(the editor's question was closed without a choice)" in w
        and f"`agentls mcp --trust --path {ws}`" in w
        for w in warnings
    ), warnings
    assert not marker.exists()


def test_a_cancel_while_asked_about_an_mcp_server_ends_the_prompt_without_a_run(tmp_path: Path) -> None:
    ws, marker = _mcp_workspace(tmp_path)
    client = CancellingClient(None)
    agent = client.agent = _agent(client, tmp_path)

    async def go() -> str:
        session = await _session(agent, ws)
        reply = await agent.prompt(session_id=session.session_id, prompt=[text_block("What does f return?")])
        return str(reply.stop_reason)

    assert asyncio.run(go()) == "cancelled"
    assert len(client.permissions) == 1 and _mcp_warnings(client) == []
    assert not (tmp_path / "cache" / "runs").exists() and not marker.exists()


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent reads the user's file and trust file from its own environment; the process's stay out."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(tmp_path / "cache"))
