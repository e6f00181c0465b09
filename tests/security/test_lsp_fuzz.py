"""Hostile LSP traffic (issue 17, items 2 and 6): the repro cases, then a seeded fuzz run of 10,000 frames.

The server runs as `agentls serve` on pipes with its own HOME, cache and working directory, so anything
it writes outside the workspace and its cache shows up. Its stderr goes to a file: expected bad input is
logged as one line, never as a traceback.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.features.commands import ALL_COMMANDS
from tests.security.lsp_fuzz import frame, fuzz, hostile_frames, start_isolated
from tests.server.test_lsp_bad_input import STUB, RawServer, initialize, open_stub

pytestmark = pytest.mark.timeout(300)

FUZZ_SEED = 17
FUZZ_FRAMES = 10_000


class LoggedServer(RawServer):
    """`RawServer` with stderr kept in a file and HOME and the working directory in `tmp`."""

    def __init__(self, tmp: Path) -> None:
        started = start_isolated(tmp, "serve")
        self.proc, self.stderr_path, self.home, self.outside = (
            started.proc,
            started.stderr_path,
            started.home,
            started.outside,
        )
        import queue

        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._next_id = 1000
        threading.Thread(target=self._read, daemon=True).start()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LoggedServer, str, Path]]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pricing.py").write_text(STUB)
    server = LoggedServer(tmp_path)
    try:
        initialize(server, ws)
        uri = open_stub(server, ws)
        assert _probe(server, uri, 60) is not None  # warm: the first code action loads the parsers
        yield server, uri, ws
    finally:
        server.close()


def _probe(server: RawServer, uri: str, timeout: float) -> float | None:
    started = time.monotonic()
    try:
        server.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
                "context": {"diagnostics": []},
            },
            timeout=timeout,
        )
    except AssertionError:
        return None
    return time.monotonic() - started


def test_json_nested_100000_deep_gets_a_parse_error(served: tuple[LoggedServer, str, Path]) -> None:
    server, uri, _ = served
    server.write(
        frame(
            b'{"jsonrpc": "2.0", "id": 7, "method": "x", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
    )
    answer = server.response(None, timeout=10)
    assert answer["error"]["code"] == -32700 and "nested too deeply" in answer["error"]["message"]
    assert _probe(server, uri, 5) is not None
    assert "Traceback" not in server.stderr()


def test_cancel_request_with_an_object_id_is_ignored(served: tuple[LoggedServer, str, Path]) -> None:
    server, uri, _ = served
    for bad in ({"a": 1}, [1], None, 1.5):
        server.notify("$/cancelRequest", {"id": bad})
    assert _probe(server, uri, 5) is not None
    log = server.stderr()
    assert "Traceback" not in log
    assert log.count("ignoring $/cancelRequest without a string or integer id") == 4


def test_a_long_wrong_typed_string_does_not_block_the_server(served: tuple[LoggedServer, str, Path]) -> None:
    server, uri, _ = served
    before = len(server.stderr())
    started = time.monotonic()
    server.notify("workspace/didChangeWatchedFiles", {"changes": "A" * 100_000})
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": "A" * 100_000},
    )
    bad = server.request(
        "textDocument/codeAction", {"textDocument": {"uri": uri}, "range": "A" * 100_000, "context": {}}
    )
    assert bad["error"]["code"] == -32602 and len(bad["error"]["message"]) < 400
    latency = _probe(server, uri, 5)
    # Answered (a blocked server misses the probe's 5 s): in a second here; 15 s leaves room for load.
    assert latency is not None and time.monotonic() - started < 15, latency
    new_log = server.stderr()[before:]
    assert "Traceback" not in new_log
    assert len(new_log) < 2_000, new_log[:500]  # one short line each, not one per character
    assert len([line for line in new_log.splitlines() if "invalid params" in line]) == 2


def test_fuzz_10000_hostile_frames(served: tuple[LoggedServer, str, Path], tmp_path: Path) -> None:
    server, uri, ws = served
    outside_before = _files(server.outside) | {f"home/{p}" for p in _files(server.home)}
    ws_before = {p: (ws / p).read_bytes() for p in _files(ws) if (ws / p).is_file()}
    rng = random.Random(FUZZ_SEED)
    frames = hostile_frames(
        rng, FUZZ_FRAMES, uris=[uri, (ws / "other.py").as_uri()], commands=list(ALL_COMMANDS), big_string=True
    )

    def restart() -> None:  # a death is counted and fails the test below; nothing to restart into
        raise AssertionError(f"the server died; stderr tail:\n{server.stderr()[-3000:]}")

    report = fuzz(
        server.write,
        lambda timeout: _probe(server, uri, timeout),
        lambda: server.proc.poll() is None,
        restart,
        frames,
        probe_every=500,
    )
    final = _probe(server, uri, 5)
    print(
        f"\nfuzz seed {FUZZ_SEED}: {report.frames} frames ({report.bytes_sent / 1e6:.1f} MB) in "
        f"{report.seconds:.1f} s, deaths {report.deaths}, hangs {report.hangs}, slowest probe "
        f"{report.slowest_probe:.2f} s, final probe {final}; kinds {json.dumps(report.kinds)}"
    )
    assert report.frames == FUZZ_FRAMES
    assert report.deaths == 0 and report.hangs == 0
    assert report.seconds < 60
    assert final is not None and final < 1.0
    # Nothing written outside the workspace (the cache is agentls' own); the workspace itself unchanged.
    assert _files(server.outside) | {f"home/{p}" for p in _files(server.home)} == outside_before
    assert {p: (ws / p).read_bytes() for p in _files(ws) if (ws / p).is_file()} == ws_before
    # No Python traceback ever reached the editor.
    while not server.messages.empty():
        server.seen.append(server.messages.get())
    shown = [json.dumps(m)[:3000] for m in server.seen if "Traceback (most recent" in json.dumps(m)]
    assert not shown, shown[0]
    tracebacks = server.stderr().count("Traceback (most recent call last)")
    assert tracebacks == 0, server.stderr()[server.stderr().index("Traceback") - 300 :][:3000]
