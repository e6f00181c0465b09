"""How `agentls serve` ends when its editor cannot say ``exit``: the editor's process dies, or it stops
reading the server's output. Each way ends as ``exit`` does (runs stopped with their work kept, the
indexing process and every worker process gone), with one log line and no traceback.

The servers run as real processes on pipes. An "editor" is a small Python process that starts the
server, hands it the read end of a pipe whose write end the test also holds (as a wrapper or a sibling of
a crashed editor would: the server never sees the end of its input), and sends ``initialize`` with its
own pid as ``processId``. Every process started carries a marker in its environment, so whatever is left
afterwards (index worker, fork servers, parser pool, search and analysis processes) is found exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.resume import load_state
from server.parent import ProcessWatch, process_alive
from tests.e2e.helpers import WORKSPACES
from tests.e2e.test_lsp_agent import SETTINGS, STUB, plan_and_stub_edit
from tests.fakes.anthropic_server import FakeAnthropic, slow
from tests.security.test_orphans import _corpus, _marked, _wait_for

pytestmark = pytest.mark.timeout(240)

SERVER_EXIT_SECONDS = 20.0
"""The bound for the server to end once its editor is gone (the watch fires within a second; stopping
the indexing process in the middle of a first index takes a few)."""

EDITOR = r"""
import json, os, subprocess, sys, threading
read_fd, write_fd, pid_file, log_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
options = json.loads(sys.argv[5])
root, status_file = sys.argv[6], sys.argv[7]
with open(log_file, "wb") as log:
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"], stdin=read_fd, stderr=log, close_fds=True
    )
with open(pid_file, "w") as out:
    out.write(str(server.pid))
def reap():  # as an editor does: its exit status (-9: killed by SIGKILL), written once it has ended
    status = server.wait()
    with open(status_file + ".tmp", "w") as out:
        out.write(str(status))
    os.replace(status_file + ".tmp", status_file)
threading.Thread(target=reap, daemon=True).start()
def send(message):
    body = json.dumps(message).encode()
    os.write(write_fd, b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "processId": os.getpid(), "rootUri": "file://" + root, "capabilities": {},
    "initializationOptions": options}})
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
for line in sys.stdin:  # more messages from the test, until it kills this process
    send(json.loads(line))
