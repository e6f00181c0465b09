"""`agent.max_minutes` reaches runs started over ACP (`agentls acp` as a real process reads the same
`agentls.toml`): a run past it stops at the bound, not at the fake model's 60 s stall, and the client is
told why. The margin is wide because the test's clock also counts `agentls acp`'s start: 24.8 s in all
once, on a machine at load 9, against a 20 s stall then."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, copy_workspace, done, replace, view
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, turn
from tests.server.test_acp import AGENT_TOML, RecordingClient, _env, _prompt


def test_an_acp_run_stops_at_the_workspaces_max_minutes(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = copy_workspace(tmp_path / "ws")
    (ws / "agentls.toml").write_text(
        AGENT_TOML.replace("max_steps = 10", "max_steps = 10\nmax_minutes = 0.05")
    )
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()), replace(STUB_BODY, GOOD_BODY), stall(60, done())
    )
    client = RecordingClient("allow")
    began = time.monotonic()
    stop = asyncio.run(_prompt(client, ws, _env(fake_anthropic, tmp_path), fs=True))
    took = time.monotonic() - began

    said = "".join(str(getattr(getattr(u, "content", None), "text", "")) for u in client.updates)
    assert "Time budget reached" in said and "max_minutes = 0.05" in said, client.updates
    assert took < 50, f"the ACP prompt took {took:.1f} s with a 3 s budget and a 60 s stall"
    assert [r.outcome for r in fake_anthropic.message_requests] == ["reply", "reply", "stalled"]
    assert stop in ("end_turn", "max_turn_requests"), stop
