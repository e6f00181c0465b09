"""`agentls acp` as a real process, driven by a client written with the ACP Python SDK's client side,
against the fake Messages API: prompt -> plan, tool calls, the proposal's diff -> permission -> the edit
written through the client's fs/write_text_file (or to disk); reject writes nothing; cancel stops the run.
Everything else is real (index, overlay, sandbox, verification).

Each `agentls acp` process is started with `_spawn`, which closes its asyncio transport before the event
loop ends; every test ends by collecting garbage and fails if a ``__del__`` raised (see `_spawn`, and
``nothing_raises_in_a_finalizer`` in tests/server/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from acp import PROTOCOL_VERSION, resource_link_block, spawn_agent_process, text_block
from acp.client.connection import ClientSideConnection
from acp.interfaces import Client
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

from tests.agent.agent_harness import BAD_BODY, GOOD_BODY, STUB_BODY, copy_workspace, done, replace, view
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, fault_429, slow, text, tool_use, turn

pytestmark = pytest.mark.usefixtures("nothing_raises_in_a_finalizer")

AGENT_TOML = """\
[agent]
max_steps = 10

[agent.model]
max_retries = 1
retry_base_delay = 0.01
retry_max_delay = 0.05
timeout = 30

[agent.sandbox]
timeout_seconds = 20
"""


UPDATE_SECONDS = 180.0
"""How long `RecordingClient.until` waits for an update: a run's first tool call comes after the index is
built and a model turn, on a loaded 2-core machine (the test's own timeout is 300 s)."""


class RecordingClient:
    """An ACP client: records updates, answers permission with `choice`, serves fs from `buffers`/disk."""

    def __init__(self, choice: str | None, buffers: dict[str, str] | None = None) -> None:
        self.choice = choice
        self.buffers = buffers or {}
        self.updates: list[Any] = []
        self.permissions: list[Any] = []
        self.writes: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self._waiting: list[tuple[Callable[[Any], bool], asyncio.Future[None]]] = []

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        self.permissions.append((tool_call, options))
        if self.choice is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=self.choice))

    async def session_update(self, session_id: str, update: Any, **kw: Any) -> None:
        self.updates.append(update)
        for wanted, arrived in self._waiting:
            if not arrived.done() and wanted(update):
                arrived.set_result(None)

    async def until(self, wanted: Callable[[Any], bool], seconds: float = UPDATE_SECONDS) -> None:
        """Wait until an update `wanted` holds for has come (at once when one has), woken by its arrival;
        fail after `seconds`, naming the updates that came."""
        if any(wanted(update) for update in self.updates):
            return
        waiter = (wanted, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            await asyncio.wait_for(waiter[1], seconds)
        except TimeoutError:
            raise AssertionError(
                f"the update waited for did not come in {seconds} s: {self.updates}"
            ) from None
        finally:
            self._waiting.remove(waiter)

    async def write_text_file(self, session_id: str, path: str, content: str, **kw: Any) -> Any:
        self.writes.append((path, content))
        Path(path).write_text(content)
        return WriteTextFileResponse()

    async def read_text_file(self, session_id: str, path: str, **kw: Any) -> Any:
        self.reads.append(path)
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        return ReadTextFileResponse(content=Path(path).read_text())

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    def on_connect(self, conn: Any) -> None:
        pass

    def kinds(self) -> list[str]:
        return [str(getattr(u, "session_update", "")) for u in self.updates]


def _command() -> tuple[str, list[str]]:
    agentls = shutil.which("agentls")
    return (agentls, ["acp"]) if agentls else (sys.executable, ["-m", "server.cli", "acp"])


EXIT_SECONDS = 60.0
"""How long `_spawn` waits for ``agentls acp`` to end once its input is closed (and again after SIGTERM)
before it escalates: the SDK's own 2 s (then SIGTERM, 2 s more, then SIGKILL) is shorter than the exit of
a process that ran an agent on a loaded machine (4-5 s measured at load 15-19 after a run), and SIGKILL
loses what the process writes as it ends (`server.acp.AgentlsAcpAgent.close`)."""


@contextlib.asynccontextmanager
async def _spawn(
    client: Any, command: str, args: list[str], env: dict[str, str], cwd: Path
) -> AsyncIterator[tuple[ClientSideConnection, asyncio.subprocess.Process]]:
    """`acp.spawn_agent_process`, then the process's transport closed while the event loop still runs.

    The SDK waits for the process, and on CPython 3.11 that wait returns at once, before its stdout and
    stderr pipes reach their end, when the loop has already seen the process exit; so a pipe can still
    be open when ``asyncio.run`` closes the loop. The transport is then closed by its
    ``__del__`` whenever the garbage collector gets to it (it sits in a reference cycle), where
    ``call_soon`` on the closed loop raises ``RuntimeError('Event loop is closed')`` into
    ``sys.unraisablehook``. pytest's hook formats that traceback, which on CPython 3.11 calls
    ``ast.parse``; if the collection ran inside another ``ast.parse`` (pytest rewriting a module it
    imports, as hypothesis's plugin does at the session's end), CPython's AST constructor counter is
    left unbalanced and the outer parse fails with ``SystemError: AST constructor recursion depth
    mismatch``: pytest crashed after the file's tests had all passed.

    At the end the SDK closes the process's input and waits for it to exit: up to `EXIT_SECONDS`, so a
    test sees how the process ends by itself, not a signal the SDK sent because the machine was busy."""
    process = None
    spawned = spawn_agent_process(
        cast(Client, client),
        command,
        *args,
        env=env,
        cwd=cwd,
        transport_kwargs={"shutdown_timeout": EXIT_SECONDS},
    )
    try:
        async with spawned as (conn, process):
            yield conn, process
    finally:
        if process is not None:
            # asyncio.subprocess.Process has no public close; its transport is the one the loop owns.
            transport: asyncio.SubprocessTransport = process._transport  # type: ignore[attr-defined]
            transport.close()
            await asyncio.sleep(0)  # the pipes' connection_lost callbacks run on this loop


def test_spawn_closes_the_transport_of_a_process_whose_pipes_outlive_it(tmp_path: Path) -> None:
    """A process that has exited, as the loop has seen, while a child of its still holds its stdout and
    stderr: `_spawn` closes the transport on the loop, so nothing is left for the garbage collector to
    close on a closed loop (with `acp.spawn_agent_process` alone, ``nothing_raises_in_a_finalizer``
    fails this test)."""

    async def run() -> None:
        command = ["-c", "sleep 5 & exit 0"]
        async with _spawn(RecordingClient(None), "sh", command, dict(os.environ), tmp_path) as (_, process):
            while process.returncode is None:
                await asyncio.sleep(0.02)

    asyncio.run(run())


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(AGENT_TOML)
    return root


def _env(fake: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(
        ANTHROPIC_API_KEY=FAKE_API_KEY, ANTHROPIC_BASE_URL=fake.url, AGENTLS_CACHE_DIR=str(tmp_path / "cache")
    )
    return env


async def _prompt(
    client: RecordingClient,
    root: Path,
    env: dict[str, str],
    fs: bool,
    cancel_when: Callable[[Any], bool] | None = None,
    attach: Path | None = None,
) -> str:
    """Prompt `agentls acp` (spawned as an editor does) to implement `mean`; its stop reason.
    `cancel_when`: ``session/cancel`` once an update it holds for has come (`RecordingClient.until`)."""
    command, args = _command()
    async with _spawn(client, command, args, env, root) as (conn, _):
        init = await conn.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs)
            ),
        )
        assert init.agent_info is not None and init.agent_info.name == "agentls"
        session = await conn.new_session(cwd=str(root), mcp_servers=[])
        blocks: list[Any] = [text_block("Implement mean in mathx/stats.py")]
        if attach is not None:
            blocks.append(resource_link_block(attach.name, attach.as_uri()))
        request = asyncio.ensure_future(conn.prompt(session_id=session.session_id, prompt=blocks))
        if cancel_when is not None:
            await client.until(cancel_when)
            await conn.cancel(session_id=session.session_id)
        reply = await asyncio.wait_for(request, 150)
        return str(reply.stop_reason)


