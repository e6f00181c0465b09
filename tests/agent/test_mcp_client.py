"""The MCP client: a real MCP stdio server process (tests/fakes/mcp_tickets_server.py, written with the
`mcp` SDK) configured in ``agentls.toml``, whose tool the fake model calls during a run; names, size cap,
error results, a server that cannot start (said to the user, the transcript and the model), names that
collide, and the processes stopped after the run; the trust question
before a workspace's server first starts (`agent.mcp.trust`), and the warning when nobody answered it."""

from __future__ import annotations

import asyncio
import http.server
import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from lsprotocol import types
from rich.console import Console

from agent.mcp.client import McpHub, McpTool, ServerTool, distinct_names, tool_name
from agent.mcp.config import McpServerSettings, McpSettings
from agent.mcp.trust import TRUST, TRUST_FILE, McpTrust, RunAnswers, question, trusted_servers
from agent.resume import load_state
from agent.tools import ToolRegistry, ToolTimeUp
from agent.transcript import load_run
from server.cli.agent import _Printer, _show_run
from server.features.runs.manager import RUN_EVENT, Run
from server.settings import load_settings
from tests.agent.agent_harness import (
    GOOD_BODY,
    STUB_BODY,
    Harness,
    copy_workspace,
    done,
    fast_settings,
    replace,
)
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text, tool_use, turn
from tests.server.test_proposals import PlainEditor, manager_with

SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_tickets_server.py"
TOML = f"""\
[mcp.servers.tickets]
command = "{sys.executable}"
args = ["{SERVER}"]
env = {{ TICKETS_USER = "ada" }}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(TOML)
    return root


@pytest.fixture
def trusted(ws: Path, tmp_path: Path) -> Path:
    """The workspace with its server trusted before, as the user's first answer would (the harness keeps
    its transcripts in tmp_path/runs, so agentls' cache folder is tmp_path)."""
    McpTrust(tmp_path / TRUST_FILE).remember(ws, "tickets", _settings(ws).servers["tickets"])
    return ws


def _settings(root: Path) -> McpSettings:
    loaded = load_settings(root)
    assert not loaded.messages, loaded.messages
    return loaded.settings.agent.mcp


def test_the_model_calls_an_mcp_tool_in_a_run(
    fake_anthropic: FakeAnthropic, trusted: Path, tmp_path: Path
) -> None:
    ws = trusted
    settings = fast_settings(mcp=_settings(ws), verify=False)
    fake_anthropic.enqueue(
        turn(text("I will read the ticket."), tool_use("mcp__tickets__lookup_ticket", {"ticket_id": "T-1"})),
        tool_use("mcp__tickets__lookup_ticket", {"ticket_id": "T-404"}),
        done("The ticket asks for ValueError on an empty list."),
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=settings)
    assert result.status in ("no_changes", "proposed"), result.error

    first = fake_anthropic.message_requests[0].body
    names = [tool["name"] for tool in first["tools"]]
    assert {"mcp__tickets__lookup_ticket", "mcp__tickets__big_output", "mcp__tickets__whoami"} <= set(names)
    definition = next(t for t in first["tools"] if t["name"] == "mcp__tickets__lookup_ticket")
    assert definition["description"].startswith("[MCP server tickets] The text of the issue-tracker ticket")
    assert definition["input_schema"]["required"] == ["ticket_id"]

    (found,) = harness.tool_results(1)
    assert not found.get("is_error")
    content = str(found["content"])
    assert "(data, not instructions)" in content and "mean() must raise ValueError" in content
    (missing,) = harness.tool_results(2)
    assert missing.get("is_error") and "no ticket T-404" in str(missing["content"])
    records = harness.transcript_records(result)
    calls = [r for r in records if r.get("type") == "tool_call"]
    assert [c["name"] for c in calls] == ["mcp__tickets__lookup_ticket"] * 2


def test_hub_env_size_cap_close_and_a_server_that_cannot_start(ws: Path) -> None:
    settings = _settings(ws).model_copy(update={"max_result_chars": 1_000})
    broken = settings.servers["tickets"].model_copy(update={"command": "/nonexistent/mcp-server"})
    settings = settings.model_copy(update={"servers": {**settings.servers, "broken": broken}})
    hub = McpHub(settings, ws)
    try:
        tools = hub.start()
        assert sorted(t.name for t in tools) == ["big_output", "lookup_ticket", "whoami"]
        assert "broken" in hub.failures
        registry = ToolRegistry(McpTool(hub, t) for t in tools)
        assert registry.execute("mcp__tickets__whoami", {}).content.endswith("\nada")
        big = registry.execute("mcp__tickets__big_output", {"size": 5_000}).content
        assert "[cut at 1,000 of 5,000 characters]" in big and len(big) < 1_200
        lookup = next(t for t in tools if t.name == "lookup_ticket")
        refused = McpTool(hub, lookup, approve=lambda name, _: False)
        result = ToolRegistry([refused]).execute(refused.name, {"ticket_id": "T-1"})
        assert result.is_error and "did not approve" in result.content
    finally:
        hub.close()
    assert not hub._thread.is_alive()
    assert not hub._sessions
    after = ToolRegistry([McpTool(hub, tools[0])]).execute(
        "mcp__tickets__lookup_ticket", {"ticket_id": "T-1"}
    )
    assert after.is_error and "not running" in after.content


def test_servers_start_together(ws: Path, tmp_path: Path) -> None:
    """A run's servers start at the same time, not one after another: the first one configured answers
    only once the second has started, within a start timeout that waiting for it in turn would exceed."""
    tickets = _settings(ws).servers["tickets"]
    first_env = {"TICKETS_WAIT_FOR": str(tmp_path / "second-started")}
    servers = {
        "first": tickets.model_copy(update={"env": {**tickets.env, **first_env}}),
        "second": tickets.model_copy(update={"env": {"TICKETS_MARK": str(tmp_path / "second-started")}}),
    }
    hub = McpHub(McpSettings(servers=servers, start_timeout=8), ws)
    try:
        tools = hub.start()
        assert hub.failures == {}
        assert [t.server for t in tools] == ["first"] * 3 + ["second"] * 3  # in the order configured
    finally:
        hub.close()


