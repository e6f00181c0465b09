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

Every question and its answer (or why none came) are ``approval`` records right after the ``run_start`` of
the session's next run (the transcripts under the cache's ``runs``). A trust file that cannot be written (a
folder in its place; a cache folder that cannot be made) keeps the answer for the process, with a warning.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from acp import RequestError, text_block
from acp.schema import AllowedOutcome, DeniedOutcome, RequestPermissionResponse

from server.acp import DONT_START_MCP, IGNORE_SETTINGS, TRUST_MCP, TRUST_SETTINGS, AgentlsAcpAgent
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text
from tests.server.test_acp import RecordingClient
from tests.trusted_settings import UNWRITABLE, settings_workspace, unwritable_trust_file

PASSWORD = "gw-pass-27182818"
HOSTILE = (
    f'[agent.model]\nbase_url = "http://gw:{PASSWORD}@127.0.0.1:9/v1"\nmax_retries = 0\n'
    "[agent.sandbox]\nmemory_mb = 65536\n"
)


def _workspace(tmp_path: Path) -> Path:
    return settings_workspace(tmp_path, HOSTILE)


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
    _check_kept_until_the_end(agent, tmp_path, "settings")


def _check_kept_until_the_end(agent: AgentlsAcpAgent, tmp_path: Path, subject: str) -> None:
    """No run took the answer of the cancelled prompt: it waits for the session's next run, and is on disk
    meanwhile (the attempt's run_start, the answer; no run_end: `agentls runs` says "running" while this
    process lives). At the process's end it is in the transcript of the cancelled attempt, alone."""
    from agent.transcript import list_runs

    [records] = _transcripts(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval"], records
    assert records[0]["task"]["instruction"] == "What does f return?" and records[0]["pid"] == os.getpid()
    assert (records[1]["subject"], records[1]["answer"]) == (subject, None)
    assert [run.status for run in list_runs(tmp_path / "cache" / "runs")] == ["running"]
    agent.close()
    [records] = _transcripts(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval", "run_end"], records
    assert records[2]["status"] == "cancelled"


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
    assert not marker.exists()
    _check_kept_until_the_end(agent, tmp_path, "mcp_server")


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent reads the user's file and trust file from its own environment; the process's stay out."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(tmp_path / "cache"))


# -- the questions in the run's transcript; a trust file that cannot be written ------------------------


class ScriptedClient(RecordingClient):
    """Answers the permission requests in turn: an option id, None ("cancelled": nobody chose), or an
    exception (the editor could not ask)."""

    def __init__(self, *answers: str | Exception | None) -> None:
        super().__init__(None)
        self.answers = list(answers)

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        self.permissions.append((tool_call, options))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=answer))


def _both_workspace(tmp_path: Path) -> Path:
    """A workspace whose agentls.toml sets sensitive values and an MCP server."""
    ws, _marker = _mcp_workspace(tmp_path)
    (ws / "agentls.toml").write_text(HOSTILE + (ws / "agentls.toml").read_text())
    return ws


def _transcripts(tmp_path: Path) -> list[list[dict[str, Any]]]:
    """Each run's records, oldest run first: by the time of their first record (run ids sort by the second
    they started in, then at random, and these runs start within a second of each other)."""
    runs = [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in (tmp_path / "cache" / "runs").glob("*.jsonl")
    ]
    return sorted(runs, key=lambda records: str(records[0]["at"]))


def _prompts(agent: AgentlsAcpAgent, ws: Path, *words: str) -> list[str]:
    async def go() -> list[str]:
        session = await _session(agent, ws)
        stops = []
        for said in words:
            reply = await agent.prompt(session_id=session.session_id, prompt=[text_block(said)])
            stops.append(str(reply.stop_reason))
        return stops

    return asyncio.run(go())


