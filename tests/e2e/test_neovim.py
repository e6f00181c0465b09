"""The Neovim plugin (editors/neovim) end to end: setup, `:checkhealth agentls`, the commands, settings
changes, loose files and moved folders. How each test runs Neovim: tests/e2e/nvim_harness.py; the plugin's
agent runs and their previews are in test_neovim_review.py, the text it sends in test_neovim_edits.py, and
what it says in test_neovim_messages.py (four files, so the test run's workers take them in parallel).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from tests.e2e.nvim_harness import PLUGIN, SETTINGS, STATS, loose_home, nvim, run_nvim, workspace
from tests.fakes.anthropic_server import FakeAnthropic

__all__ = ["nvim", "workspace"]  # the fixtures, imported for pytest


def test_the_help_lists_every_function_of_the_lua_module() -> None:
    """`:help agentls-api` names each public function of `require("agentls")` (init.lua's `function
    M.name(`), one a line, and no other; it lacked run_view, apply_review and accept_and_commit."""
    code = (PLUGIN / "lua" / "agentls" / "init.lua").read_text()
    exported = set(re.findall(r"^function M\.([a-z]\w*)\(", code, re.MULTILINE))
    help_text = (PLUGIN / "doc" / "agentls.txt").read_text()
    section = help_text.split("*agentls-api*", 1)[1].split("=" * 78, 1)[0]
    entries = dict(re.findall(r"^  ([a-z]\w*)\((.*?)\) ", section, re.MULTILINE))
    assert set(entries) == exported
    assert "opts" in entries["search"] and "opts.files" in section


def test_setup_attaches_offers_implement_and_checkhealth_reports(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    result = run_nvim(nvim, "attach_and_health.lua", workspace, tmp_path)

    assert "Implement `mean` with agentls" in result["titles"]
    assert result["same_client"] is True and result["clients"] == 1
    # The server chose an encoding from the client's offer, and the client uses that one.
    assert result["encoding"] == result["server_encoding"]
    assert result["encoding"] in ("utf-16", "utf-32")  # 0.7 with the plugin offers utf-16; 0.10+ utf-32
    # workspace/configuration is answered from setup{settings}, section by section.
    assert result["configuration"][0]["index"] == SETTINGS["index"]
    assert result["configuration"][1] == {"provider": "none"}
    assert result["configuration"][2] is None
    assert result["server_settings"]["index"]["embedding"]["provider"] == "none"
    assert result["server_settings"]["agent"]["max_steps"] == 10
    health = "\n".join(result["health"])
    assert "Neovim" in health and "OK" in health
    assert sys.executable in health or "server.cli" in health
    assert "running (client" in health
    # Which API path the plugin takes on this Neovim: the method-call client API on 0.11+.
    path = next(line for line in result["health"] if "LSP API path:" in line)
    if result["nvim_011"]:
        assert "vim.lsp.start," in path and "client:request" in path and "vim.lsp.get_clients" in path
    else:
        assert "vim.lsp.start_client" in path and "client.request" in path


def test_checkhealth_masks_the_credentials_of_the_settings(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """`:checkhealth agentls` prints the settings (and its output gets pasted into issues): an MCP server's
    env token and a password in a URL are masked there, key names kept."""
    token, password = "ghp_nvimHealth0123456789", "gw-pass-27182818"
    settings = {
        "agent": {"model": {"base_url": f"https://gw:{password}@llm.example.com/v1"}},
        "index": {"embedding": {"provider": "none"}},
        "mcp": {"servers": {"gh": {"command": "npx", "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": token}}}},
    }
    setup = {"cmd": [sys.executable, "-m", "server.cli", "serve", "--stdio"], "settings": settings}
    result = run_nvim(nvim, "attach_and_health.lua", workspace, tmp_path, setup=setup)

    line = next(line for line in result["health"] if "settings (section agentls)" in line)
    assert token not in line and password not in line, line
    assert f'GITHUB_PERSONAL_ACCESS_TOKEN = "<set, {len(token)} chars>"' in line, line
    assert "https://***@llm.example.com/v1" in line, line


def test_checkhealth_masks_the_credentials_of_the_base_url_in_the_environment(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """ANTHROPIC_BASE_URL (a gateway's URL may carry a password or a key in its query) is masked in
    `:checkhealth agentls` as the settings' URLs are; before, it was printed as it was."""
    password, key = "gw-pass-31415926", "qk-27182818"
    env = {"ANTHROPIC_BASE_URL": f"https://gw:{password}@llm.example.com/v1?key={key}"}
    result = run_nvim(nvim, "attach_and_health.lua", workspace, tmp_path, env=env)

    health = "\n".join(result["health"])
    assert password not in health and key not in health, health
    assert "ANTHROPIC_BASE_URL: https://***@llm.example.com/v1?***" in health, health


@pytest.mark.parametrize("case", ["openai", "api_key_env", "auth_token"])
def test_checkhealth_checks_the_key_the_model_settings_use(
    workspace: Path, tmp_path: Path, nvim: str, case: str
) -> None:
    """With no ANTHROPIC_API_KEY, `:checkhealth agentls` warned that agent runs would fail, though the
    settings chose an OpenAI-compatible model (Ollama: no key), named another variable (`api_key_env`), or
    ANTHROPIC_AUTH_TOKEN was set, all of which the server takes."""
    model: dict[str, Any] = {
        "openai": {"provider": "openai", "model": "qwen2.5-coder", "base_url": "http://127.0.0.1:9/v1"},
        "api_key_env": {"api_key_env": "MY_GATEWAY_KEY"},
        "auth_token": {},
    }[case]
    settings = {**SETTINGS, "agent": {**SETTINGS["agent"], "model": {**SETTINGS["agent"]["model"], **model}}}
    setup = {"cmd": [sys.executable, "-m", "server.cli", "serve", "--stdio"], "settings": settings}
    env = {"ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}
    if case == "api_key_env":
        env["MY_GATEWAY_KEY"] = "gw-key-0123"
    if case == "auth_token":
        env["ANTHROPIC_AUTH_TOKEN"] = "token-0123"
    result = run_nvim(nvim, "attach_and_health.lua", workspace, tmp_path, env=env, setup=setup)

    health = "\n".join(result["health"])
    assert "agent runs will fail" not in health, health
    said = {
        "openai": "OPENAI_API_KEY is not set",
        "api_key_env": "MY_GATEWAY_KEY is set",
        "auth_token": "ANTHROPIC_AUTH_TOKEN is set",
    }[case]
    assert said in health, health
    assert "gw-key-0123" not in health and "token-0123" not in health


def test_a_setting_removed_from_setup_goes_back_to_its_default_on_the_running_server(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    result = run_nvim(nvim, "settings_removed.lua", workspace, tmp_path)

    assert result["before"] == "claude-from-neovim"
    assert result["after"] == Settings().agent.model.model  # the default, not the removed value
    assert result["clients"] == 1  # the same server, told of the change; not a second one


@pytest.mark.parametrize("mode", ["held", "allowed"])
def test_loose_files_in_the_home_folder_follow_the_servers_rule(tmp_path: Path, nvim: str, mode: str) -> None:
    """Neovim started in the home folder on a file with no project marker above it: the plugin starts the
    server on the home folder, which holds it back with one message naming how to allow it (before, the
    plugin refused on its own, with no way to allow it), or serves it with `server.index_home_or_root`."""
    home = loose_home(tmp_path)
    settings = {**SETTINGS, "server": {"index_home_or_root": True}} if mode == "allowed" else SETTINGS
    setup = {"cmd": [sys.executable, "-m", "server.cli", "serve", "--stdio"], "settings": settings}
    env = {"HOME": str(home), "AGENTLS_NVIM_MODE": mode}
    result = run_nvim(nvim, "home_folder.lua", home, tmp_path, env=env, setup=setup)

    assert result["root_dir"] == str(home)
    assert result["same_client"] is True and result["clients"] == 1
    held = [m for m in result["messages"] if "does not index" in m]
    agent_actions = [t for t in result["titles"] if "agentls" in t]
    if mode == "held":
        assert len(held) == 1, result["messages"]  # once, for both files
        assert f"agentls does not index {home}: it is your home folder" in held[0]
        assert "server.index_home_or_root = true" in held[0] and f"agentls index {home}" in held[0]
        assert agent_actions == []
        assert "does not index" in str(result["search"]["error"]), result["search"]
    else:
        assert held == [], result["messages"]
        assert "Implement `remember_the_milk` with agentls" in agent_actions, result["titles"]
        assert result["search"]["hits"] > 0
    assert not [m for m in result["messages"] if "not started" in m or "Error" in m], result["messages"]


def test_a_loose_file_outside_the_current_folder_is_served_in_its_own_folder(
    tmp_path: Path, nvim: str
) -> None:
    """The plugin's root for a file with no project marker above it, outside Neovim's current folder
    (``nvim /tmp/scratch.py`` from elsewhere): the file's folder, not single-file mode (rootUri null)."""
    home = loose_home(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    env = {"HOME": str(home), "AGENTLS_NVIM_MODE": "elsewhere"}
    result = run_nvim(nvim, "home_folder.lua", home, tmp_path, env=env)

    assert result["root_dir"] == str(home / "notes")
    assert result["search"]["hits"] > 0
    refused = ("does not index", "no folder is open", "not started")
    assert not [m for m in result["messages"] if any(r in m for r in refused)], result["messages"]


def test_commands_send_the_contracts_arguments_and_search_fills_quickfix(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    # No script: should a command start a run, its first model call fails at once (never the real API).
    with FakeAnthropic() as fake:
        result = run_nvim(nvim, "commands.lua", workspace, tmp_path, env=fake.env(), timeout=150)

    uri = (workspace / STATS).as_uri()
    line = result["def_line"] - 1  # 0-based line of `def mean`
    sent = [(s["command"], s["arguments"][0]) for s in result["sent"]]
    end = {"utf-16": 7, "utf-32": 7, "utf-8": 9}[result["encoding"]]  # whichever the server chose
    task_doc = '    """Return the arithmetic mean of `values`.'
    assert result["task_doc"] == task_doc  # the selection's second line, which the range ends with
    assert sent == [
        ("agentls.writeTests", {"uri": uri, "position": {"line": line, "character": 4}}),
        # Linewise selection of two lines: from the first's start to the second's end (an empty line).
        (
            "agentls.edit",
            {
                "uri": uri,
                "range": {
                    "start": {"line": line + 1, "character": 0},
                    "end": {"line": line + 2, "character": 0},
                },
                "instruction": "say what it returns for one value",
            },
        ),
        # Charwise selection "Größe" on "# Größe €": UTF-16 columns 2 to 7, bytes 2 to 9.
        (
            "agentls.edit",
            {
                "uri": uri,
                "range": {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": end}},
                "instruction": "translate",
            },
        ),
        ("agentls.ask", {"uri": uri, "question": "what does clamp do?"}),
        (
            "agentls.fix",
            {
                "uri": uri,
                "range": {
                    "start": {"line": line + 1, "character": 4},
                    "end": {"line": line + 1, "character": 8},
                },
                "diagnostics": [
                    {
                        "range": {
                            "start": {"line": line + 1, "character": 4},
                            "end": {"line": line + 1, "character": 8},
                        },
                        "message": "unused name",
                        "source": "lint",
                        "severity": 2,
                    }
                ],
            },
        ),
        ("agentls.run", {"instruction": "add a vouchers module", "mode": "team", "uri": uri}),
        # :'<,'>AgentlsTask: a solo run from the selected lines (`def mean` and its docstring's line).
        (
            "agentls.run",
            {
                "instruction": "make mean accept any iterable",
                "mode": "solo",
                "uri": uri,
                "range": {
                    "start": {"line": result["task_line"] - 1, "character": 0},
                    "end": {"line": result["task_line"], "character": len(task_doc)},
                },
            },
        ),
        # :AgentlsTask with no argument: the instruction from vim.ui.input, trimmed; the file, no range.
        ("agentls.run", {"instruction": "add a changelog", "mode": "solo", "uri": uri}),
    ]
    assert result["task_prompts"] == ["agentls task: "]
    # The server took every argument object: a run id, or a refusal of the task itself (never the
    # -32602 "invalid arguments" the server gives a malformed argument object).
    for (command, _), answer in zip(sent, result["answers"], strict=True):
        if answer["error"] is not None:
            assert "invalid arguments" not in answer["error"], (command, answer["error"])
        else:
            assert isinstance(answer["result"]["runId"], str), (command, answer)
    assert {"file": str(workspace / STATS), "lnum": result["def_line"], "text": "mean"} in result["quickfix"]
    # :AgentlsSearch! lists each file once
    assert str(workspace / STATS) in result["files"]
    assert len(set(result["files"])) == len(result["files"])
    assert len(result["quickfix"]) > len({q["file"] for q in result["quickfix"]}), "one file matched twice"


def test_a_folder_moved_then_deleted_from_neovim_leaves_search_at_once(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """Neovim on Linux tells the server nothing of `:!mv mathx moved` or `:!rm -r moved` (no file
    watchers: 0.7 cannot, 0.10+ does not offer them there), and search kept returning the old paths, files
    that no longer exist, until the next quiet refresh (30 s by default; an hour here). A search that finds
    a file gone drops it, has its folder's rows removed and a quiet refresh find where it went."""
    settings = {**SETTINGS, "server": {"refresh_seconds": 3600}}
    setup = {"cmd": [sys.executable, "-m", "server.cli", "serve", "--stdio"], "settings": settings}
    result = run_nvim(nvim, "folder_moved.lua", workspace, tmp_path, setup=setup)

    assert "dynamicRegistration = true" not in result["watchers"]
    assert "mathx/stats.py" in result["before"]
    assert result["after_move"] and not [p for p in result["after_move"] if p.startswith("mathx/")]
    assert "moved/stats.py" in result["moved"]
    assert result["after_delete"] and not [p for p in result["after_delete"] if p.startswith("moved/")]
