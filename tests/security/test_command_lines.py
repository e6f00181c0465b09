"""No settings or credentials on a helper process's command line: every user of the machine can read it
(``ps``, ``/proc/PID/cmdline``). Each test starts the real process and reads its command line, and those of
every process of the machine, while it runs."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.installs import InstallPackageTool, InstallSettings
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from indexing.config import EmbeddingSettings, IndexSettings, RerankSettings
from indexing.search_daemon import fingerprint, index_run, running, socket_path, spawn
from indexing.service import WorkspaceIndex
from server.batch import BatchTask, _checkout
from tests.agent.test_installs import WHEEL, _wheel

PASSWORD = "embed-pw-7f3c2a91d0"
API_KEY = "rerank-key-5be81c44e2a7"
INDEX_TOKEN = "pypi-token-0d9e47b1c3"


def _command_lines_holding(*values: str) -> list[str]:
    """The command lines, of every process of the machine, that hold one of ``values``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if any(value.encode() in line for value in values):
            found.append(line.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_the_warm_search_process_gets_its_settings_off_its_command_line(
    workspace: Path, cache_dir: Path
) -> None:
    """`indexing.search_daemon.spawn` put the index settings on the command line as JSON, and with them a
    password in ``index.embedding.base_url`` and an ``api_key`` in ``index.rerank.url``."""
    settings = IndexSettings(
        search_process_idle=30,
        embedding=EmbeddingSettings(base_url=f"https://indexer:{PASSWORD}@embed.example/v1"),
        rerank=RerankSettings(url=f"https://rerank.example/v2/rerank?api_key={API_KEY}"),
    )
    index = WorkspaceIndex(workspace, settings, cache_dir=cache_dir)
    index.index()
    settings_json = settings.model_dump_json()
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir)}
    process = spawn(workspace, settings_json, cache_dir, index.location, env, idle=30, warm_up_after=30)
    assert process is not None
    try:
        # Popen returns once the child has exec'd, but /proc may show an empty command line for a moment
        # after (read it as it settles).
        command_line = _settled_command_line(process.pid)
        assert b"indexing.search_daemon" in command_line
        assert PASSWORD.encode() not in command_line and API_KEY.encode() not in command_line
        deadline = time.monotonic() + 60
        while not socket_path(index.location).exists():
            assert process.poll() is None, (index.location / "search.log").read_text()
            assert time.monotonic() < deadline, (index.location / "search.log").read_text()
            time.sleep(0.05)
        # It has the settings all the same: its fingerprint is the client's, so it runs the index.
        report = index_run(index.location, fingerprint(settings_json, cache_dir), lambda *_: None)
        assert report is not None and report.files_unchanged > 0
        assert _command_lines_holding(PASSWORD, API_KEY) == []
        log = (index.location / "search.log").read_text()
        assert PASSWORD not in log and API_KEY not in log
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        process.wait(20)
    assert not running(index.location)


def _settled_command_line(pid: int) -> bytes:
    """The command line of process ``pid`` once it reads non-empty (at most 10 s)."""
    deadline = time.monotonic() + 10
    command_line = b""
    while not command_line and time.monotonic() < deadline:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not command_line:
            time.sleep(0.01)
    return command_line


