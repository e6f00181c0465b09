"""`server.acp_input.screen`: which ACP input lines reach the SDK, and what the rest is answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.acp_input import screen


def _answer(line: bytes) -> dict[str, object] | None:
    passed, answer = screen(line)
    assert passed is None
    return json.loads(answer) if answer is not None else None


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}\n',
        b'{"jsonrpc": "2.0", "id": "a", "method": "session/new", "params": {}}\n',
        b'{"jsonrpc": "2.0", "method": "session/cancel", "params": {}}\n',
        b'{"jsonrpc": "2.0", "id": 3, "result": {}}\n',
    ],
)
def test_requests_notifications_and_responses_pass(line: bytes) -> None:
    assert screen(line) == (line, None)


def test_what_is_not_a_request_is_answered_with_id_null() -> None:
    for line, code in (
        (b"[1, 2]\n", -32600),
        (b"5\n", -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}\n', -32600),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "initialize"}\n', -32600),
        (b'{"jsonrpc": "2.0", "id": true, "method": "initialize"}\n', -32600),  # JSON's true is no number
        (b'{"jsonrpc": "1.0", "id": 1, "method": "initialize"}\n', -32600),
        (b'{"id": 1, "method": "initialize"}\n', -32600),
        (b"{'a': 1}\n", -32700),
        (b'{"method": "\xff"}\n', -32700),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", -32700),
    ):
        answer = _answer(line)
        assert answer is not None and answer["id"] is None, line[:40]
        assert answer["error"]["code"] == code, line[:40]  # type: ignore[index]


def test_a_response_to_an_id_never_sent_is_dropped_silently() -> None:
    assert screen(b'{"jsonrpc": "2.0", "id": [1], "result": 1}\n') == (None, None)
    assert screen(b"   \n") == (None, None)


def test_a_session_on_the_root_or_home_folder_or_a_relative_cwd_is_refused(tmp_path: Path) -> None:
    """Every prompt indexes its workspace first: / or a whole home folder would be read entirely."""
    import asyncio

    from acp import RequestError

    from server.acp import AgentlsAcpAgent

    home = tmp_path / "home"
    (home / "proj" / ".git").mkdir(parents=True)
    agent = AgentlsAcpAgent({"HOME": str(home), "AGENTLS_CACHE_DIR": str(tmp_path / "cache")})
    for cwd in ("/", str(home), "~"):
        with pytest.raises(RequestError):
            asyncio.run(agent.new_session(cwd=cwd))
    assert asyncio.run(agent.new_session(cwd=str(home / "proj"))).session_id


def test_session_cancel_stops_the_first_indexing_of_a_prompt(tmp_path: Path) -> None:
    """A prompt indexes its workspace first (minutes on a large tree): session/cancel stops that too."""
    import threading

    from server.acp import AgentlsAcpAgent
    from server.settings import Settings

    root = tmp_path / "ws"
    root.mkdir()
    for n in range(50):
        (root / f"m{n}.py").write_text(f"def f{n}():\n    return {n}\n")
    agent = AgentlsAcpAgent({"AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
    stop = threading.Event()
    stop.set()  # cancelled before the index was built
    assert agent._index_opener(root, Settings(), stop)() is None
    stop.clear()
    assert agent._index_opener(root, Settings(), stop)() is not None