def test_the_trust_questions_and_answers_come_first_in_the_runs_transcript(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = _both_workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."), text("Still 1."))
    client = ScriptedClient(IGNORE_SETTINGS, TRUST_MCP)
    agent = _agent(client, tmp_path, fake_anthropic)

    assert _prompts(agent, ws, "What does f return?", "And now?") == ["end_turn", "end_turn"]
    first, second = _transcripts(tmp_path)
    assert [r["type"] for r in first[:3]] == ["run_start", "approval", "approval"], first[:4]
    settings, server = first[1], first[2]
    assert settings["subject"] == "settings" and settings["detail"].endswith("agentls.toml")
    assert (settings["approved"], settings["answer"]) == (False, "Ignore them") and "reason" not in settings
    assert "agent.sandbox.memory_mb = 65536" in settings["question"] and PASSWORD not in str(settings)
    assert (server["subject"], server["detail"]) == ("mcp_server", "tracker")
    assert (server["approved"], server["answer"]) == (True, "Trust and start")
    assert "the MCP server `tracker`" in server["question"]
    assert settings["asked_at"] <= server["asked_at"] <= first[0]["at"]
    # asked once: the second prompt's run has no question of its own to record
    assert [r for r in second if r["type"] == "approval"] == []


def test_a_question_not_answered_or_not_asked_is_recorded_with_why(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = _both_workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."))
    client = ScriptedClient(None, RuntimeError("the dialog is broken"))
    agent = _agent(client, tmp_path, fake_anthropic)

    assert _prompts(agent, ws, "What does f return?") == ["end_turn"]
    [records] = _transcripts(tmp_path)
    approvals = [r for r in records if r["type"] == "approval"]
    assert [(r["subject"], r["approved"], r["answer"]) for r in approvals] == [
        ("settings", False, None),
        ("mcp_server", False, None),
    ]
    assert approvals[0]["reason"] == "the editor's question was closed without a choice"
    assert approvals[1]["reason"] == "the editor could not ask it: the dialog is broken"


class CancelsOnceClient(CancellingClient):
    """Cancels the prompt at the first question; answers "Ignore them" after."""

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        if self.permissions:
            return await RecordingClient.request_permission(self, session_id, tool_call, options, **kw)
        return await super().request_permission(session_id, tool_call, options, **kw)


def test_a_prompt_cancelled_while_asked_leaves_the_answer_to_the_next_run(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = _workspace(tmp_path)
    fake_anthropic.enqueue(text("f returns 1."))
    client = CancelsOnceClient(IGNORE_SETTINGS)
    client.agent = agent = _agent(client, tmp_path, fake_anthropic)

    assert _prompts(agent, ws, "What does f return?", "And now?") == ["cancelled", "end_turn"]
    [records] = _transcripts(tmp_path)
    approvals = [(r["subject"], r["answer"]) for r in records if r["type"] == "approval"]
    assert approvals == [("settings", None), ("settings", "Ignore them")]


@pytest.mark.parametrize("how", UNWRITABLE)
def test_trusted_settings_that_cannot_be_remembered_hold_for_the_process_and_the_user_is_told(
    tmp_path: Path, how: str
) -> None:
    ws = _workspace(tmp_path)
    unwritable_trust_file(tmp_path / "cache", how, "settings-trust.json")
    client = RecordingClient(TRUST_SETTINGS)
    agent = _agent(client, tmp_path)

    async def go() -> list[Any]:
        first = await agent._settings(await _session(agent, ws))
        return [first, await agent._settings(await _session(agent, ws))]

    for settings in asyncio.run(go()):
        assert settings.agent.sandbox.memory_mb == 65536
        assert settings.agent.model.base_url == f"http://gw:{PASSWORD}@127.0.0.1:9/v1"
    assert len(client.permissions) == 1  # trusted while this process runs: not asked again
    [told] = _warnings(client)
    assert "trusted while this agentls runs, but the answer could not be remembered" in told, told
    assert "settings-trust.json could not be written" in told and PASSWORD not in told, told
    assert "[Errno" in told and "see the log" not in told, told  # why, from the store, not read back
    [asked] = next(s for s in agent.sessions.values() if s.asked).asked
    assert asked.approved and asked.answer == "Trust these settings"
    assert asked.reason is not None and asked.reason.startswith("trusted while this agentls runs only")


def test_a_problem_of_a_value_trusted_for_the_process_only_is_said_at_its_line_as_when_trusted_for_good(
    tmp_path: Path,
) -> None:
    """Sensitive values trusted while this agentls runs (the trust file could not be written) are the
    workspace's file's, as when trusted for good: an invalid one (`network = "everywhere"`) is said at its
    line of the file, the prompt refused for one no run can use (a base URL that is no URL) names that line
    too; the same words as with the trust remembered. Before, they were passed as the editor's settings:
    "the editor's settings (section agentls): ignoring `agent.sandbox.network` ...", and the refusal named
    the editor's settings."""
    ws = settings_workspace(
        tmp_path,
        '[agent.model]\nbase_url = "localhost:11434"\n\n'
        '[agent.sandbox]\nmemory_mb = 65536\nnetwork = "everywhere"\n',
    )
    here = ws / "agentls.toml"
    said: dict[str, tuple[list[str], str]] = {}
    for trust in ("this process", "for good"):
        if trust == "this process":
            unwritable_trust_file(tmp_path / trust / "cache", "folder in its place", "settings-trust.json")
        client = RecordingClient(TRUST_SETTINGS)
        agent = _agent(client, tmp_path / trust)
        with pytest.raises(RequestError) as refused:
            _prompts(agent, ws, "What does f return?")
        told = [w for w in _warnings(client) if "could not be remembered" not in w]
        said[trust] = told, str(refused.value.data["message"])
    told, refusal = said["this process"]
    assert said["for good"] == (told, refusal), said
    [network] = told
    assert network.startswith(f"warning: {here}:6: ignoring `agent.sandbox.network`"), network
    assert f"{here}:2: agent.model.base_url = 'localhost:11434' is not a URL" in refusal, refusal
    assert "editor" not in network + refusal, (network, refusal)


def test_a_trusted_mcp_server_that_cannot_be_remembered_is_started_for_the_process_and_the_user_is_told(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws, marker = _mcp_workspace(tmp_path)
    unwritable_trust_file(tmp_path / "cache", "folder in its place", "mcp-trust.json")
    fake_anthropic.enqueue(text("f returns 1."), text("Still 1."))
    client = RecordingClient(TRUST_MCP)
    agent = _agent(client, tmp_path, fake_anthropic)

    assert _prompts(agent, ws, "What does f return?", "And now?") == ["end_turn", "end_turn"]
    _check_mcp_question(client)  # asked once
    assert marker.exists()  # the run started it
    told = [w for w in _mcp_warnings(client) if "could not be remembered" in w]
    assert len(told) == 1 and "mcp-trust.json could not be written" in told[0], _mcp_warnings(client)
    assert "[Errno 21] Is a directory" in told[0] and "see the log" not in told[0], told
    first, second = _transcripts(tmp_path)
    assert first[1]["type"] == "approval" and first[1]["answer"] == "Trust and start"
    assert first[1]["reason"].startswith("trusted while this agentls runs only")
    for records in (first, second):  # the run took the answer as its own
        [answered] = [r for r in records if r.get("kind") == "mcp_server_answered"]
        assert answered["server"] == "tracker" and answered["trusted"] is True


def test_an_mcp_server_trusted_without_a_cache_folder_does_not_end_the_prompt(tmp_path: Path) -> None:
    ws, _marker = _mcp_workspace(tmp_path)
    unwritable_trust_file(tmp_path / "cache", "cache is a file", "mcp-trust.json")
    client = RecordingClient(TRUST_MCP)
    agent = _agent(client, tmp_path)

    async def go() -> list[Any]:
        session = await _session(agent, ws)
        return [await _mcp_settings(agent, session), await _mcp_settings(agent, session)]

    for settings in asyncio.run(go()):
        assert settings.agent.mcp.servers["tracker"].enabled
    _check_mcp_question(client)
    [told] = _mcp_warnings(client)
    assert "`tracker` is trusted while this agentls runs" in told and "mcp-trust.json" in told, told


@pytest.mark.parametrize("how", ["kept", "folder in its place"])
def test_the_trust_files_are_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Every read of a trust file (``settings-trust.json`` as the settings are loaded: the session's start,
    the prompt's settings, after "Trust these settings"; ``mcp-trust.json`` for each MCP server) is on a
    worker thread, not on the event loop that serves the other sessions; the outcome is the same: the
    settings trusted, the server started, a second session not asked again. With the trust file kept,
    and with it not writable (the trust held for the process: the settings read with it). Before, each
    was read on the loop."""
    import threading

    from agent.trust_store import TrustStore

    ws = _both_workspace(tmp_path)
    if how != "kept":
        unwritable_trust_file(tmp_path / "cache", how, "settings-trust.json")
        unwritable_trust_file(tmp_path / "cache", how, "mcp-trust.json")
    client = ScriptedClient(TRUST_SETTINGS, TRUST_MCP)
    agent = _agent(client, tmp_path)
    real_load, read_on = TrustStore._load, []

    def load(self: TrustStore) -> list[dict[str, Any]]:
        read_on.append((threading.current_thread().name, Path(str(self.path)).name))
        return real_load(self)

    monkeypatch.setattr(TrustStore, "_load", load)

    async def go() -> None:
        for _ in range(2):  # asked in the first session only
            session = await _session(agent, ws)
            settings = await agent._settings(session)
            assert settings is not None and settings.agent.sandbox.memory_mb == 65536  # trusted
            assert await agent._mcp_servers(session, settings) == settings  # the server starts

    asyncio.run(go())
    assert len(client.permissions) == 2
    loop_thread = threading.current_thread().name
    assert {name for _, name in read_on} == {"settings-trust.json", "mcp-trust.json"}, read_on
    on_the_loop = [name for thread, name in read_on if thread == loop_thread]
    assert on_the_loop == [], read_on


def test_the_mcp_trust_file_is_read_once_per_prompt_for_all_the_servers(tmp_path: Path) -> None:
    """Three MCP servers the user trusted (in the first session: three questions): a later prompt's check
    reads ``mcp-trust.json`` once for all three (`AgentlsAcpAgent.mcp_trust`'s `reads`), not once per
    server, and asks nothing. On fa346ad's reading (one `is_trusted` per server) it was 3 reads (and 3 + 3
    in the first)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text(
        "".join(
            f'[mcp.servers.s{n}]\ncommand = "{sys.executable}"\nargs = ["-c", "pass", "--n={n}"]\n'
            for n in range(3)
        )
    )
    client = RecordingClient(TRUST_MCP)
    agent = _agent(client, tmp_path)

    async def go() -> list[int]:
        reads = []
        for _ in range(2):
            session = await _session(agent, ws)
            settings = await agent._settings(session)
            before = agent.mcp_trust().reads
            assert await agent._mcp_servers(session, settings) == settings  # all three start
            reads.append(agent.mcp_trust().reads - before)
        return reads

    # the first: the check's read and one by each answer's write (`TrustStore.add` keeps the file's entries)
    assert asyncio.run(go()) == [1 + 3, 1]
    assert len(client.permissions) == 3  # asked in the first session only
    assert (tmp_path / "cache" / "mcp-trust.json").read_text().count('"sha256"') == 3
