"""`agentls mcp` as a real process, driven by the `mcp` SDK's stdio client: it lists `search_code`,
`find_symbol` and `lookup_docs`, answers them from the workspace's index and the installed packages, and
reports a bad call as an MCP error result."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.agent.agent_harness import copy_workspace

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8rT3vLmNK"


def _text(result: Any) -> str:
    return "\n".join(str(getattr(block, "text", "")) for block in result.content)


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


async def _session_calls(root: Path, cache: Path) -> dict[str, Any]:
    agentls = shutil.which("agentls")
    command, args = (
        (agentls, ["mcp", "--path", str(root)])
        if agentls
        else (
            sys.executable,
            ["-m", "server.cli", "mcp", "--path", str(root)],
        )
    )
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
    return out


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


def test_agentls_mcp_trust_records_the_users_trust_in_the_workspaces_servers(tmp_path: Path) -> None:
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
    first = CliRunner().invoke(main, args, env=env, input="y\nn\n", catch_exceptions=False)
    assert "tickets runs `python3 tickets.py` on your machine with your rights" in first.output
    assert "tickets: trusted" in first.output and "other: not trusted" in first.output
    servers = load_settings(root).settings.agent.mcp.servers
    store = McpTrust(tmp_path / "cache" / TRUST_FILE)
    assert store.is_trusted(root, servers["tickets"]) and not store.is_trusted(root, servers["other"])
    again = CliRunner().invoke(main, [*args, "--yes"], env=env, catch_exceptions=False)
    assert "tickets: trusted already" in again.output and "other: trusted" in again.output
    assert store.is_trusted(root, servers["other"])
