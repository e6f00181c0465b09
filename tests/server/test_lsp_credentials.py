"""The language server never writes the credentials of its settings out: `agentls/serverStats` answers the
settings masked (`agent.credential_fields`), and its debug log (``agentls -vv serve``, where pygls logs each
answer of the editor) shows the editor's ``workspace/configuration`` answer masked too."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.server.test_lsp_bad_input import frame

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


def _messages(stream: Any, out: queue.Queue[dict[str, Any]]) -> None:
    while True:
        header = b""
        while not header.endswith(b"\r\n\r\n"):
            byte = stream.read(1)
            if not byte:
                return
            header += byte
        length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
        out.put(json.loads(stream.read(length)))


def test_server_stats_and_the_debug_log_mask_credentials(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("def f():\n    return 1\n")
    stderr = tmp_path / "stderr.log"
    env = dict(os.environ, AGENTLS_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    with stderr.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "-vv", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    assert proc.stdin is not None
    stdin = proc.stdin
    messages: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_messages, args=(proc.stdout, messages), daemon=True).start()

    def send(message: dict[str, Any]) -> None:
        stdin.write(frame({"jsonrpc": "2.0", **message}))
        stdin.flush()

    def answer(msg_id: int, timeout: float = 60) -> dict[str, Any]:
        """The response to `msg_id`, answering the server's own requests meanwhile (the settings to
        ``workspace/configuration``, null to the others)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = messages.get(timeout=1)
            except queue.Empty:
                continue
            if message.get("method") == "workspace/configuration":
                items = message["params"]["items"]
                send({"id": message["id"], "result": [_settings() for _ in items]})
            elif "method" in message and "id" in message:
                send({"id": message["id"], "result": None})
            elif message.get("id") == msg_id:
                return message
        raise AssertionError(f"no response to {msg_id}")

    try:
        options = {
            "server": {"index_on_start": False},
            "mcp": {
                "servers": {"gh": {"command": "npx", "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": INIT_TOKEN}}}
            },
        }
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "rootUri": root.as_uri(),
                    "capabilities": {"workspace": {"configuration": True}},
                    "initializationOptions": options,
                },
            }
        )
        answer(1)
        send({"method": "initialized", "params": {}})
        stats: dict[str, Any] = {}
        for number in range(2, 60):  # until the editor's settings are in force
            send({"id": number, "method": "agentls/serverStats"})
            stats = answer(number)["result"]["settings"]
            if stats["mcp"]["servers"].get("docs"):
                break
            time.sleep(0.5)
        servers = stats["mcp"]["servers"]
        assert servers["gh"]["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": f"<set, {len(INIT_TOKEN)} chars>"}
        assert servers["docs"]["headers"] == {"Authorization": f"<set, {len(EDITOR_TOKEN) + 7} chars>"}
        assert stats["agent"]["model"]["base_url"] == "https://***@llm.example.com/v1"
        send({"id": 100, "method": "shutdown"})
        answer(100)
        send({"method": "exit"})
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    logged = stderr.read_text(errors="replace")
    assert "Received result" in logged and "Authorization" in logged  # the editor's answer, logged
    for value in (INIT_TOKEN, EDITOR_TOKEN, URL_PASSWORD):
        assert value not in logged, value