def _script(fake: FakeAnthropic) -> None:
    fake.enqueue(
        turn(text("Spec: mean averages, [] raises ValueError.\nPlan: edit the stub."), view()),
        replace(STUB_BODY, GOOD_BODY),
        done("Implemented `mean`."),
    )


def test_prompt_streams_tool_calls_asks_permission_and_writes_through_the_client(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    _script(fake_anthropic)
    stats = ws / "mathx" / "stats.py"
    client = RecordingClient("allow")
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True))

    assert stop == "end_turn"
    kinds = client.kinds()
    assert "plan" in kinds and "agent_message_chunk" in kinds
    calls = [u for u in client.updates if getattr(u, "session_update", "") == "tool_call"]
    assert any(u.kind == "read" and u.locations and u.locations[0].path == str(stats) for u in calls)
    assert any(u.kind == "edit" and u.title.startswith("str_replace") for u in calls)
    done_updates = [u for u in client.updates if getattr(u, "session_update", "") == "tool_call_update"]
    assert any(u.status == "completed" for u in done_updates)
    # rawOutput is the tool's whole output (the view of the file), not its first line
    viewed = str(done_updates[0].raw_output)
    assert "def clamp" in viewed and "raise NotImplementedError" in viewed, viewed
    proposal = [u for u in calls if str(u.tool_call_id).startswith("proposal-")]
    assert len(proposal) == 1 and proposal[0].content is not None
    diff = proposal[0].content[0]
    assert diff.type == "diff" and diff.path == str(stats) and "return sum(values)" in diff.new_text
    assert diff.old_text is not None and STUB_BODY in diff.old_text
    # permission came before any write, naming the file; the write went through the client
    assert len(client.permissions) == 1 and "mathx/stats.py" in client.permissions[0][0].title
    assert [path for path, _ in client.writes] == [str(stats)]
    assert str(stats) in client.reads  # the current text came from the client before writing
    assert "return sum(values) / len(values)" in stats.read_text()
    # the user's answer is in the run's transcript, after its end, and `agentls runs` shows it
    proposal, (answer, applied) = _after_the_run(tmp_path)
    assert (answer["type"], answer["subject"], answer["detail"]) == (
        "approval",
        "proposal",
        proposal["proposal_id"],
    )
    assert (answer["outcome"], answer["answer"], answer["approved"]) == ("allowed", "Apply the changes", True)
    assert answer["files"] == ["mathx/stats.py"] and answer["asked_at"] and "reason" not in answer
    assert answer["question"] == client.permissions[0][0].title
    assert (applied["type"], applied["kind"], applied["proposal_id"]) == (
        "decision",
        "proposal_applied",
        proposal["proposal_id"],
    )
    assert (applied["written"], applied["error"]) == (["mathx/stats.py"], None)
    row, shown = _listed_and_shown(_env(fake_anthropic, tmp_path), proposal["run_id"])
    assert "proposed, applied" in row, row
    assert 'Answer:  allowed ("Apply the changes") at ' in shown and "Written: mathx/stats.py" in shown, shown


def _after_the_run(tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The proposal of the one run that made one (its run's id added), and the records after that run's
    ``run_end``: what the user did with the proposal."""
    [records] = [run for run in _runs(tmp_path) if any(record["type"] == "proposal" for record in run)]
    end = max(at for at, record in enumerate(records) if record["type"] == "run_end")
    [proposal] = [record for record in records if record["type"] == "proposal"]
    assert all(record["t"] >= records[end]["t"] for record in records[end + 1 :])  # `t` goes on
    return {**proposal, "run_id": records[0]["run_id"]}, records[end + 1 :]


def _listed_and_shown(env: dict[str, str], run_id: str) -> tuple[str, str]:
    """The run's line in `agentls runs`, and `agentls runs RUN_ID`."""
    out = [
        subprocess.run(
            [*_command_line(), "runs", *ids], env=env, capture_output=True, text=True, timeout=120, check=True
        ).stdout
        for ids in ([], [run_id])
    ]
    [row] = [line for line in out[0].splitlines() if line.startswith(run_id)]
    return row, out[1]


def test_a_reply_without_tool_calls_is_the_message_not_a_plan(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    answer = "mean is still a stub: it raises NotImplementedError."
    fake_anthropic.enqueue(text(answer))
    client = RecordingClient("allow")
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True))

    assert stop == "end_turn"
    assert "plan" not in client.kinds(), client.updates
    said = [str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates]
    assert sum(answer in line for line in said) == 1, said
    assert client.permissions == [] and client.writes == []


def test_the_runs_warnings_reach_the_user_as_messages_of_their_own(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """An MCP server that cannot start and the fallback Python that runs the tests (the workspace has no
    environment of its own) are said to the ACP user, as `agentls run` says them on stderr."""
    from agent.mcp.config import McpServerSettings
    from agent.mcp.trust import TRUST_FILE, McpTrust

    (ws / "agentls.toml").write_text(
        AGENT_TOML + '\n[mcp.servers.tracker]\ncommand = "/nonexistent/mcp-server"\n'
    )
    McpTrust(tmp_path / "cache" / TRUST_FILE).remember(
        ws, "tracker", McpServerSettings(command="/nonexistent/mcp-server")
    )
    answer = "mean is still a stub."
    fake_anthropic.enqueue(text(answer))
    client = RecordingClient("allow")
    assert asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True)) == "end_turn"

    warnings = {
        u.field_meta["agentls"]["subject"]: u.content.text
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk"
        and (u.field_meta or {}).get("agentls", {}).get("kind") == "warning"
    }
    assert set(warnings) == {"mcp_server", "interpreter"}, client.updates
    assert warnings["mcp_server"].strip().startswith("warning: The MCP server `tracker` could not start")
    assert "/nonexistent/mcp-server" in warnings["mcp_server"]
    assert warnings["interpreter"].strip().startswith("warning: ")
    said = [str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates]
    assert said.index(warnings["mcp_server"]) < said.index(answer)  # told before the run's answer


