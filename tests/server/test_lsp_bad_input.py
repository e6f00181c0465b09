"""Malformed and hostile input on the wire: the server answers as JSON-RPC and LSP say, and keeps going.

These tests write raw bytes to `agentls serve` over a pipe (no LSP client library in between), read its
frames back, and after each bad input prove the server is alive and kept its state: a document opened
before still gets its code actions.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]

STUB = '''def apply_discount(price: float, percent: float) -> float:
    """Reduce `price` by `percent` percent."""
    raise NotImplementedError
'''


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class RawServer:
    """`agentls serve` on pipes, with a thread that splits its stdout into JSON messages.

    ``args``: the command line after ``agentls`` (``-vv serve`` for its debug log); ``stderr``: where its
    log goes; ``answer``: the result to send for each request of the server's own met while waiting for a
    response or a message (``workspace/configuration``...), None to leave them unanswered; ``cwd``: the
    server's working folder (the test's by default)."""

    def __init__(
        self,
        cache: Path,
        *,
        args: Sequence[str] = ("serve",),
        stderr: Any = subprocess.DEVNULL,
        answer: Callable[[dict[str, Any]], Any] | None = None,
        cwd: Path | None = None,
    ) -> None:
        env = dict(os.environ, AGENTLS_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
        if cwd is not None:  # the server's own folder; `server` must still import from this checkout
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )
        self.answer = answer
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._next_id = 1000
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = stream.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            self.messages.put(json.loads(stream.read(length)))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(frame(message))

    def wait_for(
        self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0, what: str = "such message"
    ) -> dict[str, Any]:
        """The first message from the server `wanted` accepts; every message read is kept in `seen`, and
        the server's own requests meanwhile get `answer`'s result. `what` names the message in the error."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(message)
            if "method" in message and "id" in message and self.answer is not None:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": self.answer(message)})
            if wanted(message):
                return message
        raise AssertionError(f"no {what} within {timeout} s; seen: {[m.get('method') for m in self.seen]}")

    def response(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The response with this id (other messages are kept in `seen`)."""
        return self.wait_for(
            lambda m: "method" not in m and m.get("id") == msg_id, timeout, f"response to id {msg_id!r}"
        )

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.response(self._next_id, timeout)

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def no_response_for(self, seconds: float) -> list[dict[str, Any]]:
        """Responses (not notifications) that arrive within `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(message)
            if "method" not in message:
                got.append(message)
        return got

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request("shutdown", timeout=20)
                self.notify("exit", None)
                self.proc.wait(20)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pricing.py").write_text(STUB)
    return root


def initialize(server: RawServer, root: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    opts = options or {"index": {"embedding": {"provider": "none"}}, "server": {"index_on_start": False}}
    result = server.request(
        "initialize",
        {"processId": None, "rootUri": root.as_uri(), "capabilities": {}, "initializationOptions": opts},
    )
    server.notify("initialized", {})
    return result


@pytest.fixture
def server(tmp_path: Path, workspace: Path) -> Iterator[RawServer]:
    raw = RawServer(tmp_path / "cache")
    try:
        yield raw
    finally:
        raw.close()


def open_stub(server: RawServer, root: Path) -> str:
    uri = (root / "pricing.py").as_uri()
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": STUB}},
    )
    return uri


def code_action_titles(server: RawServer, uri: str, line: int = 1, character: int = 0) -> list[str]:
    response = server.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {
                "start": {"line": line, "character": character},
                "end": {"line": line, "character": character},
            },
            "context": {"diagnostics": []},
        },
    )
    assert "result" in response, response
    return [action["title"] for action in response["result"] or []]


def assert_alive_with_state(server: RawServer, uri: str) -> None:
    """A request succeeds and the document opened earlier is still known."""
    assert "Implement `apply_discount` with agentls" in code_action_titles(server, uri)


@pytest.fixture
def ready(server: RawServer, workspace: Path) -> tuple[RawServer, str]:
    initialize(server, workspace)
    uri = open_stub(server, workspace)
    assert_alive_with_state(server, uri)
    return server, uri


def test_requests_before_initialize_are_refused(server: RawServer, workspace: Path) -> None:
    response = server.request("textDocument/codeAction", {"textDocument": {"uri": "file:///x.py"}})
    assert response["error"]["code"] == -32002
    result = initialize(server, workspace)
    assert "capabilities" in result["result"]


def test_a_second_initialize_is_refused_and_changes_nothing(
    ready: tuple[RawServer, str], tmp_path: Path
) -> None:
    server, uri = ready
    other = tmp_path / "other"
    other.mkdir()
    response = server.request(
        "initialize",
        {
            "processId": None,
            "rootUri": other.as_uri(),
            "capabilities": {},
            "initializationOptions": {"agent": {"max_cost_usd": 99}},
        },
    )
    assert response["error"]["code"] == -32600 and "initialize is sent once" in response["error"]["message"]
    stats = server.request("agentls/serverStats")["result"]
    assert str(other) not in json.dumps(stats)
    assert_alive_with_state(server, uri)


def test_a_change_older_than_the_buffer_is_ignored(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    newer = STUB + '\n\ndef newer():\n    """Newer."""\n    raise NotImplementedError\n'
    older = STUB + '\n\ndef stale():\n    """Stale."""\n    raise NotImplementedError\n'
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 10}, "contentChanges": [{"text": newer}]},
    )
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": older}]},
    )
    line = newer.count("\n", 0, newer.index("def newer"))
    assert "Implement `newer` with agentls" in code_action_titles(server, uri, line=line)


def test_wrong_typed_command_arguments_are_refused_not_coerced(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    for line in ("0", 0.0, True):
        response = server.request(
            "workspace/executeCommand",
            {
                "command": "agentls.implement",
                "arguments": [{"uri": uri, "position": {"line": line, "character": 0}}],
            },
        )
        assert response.get("error", {}).get("code") == -32602, (line, response)
        assert "position.line" in response["error"]["message"]
    response = server.request(
        "workspace/executeCommand", {"command": "agentls.implement", "arguments": {"uri": uri}}
    )
    assert (
        response["error"]["code"] == -32602 and "`arguments` must be an array" in response["error"]["message"]
    )
    assert_alive_with_state(server, uri)


def test_a_cancelled_run_command_starts_no_run(ready: tuple[RawServer, str]) -> None:
    """$/cancelRequest reaches the command itself: the client told "cancelled" has no run going on."""
    server, uri = ready
    request = {
        "jsonrpc": "2.0",
        "id": 901,
        "method": "workspace/executeCommand",
        "params": {"command": "agentls.run", "arguments": [{"instruction": "Say hi"}]},
    }
    cancel = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 901}}
    server.write(frame(request) + frame(cancel))  # one write: the cancel comes before the command runs
    assert server.response(901)["error"]["code"] == -32800
    time.sleep(0.5)
    assert server.request("agentls/runs")["result"] == []
    assert_alive_with_state(server, uri)


def test_a_search_before_the_first_index_says_the_index_is_being_built(ready: tuple[RawServer, str]) -> None:
    """Not "no results": nothing is indexed yet (index_on_start is off here, as while a first index runs)."""
    server, uri = ready
    response = server.request("agentls/search", {"query": "discount"})
    assert response["error"]["code"] == -32803
    assert "the index of ws is still being built" in response["error"]["message"]
    assert_alive_with_state(server, uri)


def test_a_workspace_that_is_no_local_folder_is_said(server: RawServer) -> None:
    """A remote or garbage root URI: without a message every feature would quietly do nothing."""
    options = {"index": {"embedding": {"provider": "none"}}, "server": {"index_on_start": False}}
    server.request(
        "initialize",
        {
            "processId": None,
            "rootUri": "https://example.com/repo",
            "capabilities": {},
            "initializationOptions": options,
        },
    )
    server.notify("initialized", {})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        server.no_response_for(0.2)
        shown = [m["params"]["message"] for m in server.seen if m.get("method") == "window/showMessage"]
        if shown:
            break
    assert any("cannot index https://example.com/repo: not a folder on this machine" in m for m in shown), (
        shown
    )


def test_exit_sent_as_a_request_is_answered_then_exits(ready: tuple[RawServer, str]) -> None:
    server, _ = ready
    assert "result" in server.request("shutdown")
    assert server.request("exit") == {"jsonrpc": "2.0", "id": server._next_id, "result": None}
    assert server.proc.wait(20) == 0


def test_bad_content_length_then_recovery(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    server.write(
        b"Content-Length: abc\r\n\r\n" + json.dumps({"jsonrpc": "2.0", "id": 1, "method": "x"}).encode()
    )
    server.write(b"Content-Length: -20\r\n\r\n{}")
    server.write(b"Content-Length: 99999999999999999999\r\n\r\n")
    server.write(b"garbage without any header\r\n\r\n")
    server.write(b"Content-Type: application/json\r\n\r\n{}")
    assert_alive_with_state(server, uri)


def test_invalid_json_gets_a_parse_error(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    body = b'{"jsonrpc": "2.0", "id": 7, "method": "shutdown"'  # no closing brace
    server.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    response = server.response(None)
    assert response["error"]["code"] == -32700
    body = b"\xff\xfe not utf-8"
    server.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert server.response(None)["error"]["code"] == -32700
    server.send([{"jsonrpc": "2.0", "id": 8, "method": "shutdown"}])  # type: ignore[arg-type]
    assert server.response(None)["error"]["code"] == -32600  # batches are not LSP
    server.send({"id": 9, "method": "shutdown"})  # no "jsonrpc"
    assert server.response(9)["error"]["code"] == -32600
    server.send({"jsonrpc": "2.0", "id": None, "method": "agentls/serverStats"})  # a request's id is not null
    refused = server.response(None)
    assert refused["error"]["code"] == -32600 and "string or an integer" in refused["error"]["message"]
    assert_alive_with_state(server, uri)


def test_truncated_body_is_dropped_and_the_next_message_served(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    whole = json.dumps({"jsonrpc": "2.0", "id": 11, "method": "agentls/serverStats"}).encode()
    server.write(b"Content-Length: %d\r\n\r\n%s" % (len(whole) + 500, whole[:20]))
    response = server.request("agentls/serverStats")
    assert response["result"]["documents"] == 1
    # A Content-Length shorter than the body: the cut body is a parse error, the rest is resynchronised.
    server.write(b"Content-Length: 10\r\n\r\n" + whole)
    assert server.response(None)["error"]["code"] == -32700
    assert_alive_with_state(server, uri)


def test_unknown_methods(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    response = server.request("agentls/doesNotExist", {"a": 1})
    assert response["error"]["code"] == -32601
    response = server.request("$/unknownRequest", {})
    assert response["error"]["code"] == -32601
    server.notify("agentls/unknownNotification", {"x": 1})
    server.notify("$/unknownNotification", None)
    assert server.no_response_for(0.5) == []
    assert_alive_with_state(server, uri)


def test_invalid_params(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    response = server.request("textDocument/codeAction", {"textDocument": 5})
    assert response["error"]["code"] == -32602
    assert "textDocument/codeAction" in response["error"]["message"]
    response = server.request("textDocument/codeAction", None)
    assert response["error"]["code"] == -32602
    for params in (
        {},
        {"query": ""},
        {"query": 3},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": "5"},
        {"query": "x", "files": "yes"},
        [1],
    ):
        response = server.request("agentls/search", params)
        assert response["error"]["code"] == -32602, (params, response)
    server.notify("textDocument/didOpen", {"textDocument": {"uri": 1}})  # ignored: a notification
    server.notify("textDocument/didChange", {"nonsense": True})
    assert server.no_response_for(0.5) == []
    assert_alive_with_state(server, uri)


def test_unknown_commands_and_wrong_arguments(ready: tuple[RawServer, str]) -> None:
    server, uri = ready

    def execute(command: str, arguments: Any) -> dict[str, Any]:
        return server.request("workspace/executeCommand", {"command": command, "arguments": arguments})

    assert execute("agentls.nope", [])["error"]["code"] == -32602
    wrong = [
        ("agentls.implement", [{"uri": uri}]),  # no position
        ("agentls.implement", [{"uri": uri, "position": {"line": -1, "character": 0}}]),
        ("agentls.implement", ["not an object"]),
        ("agentls.implement", [{"uri": uri, "position": {"line": 1, "character": 0}}, {}]),
        ("agentls.edit", [{"uri": uri, "range": {"start": {"line": 0, "character": 0}}, "instruction": "x"}]),
        ("agentls.ask", [{"question": ""}]),
        ("agentls.accept", [{"proposal": "x"}]),
        ("agentls.cancel", [{"runId": 5}]),
        ("agentls.reindex", [[]]),
    ]
    for command, arguments in wrong:
        response = execute(command, arguments)
        assert response["error"]["code"] == -32602, (command, arguments, response)
        assert command in response["error"]["message"]
    # Valid arguments on a stub: a run starts (and is cancelled at once; runs: tests/e2e/test_lsp_agent.py).
    response = execute("agentls.implement", [{"uri": uri, "position": {"line": 1, "character": 0}}])
    run_id = response["result"]["runId"]
    assert execute("agentls.cancel", [{"runId": run_id}])["result"]["runId"] == run_id
    assert execute("agentls.reindex", [])["result"] == {"folders": [str(Path(uri[7:]).parent)]}
    assert_alive_with_state(server, uri)


def test_positions_out_of_range_are_clamped(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    assert code_action_titles(server, uri, line=10_000, character=10_000) == []
    assert code_action_titles(server, uri, line=0, character=10_000) != []  # line 0 is the def line
    # A ranged change past the end of the document appends.
    server.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [
                {
                    "range": {"start": {"line": 99, "character": 0}, "end": {"line": 120, "character": 5}},
                    "text": "\n",
                }
            ],
        },
    )
    assert_alive_with_state(server, uri)


def test_non_file_uris(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    untitled = "untitled:Untitled-1"
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": untitled, "languageId": "python", "version": 1, "text": STUB}},
    )
    assert code_action_titles(server, untitled) == []
    assert code_action_titles(server, "https://example.invalid/x.py") == []
    assert code_action_titles(server, "not a uri at all") == []
    response = server.request("agentls/search", {"query": "discount", "path": "untitled:Untitled-1"})
    assert response["error"]["code"] == -32602
    server.notify("textDocument/didClose", {"textDocument": {"uri": untitled}})
    assert_alive_with_state(server, uri)


def test_file_uris_that_name_no_path_here(tmp_path: Path, workspace: Path) -> None:
    """A Windows file URI or a relative one was read as a path relative to the server's working folder:
    with the server started in the project (as Neovim starts it from its own folder), ``file:///C:/x.py``
    got agent actions and a run on ``c:/x.py`` inside the project. ``file://localhost/...`` is a local
    file (RFC 8089) and got none."""
    server = RawServer(tmp_path / "cache", cwd=workspace)
    try:
        initialize(server, workspace)
        (workspace / "c:").mkdir()  # what the run would have edited
        (workspace / "c:" / "pricing.py").write_text(STUB)
        for uri in ("file:///C:/pricing.py", "file:///c%3A/pricing.py", "file:pricing.py"):
            server.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": STUB}},
            )
            assert code_action_titles(server, uri) == [], uri
            response = server.request(
                "workspace/executeCommand",
                {
                    "command": "agentls.implement",
                    "arguments": [{"uri": uri, "position": {"line": 0, "character": 4}}],
                },
            )
            assert "names no file on this machine" in response["error"]["message"], response
        local = "file://localhost" + (workspace / "pricing.py").as_posix()
        server.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": local, "languageId": "python", "version": 1, "text": STUB}},
        )
        assert "Implement `apply_discount` with agentls" in code_action_titles(server, local)
    finally:
        server.close()


def test_documents_over_the_size_limit(server: RawServer, workspace: Path) -> None:
    initialize(
        server,
        workspace,
        {
            "index": {"embedding": {"provider": "none"}, "max_file_bytes": 2000},
            "server": {"index_on_start": False},
        },
    )
    uri = open_stub(server, workspace)
    big = (workspace / "big.py").as_uri()
    big_text = STUB + "\n" + "# padding 😀\n" * 500
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": big, "languageId": "python", "version": 1, "text": big_text}},
    )
    assert code_action_titles(server, big) == []
    assert any("larger than 2000 bytes" in m.get("params", {}).get("message", "") for m in server.seen)
    # Shrunk under the limit, it is served again.
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": big, "version": 2}, "contentChanges": [{"text": STUB}]},
    )
    assert "Implement `apply_discount` with agentls" in code_action_titles(server, big)
    assert_alive_with_state(server, uri)


def test_settings_that_are_not_an_object_are_said_not_dropped(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    server.notify("workspace/didChangeConfiguration", {"settings": "x"})
    server.request("agentls/serverStats")  # the notification was handled before this answer
    shown = [m["params"]["message"] for m in server.seen if m.get("method") == "window/showMessage"]
    assert any("expected an object of agentls settings, got str; ignored" in m for m in shown), shown
    assert_alive_with_state(server, uri)


def test_closing_or_changing_an_unknown_document_is_ignored(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    never = "file:///never/opened.py"
    server.notify("textDocument/didClose", {"textDocument": {"uri": never}})
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": never, "version": 3}, "contentChanges": [{"text": "x"}]},
    )
    server.notify("textDocument/didSave", {"textDocument": {"uri": never}})
    assert server.no_response_for(0.5) == []
    assert not any(m.get("method") == "window/showMessage" for m in server.seen)
    assert server.request("agentls/serverStats")["result"]["documents"] == 1
    assert_alive_with_state(server, uri)


# -- fuzzing -------------------------------------------------------------------------------------------

_SEEDS: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "textDocument/codeAction",
        "params": {
            "textDocument": {"uri": "file:///ws/pricing.py"},
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
            "context": {"diagnostics": []},
        },
    },
    {"jsonrpc": "2.0", "id": 2, "method": "agentls/search", "params": {"query": "discount", "limit": 3}},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "workspace/executeCommand",
        "params": {
            "command": "agentls.implement",
            "arguments": [{"uri": "file:///x", "position": {"line": 0, "character": 0}}],
        },
    },
    {
        "jsonrpc": "2.0",
        "method": "textDocument/didOpen",
        "params": {
            "textDocument": {
                "uri": "file:///fuzz/a.py",
                "languageId": "python",
                "version": 1,
                "text": "def f():\n    pass\n",
            }
        },
    },
    {
        "jsonrpc": "2.0",
        "method": "textDocument/didChange",
        "params": {
            "textDocument": {"uri": "file:///fuzz/a.py", "version": 2},
            "contentChanges": [{"text": "x = 1\n"}],
        },
    },
    {
        "jsonrpc": "2.0",
        "method": "textDocument/didClose",
        "params": {"textDocument": {"uri": "file:///fuzz/a.py"}},
    },
    {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}},
    {"jsonrpc": "2.0", "id": "s", "method": "agentls/serverStats"},
]


def _mutate_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    choice = rng.random()
    if isinstance(value, dict) and value and choice < 0.6:
        key = rng.choice(list(value))
        out = dict(value)
        if rng.random() < 0.3:
            del out[key]
        else:
            out[key] = _mutate_value(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and choice < 0.6:
        return [_mutate_value(rng, v, depth + 1) for v in value]
    return rng.choice(
        [None, -1, 0, 2**40, "", "😀" * 3, "\u0000", [], {}, True, 3.5, "file:///", {"line": -5}]
    )


def _fuzz_frames(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        seed = rng.choice(_SEEDS)
        kind = rng.random()
        if kind < 0.35:
            message = _mutate_value(rng, seed)
            yield frame(message)
        elif kind < 0.55:
            raw = bytearray(frame(seed))
            for _ in range(rng.randint(1, 6)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            yield bytes(raw)
        elif kind < 0.7:
            raw = frame(seed)
            yield raw[: rng.randrange(1, len(raw))]  # truncated anywhere, header included
        elif kind < 0.8:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind < 0.9:
            body = json.dumps(seed).encode()
            yield b"Content-Length: %d\r\n\r\n%s" % (len(body) + rng.randint(-20, 40), body)
        else:
            yield frame(seed)


def test_fuzzed_frames_do_not_kill_the_server(ready: tuple[RawServer, str]) -> None:
    server, uri = ready
    rng = random.Random(1124)
    for chunk in _fuzz_frames(rng, 400):
        server.write(chunk)
    # Whatever the last frame left half-read, a fresh well-formed request must get through: the embedded
    # header ends any unfinished body.
    server.write(b"\r\n\r\n")
    response = server.request("agentls/serverStats", timeout=60)
    assert "result" in response
    assert server.proc.poll() is None
    for message in server.seen:
        assert message.get("jsonrpc") == "2.0"
        if "method" not in message:
            assert ("result" in message) != ("error" in message), message
    codes = {m["error"]["code"] for m in server.seen if "error" in m}
    print("fuzz: responses", len([m for m in server.seen if "method" not in m]), "error codes", sorted(codes))
    assert {-32700, -32602} <= codes  # the fuzz did reach the parse and params checks
    assert_alive_with_state(server, uri)
