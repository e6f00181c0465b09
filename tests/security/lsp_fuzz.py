"""A seeded generator of hostile LSP traffic, and a driver that sends it to `agentls serve` and keeps score.

`hostile_frames(rng, ...)` yields raw byte strings: bad framing (garbage, missing or wrong
``Content-Length``, lengths over the limit, bodies cut short), invalid JSON and invalid UTF-8, JSON that is
not a request, requests and notifications of every LSP method the server handles with wrong-typed params,
out-of-range positions, unopened and non-file URIs, ``workspace/executeCommand`` with garbage arguments for
every advertised command, deep nesting, and (once per run, when asked) a 20 MB string.

`fuzz(server, ...)` sends them in order, probes the server with a valid request every `probe_every`
frames (a probe that takes longer than `hang_seconds` is a hang), restarts it if it dies (a death), and
returns a `FuzzReport`. Used by the default-run test (10,000 frames) and the benchmark (more seeds).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LSP_METHODS = (
    "textDocument/hover",
    "textDocument/completion",
    "textDocument/codeAction",
    "textDocument/codeLens",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/documentSymbol",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/didSave",
    "workspace/didChangeWatchedFiles",
    "workspace/didChangeWorkspaceFolders",
    "workspace/didChangeConfiguration",
    "workspace/executeCommand",
    "workspace/symbol",
    "$/cancelRequest",
    "$/setTrace",
    "agentls/search",
    "agentls/nonexistent",
)


@dataclass
class Isolated:
    """An agentls process on pipes whose HOME and working directory are the test's own folders."""

    proc: subprocess.Popen[bytes]
    stderr_path: Path
    home: Path
    outside: Path


