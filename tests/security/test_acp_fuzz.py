"""Hostile ACP traffic (issue 17, item 2, "the same for the ACP endpoint"): a seeded run of 3,000 frames
against `agentls acp`. The endpoint stays up, answers a valid ``session/new`` within a second afterwards,
writes nothing outside its workspace (its HOME and working directory are the test's), leaves the
workspace as it was, and logs no traceback. The long run (more seeds) is in
tests/benchmarks/test_security_long.py."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.acp_fuzz import AcpProcess, hostile_acp_frames
from tests.security.lsp_fuzz import FuzzReport, fuzz

pytestmark = pytest.mark.timeout(120)

FUZZ_SEED = 23
FUZZ_FRAMES = 3_000


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _probe(acp: AcpProcess, ws: Path, timeout: float) -> float | None:
    started = time.monotonic()
    answer = acp.request("session/new", {"cwd": str(ws), "mcpServers": []}, timeout)
    if answer is None or "result" not in answer:
        return None
    return time.monotonic() - started


def start_acp(tmp: Path) -> tuple[AcpProcess, Path]:
    """`agentls acp` initialized, and its workspace (answering ``session/new``)."""
    ws = tmp / "ws"
    ws.mkdir()
    (ws / ".git").mkdir()
    (ws / "pricing.py").write_text("def price(x):\n    return x\n")
    process = AcpProcess(tmp)
    answer = process.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}}, 60)
    assert answer is not None and answer["result"]["agentInfo"]["name"] == "agentls", answer
    assert _probe(process, ws, 30) is not None
    return process, ws


@pytest.fixture
def acp(tmp_path: Path) -> Iterator[tuple[AcpProcess, Path]]:
    process, ws = start_acp(tmp_path)
    try:
        yield process, ws
    finally:
        process.close()


def run_acp_fuzz(acp: AcpProcess, ws: Path, seed: int, frames: int) -> tuple[FuzzReport, float | None]:
    """Send `frames` hostile lines with `seed`; the report and the final probe's latency."""
    session = acp.request("session/new", {"cwd": str(ws), "mcpServers": []}, 10)
    assert session is not None
    sessions = [session["result"]["sessionId"]]
    hostile = hostile_acp_frames(
        random.Random(seed), frames, cwd=str(ws), outside=str(acp.outside), sessions=sessions, big_line=True
    )

    def restart() -> None:  # a death fails the test; there is nothing to restart into
        raise AssertionError(f"agentls acp died; stderr tail:\n{acp.stderr()[-3000:]}")

    report = fuzz(
        acp.write,
        lambda timeout: _probe(acp, ws, timeout),
        lambda: acp.proc.poll() is None,
        restart,
        hostile,
        probe_every=250,
    )
    return report, _probe(acp, ws, 5)


def test_fuzz_3000_hostile_acp_frames(acp: tuple[AcpProcess, Path]) -> None:
    process, ws = acp
    outside_before = _files(process.outside) | {f"home/{p}": b for p, b in _files(process.home).items()}
    ws_before = _files(ws)

    report, final = run_acp_fuzz(process, ws, FUZZ_SEED, FUZZ_FRAMES)

    print(
        f"\nacp fuzz seed {FUZZ_SEED}: {report.frames} frames ({report.bytes_sent / 1e6:.1f} MB) in "
        f"{report.seconds:.1f} s, deaths {report.deaths}, hangs {report.hangs}, slowest probe "
        f"{report.slowest_probe:.2f} s, final probe {final}; kinds {json.dumps(report.kinds)}"
    )
    assert report.frames == FUZZ_FRAMES and report.deaths == 0 and report.hangs == 0
    assert report.seconds < 30
    assert final is not None and final < 1.0
    assert (
        _files(process.outside) | {f"home/{p}": b for p, b in _files(process.home).items()} == outside_before
    )
    assert _files(ws) == ws_before
    log = process.stderr()
    assert log.count("Traceback (most recent call last)") == 0, log[log.find("Traceback") - 300 :][:3000]
    assert len(log) < 200_000, f"{len(log)} characters of stderr for {FUZZ_FRAMES} frames"


def test_session_close_with_a_bad_or_unknown_session_id_is_an_error(acp: tuple[AcpProcess, Path]) -> None:
    """session/close naming no session (unknown, already closed), or with params that are not a
    CloseSessionRequest, is answered with a JSON-RPC error of its id; the endpoint keeps serving and logs no
    traceback."""
    process, ws = acp
    answer = process.request("session/new", {"cwd": str(ws), "mcpServers": []}, 30)
    assert answer is not None, process.stderr()[-3000:]
    session = answer["result"]["sessionId"]
    closed = process.request("session/close", {"sessionId": session}, 30)
    assert closed is not None and closed.get("result") == {}, closed
    for params, code, said in (
        ({"sessionId": session}, -32602, f"the session {session} was closed"),
        ({"sessionId": "nope"}, -32602, "there is no session nope"),
        ({"sessionId": ""}, -32602, "there is no session"),
        ({"sessionId": 5}, -32602, ""),
        ({"sessionId": None}, -32602, ""),
        ({}, -32602, ""),
        ([session], -32602, ""),
        ("x", -32602, ""),
        (None, -32602, ""),
    ):
        answer = process.request("session/close", params, 30)
        assert answer is not None and "error" in answer, (params, answer)
        assert answer["error"]["code"] == code and said in answer["error"]["message"], (params, answer)
    assert _probe(process, ws, 30) is not None
    log = process.stderr()
    assert log.count("Traceback (most recent call last)") == 0, log[log.find("Traceback") - 300 :][:3000]
