"""A seeded generator of hostile Agent Client Protocol traffic for `agentls acp` (newline-delimited JSON-RPC
on stdio), and the process it is sent to.

`hostile_acp_frames(rng, count, ...)` yields (kind, bytes) pairs, each one line: garbage bytes, invalid
JSON and UTF-8, deep nesting, JSON that is not a request, and requests and notifications of every ACP
method (and some that do not exist) with wrong-typed or hostile params: sessions that do not exist,
``cwd`` outside the workspace or relative, prompt blocks of every type with junk fields, resource links
to files outside the workspace, ids of every JSON type; once per run, when asked, a 20 MB line. The
driver is `tests.security.lsp_fuzz.fuzz` (probes, deaths, hangs).
"""

from __future__ import annotations

import json
import queue
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tests.security.lsp_fuzz import _junk, start_isolated

ACP_METHODS = (
    "initialize",
    "authenticate",
    "session/new",
    "session/load",
    "session/prompt",
    "session/cancel",
    "session/close",
    "session/set_mode",
    "session/set_model",
    "session/list",
    "fs/read_text_file",
    "fs/write_text_file",
    "session/request_permission",
    "terminal/create",
    "$/cancel_request",
    "_agentls/anything",
    "nonexistent/method",
)
_NOTIFICATIONS = ("session/cancel", "$/cancel_request", "session/update")


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _block(rng: random.Random, outside: str) -> Any:
    kind = rng.choice(["text", "resource_link", "resource", "image", "audio", "x", None])
    block: dict[str, Any] = {"type": kind}
    if kind == "text":
        block["text"] = rng.choice(["", "fix it", _junk(rng), "\x00\u202e"])
    elif kind == "resource_link":
        block.update(
            uri=rng.choice([f"file://{outside}/secret.txt", "file:///etc/shadow", "file:///", _junk(rng)]),
            name=_junk(rng),
        )
    elif kind == "resource":
        block["resource"] = rng.choice(
            [{"uri": f"file://{outside}/x.py", "text": "x"}, {"uri": _junk(rng)}, _junk(rng)]
        )
    else:
        block[rng.choice(["data", "mimeType", "uri"])] = _junk(rng)
    return block


def _params(rng: random.Random, method: str, cwd: str, outside: str, sessions: list[str]) -> Any:
    if rng.random() < 0.15:
        return _junk(rng)
    session = rng.choice([*sessions, "", "nope", _junk(rng), None])
    if method == "initialize":
        return {
            "protocolVersion": rng.choice([1, 0, -1, 2**20, "1", None, _junk(rng)]),
            "clientCapabilities": rng.choice([{}, {"fs": _junk(rng)}, _junk(rng)]),
        }
    if method == "session/new":
        return {
            "cwd": rng.choice([cwd, outside, "/", "relative/path", "", "/nonexistent", _junk(rng)]),
            "mcpServers": rng.choice([[], _junk(rng), [{"name": "x", "command": "/bin/sh", "args": []}]]),
        }
    if method == "session/prompt":
        return {"sessionId": session, "prompt": [_block(rng, outside) for _ in range(rng.randrange(4))]}
    if method in ("fs/read_text_file", "fs/write_text_file"):
        return {"sessionId": session, "path": f"{outside}/written-by-fuzz.txt", "content": "x"}
    return {"sessionId": session, rng.choice(["modeId", "modelId", "id", "x"]): _junk(rng)}


def hostile_acp_frames(
    rng: random.Random, count: int, *, cwd: str, outside: str, sessions: list[str], big_line: bool = False
) -> Iterator[tuple[str, bytes]]:
    """`count` (kind, line) pairs; request ids are strings starting with ``fz`` or other JSON values."""
    big_at = rng.randrange(count) if big_line else -1
    for n in range(count):
        if n == big_at:
            message = {
                "jsonrpc": "2.0",
                "id": f"fz{n}",
                "method": "session/new",
                "params": {"cwd": "A" * 20_000_000},
            }
            yield "20 MB line", line(message)
            continue
        roll = rng.random()
        if roll < 0.06:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b" ")
            yield "garbage", junk + b"\n"
        elif roll < 0.10:
            yield (
                "invalid JSON",
                rng.choice([b"{", b"{'a': 1}", b"[1,2", b"nul", b'{"id": 1,}', b"\x00", b""]) + b"\n",
            )
        elif roll < 0.14:
            yield "invalid UTF-8", b'{"jsonrpc": "2.0", "id": "fz%d", "method": "\xff\xfe"}\n' % n
        elif roll < 0.17:
            depth = rng.choice([100, 1000, 10_000, 100_000])
            yield "deep nesting", b"[" * depth + b"]" * depth + b"\n"
        elif roll < 0.21:
            yield (
                "not a request",
                line(
                    rng.choice(
                        [
                            [],
                            [1, 2],
                            "x",
                            5,
                            None,
                            {"jsonrpc": "1.0"},
                            {"jsonrpc": "2.0", "id": {"a": 1}, "method": "initialize"},
                            {"jsonrpc": "2.0", "id": f"fz{n}", "result": 1},
                            {"jsonrpc": "2.0", "id": 999_999, "error": {"code": 1, "message": "x"}},
                        ]
                    )
                ),
            )
        else:
            method = rng.choice(ACP_METHODS)
            message: dict[str, Any] = {
                "jsonrpc": "2.0",
                "method": method,
                "params": _params(rng, method, cwd, outside, sessions),
            }
            if method not in _NOTIFICATIONS or rng.random() < 0.2:
                message["id"] = rng.choice([f"fz{n}", n + 10_000_000, None, 1.5, [n], True])
            yield "wrong params", line(message)


class AcpProcess:
    """`agentls acp` on pipes with its own HOME, cache and working directory; stderr kept in a file."""

    def __init__(self, tmp: Path) -> None:
        started = start_isolated(tmp, "acp")
        self.proc, self.stderr_path, self.home, self.outside = (
            started.proc,
            started.stderr_path,
            started.home,
            started.outside,
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout: IO[bytes] | None = self.proc.stdout
        assert stdout is not None
        for raw in stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                message = {"unparsable": raw[:200].decode(errors="replace")}
            self.replies.put(message)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any, timeout: float) -> dict[str, Any] | None:
        """Send a request with a fresh integer id; its response, or None after `timeout` seconds."""
        request_id = self._next_id = self._next_id + 1
        self.write(line({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                message = self.replies.get(timeout=left)
            except queue.Empty:
                return None
            self.seen.append(message)
            if message.get("id") == request_id:
                return message

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