def start_isolated(tmp: Path, command: str) -> Isolated:
    """``agentls COMMAND`` with its own HOME, cache and working directory under `tmp` (so anything it
    writes outside the workspace shows up), stderr to ``tmp/stderr.log``, no model keys."""
    home, outside = tmp / "home", tmp / "outside"
    home.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    env = dict(
        os.environ,
        AGENTLS_CACHE_DIR=str(tmp / "cache"),
        HF_HUB_OFFLINE="1",
        HOME=str(home),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY"):
        env.pop(name, None)  # a request that gets through to a run fails at once: no model is called
    stderr_path = tmp / "stderr.log"
    with open(stderr_path, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=outside,
        )
    return Isolated(proc, stderr_path, home, outside)


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def frame_json(message: Any) -> bytes:
    return frame(json.dumps(message).encode())


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type."""
    kind = rng.randrange(12 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, -(2**31) - 1, 2**53 + 1, 10**30])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 3.14])
    if kind == 4:
        return rng.choice(
            ["", "x", "A" * rng.randrange(1, 5000), "\u0000\ud7ff\U0001f600", "../../etc/passwd"]
        )
    if kind == 5:
        return rng.choice(
            ["file:///", "http://example.com/a.py", "untitled:Untitled-1", "file:///etc/shadow"]
        )
    if kind == 6:
        return "\n".join(rng.choice(["--- a/x", "+++ b/x", "\x1b[2J", "\r", "\t"]) for _ in range(3))
    if kind in (7, 8):
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["uri", "range", "textDocument", "position", "id", "changes", "x"]): _junk(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def _position(rng: random.Random) -> Any:
    if rng.random() < 0.7:
        return {
            "line": rng.choice([0, 1, 5, 10**6, -1, 2**31 - 1]),
            "character": rng.choice([0, 3, 10**6, -5, 2**31 - 1]),
        }
    return _junk(rng)


def _uri(rng: random.Random, uris: list[str]) -> Any:
    options = [
        *uris,
        "file:///nonexistent/never/opened.py",
        "http://example.com/x.py",
        "untitled:Untitled-1",
        "file:///etc/passwd",
        "file:///%2e%2e/%2e%2e/etc/shadow",
        "file:relative.py",
        "",
        "file:///" + "a" * 5000 + ".py",
    ]
    return rng.choice(options) if rng.random() < 0.9 else _junk(rng)


def _params(rng: random.Random, method: str, uris: list[str], commands: list[str]) -> Any:
    if rng.random() < 0.25:
        return _junk(rng)
    uri = _uri(rng, uris)
    doc = {"uri": uri}
    pos = _position(rng)
    rng_range = {"start": _position(rng), "end": _position(rng)}
    if method == "textDocument/didOpen":
        return {
            "textDocument": {
                "uri": uri,
                "languageId": rng.choice(["python", 7, None]),
                "version": _junk(rng),
                "text": rng.choice(["x = 1\n", _junk(rng)]),
            }
        }
    if method == "textDocument/didChange":
        return {
            "textDocument": {"uri": uri, "version": rng.choice([2, -1, "x", None])},
            "contentChanges": rng.choice(
                [
                    [{"range": rng_range, "text": "y"}],
                    [{"text": "z = 2\n"}],
                    "A" * rng.randrange(1, 100_000),
                    _junk(rng),
                ]
            ),
        }
    if method == "textDocument/codeAction":
        return {
            "textDocument": doc,
            "range": rng_range,
            "context": {"diagnostics": rng.choice([[], "A" * 50_000, [_junk(rng)], _junk(rng)])},
        }
    if method == "workspace/didChangeWatchedFiles":
        return {
            "changes": rng.choice(
                [
                    [{"uri": uri, "type": rng.choice([1, 2, 3, 99, "x"])}],
                    "A" * rng.randrange(1, 100_000),
                    [_junk(rng)] * rng.randrange(50),
                ]
            )
        }
    if method == "workspace/didChangeWorkspaceFolders":
        return {
            "event": rng.choice(
                [
                    {"added": [{"uri": uri, "name": "x"}], "removed": []},
                    {"added": "A" * 50_000, "removed": _junk(rng)},
                    _junk(rng),
                ]
            )
        }
    if method == "workspace/executeCommand":
        return {
            "command": rng.choice([*commands, "nope", _junk(rng)]),
            "arguments": rng.choice(
                [
                    [],
                    [_junk(rng)],
                    [{"uri": uri, "range": rng_range}],
                    _junk(rng),
                    [{"proposalId": _junk(rng)}],
                    [{"runId": _junk(rng)}],
                ]
            ),
        }
    if method == "$/cancelRequest":
        return {"id": _junk(rng)}
    if method == "agentls/search":
        return {"query": _junk(rng), "k": _junk(rng)}
    return {
        "textDocument": doc,
        "position": pos,
        "range": rng_range,
        "query": _junk(rng),
        "context": _junk(rng),
    }


def hostile_frames(
    rng: random.Random, count: int, *, uris: list[str], commands: list[str], big_string: bool = False
) -> Iterator[tuple[str, bytes]]:
    """`count` (kind, bytes) pairs; request ids are strings starting with ``fz`` (never probe ids)."""
    big_at = rng.randrange(count) if big_string else -1
    for n in range(count):
        if n == big_at:
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"fz{n}",
                    "method": "textDocument/hover",
                    "params": {"textDocument": {"uri": "A" * 20_000_000}, "position": {}},
                }
            )
            yield "20 MB string", frame(body.encode())
            continue
        roll = rng.random()
        if roll < 0.06:
            yield "garbage", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif roll < 0.10:
            body = b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}'
            yield (
                "bad framing",
                rng.choice(
                    [
                        b"Content-Length: abc\r\n\r\n" + body,
                        b"Content-Type: x\r\n\r\n" + body,
                        b"Content-Length: %d\r\n\r\n%s" % (len(body) - 7, body),
                        b"Content-Length: 99999999999\r\n\r\n",
                        b"Content-Length: -4\r\n\r\n" + body,
                        b"\r\n\r\n\r\n",
                        b"Content-Length: 5\nContent-Length: 6\n\n123456",
                    ]
                ),
            )
        elif roll < 0.15:
            yield (
                "invalid JSON",
                frame(rng.choice([b"{", b"{'a': 1}", b"[1,2", b"nul", b'{"id": 1,}', b"\x00"])),
            )
        elif roll < 0.19:
            yield "invalid UTF-8", frame(b'{"jsonrpc": "2.0", "id": "fz%d", "method": "\xff\xfe"}' % n)
        elif roll < 0.22:
            depth = rng.choice([100, 1000, 10_000, 100_000])
            yield "deep nesting", frame(b"[" * depth + b"]" * depth)
        elif roll < 0.26:
            yield (
                "not a request",
                frame_json(
                    rng.choice(
                        [
                            [],
                            [1, 2],
                            "x",
                            5,
                            None,
                            {"jsonrpc": "1.0"},
                            {"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"},
                            {"jsonrpc": "2.0", "id": f"fz{n}", "result": 1},
                        ]
                    )
                ),
            )
        else:
            method = rng.choice(LSP_METHODS)
            message: dict[str, Any] = {
                "jsonrpc": "2.0",
                "method": method,
                "params": _params(rng, method, uris, commands),
            }
            if rng.random() < 0.6 and not method.startswith(("textDocument/did", "workspace/didC", "$/")):
                message["id"] = f"fz{n}"
            yield "wrong params", frame_json(message)


@dataclass
class FuzzReport:
    frames: int = 0
    bytes_sent: int = 0
    deaths: int = 0
    hangs: int = 0
    probes: int = 0
    slowest_probe: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def fuzz(
    send: Callable[[bytes], None],
    probe: Callable[[float], float | None],
    alive: Callable[[], bool],
    restart: Callable[[], None],
    frames: Iterator[tuple[str, bytes]],
    *,
    probe_every: int = 500,
    hang_seconds: float = 10.0,
) -> FuzzReport:
    """Send `frames`; `probe(timeout)` sends one valid request and returns its latency (None: no answer)."""
    report = FuzzReport()
    started = time.monotonic()
    for kind, data in frames:
        try:
            send(data)
        except (BrokenPipeError, OSError):
            report.deaths += 1
            restart()
            continue
        report.frames += 1
        report.bytes_sent += len(data)
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        if report.frames % probe_every == 0:
            if not alive():
                report.deaths += 1
                restart()
                continue
            latency = probe(hang_seconds)
            report.probes += 1
            if latency is None:
                report.hangs += 1
            else:
                report.slowest_probe = max(report.slowest_probe, latency)
    report.seconds = time.monotonic() - started
    return report