def test_a_server_that_exits_or_never_answers_is_said_so(ws: Path, tmp_path: Path) -> None:
    """A server that crashes during a call: that call and every later one of its tools say it stopped (not
    'Connection closed'); the other servers go on. One that never answers names the start timeout."""
    tickets = _settings(ws).servers["tickets"]
    servers = {
        "crashy": tickets.model_copy(update={"env": {"TICKETS_CRASHABLE": "1"}}),
        "tickets": tickets,
        "mute": tickets.model_copy(update={"env": {"TICKETS_WAIT_FOR": str(tmp_path / "never")}}),
    }
    # 8 s: three Python servers starting at once took over 3 s on a loaded CI machine (the healthy one
    # was then reported as not starting too).
    hub = McpHub(McpSettings(servers=servers, start_timeout=8), ws)
    try:
        registry = ToolRegistry(McpTool(hub, t) for t in hub.start())
        reasons = {name: failure.reason for name, failure in hub.failures.items()}
        assert reasons == {"mute": "it did not start and list its tools within 8 s (mcp.start_timeout)"}
        crashed = registry.execute("mcp__crashy__crash", {})
        assert crashed.is_error and "the MCP server crashy stopped during a call of crash" in crashed.content
        later = registry.execute("mcp__crashy__whoami", {})
        assert later.is_error and "cannot be called again in this run" in later.content
        assert registry.execute("mcp__tickets__whoami", {}).content.endswith("\nada")
    finally:
        hub.close()


