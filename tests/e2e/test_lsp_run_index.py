"""A server run reads the workspace index through the server's search process: the run finds indexed code
with `search_code`, and the server process itself never loads LanceDB (which delayed a run's first model
call by the seconds its import takes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import index_progress_ended, initialize, start_server, stop, stubs_workspace, wait_for
from tests.e2e.test_lsp_agent import SETTINGS, Editor, implement
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use

__all__ = ["stubs_workspace"]  # a fixture used below

pytestmark = pytest.mark.timeout(240)


def _maps(client: Any) -> str:
    pid = client._server.pid  # the `agentls serve` process pytest-lsp started
    return Path(f"/proc/{pid}/maps").read_text()


async def test_a_run_searches_the_index_without_loading_lancedb_in_the_server(
    fake_anthropic: FakeAnthropic, stubs_workspace: Path, tmp_path: Path
) -> None:
    fake_anthropic.enqueue(
        tool_use("search_code", {"query": "round money to cents"}),
        text("Looked it up."),
    )
    client = await start_server(tmp_path / "cache", fake_anthropic.env())
    try:
        ed = Editor(client, stubs_workspace)
        settings = {**SETTINGS, "server": {"index_on_start": True}, "agentlsClient": True}
        await initialize(client, stubs_workspace, options=settings)
        await wait_for(lambda: index_progress_ended(client), 120)  # a loaded 2-core machine: 40 s seen
        run_id = await implement(ed, ed.open("shop/pricing.py"))
        await ed.ended(run_id, timeout=90)
        maps = _maps(client)
    finally:
        await stop(client)

    bodies = [r.body for r in fake_anthropic.message_requests]
    results = [
        block
        for body in bodies
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results, bodies[-1]
    result = json.dumps(results[0])
    assert "shop/money.py" in result and "no index is available" not in result, result
    assert "_lancedb" not in maps
