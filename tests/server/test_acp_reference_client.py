"""`agentls acp` driven by the reference ACP client SDK, `@agentclientprotocol/sdk` from the npm registry
(issue 14, item 4), against the fake Messages API: initialize -> session/new -> session/prompt, with the
plan, the tool calls and the proposal's diff streamed as ``session/update``, the permission request
allowed, and the edit written through the client's ``fs/write_text_file``; then ``session/close``, after
which the session's id is refused.

The client is ``acp_reference_client.mjs`` beside this file, run by Node. The SDK is installed by
``.ci/run`` into ``$AGENTLS_CI_CACHE/acp-sdk-<version>`` (npm, no install scripts); the test is skipped,
with the command to install it, when Node or the SDK is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.agent_harness import copy_workspace
from tests.fakes.anthropic_server import FakeAnthropic
from tests.server.test_acp import AGENT_TOML, _env, _script

ACP_SDK_VERSION = "2.4.0"
CI_CACHE = Path(os.environ.get("AGENTLS_CI_CACHE") or Path.home() / ".cache" / "agentls-ci")
SDK_DIR = CI_CACHE / f"acp-sdk-{ACP_SDK_VERSION}" / "node_modules" / "@agentclientprotocol" / "sdk"
CLIENT = Path(__file__).with_name("acp_reference_client.mjs")
REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm; .ci/run does)"
    if not (SDK_DIR / "dist" / "v1" / "stable" / "acp.js").is_file():
        return (
            f"@agentclientprotocol/sdk {ACP_SDK_VERSION} is not installed under {SDK_DIR.parents[2]}: "
            f"npm install --prefix {SDK_DIR.parents[2]} --ignore-scripts "
            f"@agentclientprotocol/sdk@{ACP_SDK_VERSION} (.ci/run does)"
        )
    return None


pytestmark = [pytest.mark.skipif(_missing() is not None, reason=str(_missing())), pytest.mark.timeout(120)]


def test_a_prompt_turn_from_the_reference_typescript_client(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = copy_workspace(tmp_path / "ws")
    (ws / "agentls.toml").write_text(AGENT_TOML)
    stats = ws / "mathx" / "stats.py"
    _script(fake_anthropic)
    env = {**_env(fake_anthropic, tmp_path), "PYTHONPATH": str(REPO)}

    run = subprocess.run(
        [
            "node",
            str(CLIENT),
            str(SDK_DIR),
            str(ws),
            "Implement mean in mathx/stats.py",
            "--",
            sys.executable,
            "-m",
            "server.cli",
            "acp",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout.splitlines()[-1])
    assert "error" not in record, record["error"]
    assert record["initialize"]["agentInfo"]["name"] == "agentls"
    assert record["stopReason"] == "end_turn"
    kinds = [update["sessionUpdate"] for update in record["updates"]]
    assert "plan" in kinds and "agent_message_chunk" in kinds and "tool_call_update" in kinds
    calls = [u for u in record["updates"] if u["sessionUpdate"] == "tool_call"]
    assert any(u.get("kind") == "read" and u["locations"][0]["path"] == str(stats) for u in calls)
    (proposal,) = [u for u in calls if u["toolCallId"].startswith("proposal-")]
    (diff,) = proposal["content"]
    assert diff["type"] == "diff" and diff["path"] == str(stats) and "return sum(values)" in diff["newText"]
    # permission before the write, naming the file; the write went through the client
    (permission,) = record["permissions"]
    assert "mathx/stats.py" in permission["toolCall"]["title"]
    assert {option["kind"] for option in permission["options"]} == {"allow_once", "reject_once"}
    assert record["writes"] == [str(stats)] and str(stats) in record["reads"]
    assert "return sum(values) / len(values)" in stats.read_text()
    # session/close, as advertised: the closed session's id is refused after, saying so
    assert record["initialize"]["agentCapabilities"]["sessionCapabilities"]["close"] == {}
    assert record["close"] == {} or record["close"] is None, record["close"]
    assert "was closed; start another with session/new" in record["afterClose"], record["afterClose"]
