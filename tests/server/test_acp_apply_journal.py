"""`agentls acp`'s writes to disk name their run: when agentls is stopped half-way through them, the next
start finishes them and adds the ``proposal_applied`` decision the stopped process did not write to the
run's transcript (`agent.apply.recover_applies`), as it does for ``agentls run --apply`` and the language
server's own writes.

ACP's write path runs in this process (`AgentlsAcpAgent._write`, a client without ``fs/write_text_file``:
everything goes to disk through the real `agent.apply.apply_changes` and its journal). The process is
"killed" after its first file: the write of the second raises, so the journal is left on disk exactly as
a kill leaves it. The next start is a real one (``python -m server.cli runs``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import agent.apply
from agent.apply import journal_dir
from agent.overlay import FileChange
from agent.proposal import Proposal
from agent.usage import Usage
from server.acp import AgentlsAcpAgent, _Session
from server.cli.support import runs_dir
from tests.agent.test_apply import _allowed_run, _change


class _Killed(Exception):
    """Where the kill comes: the process goes no further."""


def test_a_kill_during_acps_disk_writes_is_on_record_once_the_next_start_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    (root / "b.py").write_text("B = 1\n")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    runs, run_id = runs_dir(env), "20261207-000000-acp001"
    transcript = _allowed_run(runs, run_id, "prop-acp")  # the run, its proposal, its end, "allowed"
    files: tuple[FileChange, ...] = (
        _change("a.py", "modified", "A = 1\n", "A = 2\n"),
        _change("b.py", "modified", "B = 1\n", "B = 2\n"),
    )
    proposal = Proposal("prop-acp", run_id, "s", files, "", Usage(), 0.0, True, "ok")
    written = agent.apply._set

    def killed_before_the_second(at: Path, entry: agent.apply._Entry) -> None:
        if entry.path == "b.py":
            raise _Killed
        written(at, entry)

    monkeypatch.setattr(agent.apply, "_set", killed_before_the_second)
    acp = AgentlsAcpAgent(env)  # no client: no fs/write_text_file, ACP writes to disk
    with pytest.raises(_Killed):
        asyncio.run(acp._write(_Session("session-1", root), proposal))
    monkeypatch.undo()

    [left] = journal_dir(runs).glob("*.json")
    journal = json.loads(left.read_text())
    assert (journal["run_id"], journal["proposal_id"]) == (run_id, "prop-acp")
    assert ((root / "a.py").read_text(), (root / "b.py").read_text()) == ("A = 2\n", "B = 1\n")

    listed = subprocess.run(
        [sys.executable, "-m", "server.cli", "runs"], env=env, capture_output=True, text=True, timeout=120
    )

    assert listed.returncode == 0, listed.stderr
    assert "stopped while applying the proposal of session session-1" in listed.stderr, listed.stderr
    assert (root / "b.py").read_text() == "B = 2\n" and list(journal_dir(runs).iterdir()) == []
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [r["type"] for r in records] == ["run_start", "proposal", "run_end", "approval", "decision"]
    applied = records[-1]
    assert (applied["kind"], applied["proposal_id"], applied["recovered"]) == (
        "proposal_applied",
        "prop-acp",
        True,
    )
    assert (applied["written"], applied["error"]) == (["a.py", "b.py"], None)
    [row] = [line for line in listed.stdout.splitlines() if line.startswith(run_id)]
    assert "proposed, applied" in row, listed.stdout