@pytest.fixture
def private_index(tmp_path: Path) -> Iterator[tuple[int, list[list[str]]]]:
    """A PEP 503 index on 127.0.0.1 holding one wheel: its port, and for each request it answered the
    command lines that held `INDEX_TOKEN` just then (pip and the sandbox around it were waiting for it)."""
    folder = tmp_path / "index" / "simple" / "demo-dep"
    folder.mkdir(parents=True)
    _wheel(folder / WHEEL)
    seen: list[list[str]] = []

    class Watching(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(_command_lines_holding(INDEX_TOKEN))
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Watching, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap and /proc are Linux's")
def test_install_package_hands_pip_the_index_url_off_its_command_line(
    tmp_path: Path, private_index: tuple[int, list[list[str]]]
) -> None:
    """`install_package` ran ``pip install --index-url URL`` in the sandbox: ``agent.install.index_url``,
    a token in it included, was on the command lines of pip and of bwrap."""
    port, seen = private_index
    root = tmp_path / "app"
    root.mkdir()
    (root / "requirements.txt").write_text("")
    allowed = [f"127.0.0.1:{port}"]
    sandbox = Sandbox(SandboxSettings(timeout_seconds=60, network="registries", allowed_hosts=allowed))
    settings = InstallSettings(index_url=f"http://agent:{INDEX_TOKEN}@127.0.0.1:{port}/simple/")
    tool = InstallPackageTool(Overlay(root), sandbox, settings)
    try:
        result = tool.run({"package": "demo-dep", "manifest": "requirements.txt"})
    finally:
        tool.close()
        sandbox.close()
    assert not result.is_error, result.content
    assert "demo-dep 1.0" in str(result.content)
    assert seen, "pip never asked the index"  # the index was used: it came through PIP_INDEX_URL
    assert all(lines == [] for lines in seen), seen


@pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap and /proc are Linux's")
def test_a_sandboxed_commands_environment_is_not_on_the_bwrap_command_line(tmp_path: Path) -> None:
    """The sandbox hands a command its environment through bwrap's own environment (readable by this user
    only), never as ``--setenv NAME VALUE`` arguments. A guard: this held before the other fixes too."""
    value = "env-value-3a7d1e55c2"
    sandbox = Sandbox(SandboxSettings(timeout_seconds=30))
    seen: list[list[str]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            lines = _command_lines_holding("agentls-watch-marker")
            if lines:
                seen.append(_command_lines_holding(value))
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = sandbox.run(
            ["/bin/sh", "-c", 'sleep 2; printf %s "$LOG_DESTINATION"', "agentls-watch-marker"],
            tmp_path,
            env={"LOG_DESTINATION": value},
        )
    finally:
        done.set()
        watcher.join(5)
        sandbox.close()
    assert result.exit_code == 0 and result.stdout == value, result.stderr
    assert seen == [[]]


def test_a_batch_task_clones_a_url_with_a_token_without_it_on_a_command_line(tmp_path: Path) -> None:
    """`agentls batch` cloned ``"repo": "https://user:TOKEN@host/..."`` with the URL as git's argument, so
    the token was on the command lines of git and of its https helper, and in the checkout's
    ``.git/config``, which the agent's commands can read."""
    source = tmp_path / "source"
    source.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (source / "app.py").write_text("def answer():\n    return 42\n")
    subprocess.run([*git, "init", "-q", str(source)], check=True)
    subprocess.run([*git, "-C", str(source), "add", "."], check=True)
    subprocess.run([*git, "-C", str(source), "commit", "-qm", "first"], check=True)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(served / "app.git")], check=True)
    subprocess.run(["git", "-C", str(served / "app.git"), "update-server-info"], check=True)  # dumb HTTP
    expected = "Basic " + base64.b64encode(f"ci:{INDEX_TOKEN}".encode()).decode()
    seen: list[list[str]] = []
    refused: list[str] = []

    class Private(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(_command_lines_holding(INDEX_TOKEN))
            if self.headers.get("Authorization") != expected:
                refused.append(self.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Private, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://ci:{INDEX_TOKEN}@127.0.0.1:{server.server_address[1]}/app.git"
        dest = tmp_path / "checkout"
        sha = _checkout(BatchTask(id="t1", kind="run", repo=url, instruction="look"), dest)
    finally:
        server.shutdown()
        server.server_close()
    assert (dest / "app.py").read_text() == "def answer():\n    return 42\n" and len(sha) == 40
    assert seen and all(lines == [] for lines in seen), seen
    assert refused == [], refused  # every request carried the token, for that host only
    assert INDEX_TOKEN not in (dest / ".git" / "config").read_text()


def test_a_batch_record_keeps_the_repository_url_without_its_token() -> None:
    """The records (``results.jsonl``, ``records/*.json``) are files people share: the URL's token is not in
    them."""
    from server.batch import _base_record

    url = f"https://ci:{INDEX_TOKEN}@git.example.com/app.git"
    record = _base_record(BatchTask(id="t1", kind="run", repo=url, instruction="look"), "local")
    assert record["repo"] == "https://***@git.example.com/app.git"
    assert INDEX_TOKEN not in json.dumps(record)