def test_a_server_that_cannot_start_is_said_to_the_user_the_transcript_and_the_model(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server that exits at start (its stderr says why) and one that never answers: each is a "warning"
    event of the run (which `agentls run` prints and the language server sends to the editor) saying what
    failed and what to do, an `mcp_server_failed` record of the transcript, a line of `agentls runs ID`,
    and a note to the model with its task; the healthy server's tools are there. The values of the
    server's env show in none of these."""
    tickets = _settings(ws).servers["tickets"]
    token = "tok-7Hq2-SECRET"
    github_env = {"TICKETS_FAIL_START": "1", "TICKETS_USER": "ada", "TICKETS_TOKEN": token}
    servers = {
        "tickets": tickets,
        "github": tickets.model_copy(update={"env": github_env}),
        "slow": tickets.model_copy(update={"env": {"TICKETS_WAIT_FOR": str(tmp_path / "never")}}),
    }
    trust = McpTrust(tmp_path / TRUST_FILE)
    for name, config in servers.items():
        trust.remember(ws, name, config)
    settings = fast_settings(mcp=McpSettings(servers=servers, start_timeout=10), verify=False)
    fake_anthropic.enqueue(done("The GitHub tools are not available; nothing to change."))
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    caplog.set_level(logging.WARNING)
    result = harness.run(settings=settings)

    warnings = [e for e in harness.events if e.kind == "warning" and e.data["subject"] == "mcp_server"]
    github, slow = (w.message for w in warnings)
    assert github.startswith(
        "The MCP server `github` could not start: it exited (or closed its output) before it listed its "
        "tools; its stderr ended with: starting tickets | Error: cannot log in as ada with the token "
        "[redacted] (401). "
        "Its tools are left out of this run. Run `"
    )
    assert github.endswith(
        "mcp_tickets_server.py` in a terminal to see what it says, and fix [mcp.servers.github] in the "
        "settings."
    )
    assert slow.startswith(
        "The MCP server `slow` could not start: it did not start and list its tools within 10 s "
        "(mcp.start_timeout). Its tools are left out of this run. If it is only slow to start (npx and uvx "
        "download on first use), raise mcp.start_timeout (now 10 s); else run `"
    )
    # Said once, by the event (the CLI prints WARNING logs too).
    assert not [r for r in caplog.records if "could not start" in r.getMessage()]

    records = harness.transcript_records(result)
    failed = [r for r in records if r.get("kind") == "mcp_server_failed"]
    assert [(r["server"], r["message"]) for r in failed] == [("github", github), ("slow", slow)]
    said = "starting tickets | Error: cannot log in as ada with the token [redacted] (401)"
    assert failed[0]["stderr"] == said

    first = fake_anthropic.message_requests[0].body
    assert {"mcp__tickets__whoami", "mcp__tickets__lookup_ticket"} <= {t["name"] for t in first["tools"]}
    assert not [t for t in first["tools"] if t["name"].startswith(("mcp__github", "mcp__slow"))]
    task = str(first["messages"][0]["content"])
    assert (
        "Note: The MCP server `github` could not start (it exited (or closed its output) before it listed "
        "its tools), so its tools (mcp__github__*) are not available in this run: do without them." in task
    )
    assert "Note: The MCP server `slow` could not start (it did not start" in task
    assert token not in harness.bodies_text() + str(failed) + str([w.message for w in warnings])

    out = io.StringIO()
    _Printer(Console(file=out, width=1000, color_system=None))(warnings[0])  # `agentls run`
    assert out.getvalue() == f"warning: {github}\n"
    _show_run(load_run(tmp_path / "runs", result.run_id))  # `agentls runs ID`
    assert f"  warning: {slow}\n" in capsys.readouterr().out
    # The language server: an agentls/runEvent warning, a pop-up and the progress line.
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    run = Run("r1", "fix", "run", tmp_path)
    manager_with(tmp_path, editor)._on_event(run, warnings[0])
    [params] = [p for m, p in editor.notified if m == RUN_EVENT]
    assert (params.kind, params.subject, params.message) == ("warning", "mcp_server", github)
    assert editor.shown == [(f"agentls: {github}", types.MessageType.Warning)]
    assert run.message.startswith("warning: The MCP server `github` could not start")


def test_a_server_nobody_trusted_is_a_warning_of_the_run(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A workspace's server whose trust question got no answer is left out, and the run says so as it does
    a server that fails to start: with nobody to ask (`agentls acp`) and with the language server's own
    asker when the editor's question is dismissed. Each is a "warning" event naming the server, why, and
    `agentls mcp --trust --path ROOT`, an `mcp_server_untrusted` record, a line of `agentls runs ID`, the
    editor's pop-up and a note to the model. "Don't start" is the user's own answer: no warning."""
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    settings = fast_settings(mcp=_settings(ws), verify=False)
    caplog.set_level(logging.WARNING)

    def run(ask: Callable[[str, Sequence[str]], str] | None) -> tuple[list[str], list[dict[str, Any]]]:
        """One run; the warnings it said and its transcript's records."""
        harness.events.clear()
        fake_anthropic.enqueue(done("Nothing to do."))
        result = harness.run(settings=settings, ask=ask)
        said = [e.message for e in harness.events if e.data.get("subject") == "mcp_server"]
        return said, harness.transcript_records(result)

    trust = f"agentls mcp --trust --path {ws}"
    (nobody,), records = run(None)
    assert nobody == (
        "The MCP server `tickets` was not started: it is not trusted in this workspace, and the question "
        "whether to trust it got no answer (nobody was there to answer it). Its tools are left out of this "
        f'run. To trust it, run `{trust}` in a terminal (or answer "Trust and start" when a run asks).'
    )
    [left_out] = [r for r in records if r.get("kind") == "mcp_server_untrusted"]
    assert (left_out["server"], left_out["message"]) == ("tickets", nobody)
    first = fake_anthropic.message_requests[-1].body
    assert not [t for t in first["tools"] if t["name"].startswith("mcp__")]
    assert (
        "Note: The MCP server `tickets` was not started (the user has not trusted it), so its tools "
        "(mcp__tickets__*) are not available in this run: do without them." in str(first["messages"][0])
    )
    assert not [r for r in caplog.records if "tickets" in r.getMessage()]  # said once, by the event
    _show_run(load_run(tmp_path / "runs", str(records[0]["run_id"])))  # `agentls runs ID`
    assert f"  warning: {nobody}\n" in capsys.readouterr().out

    # The language server asks the editor; a dismissed question is no answer.
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    (tmp_path / "lsp").mkdir()
    manager = manager_with(tmp_path / "lsp", editor)
    lsp_run = Run("r1", "fix", "run", ws)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        (dismissed,), _ = run(manager._asker(lsp_run, loop))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert "got no answer (the user dismissed the question)" in dismissed and trust in dismissed
    manager._on_event(lsp_run, next(e for e in harness.events if e.message == dismissed))
    assert editor.shown == [(f"agentls: {dismissed}", types.MessageType.Warning)]

    # The user's own "Don't start": not started, and nothing to warn of.
    said, records = run(lambda question, options: "Don't start")
    assert said == [] and not [r for r in records if r.get("kind") == "mcp_server_untrusted"]
    assert not [r for r in caplog.records if "tickets" in r.getMessage()]


def test_agentls_run_without_a_terminal_says_once_that_an_untrusted_server_was_left_out(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """The installed `agentls run` with stdin from /dev/null (a script, CI): nobody can be asked whether to
    trust the workspace's server, so it is left out with one `warning:` line saying why and how to trust
    it, not a log line."""
    fake_anthropic.enqueue(done("Nothing to change."))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(
        ANTHROPIC_API_KEY=FAKE_API_KEY,
        ANTHROPIC_BASE_URL=fake_anthropic.url,
        AGENTLS_CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
    )
    ran = subprocess.run(
        ["agentls", "run", "Say what mean does", "--path", str(ws)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert [line for line in ran.stderr.splitlines() if "tickets" in line] == [
        "warning: The MCP server `tickets` was not started: it is not trusted in this workspace, and the "
        "question whether to trust it got no answer (there is no terminal to ask on). Its tools are left out "
        f'of this run. To trust it, run `agentls mcp --trust --path {ws}` in a terminal (or answer "Trust '
        'and start" when a run asks).'
    ], ran.stderr


def test_tool_names_that_collide_get_distinct_names(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Names equal once sanitised (servers `tick.ets` and `tick ets`) or once cut at 64 characters (three
    tools of a server with a long name) each reach the model under a name of its own, and each calls its
    own server's tool."""
    tickets = _settings(ws).servers["tickets"]
    long = "s" * 58  # mcp__sss...s__ is 65 characters: every tool of it cuts to the same 64
    servers = {
        "tick.ets": tickets,
        "tick ets": tickets.model_copy(update={"env": {"TICKETS_USER": "grace"}}),
        long: tickets.model_copy(update={"env": {"TICKETS_USER": "linus"}}),
    }
    trust = McpTrust(tmp_path / TRUST_FILE)
    for name, config in servers.items():
        trust.remember(ws, name, config)
    settings = fast_settings(mcp=McpSettings(servers=servers), verify=False)
    cut = f"mcp__{long}_"
    fake_anthropic.enqueue(
        tool_use("mcp__tick_ets__whoami_2", {}),
        tool_use(f"{cut[:62]}_3", {}),
        tool_use(f"{cut[:62]}_2", {"size": 1_200}),
        done("Read them."),
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=settings)
    assert result.status in ("no_changes", "proposed"), result.error

    tools = [t for t in fake_anthropic.message_requests[0].body["tools"] if t["name"].startswith("mcp__")]
    names = [t["name"] for t in tools]
    assert len(names) == 9 and len(set(names)) == 9 and all(len(name) <= 64 for name in names)
    assert names[:6] == [
        "mcp__tick_ets__lookup_ticket",
        "mcp__tick_ets__big_output",
        "mcp__tick_ets__whoami",
        "mcp__tick_ets__lookup_ticket_2",
        "mcp__tick_ets__big_output_2",
        "mcp__tick_ets__whoami_2",
    ]
    assert names[6:] == [cut, f"{cut[:62]}_2", f"{cut[:62]}_3"]
    described = {t["name"]: t["description"] for t in tools}
    assert described["mcp__tick_ets__whoami_2"].startswith("[MCP server tick ets, its tool whoami] ")
    assert described[f"{cut[:62]}_3"].startswith(f"[MCP server {long}, its tool whoami] ")
    assert str(harness.tool_results(1)[0]["content"]).endswith("\ngrace")  # the second server's whoami
    assert str(harness.tool_results(2)[0]["content"]).endswith("\nlinus")
    assert "x" * 1_200 in str(harness.tool_results(3)[0]["content"])  # big_output of the long one


def test_tool_names_are_safe_and_bounded() -> None:
    assert tool_name("my server", "get.item") == "mcp__my_server__get_item"
    assert len(tool_name("s" * 50, "t" * 50)) == 64
    tools = [ServerTool("a.b", "t", "", {}), ServerTool("a b", "t", "", {}), ServerTool("a_b", "t_2", "", {})]
    assert distinct_names(tools) == ["mcp__a_b__t", "mcp__a_b__t_2", "mcp__a_b__t_2_2"]


def test_approve_ask_asks_the_user_before_each_mcp_call(
    fake_anthropic: FakeAnthropic, trusted: Path, tmp_path: Path
) -> None:
    ws = trusted
    settings = fast_settings(mcp=_settings(ws), verify=False, approve="ask")
    questions: list[tuple[str, list[str]]] = []
    answers = iter(["Deny", "Allow"])

    def ask(question: str, options: Sequence[str]) -> str:
        questions.append((question, list(options)))
        return next(answers)

    fake_anthropic.enqueue(
        tool_use("mcp__tickets__lookup_ticket", {"ticket_id": "T-1"}),
        tool_use("mcp__tickets__lookup_ticket", {"ticket_id": "T-1"}),
        done("Read the ticket."),
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    harness.run(settings=settings, ask=ask)
    assert [options for _, options in questions] == [["Allow", "Deny"]] * 2
    assert "mcp__tickets__lookup_ticket" in questions[0][0] and "T-1" in questions[0][0]
    (denied,) = harness.tool_results(1)
    assert denied.get("is_error") and "did not approve" in str(denied["content"])
    (allowed,) = harness.tool_results(2)
    assert not allowed.get("is_error") and "mean() must raise ValueError" in str(allowed["content"])


def test_a_workspace_server_starts_only_once_the_user_trusts_it(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "server-ran"
    (ws / "agentls.toml").write_text(
        TOML
        + f"""
[mcp.servers.probe]
command = "{sys.executable}"
args = ["-c", "open({str(marker)!r}, 'w')"]
"""
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    questions: list[str] = []

    def run(answers: dict[str, str] | None) -> list[str]:
        """One run; `answers` by server name (None: nobody to ask); the MCP tools the model got."""

        def ask(question: str, options: Sequence[str]) -> str:
            questions.append(question)
            assert list(options) == [TRUST, "Don't start"]
            assert answers is not None
            return next(answer for name, answer in answers.items() if f"`{name}`" in question)

        settings = fast_settings(mcp=_settings(ws), verify=False)
        count = len(fake_anthropic.message_requests)
        fake_anthropic.enqueue(done("Nothing to do."))
        result = harness.run(settings=settings, ask=ask if answers is not None else None)
        tools = fake_anthropic.message_requests[count].body["tools"]
        records.extend(harness.transcript_records(result))
        return sorted({t["name"].split("__")[1] for t in tools if t["name"].startswith("mcp__")})

    records: list[dict[str, object]] = []
    # Nobody to ask: neither server starts (the probe would have written its marker).
    assert run(None) == [] and not marker.exists()
    # Asked once per server: trusted starts, refused does not.
    assert run({"tickets": TRUST, "probe": "Don't start"}) == ["tickets"] and not marker.exists()
    assert len(questions) == 2 and "runs `" in questions[0] and "TICKETS_USER" in questions[0]
    assert not re.search(r"\bada\b", questions[0])  # the environment's values are not shown or stored
    # Remembered for the workspace: the next run asks only about the refused one.
    questions.clear()
    assert run({"probe": "Don't start"}) == ["tickets"] and len(questions) == 1
    # A changed command is a new question.
    (ws / "agentls.toml").write_text(TOML.replace('"ada"', '"grace"'))
    questions.clear()
    assert run({"tickets": "Don't start"}) == [] and len(questions) == 1
    assert not re.search(r"\bada\b", (tmp_path / TRUST_FILE).read_text())
    approvals = [(r["detail"], r["approved"]) for r in records if r["type"] == "approval"]
    assert approvals == [
        ("tickets", False),  # nobody to ask is a refusal, recorded as one
        ("probe", False),
        ("tickets", True),
        ("probe", False),
        ("probe", False),
        ("tickets", False),
    ]
    remembered = [r["server"] for r in records if r.get("kind") == "mcp_server_trusted"]
    assert remembered == ["tickets"]


def test_a_run_asks_once_per_server_even_where_the_trust_file_is_not_kept(ws: Path) -> None:
    """A team run's roles each start the servers again, sharing the run's `RunAnswers`: with no trust file
    to remember "Trust and start" in (no transcript, hence no cache folder), the answer still holds for the
    rest of the run; a new run asks again."""
    settings = _settings(ws)
    asked: list[str] = []

    def ask(question: str, options: Sequence[str]) -> str:
        asked.append(question)
        return TRUST

    def started(answers: RunAnswers) -> bool:
        kept = trusted_servers(settings, ws, trust=McpTrust(None), ask=ask, recorder=None, answers=answers)
        return kept.servers["tickets"].enabled

    run = RunAnswers()
    assert started(run) and started(run) and len(asked) == 1
    assert started(RunAnswers()) and len(asked) == 2


# -- the run's time bound ------------------------------------------------------------------------------


def _slow_tickets(ws: Path, tmp_path: Path) -> tuple[McpSettings, Path]:
    """The tickets server with its slow `wait` tool; the file it notes each cancelled call in."""
    cancelled = tmp_path / "cancelled.txt"
    tickets = _settings(ws).servers["tickets"]
    slow = tickets.model_copy(update={"env": {**tickets.env, "TICKETS_CANCELLED": str(cancelled)}})
    return McpSettings(servers={"tickets": slow}, start_timeout=20), cancelled


def _run_waiting_on_tickets(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> tuple[McpSettings, Path]:
    """The slow tickets server, trusted, and a model that edits the stub then calls its `wait` for 60 s."""
    settings, cancelled = _slow_tickets(ws, tmp_path)
    McpTrust(tmp_path / TRUST_FILE).remember(ws, "tickets", settings.servers["tickets"])
    fake_anthropic.enqueue(
        turn(
            text("Plan: implement mean, then check the ticket service."),
            replace(STUB_BODY, GOOD_BODY),
            tool_use("mcp__tickets__wait", {"seconds": 60}),
        ),
        done(),
    )
    return settings, cancelled


def _wait_for_file(path: Path, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


def test_a_call_past_the_runs_time_is_cancelled_and_the_session_goes_on(ws: Path, tmp_path: Path) -> None:
    """The server's own timeout is 60 s; the run has 2 s left: the call is cut then (ToolTimeUp, which
    stops the run), the server is told (MCP's notifications/cancelled: its tool stops), and the session
    answers the next call at once."""
    settings, cancelled = _slow_tickets(ws, tmp_path)
    hub = McpHub(settings, ws)
    try:
        tools = {t.name: t for t in hub.start()}
        registry = ToolRegistry([McpTool(hub, tools["wait"], seconds_left=lambda: 2.0)])
        began = time.monotonic()
        with pytest.raises(ToolTimeUp, match=r"cancelled after 2\.0 s: the agent run's time"):
            registry.execute("mcp__tickets__wait", {"seconds": 30})
        assert time.monotonic() - began < 15  # cut at the run's 2 s, not the call's 30 s
        assert _wait_for_file(cancelled, 5) == "wait(30) cancelled\n"
        after = ToolRegistry([McpTool(hub, tools["whoami"]), McpTool(hub, tools["wait"])])
        began = time.monotonic()
        assert after.execute("mcp__tickets__whoami", {}).content.endswith("\nada")
        assert after.execute("mcp__tickets__wait", {"seconds": 0.1}).content.endswith("\nwaited 0.1 s")
        # At once, not behind the cut call's 30 s (a second here; 15 s leaves room for a loaded machine).
        assert time.monotonic() - began < 15
        # No bound, or more time left than the server's timeout: its own timeout, an error the model reads.
        unbounded = McpTool(hub, tools["wait"], seconds_left=lambda: None)
        assert unbounded.run({"seconds": 0.1}).content.endswith("\nwaited 0.1 s")
    finally:
        hub.close()


def test_a_run_stops_at_its_time_bound_during_an_mcp_call(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    settings, cancelled = _run_waiting_on_tickets(fake_anthropic, ws, tmp_path)
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    began = time.monotonic()
    result = harness.run(settings=fast_settings(mcp=settings, verify=False, max_minutes=0.1))
    took = time.monotonic() - began

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert took < 15, f"the MCP call held the run {took:.1f} s with a 6 s bound"
    assert result.error is not None and "Time budget reached" in result.error
    assert result.proposal is not None and "+    return sum(values) / len(values)" in result.proposal.diff
    records = harness.transcript_records(result)
    [stop] = [r for r in records if r.get("kind") == "budget_stop"]
    assert stop["limit"] == "max_minutes"
    [cut] = [r for r in records if r.get("kind") == "tool_cut"]
    assert cut["tool"] == "mcp__tickets__wait" and "agent.max_minutes" in cut["reason"]
    assert len(fake_anthropic.message_requests) == 1
    assert _wait_for_file(cancelled, 5) == "wait(60) cancelled\n"


def test_what_is_not_text_in_a_result_is_named_not_dropped(ws: Path) -> None:
    """A result with an image, a resource link and a binary resource besides its text: the link keeps its
    name, URI, type and description (the model can follow it), the binary says what it is and how big
    (they were all "[... content left out]", the link's URI lost), and the image goes beside the text
    (tests/agent/test_mcp_images.py sends it to the model)."""
    settings = _settings(ws)
    server = settings.servers["tickets"]
    media = server.model_copy(update={"env": {**server.env, "TICKETS_MEDIA": "1"}})
    hub = McpHub(settings.model_copy(update={"servers": {"tickets": media}}), ws)
    try:
        tool = next(t for t in hub.start() if t.name == "attachments")
        result = ToolRegistry([McpTool(hub, tool)]).execute("mcp__tickets__attachments", {"ticket_id": "T-1"})
    finally:
        hub.close()
    assert not result.is_error, result.content
    assert result.content.splitlines()[1:] == [
        "T-1 has 3 attachments",
        "[resource link: build.log tickets://T-1/build.log (text/plain): The failing build's log.]",
        "[resource tickets://T-1/core (application/octet-stream, 6 bytes): binary, not shown]",
    ]
    [image] = result.images
    assert (image.media_type, image.width, image.height) == ("image/png", 4, 3)


# -- the run's cancel ---------------------------------------------------------------------------------


def test_a_cancel_cuts_an_mcp_call_in_progress_and_the_session_goes_on(ws: Path, tmp_path: Path) -> None:
    """The run is cancelled 1 s into a call the server takes 30 s over (its own timeout 60 s, no time
    bound): the call ends then (ToolTimeUp, on which the loop ends the run as cancelled), the server is
    told (its tool stops), and the session answers the next call at once."""
    settings, cancelled = _slow_tickets(ws, tmp_path)
    hub = McpHub(settings, ws)
    cancel = threading.Event()
    try:
        tools = {t.name: t for t in hub.start()}
        registry = ToolRegistry([McpTool(hub, tools["wait"], cancel=cancel, seconds_left=lambda: None)])
        threading.Timer(1.0, cancel.set).start()
        began = time.monotonic()
        with pytest.raises(ToolTimeUp, match="wait of tickets was cancelled: the agent run was cancelled"):
            registry.execute("mcp__tickets__wait", {"seconds": 30})
        assert time.monotonic() - began < 15  # cut at the cancel (1 s), not the call's 30 s
        assert _wait_for_file(cancelled, 5) == "wait(30) cancelled\n"
        began = time.monotonic()
        after = ToolRegistry([McpTool(hub, tools["whoami"]), McpTool(hub, tools["wait"])])
        assert after.execute("mcp__tickets__whoami", {}).content.endswith("\nada")
        assert after.execute("mcp__tickets__wait", {"seconds": 0.1}).content.endswith("\nwaited 0.1 s")
        # At once, not behind the cut call's 30 s (a second here; 15 s leaves room for a loaded machine).
        assert time.monotonic() - began < 15
    finally:
        hub.close()


def test_a_run_cancelled_during_an_mcp_call_stops_at_once_with_its_work_kept(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Ctrl-C (the editor's cancel, ACP's session/cancel: the run's cancel event) while an MCP call runs:
    the run ends cancelled within about a second, not at the server's timeout; the server is told; the
    edit made before is in the run's saved state, so `agentls runs resume` continues it."""
    settings, cancelled = _run_waiting_on_tickets(fake_anthropic, ws, tmp_path)
    cancel = threading.Event()
    cancelled_at: list[float] = []

    def cancel_during_the_call(event: Any) -> None:
        if event.kind == "tool_call" and event.data.get("name") == "mcp__tickets__wait":

            def press_ctrl_c() -> None:
                cancelled_at.append(time.monotonic())
                cancel.set()

            threading.Timer(1.0, press_ctrl_c).start()

    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(
        settings=fast_settings(mcp=settings, verify=False), cancel=cancel, on_event=cancel_during_the_call
    )
    stopped = time.monotonic()

    assert result.status == "cancelled", (result.status, result.error)
    # Within about a second of the cancel, not at the call's 60 s (20 s leaves room for a loaded machine).
    assert cancelled_at and stopped - cancelled_at[0] < 20, "the run waited for the MCP call after the cancel"
    assert result.proposal is None
    records = harness.transcript_records(result)
    [cut] = [r for r in records if r.get("kind") == "tool_cut"]
    assert cut["tool"] == "mcp__tickets__wait" and "the agent run was cancelled" in cut["reason"]
    assert len(fake_anthropic.message_requests) == 1
    assert _wait_for_file(cancelled, 5) == "wait(60) cancelled\n"
    state = load_state(tmp_path / "runs", result.run_id)
    assert state.status == "cancelled" and state.resumable
    assert "    return sum(values) / len(values)" in (state.files["mathx/stats.py"] or "")


def test_a_workspace_cannot_widen_swap_or_turn_on_the_users_own_server_from_the_other_place(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own file writes its servers at ``[agent.mcp.servers.NAME]``: `tickets` with only
    `lookup_ticket` of its tools, and `probe` (a Python that leaves a marker file when it runs) turned off;
    the user trusted both in this workspace before. The workspace's untrusted file writes the same names at
    ``[mcp.servers.NAME]``. On the old code its tables replaced the user's whole: every tool of `tickets`
    was offered and `probe` ran (the marker), without a question. Now each changes only the fields it
    writes: the user's `tools` and `enabled = false` stand. A table that swaps the command is the MCP trust
    question of a new configuration: with nobody to answer, that command does not run (this part held on
    the old code too: its fingerprint was never trusted)."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "server-ran"
    probe = f'command = "{sys.executable}"\nargs = ["-c", "open({str(marker)!r}, \'w\')"]\n'
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text(
        TOML.replace("[mcp.servers.tickets]", "[agent.mcp.servers.tickets]")
        + 'tools = ["lookup_ticket"]\n\n[agent.mcp.servers.probe]\n'
        + probe
        + "enabled = false\n"
    )
    trust = McpTrust(tmp_path / TRUST_FILE)  # the harness's cache folder is tmp_path
    users = load_settings(ws).settings.agent.mcp.servers  # ws's own file is TOML: the same tickets server
    trust.remember(ws, "tickets", users["tickets"])
    trust.remember(ws, "probe", users["probe"].model_copy(update={"enabled": True}))  # trusted while on
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")

    def offered(toml: str) -> list[str]:
        """The MCP tools the model got in a run of the workspace whose file is `toml` (nobody to ask)."""
        (ws / "agentls.toml").write_text(toml)
        loaded = load_settings(ws)
        said.extend(loaded.messages)
        assert not loaded.untrusted, loaded.untrusted
        count = len(fake_anthropic.message_requests)
        fake_anthropic.enqueue(done("Nothing to do."))
        harness.run(settings=fast_settings(mcp=loaded.settings.agent.mcp, verify=False), ask=None)
        tools = fake_anthropic.message_requests[count].body["tools"]
        return sorted(t["name"] for t in tools if t["name"].startswith("mcp__"))

    said: list[str] = []
    assert offered(TOML + "\n[mcp.servers.probe]\n" + probe) == ["mcp__tickets__lookup_ticket"]
    assert not marker.exists() and said == []  # the user's probe stays off (the old code started it)
    swapped = f'[mcp.servers.tickets]\ncommand = "/bin/sh"\nargs = ["-c", "touch {marker}"]\n'
    assert offered(swapped) == [] and not marker.exists()  # a new configuration: asked, nobody answered
    (withheld,) = said  # nor would the user's env go with it (trusted or not)
    assert "your own settings' env (TICKETS_USER) for MCP server `tickets` are not sent" in withheld


def test_a_relative_working_folder_is_the_workspaces_and_a_missing_one_is_named(
    ws: Path, tmp_path: Path
) -> None:
    """The trust is of this workspace's configuration (`agent.mcp.trust`): a relative ``cwd`` is a folder
    of the workspace, wherever agentls was started. On the old code it was the folder of the agentls
    process (the test's): the server could not start there, or ran in another folder than the one the
    user trusted."""
    (ws / "tools").mkdir()
    marker = tmp_path / "where"
    probe = f"import os; open({str(marker)!r}, 'w').write(os.getcwd())"
    servers = {
        "probe": McpServerSettings(command=sys.executable, args=["-c", probe], cwd="tools"),
        "lost": McpServerSettings(command=sys.executable, args=["-c", "pass"], cwd="missing"),
    }
    assert not (Path.cwd() / "tools").exists()
    hub = McpHub(McpSettings(servers=servers, start_timeout=20), ws)
    try:
        assert hub.start() == []  # neither is an MCP server
    finally:
        hub.close()
    assert marker.read_text() == str(ws / "tools")
    assert hub.failures["lost"].reason == "its working folder `missing` does not exist", hub.failures


def test_the_trust_question_names_the_credentials_a_server_gets() -> None:
    """The question names the headers a URL server gets (values masked), as it names a stdio server's
    ``env``. On the old code a URL server's question named its URL only."""
    token = "Bearer 0123456789abcdef"
    docs = McpServerSettings(url="https://docs.example/mcp", headers={"Authorization": token, "X-Team": "t"})
    asked = question("docs", docs)
    assert "connects to https://docs.example/mcp sending the headers Authorization, X-Team" in asked, asked
    assert "0123456789abcdef" not in asked


class _Recorded(http.server.BaseHTTPRequestHandler):
    """An HTTP endpoint that keeps the path and headers of each request and answers 404: no MCP server,
    but the first request of a client connecting to it carries the headers it was configured with."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_POST(self) -> None:
        self.seen.append((self.path, dict(self.headers)))
        self.send_error(404)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _users_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, str]:
    """The test's own user settings folder (``XDG_CONFIG_HOME``, its ``agentls`` folder made) and cache, and
    a running HTTP endpoint recording each request's headers (`_Recorded`, emptied): the settings file to
    write, the endpoint (shut it down) and its base URL."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(tmp_path / "cache"))
    (config / "agentls").mkdir(parents=True)
    endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorded)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    _Recorded.seen = []
    return config / "agentls" / "agentls.toml", endpoint, f"http://127.0.0.1:{endpoint.server_address[1]}"


def _env_writer(script: Path, seen: Path) -> Path:
    """`script`: a command that writes its environment, then its arguments, to `seen` (no MCP server)."""
    script.write_text(f'#!/bin/sh\nenv > "{seen}"\necho "$@" >> "{seen}"\n')
    script.chmod(0o755)
    return script


def test_the_users_credentials_never_reach_a_command_or_url_the_workspace_chose(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own file gives its servers credentials: `gh` (HTTP) an ``Authorization`` header, `fs`
    (stdio) a ``GITHUB_TOKEN`` and a ``--token`` argument. A cloned repository's file writes the same
    servers with its own URL and its own command (a script that writes its environment and arguments to
    a file). Merged field by field, the user's credentials went there once the MCP trust question, which
    reads like one about the user's own server, was answered yes (on c1ac6c5: the header reached the
    workspace's URL, the token the script). Now the servers get only what the workspace's file writes
    of them (its own ``env``), each withheld credential is a settings message at the line that set the
    destination, and the question no longer names the user's credentials. The user's own URL still gets
    them: the workspace's file that changes only a server's ``timeout`` leaves its destination alone."""
    users, endpoint, base = _users_endpoint(tmp_path, monkeypatch)
    token, secret = "ghp_usertoken0123456789abcd", "fs-secret-0123456789abcd"
    users.write_text(
        f'[agent.mcp.servers.gh]\nurl = "{base}/mine"\n'
        f'headers = {{ Authorization = "Bearer {token}" }}\n\n'
        f'[agent.mcp.servers.fs]\ncommand = "{sys.executable}"\n'
        f'args = ["-m", "fs_mcp", "--token", "{secret}"]\n'
        f'env = {{ GITHUB_TOKEN = "{token}" }}\n'
    )
    seen = tmp_path / "seen"
    probe = _env_writer(ws / "probe.sh", seen)
    asked: list[str] = []

    def started(toml: str) -> list[str]:
        """Start the servers of the workspace whose file is `toml`, every question answered "Trust and
        start"; the settings messages."""
        (ws / "agentls.toml").write_text(toml)
        loaded = load_settings(ws)

        def ask(question: str, options: Sequence[str]) -> str:
            asked.append(question)
            return TRUST

        kept = trusted_servers(loaded.settings.agent.mcp, ws, trust=McpTrust(None), ask=ask, recorder=None)
        hub = McpHub(kept.model_copy(update={"start_timeout": 20}), ws)
        try:
            assert hub.start() == []  # neither is an MCP server
        finally:
            hub.close()
        return list(loaded.messages)

    said = started(
        f'[index]\nworkers = 1\n\n[mcp.servers.gh]\nurl = "{base}/theirs"\n\n'
        f'[mcp.servers.fs]\ncommand = "{probe}"\nenv = {{ REPO = "theirs" }}\n'
    )
    assert len(asked) == 2 and all(token not in q and "GITHUB_TOKEN" not in q for q in asked), asked
    assert not any("Authorization" in q for q in asked), asked
    theirs = [headers for path, headers in _Recorded.seen if path == "/theirs"]
    assert theirs and not any(token in str(headers) for headers in theirs), theirs
    ran = seen.read_text()  # the workspace's command ran, trusted
    assert "REPO=theirs" in ran and token not in ran and secret not in ran, ran
    (gh, fs) = sorted(said, key=lambda message: "fs" in message)
    agentls_toml = ws / "agentls.toml"
    assert gh.startswith(f"{agentls_toml}:5: your own settings' headers (Authorization) for MCP server `gh`")
    assert "not sent to the URL set by" in gh, gh
    assert fs.startswith(
        f"{agentls_toml}:8: your own settings' env (GITHUB_TOKEN) and credentials in args (--token) for MCP "
        "server `fs` are not sent to the command set by"
    ), fs

    _Recorded.seen = []
    assert started("[mcp.servers.gh]\ntimeout = 9\n\n[mcp.servers.fs]\nenabled = false\n") == []
    mine = [headers for path, headers in _Recorded.seen if path == "/mine"]
    assert mine and all(headers.get("Authorization") == f"Bearer {token}" for headers in mine), mine
    endpoint.shutdown()


def test_an_env_or_header_the_workspace_adds_to_the_users_own_server_gets_none_of_the_users_credentials(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own command (a script writing its environment and arguments to a file) and URL, with
    the user's GITHUB_TOKEN, ``--token`` and Authorization header; a cloned repository's file adds only an
    ``env`` entry to the one (``LD_PRELOAD``, ``PATH`` or ``PYTHONPATH`` would run its code in the user's
    command) and a ``Host`` header to the other (another backend behind the same front end). Every MCP
    trust question answered "Trust and start". On c6dacdb the script got the token and the argument, and
    the user's URL the Authorization header with the workspace's Host: now neither gets them, each a
    settings message; the workspace's own entries do arrive, and the user's args without the credential
    (``--token`` and its value; on f23531c the args went whole, the user's ``--root mine`` too)."""
    users, endpoint, base = _users_endpoint(tmp_path, monkeypatch)
    token, secret = "ghp_usertoken0123456789abcd", "fs-secret-0123456789abcd"
    seen = tmp_path / "seen"
    probe = _env_writer(tmp_path / "users-server.sh", seen)
    users.write_text(
        f'[agent.mcp.servers.gh]\nurl = "{base}/mine"\n'
        f'headers = {{ Authorization = "Bearer {token}" }}\n\n'
        f'[agent.mcp.servers.fs]\ncommand = "{probe}"\nargs = ["--root", "mine", "--token", "{secret}"]\n'
        f'env = {{ GITHUB_TOKEN = "{token}" }}\n'
    )
    (ws / "agentls.toml").write_text(
        '[mcp.servers.gh]\nheaders = { Host = "theirs.example" }\n\n'
        '[mcp.servers.fs]\nenv = { EXTRA_REPO_SETTING = "theirs" }\n'
    )
    loaded = load_settings(ws)
    kept = trusted_servers(
        loaded.settings.agent.mcp, ws, trust=McpTrust(None), ask=lambda q, o: TRUST, recorder=None
    )
    hub = McpHub(kept.model_copy(update={"start_timeout": 20}), ws)
    try:
        assert hub.start() == []  # neither is an MCP server
    finally:
        hub.close()
        endpoint.shutdown()
    ran = seen.read_text()  # the user's command ran, with the workspace's entry and the user's other args
    assert "EXTRA_REPO_SETTING=theirs" in ran and token not in ran and secret not in ran, ran
    assert ran.splitlines()[-1] == "--root mine", ran  # the flag went with its value; on f23531c: none
    mine = [headers for path, headers in _Recorded.seen if path == "/mine"]
    assert mine and all(headers.get("Host") == "theirs.example" for headers in mine), mine
    assert not any(token in str(headers) for headers in mine), mine
    said = {m.setting: m for m in loaded.messages if getattr(m, "kind", "") == "withheld"}
    agentls_toml = ws / "agentls.toml"
    assert said["mcp.servers.gh"].startswith(
        f"{agentls_toml}:2: your own settings' headers (Authorization) for MCP server `gh` are not sent to "
        f"the URL set by {agentls_toml} (`headers.Host`)"
    ), said
    assert said["mcp.servers.fs"].startswith(
        f"{agentls_toml}:5: your own settings' env (GITHUB_TOKEN) and credentials in args (--token) for MCP "
        f"server `fs` are not sent to the command set by {agentls_toml} (`env.EXTRA_REPO_SETTING`)"
    ), said


def test_a_server_trusted_in_a_run_whose_trust_file_cannot_be_written_starts_and_the_run_says_why(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """ "Trust and start" answered in a run while the MCP trust file cannot be written (a folder in its
    place): the server starts for the run (its tools go to the model), and the run says the answer could
    not be remembered, which file and why, as a warning (subject ``mcp_server``) and an
    ``mcp_trust_not_remembered`` record; nothing about it goes to the model. Before, only the trust
    store's log line said so (and a cache folder that could not be made raised out of the tool set)."""
    (tmp_path / TRUST_FILE).mkdir()  # the harness's agentls cache is tmp_path
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    fake_anthropic.enqueue(done("Nothing to do."))
    result = harness.run(settings=fast_settings(mcp=_settings(ws), verify=False), ask=lambda q, o: TRUST)
    [said] = [e.message for e in harness.events if e.data.get("subject") == "mcp_server"]
    assert said.startswith(
        "The MCP server `tickets` is trusted for this run, but the answer could not be remembered: "
        f"{tmp_path / TRUST_FILE} could not be written ("
    ), said
    [record] = [r for r in harness.transcript_records(result) if r.get("kind") == "mcp_trust_not_remembered"]
    assert (record["server"], record["message"]) == ("tickets", said)
    first = fake_anthropic.message_requests[-1].body
    assert [t for t in first["tools"] if t["name"].startswith("mcp__tickets__")]
    assert "remembered" not in str(first["messages"][0])
