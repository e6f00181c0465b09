"""`agentls mcp` as a real process, driven by the `mcp` SDK's stdio client: it lists `search_code`,
`find_symbol` and `lookup_docs`, answers them from the workspace's index and the installed packages, and
reports a bad call as an MCP error result (bad arguments in one line naming the argument). Driven with raw
lines: a line that is no JSON-RPC message gets a JSON-RPC error and the server goes on.

Every test ends by collecting garbage and fails if a ``__del__`` raised (``nothing_raises_in_a_finalizer``
in tests/server/conftest.py): an asyncio transport left open after its loop closed."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.agent.agent_harness import copy_workspace

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8rT3vLmNK"

pytestmark = pytest.mark.usefixtures("nothing_raises_in_a_finalizer")


def _text(result: Any) -> str:
    return "\n".join(str(getattr(block, "text", "")) for block in result.content)


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def _command(root: Path) -> tuple[str, list[str]]:
    agentls = shutil.which("agentls")
    if agentls:
        return agentls, ["mcp", "--path", str(root)]
    return sys.executable, ["-m", "server.cli", "mcp", "--path", str(root)]


async def _session_calls(root: Path, cache: Path) -> dict[str, Any]:
    command, args = _command(root)
    params = StdioServerParameters(
        command=command,
        args=args,
        env={**os.environ, "AGENTLS_CACHE_DIR": str(cache)},
        cwd=str(root),
    )
    out: dict[str, Any] = {}
    async with stdio_client(params) as streams, ClientSession(streams[0], streams[1]) as session:
        initialized = await session.initialize()
        out["server"] = getattr(initialized, "server_info", None) or getattr(initialized, "serverInfo", None)
        out["tools"] = sorted(tool.name for tool in (await session.list_tools()).tools)
        out["search"] = await session.call_tool("search_code", {"query": "clamp a value between bounds"})
        out["files"] = await session.call_tool("search_code", {"query": "mean", "files": True})
        out["symbol"] = await session.call_tool("find_symbol", {"name": "clamp", "role": "definition"})
        out["docs"] = await session.call_tool("lookup_docs", {"name": "json.dumps", "language": "python"})
        out["bad"] = await session.call_tool("find_symbol", {"name": "x", "path": "../outside"})
        out["secret"] = await session.call_tool("search_code", {"query": "AWS_SECRET_ACCESS_KEY"})
        out["secret_symbol"] = await session.call_tool("find_symbol", {"name": "AWS", "prefix": True})
        out["bad_type"] = await session.call_tool("search_code", {"query": "mean", "limit": "abc"})
        out["bad_missing"] = await session.call_tool("search_code", {"limit": 3})
        out["bad_unknown"] = await session.call_tool("search_code", {"query": "mean", "k": "abc"})
        out["bad_enum"] = await session.call_tool("find_symbol", {"name": "mean", "role": "caller"})
        out["after_bad"] = await session.call_tool("search_code", {"query": "mean", "limit": 2})
    return out


def test_the_sdk_client_closes_the_transport_of_a_server_whose_pipes_outlive_it(tmp_path: Path) -> None:
    """What leaked with the ACP SDK (tests/server/test_acp.py's `_spawn`): a process that has exited while
    a child of its still holds its stdout. The MCP SDK's `stdio_client` closes the process's transport
    itself when it stops the server, so the tests here use it as it is. (The same process run with
    `acp.spawn_agent_process` in its place makes ``nothing_raises_in_a_finalizer`` fail the test.)"""

    pid_file = tmp_path / "pid"

    async def run() -> None:
        script = f"sleep 5 & echo $$ > {pid_file}; exit 0"
        async with stdio_client(StdioServerParameters(command="sh", args=["-c", script])):
            while not pid_file.exists() or not pid_file.read_text().strip():
                await asyncio.sleep(0.02)
            while Path(f"/proc/{pid_file.read_text().strip()}").exists():  # until the loop reaped it
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(run(), 60))


def test_agentls_mcp_serves_the_index_to_an_sdk_client(tmp_path: Path) -> None:
    root = copy_workspace(tmp_path / "ws")
    (root / "mathx" / "settings_prod.py").write_text(f'AWS_SECRET_ACCESS_KEY = "{SECRET}"\n')
    out = asyncio.run(asyncio.wait_for(_session_calls(root, tmp_path / "cache"), 180))
    assert out["tools"] == ["find_symbol", "lookup_docs", "search_code"]
    assert out["server"].name == "agentls" and out["server"].version  # was "": clients show it
    search = _text(out["search"])
    assert not _is_error(out["search"]) and "mathx/stats.py" in search and "clamp" in search
    listed = re.findall(r"^\d+\. ([^:\s]+):", _text(out["files"]), re.M)
    assert "mathx/stats.py" in listed and len(set(listed)) == len(listed), _text(out["files"])
    symbol = _text(out["symbol"])
    assert "mathx/stats.py:" in symbol and "def clamp" in symbol
    docs = _text(out["docs"])
    assert "json.dumps (function;" in docs and "signature: dumps(obj" in docs
    assert _is_error(out["bad"]) and "outside the workspace" in _text(out["bad"])
    assert ".env" not in search
    # Results leave the machine like a model request: the value is a placeholder, found by its name.
    for key in ("secret", "secret_symbol"):
        found = _text(out[key])
        assert "settings_prod.py" in found and "<secret:" in found and SECRET not in found, found
    # A bad argument: one line naming it and what it takes, no exception repr nor pydantic dump.
    expected = {
        "bad_type": "`limit`: expected integer, got string",
        "bad_missing": "the required field `query` is missing",
        "bad_unknown": "no argument `k`; it takes `query`, `limit`, `path`, `dependency`, `files`",
        "bad_enum": "`role`: 'caller' is not one of 'definition', 'reference', 'any'",
    }
    for key, words in expected.items():
        said = _text(out[key])
        assert _is_error(out[key]) and words in said and "\n" not in said, (key, said)
        assert "validation error" not in said and "ToolInputError" not in said and "pydantic" not in said
    assert not _is_error(out["after_bad"]) and "mathx/stats.py" in _text(out["after_bad"])


def test_agentls_mcp_answers_a_malformed_line_and_serves_on(tmp_path: Path) -> None:
    root = copy_workspace(tmp_path / "ws")
    command, args = _command(root)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    lines = [
        json.dumps(initialize),
        '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        "this is not JSON",
        "",  # a blank line is no message: nothing to answer
        "[1, 2]",
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": "oops"}',
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}',
    ]
    process = subprocess.Popen(
        [command, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache")},
        cwd=root,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(("\n".join(lines) + "\n").encode())
        process.stdin.flush()
        # One line at a time from a thread: `select` on the pipe waited for more bytes while the next answers
        # already sat in the reader's buffer (two answers in one read), and timed out with them unread.
        lines_read: queue.Queue[bytes] = queue.Queue()
        stdout = process.stdout
        threading.Thread(target=lambda: [lines_read.put(line) for line in stdout], daemon=True).start()
        answers = []
        while len(answers) < 5:
            try:
                answers.append(json.loads(lines_read.get(timeout=120)))
            except queue.Empty:
                raise AssertionError(f"no answer after {answers}") from None
        process.stdin.close()
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert answers[0]["id"] == 1 and "result" in answers[0]
    assert answers[1] == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error: the line is not JSON"},
    }
    assert answers[2]["id"] is None and answers[2]["error"]["code"] == -32600
    assert answers[3]["id"] == 7 and answers[3]["error"]["code"] == -32600  # the id a client waits on
    assert "`params`" in answers[3]["error"]["message"]
    assert answers[4]["id"] == 2 and "search_code" in json.dumps(answers[4]["result"])


def test_agentls_mcp_trust_records_the_users_trust_in_the_workspaces_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from agent.mcp.trust import TRUST_FILE, McpTrust
    from server.cli.main import main
    from server.settings import load_settings

    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(
        '[mcp.servers.tickets]\ncommand = "python3"\nargs = ["tickets.py"]\n\n'
        '[mcp.servers.other]\ncommand = "npx"\nargs = ["-y", "some-server"]\n'
    )
    env = {"AGENTLS_CACHE_DIR": str(tmp_path / "cache")}
    args = ["mcp", "--trust", "--path", str(root)]
    monkeypatch.setattr("server.cli.agent._stdin_is_terminal", lambda: True)  # the answers are typed
    first = CliRunner().invoke(main, args, env=env, input="y\nn\n", catch_exceptions=False)
    assert "tickets runs `python3 tickets.py` on your machine with your rights" in first.output
    assert "tickets: trusted" in first.output and "other: not trusted" in first.output
    servers = load_settings(root).settings.agent.mcp.servers
    store = McpTrust(tmp_path / "cache" / TRUST_FILE)
    assert store.is_trusted(root, servers["tickets"]) and not store.is_trusted(root, servers["other"])
    again = CliRunner().invoke(main, [*args, "--yes"], env=env, catch_exceptions=False)
    assert "tickets: trusted already" in again.output and "other: trusted" in again.output
    assert store.is_trusted(root, servers["other"])


def test_agentls_mcp_trust_without_a_terminal_says_to_pass_yes(tmp_path: Path) -> None:
    """With no terminal to confirm on, `agentls mcp --trust` only printed "Aborted!" (click.confirm at the
    end of its input): it says that trusting needs a confirmation and how to give it without a terminal,
    exits non-zero and trusts nothing; with --yes it trusts them all."""
    from agent.mcp.trust import TRUST_FILE, McpTrust
    from server.settings import load_settings

    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(
        '[mcp.servers.tickets]\ncommand = "python3"\nargs = ["tickets.py"]\n\n'
        '[mcp.servers.other]\ncommand = "npx"\nargs = ["-y", "some-server"]\n'
    )
    command, args = _command(root)
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache")}
    for answers in ("", "y\ny\n"):  # piped answers are no confirmation either, as for `run --apply`
        refused = subprocess.run(
            [command, *args, "--trust"], env=env, input=answers, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 1, refused.stderr
        assert "Aborted!" not in refused.stderr
        assert refused.stderr == (
            "Error: trusting tickets, other needs your confirmation and there is no terminal to ask on; run "
            f"`agentls mcp --trust` in a terminal, or add --yes to trust all of {root}'s servers without "
            "asking\n"
        )
    servers = load_settings(root).settings.agent.mcp.servers
    store = McpTrust(tmp_path / "cache" / TRUST_FILE)
    assert not store.is_trusted(root, servers["tickets"]) and not store.is_trusted(root, servers["other"])
    trusted = subprocess.run(
        [command, *args, "--trust", "--yes"], env=env, input="", capture_output=True, text=True, timeout=120
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == "tickets: trusted\nother: trusted\n"
    assert store.is_trusted(root, servers["tickets"]) and store.is_trusted(root, servers["other"])


def test_agentls_mcp_refuses_yes_without_trust(tmp_path: Path) -> None:
    """`--yes` only answers --trust's questions: without --trust it was ignored and the server started
    serving. Refused in one line, exit status 2, before anything is indexed."""
    root = copy_workspace(tmp_path / "ws")
    command, args = _command(root)
    for yes in ("--yes", "-y"):
        refused = subprocess.run(
            [command, *args, yes],
            env={**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache")},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2, (yes, refused.stderr)
        assert refused.stderr == "agentls mcp: --yes only goes with --trust\n"
        assert refused.stdout == ""
    assert not (tmp_path / "cache").exists()  # nothing was indexed