def test_an_mcp_server_the_user_did_not_trust_is_a_warning(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Through the real ``agentls acp`` process: the workspace's MCP server is asked about with
    ``session/request_permission`` before the run (`server.acp`); a client that closes the question without
    a choice leaves it out (it does not run), and the user is told which server, why and how to trust it,
    as a warning message of its own. tests/server/test_acp_settings_trust.py has the other answers."""
    from server.acp import DONT_START_MCP, TRUST_MCP

    marker = tmp_path / "server-ran"
    (ws / "agentls.toml").write_text(
        AGENT_TOML + f'\n[mcp.servers.tracker]\ncommand = "{sys.executable}"\n'
        f'args = ["-c", "open({str(marker)!r}, \'w\')"]\n'
    )
    fake_anthropic.enqueue(text("mean is still a stub."))
    client = RecordingClient(None)  # the question closed without a choice
    assert asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True)) == "end_turn"

    [(_tool_call, options)] = client.permissions
    assert [o.option_id for o in options] == [TRUST_MCP, DONT_START_MCP]
    warnings = [
        u.content.text.strip()
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk"
        and (u.field_meta or {}).get("agentls", {}).get("subject") == "mcp_server"
    ]
    assert warnings == [
        "warning: The MCP server `tracker` was not started: it is not trusted in this workspace, and the "
        "question whether to trust it got no answer (the editor's question was closed without a choice). Its "
        f"tools are left out of this run. To trust it, run `agentls mcp --trust --path {ws}` in a terminal "
        '(or answer "Trust and start" when a run asks).'
    ], client.updates
    assert not marker.exists()


def test_raw_output_is_the_whole_output_bounded_with_a_note() -> None:
    from server.acp import RAW_OUTPUT_CHARS, _raw_output

    assert _raw_output("line 1\nline 2\n") == "line 1\nline 2\n"
    long = "x" * (RAW_OUTPUT_CHARS + 500)
    cut = _raw_output(long)
    assert cut.startswith("x" * RAW_OUTPUT_CHARS) and len(cut) < RAW_OUTPUT_CHARS + 100
    assert "500 more characters cut" in cut


def test_a_delegated_sub_agents_tool_calls_each_end_with_their_own_output(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    report = "mean is the stub in mathx/stats.py; clamp is beside it."
    fake_anthropic.enqueue(
        turn(
            text("Plan: ask where mean is, then implement it."),
            tool_use("delegate", {"task": "Where is mean?"}),
        ),
        view(),  # the sub-agent's call, between the run's delegate call and its result
        text(report),  # the sub-agent's report: the delegate call's output
        replace(STUB_BODY, GOOD_BODY),
        done("Implemented `mean`."),
    )
    client = RecordingClient("allow")
    assert asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True)) == "end_turn"

    calls = [
        u
        for u in client.updates
        if getattr(u, "session_update", "") == "tool_call" and not str(u.tool_call_id).startswith("proposal-")
    ]
    ended = {
        u.tool_call_id: u
        for u in client.updates
        if getattr(u, "session_update", "") == "tool_call_update" and u.status in ("completed", "failed")
    }
    titles = [c.title.split(" ", 1)[0] for c in calls]
    assert titles == ["delegate:", "[explore]", "str_replace", "Verifying"]  # the run's checks come last
    assert {c.tool_call_id for c in calls} <= set(ended)  # every call ends
    delegate, viewed, _, _ = calls
    assert report in str(ended[delegate.tool_call_id].raw_output)
    assert "def clamp" in str(ended[viewed.tool_call_id].raw_output)


def test_reject_writes_nothing(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> None:
    _script(fake_anthropic)
    stats = ws / "mathx" / "stats.py"
    before = stats.read_text()
    client = RecordingClient("reject")
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=False))

    assert stop == "end_turn"
    assert len(client.permissions) == 1
    assert client.writes == [] and stats.read_text() == before
    assert any(
        "nothing was written" in str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates
    )
    proposal, [answer] = _after_the_run(tmp_path)  # no proposal_applied: nothing was to be written
    assert (answer["subject"], answer["detail"], answer["outcome"]) == (
        "proposal",
        proposal["proposal_id"],
        "rejected",
    )
    assert (answer["answer"], answer["approved"], answer["files"]) == ("Reject", False, ["mathx/stats.py"])
    row, shown = _listed_and_shown(_env(fake_anthropic, tmp_path), proposal["run_id"])
    assert "proposed, rejected" in row and 'Answer:  rejected ("Reject") at ' in shown, (row, shown)
    assert "Written:" not in shown


class FailingWriteClient(RecordingClient):
    """Allows the proposal; its fs/write_text_file fails with a message that holds a token and the API
    key."""

    async def write_text_file(self, session_id: str, path: str, content: str, **kw: Any) -> Any:
        from acp import RequestError

        raise RequestError(-32603, f"cannot write {path}: quota of {TOKEN} and {FAKE_API_KEY} exceeded")


TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345"


def test_an_allowed_proposal_that_could_not_be_written_is_on_record_secrets_withheld(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """The user allows the proposal, and the editor fails to write it: the transcript has the answer
    ("allowed") and what came of it (nothing written, the editor's error), with the token and the API
    key the error carried withheld, as in the run's own records."""
    _script(fake_anthropic)
    before = (ws / "mathx" / "stats.py").read_text()
    client = FailingWriteClient("allow")
    assert asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True)) == "end_turn"
    assert (ws / "mathx" / "stats.py").read_text() == before
    proposal, [answer, applied] = _after_the_run(tmp_path)
    assert (answer["outcome"], answer["approved"]) == ("allowed", True)
    assert applied["written"] == [] and "quota of" in applied["error"] and "exceeded" in applied["error"]
    on_disk = json.dumps(_runs(tmp_path))
    assert TOKEN not in on_disk and FAKE_API_KEY not in on_disk, applied["error"]
    row, shown = _listed_and_shown(_env(fake_anthropic, tmp_path), proposal["run_id"])
    assert "proposed, allowed, not written" in row and "Written: nothing (" in shown, (row, shown)


def test_allow_without_client_fs_writes_to_disk(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    _script(fake_anthropic)
    client = RecordingClient("allow")
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=False))
    assert stop == "end_turn" and client.writes == [] and client.reads == []
    assert "return sum(values) / len(values)" in (ws / "mathx" / "stats.py").read_text()


