"""No orphans (issue 17, item 6): kill -9 the indexer or the server mid-index; nothing of theirs survives.

Every process started here carries a marker in its environment (children inherit it), so the processes
left afterwards are counted exactly: parser pools, fork servers, resource trackers, the server's index
worker. The dead parent's stdout and stderr pipes must reach end-of-file too (orphans kept them open,
so a client waiting for them waited forever).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)


def _corpus(root: Path, files: int = 1200) -> Path:
    root.mkdir()
    line = "def function_{0}(value: int) -> int:\n    return value + {0}\n\n\n"
    body = "".join(line.format(n) for n in range(40))
    for n in range(files):
        package = root / f"pkg{n % 30}"
        package.mkdir(exist_ok=True)
        (package / f"module_{n}.py").write_text(f"class Thing{n}:\n    pass\n\n\n{body}")
    return root


def _marked(mark: str) -> list[tuple[int, str]]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if f"AGENTLS_ORPHAN_TEST={mark}".encode() not in handle.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")[:100]
            with open(f"/proc/{name}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue  # a zombie holds nothing
        except OSError:
            continue
        found.append((int(name), command))
    return found


def _wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _pipes_close(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether stdout and stderr reach end-of-file within `timeout` (nobody else holds them open)."""
    done = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None and proc.stderr is not None
        while proc.stdout.read(65536):
            pass
        while proc.stderr.read(65536):
            pass
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    return done.wait(timeout)


def _kill_and_count(proc: subprocess.Popen[bytes], mark: str) -> tuple[int, list[tuple[int, str]], bool]:
    before = len(_marked(mark))
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait(10)
    _wait_for(lambda: not _marked(mark), 15)
    left = _marked(mark)
    for pid, command in left:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            print("left:", pid, handle.read().rsplit(b")", 1)[1].split()[:2], command)
    for pid, _ in left:  # do not leave them to the next test
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return before, left, _pipes_close(proc, 10)


def test_kill_9_of_the_indexer_leaves_no_process_behind(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    mark = uuid.uuid4().hex
    env = dict(
        os.environ, AGENTLS_ORPHAN_TEST=mark, AGENTLS_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "index", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # The parser pool is up: the indexer, its fork server, resource tracker and parser processes.
    assert _wait_for(lambda: len(_marked(mark)) >= 4 or proc.poll() is not None, 60), _marked(mark)
    assert proc.poll() is None, "the corpus was indexed before the pool could be seen; make it larger"
    before, left, closed = _kill_and_count(proc, mark)
    print(f"\nindexer: {before} processes before kill -9, {len(left)} left after")
    assert before >= 4
    assert left == []
    assert closed, "stdout/stderr of the killed indexer stayed open"


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_kill_9_of_the_server_while_it_indexes_leaves_no_process_behind(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus", files=2000)
    mark = uuid.uuid4().hex
    env = dict(
        os.environ, AGENTLS_ORPHAN_TEST=mark, AGENTLS_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    options = {"index": {"embedding": {"provider": "none"}}}
    proc.stdin.write(
        _frame(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "rootUri": corpus.as_uri(),
                    "capabilities": {},
                    "initializationOptions": options,
                },
            }
        )
    )
    proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    proc.stdin.flush()
    # The server, its index worker, the worker's fork servers, resource tracker and parser processes.
    assert _wait_for(lambda: len(_marked(mark)) >= 5 or proc.poll() is not None, 90), _marked(mark)
    assert proc.poll() is None
    before, left, closed = _kill_and_count(proc, mark)
    print(f"\nserver: {before} processes before kill -9, {len(left)} left after")
    assert before >= 5
    assert left == []
    assert closed, "stdout/stderr of the killed server stayed open"