server.wait()
"""


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class Messages:
    """Splits a byte stream of framed JSON-RPC messages into dicts, on a thread."""

    def __init__(self, stream: Any) -> None:
        self.received: list[dict[str, Any]] = []
        self._stream = stream
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = self._stream.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            self.received.append(json.loads(self._stream.read(length)))

    def response(self, msg_id: int) -> dict[str, Any] | None:
        return next((m for m in self.received if m.get("id") == msg_id and "method" not in m), None)


class Editor:
    """An editor process that started `agentls serve`; the test holds the server's stdin open too."""

    def __init__(self, tmp_path: Path, root: Path, options: dict[str, Any], env: dict[str, str]) -> None:
        self.log = tmp_path / "server.log"
        self.status_file = tmp_path / "server.status"
        pid_file = tmp_path / "server.pid"
        self.read_fd, self.write_fd = os.pipe()  # the server's stdin: this process keeps the write end
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                EDITOR,
                str(self.read_fd),
                str(self.write_fd),
                str(pid_file),
                str(self.log),
                json.dumps(options),
                str(root),
                str(self.status_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # inherited by the server: its JSON-RPC output
            pass_fds=(self.read_fd, self.write_fd),
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        os.close(self.read_fd)
        assert self.process.stdout is not None
        self.messages = Messages(self.process.stdout)
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30)
        self.server_pid = int(pid_file.read_text())
        assert _wait_for(lambda: self.messages.response(1) is not None, 60), self.stderr()

    def send(self, message: dict[str, Any]) -> None:
        """A message the editor sends to the server."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def server_running(self) -> bool:
        return process_alive(self.server_pid)

    def server_status(self) -> int | None:
        """The server's exit status as the editor (its parent) got it; None while it runs."""
        return int(self.status_file.read_text()) if self.status_file.exists() else None

    def close(self) -> None:
        for pid in (self.server_pid, self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait(10)
        os.close(self.write_fd)


def _marked_env(tmp_path: Path, extra: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    mark = uuid.uuid4().hex
    env = dict(
        os.environ,
        AGENTLS_ORPHAN_TEST=mark,
        AGENTLS_CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        **(extra or {}),
    )
    return mark, env


def _assert_ended_as_exit(editor: Editor, mark: str, reason: str) -> None:
    """The server ended within the bound, left no process behind, and said why in one line."""
    gone = _wait_for(lambda: not editor.server_running(), SERVER_EXIT_SECONDS)
    assert gone, f"the server was still running {SERVER_EXIT_SECONDS} s after its editor died"
    assert _wait_for(lambda: not _marked(mark), 15), _marked(mark)
    log = editor.stderr()
    assert f"{reason}; shutting down" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def reap_marked() -> Iterator[list[str]]:
    """Marks whose processes are killed after the test, whatever it asserted."""
    marks: list[str] = []
    yield marks
    for mark in marks:
        for pid, _ in _marked(mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@contextmanager
def _run_under_way(tmp_path: Path, reap_marked: list[str]) -> Iterator[tuple[Path, Editor, str, str]]:
    """A run with its next model call under way: an editor process started `agentls serve` on a copy of
    the stubs workspace and ``agentls.implement`` on `apply_discount`; the fake model's first turn edited
    the stub and its second call answers only after 60 s. Yields the workspace, the editor, the mark of the
    server's processes and the run's id; the editor is closed at the end."""
    root = tmp_path / "stubs"
    shutil.copytree(WORKSPACES / "stubs", root)
    with FakeAnthropic() as fake:
        fake.enqueue(plan_and_stub_edit(), slow(60))
        mark, env = _marked_env(tmp_path, fake.env())
        reap_marked.append(mark)
        editor = Editor(tmp_path, root, {**SETTINGS, "agentlsClient": True}, env)
        try:
            uri = (root / "shop" / "pricing.py").as_uri()
            lines = (root / "shop" / "pricing.py").read_text().splitlines()
            line = next(i for i, text_line in enumerate(lines) if "def apply_discount" in text_line)
            position = {"line": line, "character": 4}
            command = {"command": "agentls.implement", "arguments": [{"uri": uri, "position": position}]}
            editor.send({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": command})
            assert _wait_for(lambda: editor.messages.response(2) is not None, 60), editor.stderr()[-3000:]
            answer = editor.messages.response(2)
            assert answer is not None and "result" in answer, answer
            assert _wait_for(lambda: fake.pending == 0, 60), editor.stderr()[-3000:]
            yield root, editor, mark, answer["result"]["runId"]
        finally:
            editor.close()


def test_the_server_ends_when_its_editor_dies_while_indexing(tmp_path: Path, reap_marked: list[str]) -> None:
    corpus = _corpus(tmp_path / "corpus", files=2000)
    mark, env = _marked_env(tmp_path)
    reap_marked.append(mark)
    editor = Editor(tmp_path, corpus, {"index": {"embedding": {"provider": "none"}}}, env)
    try:
        # The index worker, its fork server and parser processes are up: the first index is running.
        assert _wait_for(lambda: len(_marked(mark)) >= 6, 90), _marked(mark)
        assert editor.server_running()
        editor.process.kill()  # SIGKILL, and not reaped yet: a zombie is a process that has ended
        _assert_ended_as_exit(editor, mark, f"the editor's process {editor.process.pid} is gone")
    finally:
        editor.close()


def test_a_run_in_flight_keeps_its_work_when_the_editor_dies(tmp_path: Path, reap_marked: list[str]) -> None:
    with _run_under_way(tmp_path, reap_marked) as (root, editor, mark, run_id):
        editor.process.kill()
        editor.process.wait(10)  # reaped, as an editor's parent does
        _assert_ended_as_exit(editor, mark, f"the editor's process {editor.process.pid} is gone")
    state = load_state(tmp_path / "cache" / "runs", run_id)
    assert state.status == "cancelled", state.status  # it stopped and saved, rather than being cut off
    assert 'raise ValueError("percent must be within 0..100")' in (state.files.get("shop/pricing.py") or "")
    assert STUB in (root / "shop" / "pricing.py").read_text()  # the user's file is untouched


def test_a_closed_output_is_said_once_and_the_server_ends(tmp_path: Path, reap_marked: list[str]) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pricing.py").write_text("def apply_discount(price, percent):\n    return price\n")
    mark, env = _marked_env(tmp_path)
    reap_marked.append(mark)
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    assert server.stdin is not None and server.stdout is not None
    try:
        options = {"index": {"embedding": {"provider": "none"}}}
        params = {
            "processId": None,
            "rootUri": root.as_uri(),
            "capabilities": {},
            "initializationOptions": options,
        }
        server.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
        server.stdin.flush()
        assert server.stdout.read(16).startswith(b"Content-Length")
        server.stdout.close()  # the client stops reading; it keeps the server's input open
        server.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        for n in range(10):  # requests whose answers cannot go out, and log messages that cannot either
            server.stdin.write(frame({"jsonrpc": "2.0", "id": 10 + n, "method": "agentls/serverStats"}))
            server.stdin.write(
                frame(
                    {
                        "jsonrpc": "2.0",
                        "method": "textDocument/didClose",
                        "params": {"textDocument": {"uri": (root / f"never_opened_{n}.py").as_uri()}},
                    }
                )
            )
        server.stdin.flush()
        try:
            code = server.wait(SERVER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        text_log = log.read_text(errors="replace")
        assert code == 1, f"the server did not end ({code}) after its output closed:\n{text_log[-3000:]}"
        assert text_log.count("Traceback") == 0, text_log[-3000:]
        assert text_log.count("stopped reading the server's output") == 1, text_log[-3000:]
        assert _wait_for(lambda: not _marked(mark), 15), _marked(mark)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        server.stdin.close()


def test_an_editor_pid_that_is_not_here_does_not_end_the_server(tmp_path: Path) -> None:
    """A server in a container gets the pid of an editor on the host: it must keep serving."""
    from tests.server.test_lsp_bad_input import RawServer

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "ws"
    root.mkdir()
    raw = RawServer(tmp_path / "cache")
    try:
        options = {"index": {"embedding": {"provider": "none"}}, "server": {"index_on_start": False}}
        answer = raw.request(
            "initialize",
            {
                "processId": dead.pid,
                "rootUri": root.as_uri(),
                "capabilities": {},
                "initializationOptions": options,
            },
        )
        assert "result" in answer, answer
        raw.notify("initialized", {})
        time.sleep(3)
        assert "result" in raw.request("agentls/serverStats")
    finally:
        raw.close()
    assert raw.proc.returncode == 0


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_process_watch_fires_once_when_the_process_ends(pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("this Python has no os.pidfd_open")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    calls: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        watch = ProcessWatch(child.pid, lambda: calls.append(time.monotonic()), interval=0.1)
        assert watch.start(loop)
        await asyncio.sleep(0.5)
        assert calls == []
        child.kill()  # a zombie until reaped below: it has ended all the same
        killed = time.monotonic()
        for _ in range(50):
            if calls:
                break
            await asyncio.sleep(0.1)
        assert len(calls) == 1 and calls[0] - killed < 2.0, calls
        await asyncio.sleep(0.3)
        assert len(calls) == 1
        watch.stop()

    try:
        asyncio.run(main())
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


EXIT_AFTER_SHUTDOWN = r"""
import asyncio, sys, time
from server.features.analysis import OutlineCache

async def parse(cache):
    await cache.get("file:///tmp/x.py", 1, "/tmp/x.py", "def f():\n    pass\n")

cache = OutlineCache()
asyncio.run(parse(cache))
if sys.argv[2] == "request":  # the LSP shutdown request (on the event loop), then the end of the server
    cache.shutdown(wait=False)
cache.shutdown()
end = time.perf_counter() + float(sys.argv[1])  # the rest of the server's exit, before Python's own
while time.perf_counter() < end:
    pass
"""


def test_no_bad_file_descriptor_from_the_analysis_pool_at_exit() -> None:
    """The end of the server waits for its process pools: one left to Python 3.11's exit hook raced the
    pool's thread closing a pipe, "Exception ignored ... OSError: [Errno 9] Bad file descriptor" (in several
    of 20 exits here before; the rest of the exit after `shutdown` is played by 0 to 12 ms of work)."""
    runs = [(f"{n * 0.0006:.5f}", "exit" if n % 4 else "request") for n in range(20)]
    printed: list[str] = []
    for batch in range(0, len(runs), 2):
        started = [
            subprocess.Popen(
                [sys.executable, "-c", EXIT_AFTER_SHUTDOWN, delay, mode],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=Path(__file__).resolve().parents[2],
            )
            for delay, mode in runs[batch : batch + 2]
        ]
        for (delay, mode), proc in zip(runs[batch : batch + 2], started, strict=True):
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode(errors="replace")
            if err.strip():
                printed.append(f"{mode}, {delay} s: {err.decode(errors='replace')[-600:]}")
    assert printed == [], "\n".join(printed)


async def test_the_search_and_analysis_processes_end_at_once_with_a_job_running(tmp_path: Path) -> None:
    """``exit`` right after the editor connects (or during a search) ended only once the search process had
    finished importing LanceDB, 2.5 to 10 s on a loaded 2-core machine; VS Code kills a server that has not
    ended 2 s after ``exit``. A job in progress in either pool (here a 60 s one) is dropped now."""
    from concurrent.futures.process import BrokenProcessPool

    from server.features.analysis import OutlineCache
    from server.features.index_worker import IndexWorker
    from server.features.indexing import BackgroundIndexer
    from server.features.progress import WorkDone

    async def start_progress(title: str, cancel: Any) -> WorkDone:
        return WorkDone(None, "token")

    indexer = BackgroundIndexer(
        IndexWorker(tmp_path / "cache", {}),
        cache_dir=tmp_path / "cache",
        env={},
        start_progress=start_progress,
        spawn=lambda coro, name: asyncio.get_running_loop().create_task(coro),
        notify=lambda message, error: None,
    )
    searcher = indexer._search_pool()
    outlines = OutlineCache()
    analysis = outlines._executor()
    loop = asyncio.get_running_loop()
    pids = [await loop.run_in_executor(pool, os.getpid) for pool in (searcher, analysis)]
    busy = [loop.run_in_executor(pool, time.sleep, 60) for pool in (searcher, analysis)]
    await asyncio.sleep(0.5)
    assert not any(job.done() for job in busy)
    started = time.monotonic()
    outlines.shutdown(wait=False)  # the LSP shutdown request
    await asyncio.to_thread(outlines.shutdown)  # the end of the server
    await asyncio.to_thread(indexer.shutdown)
    assert time.monotonic() - started < 30  # the jobs run 60 s: they were dropped, not waited for
    for job in busy:
        with pytest.raises(BrokenProcessPool):
            await job
    for pid in pids:
        assert not process_alive(pid)


def test_exit_after_a_run_ends_the_server_on_its_own(tmp_path: Path, reap_marked: list[str]) -> None:
    """``shutdown`` then ``exit`` with a run in flight: the run is cancelled and saved, and the process ends
    on its own: exit status 0, which here only ``exit`` after ``shutdown`` gives (``exit`` alone and a
    hangup give 1, a kill -9; the input does not end: the test holds it open), every process of the server
    gone, no hangup's "shutting down" line nor a traceback in its log. Not timed: a bound of 2 s (VS Code
    kills a server still running 2 s after ``exit``; the server ends in about 1 s since 82cf123, 2.0 to
    2.6 s before at load 7) failed under CI's load; 60 s is the bound for ending at all."""
    with _run_under_way(tmp_path, reap_marked) as (_, editor, mark, run_id):
        editor.send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
        assert _wait_for(lambda: editor.messages.response(3) is not None, 30), editor.stderr()[-3000:]
        editor.send({"jsonrpc": "2.0", "method": "exit"})
        assert _wait_for(lambda: editor.server_status() is not None, 60), editor.stderr()[-3000:]
        assert editor.server_status() == 0, (editor.server_status(), editor.stderr()[-3000:])

        def left() -> list[tuple[int, str]]:  # the server's processes; the editor runs on
            return [(pid, line) for pid, line in _marked(mark) if pid != editor.process.pid]

        assert _wait_for(lambda: not left(), 15), left()
        log = editor.stderr()
        assert "shutting down" not in log and "Traceback" not in log, log[-3000:]
    state = load_state(tmp_path / "cache" / "runs", run_id)
    assert state.status == "cancelled", state.status
