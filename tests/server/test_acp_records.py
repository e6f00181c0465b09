"""``agentls acp`` writes the records of its users' answers off its event loop (`server.acp`,
`agent.apply.OrderedWrites`): a trust answer's record (`_PendingAnswers`, fsync'd) and a proposal's
(`agent.apply.ProposalDecisions`: the approval, then what came of the writes) are written on one worker
thread, in the order they come, each on disk before the client hears what follows it; a ``session/close``
or ``session/cancel`` that comes while one is being written loses no record and leaves nothing stuck.

The agent runs in this process (`AgentlsAcpAgent`, its real settings, runs folder and transcripts) with the
fake Anthropic server and a scripted ACP client; `os.fsync` is the real one, noting its thread (and held
where a test needs a write in flight).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from acp import text_block

from agent.apply import OrderedWrites
from server.acp import IGNORE_SETTINGS, TRUST_MCP, TRUST_SETTINGS, AgentlsAcpAgent
from tests.agent.agent_harness import copy_workspace
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic
from tests.server.test_acp import AGENT_TOML, _script
from tests.server.test_acp_settings_trust import ScriptedClient, _both_workspace

# a sensitive value the workspace's file sets: the prompt asks whether to trust it first
HOSTILE_TOML = AGENT_TOML + "memory_mb = 65536\n"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the user's settings stay out
    monkeypatch.setenv("AGENTLS_CACHE_DIR", str(tmp_path / "cache"))
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(HOSTILE_TOML)
    return root


def _agent(client: ScriptedClient, tmp_path: Path, fake: FakeAnthropic) -> AgentlsAcpAgent:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(AGENTLS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.update(ANTHROPIC_API_KEY=FAKE_API_KEY, ANTHROPIC_BASE_URL=fake.url)
    agent = AgentlsAcpAgent(env)
    agent.on_connect(client)  # type: ignore[arg-type]
    return agent


def _runs(tmp_path: Path) -> list[list[dict[str, Any]]]:
    return [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted((tmp_path / "cache" / "runs").glob("*.jsonl"))
    ]


def _kinds(records: list[dict[str, Any]]) -> list[str]:
    return [record.get("kind") or record.get("subject") or record["type"] for record in records]


def _fsyncs(
    monkeypatch: pytest.MonkeyPatch, hold: Callable[[], None] = lambda: None, paths: list[str] | None = None
) -> list[str]:
    """The names of the threads `os.fsync` runs on from now on (the real fsync, `hold` called first); the
    path of each file or folder fsync'd goes to `paths`."""
    real_fsync, threads = os.fsync, []

    def fsync(fd: int) -> None:
        threads.append(threading.current_thread().name)
        if paths is not None:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        hold()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return threads


class HeldFsync:
    """Once `armed`, the next fsync (the record of the answer just given) waits until `release` (at most
    `seconds`, so that code writing it on the event loop fails the test instead of hanging it)."""

    def __init__(self, seconds: float = 20.0) -> None:
        self.armed = False
        self.entered, self.released = threading.Event(), threading.Event()
        self.on: str | None = None
        self.seconds = seconds

    def __call__(self) -> None:
        if self.armed and not self.entered.is_set():
            self.on = threading.current_thread().name
            self.entered.set()
            self.released.wait(self.seconds)

    async def in_flight(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, self.seconds), "no record was written"


class ArmingClient(ScriptedClient):
    """Answers in turn (`ScriptedClient`), arming `held` as it gives the answer numbered `at` (from 0)."""

    def __init__(self, held: HeldFsync, at: int, *answers: str | Exception | None) -> None:
        super().__init__(*answers)
        self.held, self.at = held, at

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **kw: Any) -> Any:
        if len(self.permissions) == self.at:
            self.held.armed = True
        return await super().request_permission(session_id, tool_call, options, **kw)


