"""Crash consistency of applying a proposal (issue 17, item 3): a process killed with SIGKILL between two
files of an apply leaves a journal; the next agentls start (any CLI command, the language server's
``initialized``) finishes the change and tells the user, or, when a file changed since, writes nothing
and says which files are in which state.

The applying process is real (`agent.proposal.apply_proposal`, the function `agentls run --apply` uses);
it pauses after its first file so the test can kill it at a known point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types

from tests.e2e.helpers import initialize, start_server, stop, wait_for

pytestmark = pytest.mark.timeout(60)

BEFORE = {"a.py": "A = 1\n", "b.py": "B = 1\n", "gone.py": "G = 1\n"}
AFTER = {"a.py": "A = 2\n", "b.py": "B = 2\n", "new.py": "N = 2\n", "gone.py": None}

APPLY = """
import json, sys, time
from pathlib import Path
from agent.overlay import FileChange
from agent.proposal import Proposal, apply_proposal
from agent.usage import Usage

root, journal, marker = map(Path, sys.argv[1:4])
def change(path, kind, base, new):
    return FileChange(path=path, kind=kind, old_path=None, base_text=base, new_text=new,
                      base_version=None, diff="")
files = (
    change("a.py", "modified", "A = 1\\n", "A = 2\\n"),
    change("b.py", "modified", "B = 1\\n", "B = 2\\n"),
    change("new.py", "created", "", "N = 2\\n"),
    change("gone.py", "deleted", "G = 1\\n", ""),
)
proposal = Proposal("prop-killed", "run-1", "s", files, "", Usage(), 0.0, True, "ok")

def pause(path):
    marker.write_text(path)
    time.sleep(60)  # killed here, after the first file

apply_proposal(proposal, root, journal=journal, on_written=pause)
"""


def _state(root: Path) -> dict[str, str | None]:
    return {name: (root / name).read_text() if (root / name).exists() else None for name in AFTER}


def _killed_mid_apply(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A workspace, its cache, and the environment, after an apply was killed after its first file."""
    root = tmp_path / "ws"
    root.mkdir()
    for name, text in BEFORE.items():
        (root / name).write_text(text)
    cache = tmp_path / "cache"
    journal = cache / "runs" / "applying"
    marker = tmp_path / "marker"
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-c", APPLY, str(root), str(journal), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert process.poll() is None, "the applying process ended before its first file"
            assert time.monotonic() < deadline, "the applying process did not reach its first file"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    # half-applied: the first file is new, the others are as before, and a journal says so
    assert _state(root) == {"a.py": "A = 2\n", "b.py": "B = 1\n", "new.py": None, "gone.py": "G = 1\n"}
    assert len(list(journal.glob("*.json"))) == 1
    return root, cache, env


def test_the_next_cli_start_finishes_a_killed_apply_and_says_so(tmp_path: Path) -> None:
    root, cache, env = _killed_mid_apply(tmp_path)

    run = subprocess.run(
        [sys.executable, "-m", "server.cli", "runs", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert run.returncode == 0, run.stderr
    assert "stopped while applying proposal prop-killed" in run.stderr
    assert "1 of 4 files written" in run.stderr and "b.py, new.py, gone.py written" in run.stderr
    assert _state(root) == AFTER
    assert list((cache / "runs" / "applying").iterdir()) == []
    json.loads(run.stdout)  # the command itself still ran
    again = subprocess.run(
        [sys.executable, "-m", "server.cli", "runs"], env=env, capture_output=True, text=True, timeout=30
    )
    assert "stopped while applying" not in again.stderr  # told once


def test_a_file_edited_after_the_kill_stops_the_recovery_and_is_reported(tmp_path: Path) -> None:
    root, cache, env = _killed_mid_apply(tmp_path)
    (root / "b.py").write_text("B = 'edited by hand'\n")

    run = subprocess.run(
        [sys.executable, "-m", "server.cli", "runs"], env=env, capture_output=True, text=True, timeout=30
    )

    assert run.returncode == 0, run.stderr
    assert "b.py changed since" in run.stderr and "wrote nothing more" in run.stderr
    assert "Written: a.py; not written: new.py, gone.py" in run.stderr
    state = _state(root)
    assert state["a.py"] == "A = 2\n" and state["b.py"] == "B = 'edited by hand'\n"
    assert state["new.py"] is None and state["gone.py"] == "G = 1\n"
    kept = list((cache / "runs" / "applying").glob("*.unresolved.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["label"] == "proposal prop-killed"


async def test_the_language_server_finishes_a_killed_apply_at_initialized(tmp_path: Path) -> None:
    root, cache, _env = _killed_mid_apply(tmp_path)
    client = await start_server(cache)
    try:
        await initialize(client, root)  # sends initialized too
        await wait_for(lambda: any("stopped while applying" in m.message for m in client.messages), 20)
        message = next(m for m in client.messages if "stopped while applying" in m.message)
        assert message.type == types.MessageType.Warning and "prop-killed" in message.message
        assert _state(root) == AFTER
    finally:
        await stop(client)