def test_cancel_stops_the_run_and_writes_nothing(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """The cancel comes once the run's first tool call (``view``) has ended: the run is under way, its next
    model reply (60 s, the edit) asked for or about to be. Before, it came after a fixed 8 s sleep, which a
    loaded machine could spend before the run got there (or an idle one well after)."""
    before = (ws / "mathx" / "stats.py").read_text()
    fake_anthropic.enqueue(turn(text("Plan: look first."), view()), slow(60, replace(STUB_BODY, GOOD_BODY)))
    client = RecordingClient("allow")

    def viewed(update: Any) -> bool:
        return (
            getattr(update, "session_update", "") == "tool_call_update"
            and update.tool_call_id.startswith("tool-")
            and update.status == "completed"
        )

    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True, cancel_when=viewed))
    assert stop == "cancelled"
    assert any(viewed(update) for update in client.updates)
    assert client.permissions == [] and client.writes == []
    assert (ws / "mathx" / "stats.py").read_text() == before


@pytest.mark.skipif(shutil.which("acplint") is None, reason="acplint (PyPI) is not installed")
def test_acplint_initialization_and_sessions(ws: Path, tmp_path: Path) -> None:
    command, args = _command()
    out = tmp_path / "acplint.json"
    run = subprocess.run(
        [
            "acplint",
            "--agent",
            command,
            "--agent-args",
            " ".join(args),
            "--cwd",
            str(ws),
            "--categories",
            "initialization",
            "session_lifecycle",
            "schema_validation",
            "--output",
            "json",
            "--output-file",
            str(out),
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert out.exists(), run.stdout + run.stderr
    results = json.loads(out.read_text())["results"]
    failed = {r["name"]: r["message"] for r in results if r["status"] != "PASS"}
    # acplint 0.1.0 wants protocolVersion as the string "1"; the ACP schema (and the SDK) say integer
    # (uint16), which is what agentls answers. Those three checks are acplint's disagreement, every
    # other check must pass.
    assert set(failed) <= {"initialize_v1", "protocol_version_returned", "schema_initialize"}, failed
    assert all("protocolVersion" in message for message in failed.values()), failed
    assert sum(r["status"] == "PASS" for r in results) >= 10, results


def test_an_attached_file_is_read_through_the_client_with_its_unsaved_edits(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    _script(fake_anthropic)
    stats = ws / "mathx" / "stats.py"
    on_disk = stats.read_text()
    unsaved = "# an unsaved note in the editor\n" + on_disk
    client = RecordingClient("allow", buffers={str(stats): unsaved})
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True, attach=stats))

    assert stop == "end_turn"
    assert client.reads and client.reads[0] == str(stats)  # read through the client before the run
    sent = json.dumps([r.body for r in fake_anthropic.message_requests], default=dict)
    assert "an unsaved note in the editor" in sent  # the agent saw the buffer, not the disk
    ((path, content),) = client.writes
    assert path == str(stats) and content.startswith("# an unsaved note in the editor\n")
    assert "return sum(values) / len(values)" in content


async def _new_sessions(home: Path, env: dict[str, str], cwds: list[str]) -> list[str | Exception]:
    """``session/new`` for each cwd from one `agentls acp` process: a session id, or the error."""
    command, args = _command()
    answers: list[str | Exception] = []
    async with _spawn(RecordingClient(None), command, args, env, home) as (conn, _):
        await conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=ClientCapabilities())
        for cwd in cwds:
            try:
                answers.append((await conn.new_session(cwd=cwd, mcp_servers=[])).session_id)
            except Exception as error:  # the SDK raises the agent's JSON-RPC error
                answers.append(error)
    return answers


def test_a_session_on_a_home_folder_or_root_follows_the_language_servers_rule(tmp_path: Path) -> None:
    """session/new from the Python SDK's client: a relative cwd, one that is no folder here, ``/`` and a
    home folder without an index are refused with an error whose message says why and what to do; a home
    folder is a session once its agentls.toml sets ``server.index_home_or_root`` or once it has an index
    (`agentls index ~`), as in the language server and the CLI."""
    from acp import RequestError

    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "todo.py").write_text("def remember_the_milk() -> None:\n    pass\n")
    (home / "proj" / ".git").mkdir(parents=True)
    env = {**os.environ, "HOME": str(home), "AGENTLS_CACHE_DIR": str(tmp_path / "cache")}
    cwds = ["notes", str(tmp_path / "gone"), "/", str(home), str(home / "notes"), str(home / "proj")]

    relative, gone, root, whole, notes, proj = asyncio.run(_new_sessions(home, env, cwds))
    for refused in (relative, gone, root, whole):
        assert isinstance(refused, RequestError), refused
        assert refused.code == -32602 and refused.data == {"message": str(refused)}
    assert "relative path" in str(relative) and "not a folder on this machine" in str(gone)
    assert "agentls does not index /: it is the root folder" in str(root)
    said = str(whole)
    assert f"agentls does not index {home}: it is your home folder" in said, said
    assert f"`server.index_home_or_root = true` (in {home / 'agentls.toml'})" in said, said
    assert f"`agentls index {home}`" in said and "Start the session in a project's folder" in said, said
    assert isinstance(notes, str) and isinstance(proj, str)  # a folder in the home folder is its own

    (home / "agentls.toml").write_text("[server]\nindex_home_or_root = true\n")
    (allowed,) = asyncio.run(_new_sessions(home, env, [str(home)]))
    assert isinstance(allowed, str), allowed

    # `agentls index ~`: indexing it on purpose, which the message suggests.
    (home / "agentls.toml").write_text('[index.embedding]\nprovider = "none"\n')
    subprocess.run([*_command_line(), "index", str(home)], env=env, check=True, capture_output=True)
    (indexed,) = asyncio.run(_new_sessions(home, env, [str(home)]))
    assert isinstance(indexed, str), indexed


def _command_line() -> list[str]:
    """The agentls command `_command` runs, without its ``acp``."""
    command, args = _command()
    return [command, *args[:-1]]


# -- a session over several prompts ---------------------------------------------------------------------


class HeldPermissionClient(RecordingClient):
    """A client whose user has not answered the permission request yet: `answer` settles it."""

    def __init__(self) -> None:
        super().__init__("allow")
        self.asked = asyncio.Event()
        self.answer: asyncio.Future[Any] | None = None

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        self.permissions.append((tool_call, options))
        self.answer = asyncio.get_running_loop().create_future()
        self.asked.set()
        return await self.answer


async def _in_one_process(
    client: RecordingClient, root: Path, env: dict[str, str], body: Any, cwd: Path | None = None
) -> Any:
    """initialize, session/new on `cwd` (default: `root`), then ``body(conn, session_id)``, all in one
    `agentls acp` process."""
    command, args = _command()
    async with _spawn(client, command, args, env, root) as (conn, _):
        await conn.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=True, write_text_file=True)
            ),
        )
        session = await conn.new_session(cwd=str(cwd or root), mcp_servers=[])
        return await body(conn, session.session_id)


def _first_requests(fake: FakeAnthropic) -> list[str]:
    """The first model request of each run, as JSON text: the task the run was given."""
    return [
        json.dumps(r.body["messages"], default=dict)
        for r in fake.message_requests
        if len(r.body["messages"]) == 1
    ]


def _said(client: RecordingClient) -> list[str]:
    return [
        str(u.content.text)
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk" and not u.field_meta
    ]


