"""The language server never writes the credentials of its settings out: `agentls/serverStats` answers the
settings masked (`agent.credential_fields`), and its debug log (``agentls -vv serve``, where pygls logs each
answer of the editor) shows the editor's ``workspace/configuration`` answer masked too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.server.test_lsp_bad_input import RawServer

INIT_TOKEN = "ghp_initOptions0123456789abcd"
EDITOR_TOKEN = "hdr-editor-token-5f6e7d8c9b"
URL_PASSWORD = "gw-pass-31415926"


def _settings() -> dict[str, Any]:
    return {
        "agent": {"model": {"base_url": f"https://gw:{URL_PASSWORD}@llm.example.com/v1"}},
        "mcp": {
            "servers": {
                "docs": {
                    "url": "http://127.0.0.1:9/mcp",
                    "headers": {"Authorization": f"Bearer {EDITOR_TOKEN}"},
                }
            }
        },
    }


def test_server_stats_and_the_debug_log_mask_credentials(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("def f():\n    return 1\n")
    stderr = tmp_path / "stderr.log"

    def answer(request: dict[str, Any]) -> Any:
        """The editor's settings to ``workspace/configuration``; null to the server's other requests."""
        if request["method"] == "workspace/configuration":
            return [_settings() for _ in request["params"]["items"]]
        return None

    with stderr.open("wb") as log:
        server = RawServer(tmp_path / "cache", args=("-vv", "serve"), stderr=log, answer=answer)
    try:
        options = {
            "server": {"index_on_start": False},
            "mcp": {
                "servers": {"gh": {"command": "npx", "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": INIT_TOKEN}}}
            },
        }
        params = {
            "processId": None,
            "rootUri": root.as_uri(),
            "capabilities": {"workspace": {"configuration": True}},
            "initializationOptions": options,
        }
        server.request("initialize", params, timeout=60)
        server.notify("initialized", {})
        stats: dict[str, Any] = {}
        for _ in range(58):  # until the editor's settings are in force
            stats = server.request("agentls/serverStats", timeout=60)["result"]["settings"]
            if stats["mcp"]["servers"].get("docs"):
                break
            time.sleep(0.5)
        servers = stats["mcp"]["servers"]
        assert servers["gh"]["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": f"<set, {len(INIT_TOKEN)} chars>"}
        assert servers["docs"]["headers"] == {"Authorization": f"<set, {len(EDITOR_TOKEN) + 7} chars>"}
        assert stats["agent"]["model"]["base_url"] == "https://***@llm.example.com/v1"
    finally:
        server.close()
    logged = stderr.read_text(errors="replace")
    assert "Received result" in logged and "Authorization" in logged  # the editor's answer, logged
    for value in (INIT_TOKEN, EDITOR_TOKEN, URL_PASSWORD):
        assert value not in logged, value