def test_the_answers_records_are_fsynced_off_the_loop_in_order_before_the_client_hears_more(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt whose settings are asked about ("Ignore them") and whose proposal is allowed: every record
    of the answers (the trust answer's, fsync'd as it comes; the proposal's approval and proposal_applied)
    is fsync'd on the records' worker thread, none on the event loop's, in the order the answers came, and
    the client is told "Applied" only once what came of the writes is on disk."""
    _script(fake_anthropic)
    client = ScriptedClient(IGNORE_SETTINGS, "allow")
    agent = _agent(client, tmp_path, fake_anthropic)
    on_disk_when_told: list[bool] = []
    told = client.session_update

    async def session_update(session_id: str, update: Any, **kw: Any) -> None:
        if str(getattr(getattr(update, "content", None), "text", "")).startswith("Applied:"):
            on_disk_when_told.append(any("proposal_applied" in str(run) for run in _runs(tmp_path)))
        await told(session_id, update, **kw)

    client.session_update = session_update  # type: ignore[method-assign]
    synced_on = _fsyncs(monkeypatch)

    async def go() -> str:
        session_id = (await agent.new_session(cwd=str(ws), mcp_servers=[])).session_id
        reply = await agent.prompt(session_id=session_id, prompt=[text_block("Implement mean")])
        return str(reply.stop_reason)

    assert asyncio.run(go()) == "end_turn"
    loop_thread = threading.current_thread().name  # asyncio.run runs the loop on this thread
    assert synced_on and loop_thread not in synced_on, f"an fsync ran on the event loop: {synced_on}"
    # the trust answer's record (its creation, run_start, approval, answers_taken) and the proposal's two
    assert sum(name.startswith("agentls-acp-records") for name in synced_on) >= 6, synced_on
    assert on_disk_when_told == [True]
    [records] = _runs(tmp_path)  # the trust answer's own record was removed once the run held it
    assert _kinds(records)[:2] == ["run_start", "settings"] and records[1]["answer"] == "Ignore them"
    end = max(at for at, record in enumerate(records) if record["type"] == "run_end")
    assert _kinds(records[end + 1 :]) == ["proposal", "proposal_applied"], records[end:]
    assert (records[end + 1]["outcome"], records[end + 2]["written"]) == ("allowed", ["mathx/stats.py"])
    assert "return sum(values) / len(values)" in (ws / "mathx" / "stats.py").read_text()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fsync'd file by /proc/self/fd")
def test_the_trust_files_are_fsynced_off_the_loop_before_the_record_of_their_answer(
    fake_anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Trust these settings", then "Trust and start" for the workspace's MCP server: each trust file
    (``settings-trust.json``, ``mcp-trust.json``) is written on the records' worker thread, not on the event
    loop, fsync'd (the file, then the folder its new name is in), before the record of its answer, and
    is on disk when the client is told "trusted"."""
    ws = _both_workspace(tmp_path)
    cache = (tmp_path / "cache").resolve()
    client = ScriptedClient(TRUST_SETTINGS, TRUST_MCP)
    agent = _agent(client, tmp_path, fake_anthropic)
    told: list[tuple[str, bool]] = []
    tell = client.session_update

    async def session_update(session_id: str, update: Any, **kw: Any) -> None:
        if getattr(update, "raw_output", None) == "trusted":
            name = "settings-trust.json" if update.tool_call_id.startswith("settings") else "mcp-trust.json"
            told.append((name, str(ws.resolve()) in _text(cache / name)))
        await tell(session_id, update, **kw)

    client.session_update = session_update  # type: ignore[method-assign]
    paths: list[str] = []
    synced_on = _fsyncs(monkeypatch, paths=paths)

    async def go() -> None:
        session = agent.sessions[(await agent.new_session(cwd=str(ws), mcp_servers=[])).session_id]
        settings = await agent._settings(session)
        assert settings is not None and settings.agent.sandbox.memory_mb == 65536  # trusted
        assert await agent._mcp_servers(session, settings) == settings  # the server starts

    asyncio.run(go())
    loop_thread = threading.current_thread().name
    assert synced_on and loop_thread not in synced_on, f"an fsync ran on the event loop: {synced_on}"
    assert all(name.startswith("agentls-acp-records") for name in synced_on), synced_on

    def what(path: str) -> str:
        if path == str(cache):
            return "cache folder"
        if path.startswith(str(cache / "runs")):
            return "answers' record"
        return Path(path).name.split(".")[1]  # the temporary file: .settings-trust.json.x1y2.agentls

    kinds = [what(path) for path in paths]
    done = [kind for at, kind in enumerate(kinds) if at == 0 or kinds[at - 1] != kind]
    assert done == [
        *("settings-trust", "cache folder", "answers' record"),
        *("mcp-trust", "cache folder", "answers' record"),
    ], paths
    assert told == [("settings-trust.json", True), ("mcp-trust.json", True)]


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def test_a_session_closed_while_a_trust_answer_is_written_keeps_it_in_the_cancelled_attempt(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """session/close comes while the record of the prompt's trust answer is being written (its fsync held):
    the event loop serves it meanwhile, and it answers once the answer is in the transcript of the
    cancelled attempt, written after the record in flight; the record is then removed (one entry, not an
    "incomplete" one beside it), the prompt ends "cancelled", no run starts, and the process still serves."""
    held = HeldFsync()
    client = ArmingClient(held, 0, IGNORE_SETTINGS)
    agent = _agent(client, tmp_path, fake_anthropic)
    _fsyncs(monkeypatch, held)

    async def go() -> tuple[str, list[list[dict[str, Any]]], bool]:
        session_id = (await agent.new_session(cwd=str(ws), mcp_servers=[])).session_id
        prompt = asyncio.ensure_future(
            agent.prompt(session_id=session_id, prompt=[text_block("Implement mean")])
        )
        await held.in_flight()
        closing = asyncio.ensure_future(agent.close_session(session_id=session_id))
        await asyncio.sleep(0.2)
        answered_while_held = closing.done()
        held.released.set()
        await asyncio.wait_for(closing, 60)
        at_close = _runs(tmp_path)
        reply = await asyncio.wait_for(prompt, 60)
        await agent.new_session(cwd=str(ws), mcp_servers=[])  # still serving
        return str(reply.stop_reason), at_close, answered_while_held

    stop, at_close, answered_while_held = asyncio.run(go())
    assert held.on is not None and held.on.startswith("agentls-acp-records"), held.on
    assert not answered_while_held, "session/close was answered before the answer's record was written"
    assert stop == "cancelled" and fake_anthropic.message_requests == []
    [records] = _runs(tmp_path)
    assert at_close == [records]
    assert _kinds(records) == ["run_start", "settings", "run_end"], records
    assert records[1]["answer"] == "Ignore them" and records[2]["status"] == "cancelled"
    assert "the session was closed" in records[2]["summary"]
    agent.close()  # the process's end adds nothing
    assert _runs(tmp_path) == [records]


def test_a_cancel_while_the_allowed_proposals_record_is_written_loses_nothing(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """session/cancel comes while the approval of an allowed proposal is being written (its fsync held):
    the user allowed it before the cancel, so, as for a cancel during the writes, the files are written and
    both records (approval, then proposal_applied) are in the run's transcript; the prompt ends
    "cancelled" and the session takes its next prompt."""
    _script(fake_anthropic)
    held = HeldFsync()
    client = ArmingClient(held, 1, IGNORE_SETTINGS, "allow")
    agent = _agent(client, tmp_path, fake_anthropic)
    _fsyncs(monkeypatch, held)

    async def go() -> str:
        session_id = (await agent.new_session(cwd=str(ws), mcp_servers=[])).session_id
        prompt = asyncio.ensure_future(
            agent.prompt(session_id=session_id, prompt=[text_block("Implement mean")])
        )
        await held.in_flight()
        await agent.cancel(session_id=session_id)  # the loop serves it while the record is written
        held.released.set()
        reply = await asyncio.wait_for(prompt, 60)
        assert agent.sessions[session_id].turn is None  # not stuck: the next prompt may come
        return str(reply.stop_reason)

    assert asyncio.run(go()) == "cancelled"
    assert held.on is not None and held.on.startswith("agentls-acp-records"), held.on
    [records] = _runs(tmp_path)
    end = max(at for at, record in enumerate(records) if record["type"] == "run_end")
    assert _kinds(records[end + 1 :]) == ["proposal", "proposal_applied"], records[end:]
    assert (records[end + 1]["outcome"], records[end + 2]["written"]) == ("allowed", ["mathx/stats.py"])
    assert "return sum(values) / len(values)" in (ws / "mathx" / "stats.py").read_text()


def test_a_write_whose_waiter_is_cancelled_while_it_waits_in_line_is_still_done() -> None:
    """A prompt cancelled while its record waits behind another session's (`OrderedWrites.submit`
    awaited, then cancelled): the record is written all the same, after the one before it."""
    writes = OrderedWrites("test-records")
    done: list[str] = []
    first_running = threading.Event()

    def first() -> None:
        first_running.set()
        time.sleep(0.3)
        done.append("first")

    async def go() -> None:
        writes.submit(first)
        await asyncio.to_thread(first_running.wait, 10)
        waiter = asyncio.ensure_future(writes.submit(lambda: done.append("second")))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await writes.submit(lambda: "after") == "after"  # behind both

    asyncio.run(go())
    assert done == ["first", "second"]


# A fresh interpreter (nothing imported yet) answers one allowed proposal, noting the thread that imports
# `server.features.runs.proposals` (the language server's run manager and lsprotocol with it).
_FIRST_ALLOW = """
import asyncio, json, sys, threading
from pathlib import Path

from acp.schema import AllowedOutcome, RequestPermissionResponse

from agent.loop import RunResult
from agent.overlay import FileChange
from agent.proposal import Proposal
from agent.task import Task
from server.acp import AgentlsAcpAgent, _Session

NAME = "server.features.runs.proposals"
assert NAME not in sys.modules
imported_on = []


class Noting:
    def find_spec(self, name, path=None, target=None):
        if name == NAME:
            imported_on.append(threading.current_thread().name)
        return None


sys.meta_path.insert(0, Noting())


class Client:
    async def request_permission(self, **kw):
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id="allow"))

    async def session_update(self, **kw):
        pass


base = Path(sys.argv[1])
runs, root = base / "cache" / "runs", base / "ws"
runs.mkdir(parents=True)
root.mkdir()
(runs / "r1.jsonl").write_text(json.dumps({"type": "run_start", "t": 0, "run_id": "r1"}) + "\\n")
change = FileChange("new.txt", "created", None, "", "x\\n", None, "")
proposal = Proposal("p1", "r1", "s", (change,), "", None, 0.0, True, "")
result = RunResult(
    "r1", Task(kind="run", instruction="x"), "completed", "s", proposal, None, 0.0, 1, (), runs / "r1.jsonl"
)
agent = AgentlsAcpAgent({"AGENTLS_CACHE_DIR": str(base / "cache"), "XDG_CONFIG_HOME": str(base / "config")})
agent.on_connect(Client())
asyncio.run(agent._settle(_Session("s", root), result))
assert (root / "new.txt").read_text() == "x\\n"
print(json.dumps(imported_on))
"""


def test_the_first_allowed_proposal_imports_what_rebases_it_off_the_loop(tmp_path: Path) -> None:
    """What rebases an allowed proposal onto the client's text is in the language server's package (its
    first import takes about 0.5 s): it is imported on a worker thread, not on the event loop."""
    code = Path(__file__).resolve().parents[2]  # this checkout's code, in the child too
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_ALLOW, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [thread] = json.loads(done.stdout.splitlines()[-1])
    assert thread != "MainThread", "imported on the event loop's thread"