async def _until_a_tool_call(
    client: RecordingClient, prefix: str = "", seconds: float = UPDATE_SECONDS
) -> None:
    """Wait for a tool call (whose id starts with `prefix`: "tool-" for the run's own, not a question): woken
    when it comes (`RecordingClient.until`), not by polling."""

    def tool_call(update: Any) -> bool:
        return getattr(update, "session_update", "") == "tool_call" and update.tool_call_id.startswith(prefix)

    await client.until(tool_call, seconds)


def test_waiting_for_a_tool_call_is_woken_by_its_update_and_fails_when_none_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_until_a_tool_call` waits on the update's arrival, not in a loop of sleeps (it polled every 0.1 s
    for 60 s): with asyncio.sleep refused it returns once the run's tool call comes (a question's before it
    does not count), at once for one already there, and fails naming the updates when none comes."""
    from acp import start_tool_call

    def no_sleep(*_: Any) -> Any:
        raise AssertionError("polled with asyncio.sleep")

    yield_to_the_loop = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    client = RecordingClient(None)
    question = start_tool_call("settings-trust-1", "Trust?", kind="other", status="pending")
    run_call = start_tool_call("tool-2", "Read mathx/stats.py", kind="read", status="pending")

    async def go() -> list[str]:
        waiting = asyncio.ensure_future(_until_a_tool_call(client, "tool-"))
        await client.session_update("s", question)
        for _ in range(3):
            await yield_to_the_loop(0)
        assert not waiting.done()  # a question's tool call is not the run's
        await client.session_update("s", run_call)
        await waiting
        await _until_a_tool_call(client, "tool-")  # already there
        with pytest.raises(AssertionError, match=r"did not come in 0\.01 s") as failed:
            await _until_a_tool_call(client, "verify-", seconds=0.01)
        return [str(failed.value), *(u.tool_call_id for u in client.updates)]

    said, *ids = asyncio.run(go())
    assert ids == ["settings-trust-1", "tool-2"] and "tool-2" in said


def test_a_follow_up_prompt_knows_what_came_before_in_the_session(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Zed and JetBrains show a session as one conversation: after a rejected proposal, "try again
    differently" must reach the model with the first request and the change the user rejected."""
    _script(fake_anthropic)
    fake_anthropic.enqueue(text("I will keep the empty case apart this time."))
    client = RecordingClient("reject")

    async def body(conn: Any, session_id: str) -> list[str]:
        stops = []
        for words in ("Implement mean in mathx/stats.py", "try again differently"):
            reply = await conn.prompt(session_id=session_id, prompt=[text_block(words)])
            stops.append(str(reply.stop_reason))
        return stops

    assert asyncio.run(_in_one_process(client, ws, _env(fake_anthropic, tmp_path), body)) == [
        "end_turn",
        "end_turn",
    ]
    first, second = _first_requests(fake_anthropic)
    assert "Earlier in this conversation" not in first
    assert "try again differently" in second and "Earlier in this conversation" in second
    assert "Implement mean in mathx/stats.py" in second  # the first request
    assert "The user rejected it: nothing was written." in second
    assert "return sum(values) / len(values)" in second  # the rejected change itself


async def _until_the_script_has(fake: FakeAnthropic, left: int, seconds: float = UPDATE_SECONDS) -> None:
    """Wait until the fake model's script has only `left` replies not taken by a request. A test that
    cancels a run while it waits for a slow reply waits for that reply to be taken first: a cancel sent
    before the run's request reached the fake left the slow reply to the next prompt's run, which then
    waited 30 s for it (the SDK's read timeout) before asking again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while fake.pending > left:
        if loop.time() > deadline:
            raise AssertionError(
                f"the fake model's script still has {fake.pending} replies after {seconds:.0f} s"
            )
        await asyncio.sleep(0.05)  # polled: the fake has no event to wait on


def test_a_prompt_sent_right_after_cancel_runs(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Zed sends the next prompt right after session/cancel, before the cancelled run has stopped: it
    waits for that run to end, then runs (it was refused as 'Invalid request')."""
    fake_anthropic.enqueue(turn(text("Plan: look first."), view()), slow(60, replace(STUB_BODY, GOOD_BODY)))
    fake_anthropic.enqueue(text("Hello again."))
    client = RecordingClient("allow")

    async def body(conn: Any, session_id: str) -> list[str]:
        first = asyncio.ensure_future(
            conn.prompt(session_id=session_id, prompt=[text_block("Implement mean in mathx/stats.py")])
        )
        await _until_a_tool_call(client)
        await _until_the_script_has(fake_anthropic, 1)  # the run waits for its slow reply: cancel it there
        await conn.cancel(session_id=session_id)
        second = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=[text_block("say hello")]), 60
        )
        return [str((await first).stop_reason), str(second.stop_reason)]

    assert asyncio.run(_in_one_process(client, ws, _env(fake_anthropic, tmp_path), body)) == [
        "cancelled",
        "end_turn",
    ]
    assert _said(client)[-1] == "Hello again."
    assert client.writes == [] and client.permissions == []


def test_while_the_permission_request_is_open_another_prompt_is_refused_and_cancel_writes_nothing(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """A second prompt while the first one waits for the user's permission is refused with a message that
    says so (it started a second run in the same session); cancel then answers the first prompt
    "cancelled", says so (not "rejected"), writes nothing, and the next prompt runs."""
    from acp import RequestError
    from acp.schema import DeniedOutcome

    _script(fake_anthropic)
    fake_anthropic.enqueue(text("Hello again."))
    before = (ws / "mathx" / "stats.py").read_text()
    client = HeldPermissionClient()

    async def body(conn: Any, session_id: str) -> list[str]:
        first = asyncio.ensure_future(
            conn.prompt(session_id=session_id, prompt=[text_block("Implement mean in mathx/stats.py")])
        )
        await asyncio.wait_for(client.asked.wait(), 120)
        with pytest.raises(RequestError) as refused:
            await conn.prompt(session_id=session_id, prompt=[text_block("and the docs too")])
        assert str(refused.value) == (
            "a prompt is already running in this session: wait for its answer, or cancel it first"
        )
        await conn.cancel(session_id=session_id)
        third = asyncio.ensure_future(conn.prompt(session_id=session_id, prompt=[text_block("say hello")]))
        await asyncio.sleep(0.5)  # the client answers the open request "cancelled", as ACP asks of it
        assert client.answer is not None
        client.answer.set_result(RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled")))
        return [str((await first).stop_reason), str((await asyncio.wait_for(third, 60)).stop_reason)]

    assert asyncio.run(_in_one_process(client, ws, _env(fake_anthropic, tmp_path), body)) == [
        "cancelled",
        "end_turn",
    ]
    said = _said(client)
    assert "Cancelled: nothing was written." in said and not any("Rejected" in line for line in said)
    assert said[-1] == "Hello again."
    assert len(client.permissions) == 1 and client.writes == []
    assert (ws / "mathx" / "stats.py").read_text() == before
    assert len(_first_requests(fake_anthropic)) == 2  # the refused prompt started no run
    proposal, [answer] = _after_the_run(tmp_path)  # cancelled while asked
    assert (answer["subject"], answer["detail"], answer["outcome"]) == (
        "proposal",
        proposal["proposal_id"],
        "cancelled",
    )
    assert answer["answer"] is None and answer["approved"] is False and "cancelled" in answer["reason"]


def test_errors_the_editor_shows_say_why_and_the_process_keeps_serving(ws: Path, tmp_path: Path) -> None:
    """The editor shows a JSON-RPC error's message: a missing API key or an empty prompt is said there,
    not as "Internal error" or "Invalid params"; the process then serves the next requests."""
    from acp import RequestError

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["AGENTLS_CACHE_DIR"] = str(tmp_path / "cache")

    async def body(conn: Any, session_id: str) -> list[str]:
        said = []
        for blocks in ([text_block("Implement mean")], [text_block("  ")], [text_block("Implement mean")]):
            with pytest.raises(RequestError) as error:
                await conn.prompt(session_id=session_id, prompt=blocks)
            said.append(str(error.value))
        with pytest.raises(RequestError) as error:
            await conn.prompt(session_id="no-such-session", prompt=[text_block("hello")])
        said.append(str(error.value))
        await conn.new_session(cwd=str(ws), mcp_servers=[])  # still serving
        return said

    key, empty, again, unknown = asyncio.run(_in_one_process(RecordingClient(None), ws, env, body))
    assert key.startswith("ANTHROPIC_API_KEY is missing: set it to an API key") and again == key
    assert empty == "the prompt has no text; say what the agent should do"
    assert unknown == "there is no session no-such-session; start one with session/new first"


def _runs(tmp_path: Path) -> list[list[dict[str, Any]]]:
    """The records of each transcript under the cache's runs."""
    return [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted((tmp_path / "cache" / "runs").glob("*.jsonl"))
    ]


def test_a_prompt_refused_after_its_trust_questions_leaves_them_on_record(ws: Path, tmp_path: Path) -> None:
    """No API key: the prompt is refused after the workspace's MCP server was asked about. The question and
    the answer are in a transcript of the attempt (run_start, approval, run_end "failed" with the reason),
    which `agentls runs` lists as failed; a token pasted into the prompt is withheld there, as a run's
    transcript withholds it."""
    from acp import RequestError

    from agent.transcript import list_runs
    from server.acp import DONT_START_MCP

    (ws / "agentls.toml").write_text(AGENT_TOML + '\n[mcp.servers.tracker]\ncommand = "/bin/true"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(AGENTLS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))

    token = "ghp_0123456789abcdefghijABCDEFGHIJ012345"  # pasted into the prompt: withheld on disk too

    async def body(conn: Any, session_id: str) -> str:
        with pytest.raises(RequestError) as error:
            await conn.prompt(session_id=session_id, prompt=[text_block(f"Implement mean\nwith {token}")])
        return str(error.value)

    refused = asyncio.run(_in_one_process(RecordingClient(DONT_START_MCP), ws, env, body))
    assert refused.startswith("ANTHROPIC_API_KEY is missing")
    [records] = _runs(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval", "run_end"], records
    start, approval, end = records
    assert start["task"]["title"] == "Run: Implement mean" and start["root"] == str(ws.resolve())
    assert start["settings"]["mcp"]["servers"]["tracker"]["command"] == "/bin/true"
    assert (approval["subject"], approval["detail"]) == ("mcp_server", "tracker")
    assert (approval["approved"], approval["answer"]) == (False, "Don't start")
    assert end["status"] == "failed" and end["error"] == refused
    assert token not in json.dumps(records) and "<secret:" in start["task"]["instruction"]
    [listed] = list_runs(tmp_path / "cache" / "runs")
    assert (listed.status, listed.task, listed.run_id) == ("failed", "Run: Implement mean", start["run_id"])


def test_a_run_that_fails_before_its_run_start_keeps_the_questions_asked_for_it(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """The user trusts the workspace's settings, whose role model changes the provider: no run can use
    them, and the prompt is refused before its run starts (before the index is opened), naming the file and
    line. The answer is still in a transcript of the attempt, after its run_start, and its run_end says
    why it failed."""
    from acp import RequestError

    from server.acp import TRUST_SETTINGS

    (ws / "agentls.toml").write_text(AGENT_TOML + '\n[agent.roles.solo.model]\nprovider = "openai"\n')
    line = AGENT_TOML.count("\n") + 3
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    client = RecordingClient(TRUST_SETTINGS)

    async def body(conn: Any, session_id: str) -> str:
        with pytest.raises(RequestError) as refused:
            await conn.prompt(session_id=session_id, prompt=[text_block("Implement mean")])
        return str(refused.value)

    failed = asyncio.run(_in_one_process(client, ws, env, body))
    assert fake_anthropic.message_requests == []
    assert f"{ws / 'agentls.toml'}:{line}: [agent.roles.solo.model] sets provider" in failed, failed
    [records] = _runs(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval", "run_end"], records
    start, approval, end = records
    assert start["settings"]["roles"]["solo"]["model"] == {"provider": "openai"}
    assert approval["subject"] == "settings" and approval["answer"] == "Trust these settings"
    assert approval["approved"] is True and "agent.roles.solo.model.provider" in approval["question"]
    assert end["status"] == "failed" and "a role may change the model, not the provider" in end["error"]
    assert end["error"] == failed
    # the user's setting, not a bug: the message names the file, and how to fix it
    assert "This is a bug" not in failed and str(ws / "agentls.toml") in failed, failed
    assert "remove provider from [agent.roles.solo.model]" in failed


class CancellingClient(RecordingClient):
    """The user cancels the prompt while its trust question is open (the client then answers "cancelled")."""

    conn: Any = None

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        self.permissions.append((tool_call, options))
        await self.conn.cancel(session_id=session_id)
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))


@pytest.mark.parametrize("end", ["connection closed", "SIGTERM", "session/close"])
def test_the_answers_of_a_cancelled_prompt_no_run_followed_are_on_record_when_the_process_ends(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path, end: str
) -> None:
    """A prompt cancelled while its MCP server was asked about has no run; its answer waits for the
    session's next run. None follows: when the process ends (its input closed, or SIGTERM) the answer is
    written in a transcript of the cancelled attempt, which `agentls runs` lists as cancelled; when the
    session is closed (session/close), at once, before the reply, and the process's end adds nothing."""
    from agent.transcript import list_runs

    (ws / "agentls.toml").write_text(AGENT_TOML + '\n[mcp.servers.tracker]\ncommand = "/bin/true"\n')
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    client = CancellingClient(None)

    async def go() -> tuple[str, int | None, list[list[dict[str, Any]]]]:
        command, args = _command()
        at_close: list[list[dict[str, Any]]] = []
        async with _spawn(client, command, args, env, ws) as (conn, process):
            client.conn = conn
            await conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=ClientCapabilities())
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            reply = await conn.prompt(session_id=session.session_id, prompt=[text_block("Implement mean")])
            # kept for the session's next run, and on disk meanwhile (`test_answers_survive_kill_9`)
            [pending] = _runs(tmp_path)
            assert [r["type"] for r in pending] == ["run_start", "approval"], pending
            if end == "SIGTERM":
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 60)
            elif end == "session/close":
                await conn.close_session(session_id=session.session_id)
                at_close = _runs(tmp_path)
        return str(reply.stop_reason), process.returncode, at_close

    stop, code, at_close = asyncio.run(go())
    assert stop == "cancelled" and len(client.permissions) == 1
    assert code == (143 if end == "SIGTERM" else 0)  # closing its input ends it (`_spawn` waits for it)
    assert fake_anthropic.message_requests == []
    [records] = _runs(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval", "run_end"], records
    start, approval, end_record = records
    assert start["task"]["title"] == "Run: Implement mean"
    assert (approval["subject"], approval["detail"], approval["answer"]) == ("mcp_server", "tracker", None)
    assert end_record["status"] == "cancelled" and end_record["error"] is None
    if end == "session/close":
        assert "the session was closed" in end_record["summary"] and at_close == [records]
    else:
        assert "no run followed" in end_record["summary"]
    [listed] = list_runs(tmp_path / "cache" / "runs")
    assert (listed.status, listed.task) == ("cancelled", "Run: Implement mean")


# -- session/close; answers that survive kill -9 ---------------------------------------------------------


def test_session_close_cancels_the_running_prompt_keeps_its_run_and_forgets_the_session(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """``initialize`` advertises session/close. Closing a session while its run goes cancels the run as
    session/cancel does (the prompt answers "cancelled", the run's transcript ends "cancelled" with the
    trust answer asked before it), nothing is written to the workspace; the session's id is then refused,
    saying so, by session/prompt and session/close, and the process goes on serving."""
    from acp import RequestError

    from server.acp import DONT_START_MCP

    before = (ws / "mathx" / "stats.py").read_text()
    (ws / "agentls.toml").write_text(AGENT_TOML + '\n[mcp.servers.tracker]\ncommand = "/bin/true"\n')
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    fake_anthropic.enqueue(turn(text("Plan: look first."), view()), slow(60, replace(STUB_BODY, GOOD_BODY)))
    client = RecordingClient(DONT_START_MCP)

    async def go() -> tuple[Any, str, str, list[str]]:
        command, args = _command()
        async with _spawn(client, command, args, env, ws) as (conn, _process):
            init = await conn.initialize(
                protocol_version=PROTOCOL_VERSION, client_capabilities=ClientCapabilities()
            )
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            prompt = [text_block("Implement mean in mathx/stats.py")]
            request = asyncio.ensure_future(conn.prompt(session_id=session.session_id, prompt=prompt))
            await _until_a_tool_call(client, "tool-")  # the run's: it goes on
            await conn.close_session(session_id=session.session_id)
            reply = await asyncio.wait_for(request, 60)
            refused = []
            with pytest.raises(RequestError) as error:
                await conn.prompt(session_id=session.session_id, prompt=prompt)
            refused.append(str(error.value))
            with pytest.raises(RequestError) as error:
                await conn.close_session(session_id=session.session_id)
            refused.append(str(error.value))
            await conn.cancel(session_id=session.session_id)  # a notification: nothing to answer
            assert (await conn.new_session(cwd=str(ws), mcp_servers=[])).session_id  # still serving
            return init, session.session_id, str(reply.stop_reason), refused

    init, session_id, stop, refused = asyncio.run(go())
    capabilities = init.agent_capabilities.session_capabilities
    assert capabilities is not None and capabilities.close is not None
    assert stop == "cancelled"
    gone = f"the session {session_id} was closed; start another with session/new"
    assert refused == [gone, gone]
    assert (ws / "mathx" / "stats.py").read_text() == before and client.writes == []
    [records] = _runs(tmp_path)  # the run's transcript, and no other record of the answer
    assert [r["type"] for r in records[:2]] == ["run_start", "approval"], records[:3]
    assert records[1]["answer"] == "Don't start"
    assert any(r["type"] == "tool_call" for r in records)  # the run had begun
    assert records[-1]["type"] == "run_end" and records[-1]["status"] == "cancelled"


class KillingClient(RecordingClient):
    """Answers the first trust question with `choice`; at the next one, agentls is killed (SIGKILL)."""

    process: Any = None
    killed: asyncio.Event

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        if not self.permissions:
            return await super().request_permission(session_id, tool_call, options, **kw)
        self.permissions.append((tool_call, options))
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.killed.set()
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))


def test_answers_survive_kill_9(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> None:
    """The user answers the question about the workspace's sensitive settings; agentls is killed (kill -9:
    nothing runs at exit) while the next question, about its MCP server, is open. The answer was on disk
    as soon as it was given: a record of the attempt (its run_start, the approval; no run_end), which
    `agentls runs` lists as incomplete. The password in the settings' URL and a token pasted into the
    prompt are withheld there, as in a transcript."""
    from server.acp import IGNORE_SETTINGS

    password = "gw-pass-27182818"
    token = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
    (ws / "agentls.toml").write_text(
        f'[agent.model]\nbase_url = "http://gw:{password}@127.0.0.1:9/v1"\n'
        '[mcp.servers.tracker]\ncommand = "/bin/true"\n'
    )
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    client = KillingClient(IGNORE_SETTINGS)

    async def go() -> int | None:
        client.killed = asyncio.Event()
        command, args = _command()
        with contextlib.suppress(ConnectionResetError):  # the SDK's connection, at the end: the pipe is gone
            async with _spawn(client, command, args, env, ws) as (conn, process):
                client.process = process
                await conn.initialize(
                    protocol_version=PROTOCOL_VERSION, client_capabilities=ClientCapabilities()
                )
                session = await conn.new_session(cwd=str(ws), mcp_servers=[])
                said = [text_block(f"Implement mean\nwith {token}")]
                request = asyncio.ensure_future(conn.prompt(session_id=session.session_id, prompt=said))
                await asyncio.wait_for(client.killed.wait(), 120)
                request.cancel()
                with contextlib.suppress(BaseException):
                    await request
        return client.process.returncode

    assert asyncio.run(go()) == -signal.SIGKILL
    assert len(client.permissions) == 2 and fake_anthropic.message_requests == []
    [records] = _runs(tmp_path)
    assert [r["type"] for r in records] == ["run_start", "approval"], records
    start, approval = records
    assert start["task"]["title"] == "Run: Implement mean" and start["root"] == str(ws.resolve())
    # the settings were not settled (the answer decides on the workspace's model URL): what was known, said so
    assert start["settled"].startswith("not settled: the settings without the sensitive values of"), start
    assert start["model"] and start["settings"]["model"]["model"] == start["model"]
    assert start["settings"]["model"]["base_url"] is None  # the workspace's, which the answer left out
    assert (approval["subject"], approval["answer"], approval["approved"]) == ("settings", "Ignore them", 0)
    assert "agent.model.base_url" in approval["question"]
    on_disk = json.dumps(records)
    assert password not in on_disk and token not in on_disk and "<secret:" in start["task"]["instruction"]
    listed = subprocess.run(
        [*_command_line(), "runs"], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    [line] = [line for line in listed.splitlines() if start["run_id"] in line]
    assert "incomplete" in line and "Run: Implement mean" in line, listed


_KILLED_AFTER = """
import sys
from pathlib import Path

from agent.approval import Asked
from agent.recorder import Recorder
from agent.task import Task
from agent.transcript import Transcript
from server.acp import _PendingAnswers

runs, root, run_id, stage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
task = Task(kind="run", instruction="Implement mean")
asked = Asked("mcp_server", "tracker", "Start the MCP server tracker?", False, "Don't start")
pending = _PendingAnswers(runs, root, task, None)
pending.add(asked)
pending.taken_by(run_id)
if stage != "before the run":  # the run's first record: its run_start, then the answers (start_run)
    preface = [asked.record()] if stage == "after the run's first record" else []
    recorder = Recorder(Transcript(runs, run_id, preface=preface))
    recorder.run_start(run_id=run_id, root=root, model="m", task=task, settings=None, role="solo")
print(pending.transcript.run_id)
"""
"""A process that leaves what ``agentls acp`` has on disk when it is killed at `stage` of a run that takes
an answer: the record of the answer (`server.acp._PendingAnswers`, naming the run) and the run's transcript
as `agent.runner.start_run` begins it (all of it, its run_start alone, or nothing yet)."""


@pytest.mark.parametrize(
    "stage", ["after the run's first record", "between the run's run_start and its answers", "before the run"]
)
def test_a_kill_9_after_the_run_took_the_answers_lists_one_entry(
    ws: Path, tmp_path: Path, stage: str
) -> None:
    """kill -9 after a run's transcript began (its run_start and the answers given before it, written
    together) but before its first event removed the record of the answers: both files stay. The record
    names the run that takes its answers, so `agentls runs` lists that run alone. Killed before the run's
    transcript holds the answers, the record is listed too, as incomplete: it is their only record."""
    from agent.transcript import new_run_id

    env = {**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache")}
    runs = tmp_path / "cache" / "runs"
    run_id = new_run_id()
    made = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER, str(runs), str(ws), run_id, stage],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    answers_id = made.stdout.strip()
    listed = subprocess.run(
        [*_command_line(), "runs"], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    ids = [line.split()[0] for line in listed.splitlines()[1:]]
    if stage == "after the run's first record":
        assert ids == [run_id], listed
    elif stage == "before the run":
        assert ids == [answers_id], listed
    else:
        assert sorted(ids) == sorted([run_id, answers_id]), listed
    assert all("incomplete" in line for line in listed.splitlines()[1:]), listed
    assert len(list(runs.glob("*.jsonl"))) == (1 if stage == "before the run" else 2)


def test_a_session_in_a_folder_of_the_workspace_focuses_its_runs_there(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """A session whose cwd is a folder inside the workspace runs on the whole workspace (its index, its
    tests) but tells the model that folder is the scope, as `agentls run --path FOLDER` does."""
    fake_anthropic.enqueue(text("mean is a stub."))
    client = RecordingClient("allow")

    async def body(conn: Any, session_id: str) -> str:
        reply = await conn.prompt(session_id=session_id, prompt=[text_block("what is left to do here?")])
        return str(reply.stop_reason)

    stop = asyncio.run(_in_one_process(client, ws, _env(fake_anthropic, tmp_path), body, cwd=ws / "mathx"))
    assert stop == "end_turn"
    (task,) = _first_requests(fake_anthropic)
    assert "Scope: mathx." in task, task[-1500:]


def test_the_history_a_run_is_told_is_bounded_newest_first() -> None:
    from server.acp import HISTORY_CHARS, _Exchange, _with_history

    assert _with_history("hello", []) == "hello"
    history = [_Exchange(f"request {n} " + "r" * 3000, f"outcome {n} " + "o" * 9000) for n in range(1, 6)]
    told = _with_history("the new one", history)
    assert told.startswith("the new one\n\n## Earlier in this conversation")
    assert "### Request 5" in told and "### Request 4" not in told and "(4 earlier ones left out)" in told
    assert "more characters cut" in told and len(told) < HISTORY_CHARS + 1000


def test_a_wait_before_retrying_the_model_is_told_to_the_user(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """A 429 or 529 storm can keep a prompt waiting for minutes: each wait before a retry is a warning
    message of the session (the line `agentls run` prints on stderr), not silence."""
    fake_anthropic.enqueue(fault_429(0.2), text("mean is a stub."))
    client = RecordingClient("allow")
    assert asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True)) == "end_turn"

    retries = [
        u.content.text.strip()
        for u in client.updates
        if getattr(u, "session_update", "") == "agent_message_chunk"
        and (u.field_meta or {}).get("agentls", {}).get("subject") == "model_retry"
    ]
    assert retries == [
        "warning: model rate-limited (429 too many requests); retrying in 0.2 s, attempt 2 of 2"
    ], client.updates
    said = [str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates]
    assert said.index(f"\n\n{retries[0]}\n\n") < said.index("mean is a stub.")


def test_the_verification_is_shown_as_a_command_running_then_its_outcome(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    # A first change that fails the workspace's tests (an empty list divides by zero), then the fix.
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()),
        replace(STUB_BODY, BAD_BODY),
        done("Implemented `mean`."),
        replace(BAD_BODY, GOOD_BODY),
        done("Fixed: an empty list raises ValueError."),
    )
    client = RecordingClient("allow")
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True))

    assert stop == "end_turn"
    started = [
        u
        for u in client.updates
        if getattr(u, "session_update", "") == "tool_call" and str(u.tool_call_id).startswith("verify-")
    ]
    assert [u.title for u in started] == ["Verifying the change: running the checks"] * 2, started
    assert all(u.kind == "execute" and u.status == "in_progress" for u in started)
    ended = {
        u.tool_call_id: u
        for u in client.updates
        if getattr(u, "session_update", "") == "tool_call_update"
        and str(u.tool_call_id).startswith("verify-")
    }
    first, second = (ended[u.tool_call_id] for u in started)
    assert first.status == "failed" and "Verification FAILED" in str(first.raw_output), first
    assert second.status == "completed" and "Verification passed." in str(second.raw_output), second
    said = "".join(_said(client))
    assert "verification failed; asking the model to fix it (1 of" in said, said
    # each verification started after the model's edit and ended before the next step's tool call
    order = [str(getattr(u, "tool_call_id", "")) for u in client.updates]
    assert order.index(first.tool_call_id) < order.index(second.tool_call_id)
