"""The command line as a daily user meets it, through the installed console script: Ctrl-C at any point,
``--json`` when the command fails, paths that do not exist, and a cache folder that cannot hold an index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from indexing.lock import IndexLock
from indexing.paths import default_index_location
from server.cli import main
from tests.trusted_settings import trust_workspace_settings


def _env(cache: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", **more}


def agentls(*args: str, cwd: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["agentls", *args], cwd=cwd, env=_env(cache, **env), capture_output=True, text=True, timeout=120
    )


def _invoke(args: tuple[str, ...], cache: Path) -> Result:
    """The group in this process (no interpreter to start): the console script past its quick path."""
    env = {"AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "AGENTLS_SEARCH_PROCESS": "0"}
    return CliRunner().invoke(main, list(args), env=env)


def test_ctrl_c_while_waiting_for_another_indexer_exits_130_saying_so(
    workspace: Path, cache_dir: Path
) -> None:
    """Ctrl-C outside the index run itself (here: waiting for another indexer's lock) used to end in Click's
    bare "Aborted!" with status 1, unlike Ctrl-C during the run (130, "interrupted; ...")."""
    assert agentls("index", ".", cwd=workspace, cache=cache_dir).returncode == 0
    (workspace / "shop" / "later.py").write_text("def later():\n    return 1\n")
    lock = IndexLock(default_index_location(workspace, cache_dir) / ".lock")
    lock.acquire()
    try:
        waiting = subprocess.Popen(
            ["agentls", "index", "."],
            cwd=workspace,
            env=_env(cache_dir, AGENTLS_SEARCH_PROCESS="0"),
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        said = ""
        deadline = time.monotonic() + 60
        while "index busy" not in said and time.monotonic() < deadline:
            said += waiting.stderr.readline()
        assert "index busy" in said and "waiting for it (Ctrl-C stops)" in said, said
        waiting.send_signal(signal.SIGINT)
        _, rest = waiting.communicate(timeout=30)
    finally:
        lock.release()
    assert waiting.returncode == 130, rest
    assert "interrupted" in rest and "Aborted!" not in rest and "Traceback" not in rest, rest


def test_json_commands_print_their_error_as_json_on_stdout(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentls search --json ... | jq` used to get an empty stdout when the command failed."""
    cases = [
        (("search", "x", "--json", "-k", "0"), 2, "-k/--limit must be a whole number from 1 to 1000"),
        (("search", "x", "--json", "--path", "nope"), 2, "--path nope does not exist"),
        (("search", "  ", "--json"), 2, "agentls search: the query is empty"),
        (("index", "--json", "nope"), 2, "nope does not exist"),
        (("runs", "--json", "no-such-run"), 2, "--json goes with the list of runs"),
        (("model", "list", "--json", "--path", "nope"), 2, "does not exist"),
    ]
    monkeypatch.chdir(workspace)
    for args, status, words in cases:
        out = _invoke(args, cache_dir)
        assert out.exit_code == status, (args, out.stderr)
        error = json.loads(out.stdout)
        assert error["exit_status"] == status and words in error["error"], (args, error)
        assert words in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)


def test_a_path_that_does_not_exist_or_is_no_folder_is_a_usage_error(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status 2 with one line, as every other bad argument (`model list --path` and `batch` already were);
    `index nope` and `--path nope` were 1, `implement nope.py:3` 1 with a bare "Error: nope.py is not a
    file"."""
    cases = [
        (("index", "nope"), "agentls index: nope does not exist; pass the folder of the project to index"),
        (
            ("index", "shop/cart.py"),
            "agentls index: shop/cart.py is not a folder; pass the folder of the project",
        ),
        (("search", "x", "--path", "nope"), "agentls search: --path nope does not exist; pass the workspace"),
        (
            ("implement", "nope.py:3"),
            "agentls implement: FILE:LINE must be a file and a line number (nope.py",
        ),
        (
            ("implement", "shop:3"),
            "agentls implement: FILE:LINE must be a file and a line number (shop is a fo",
        ),
    ]
    monkeypatch.chdir(workspace)
    for args, line in cases:
        out = _invoke(args, cache_dir)
        assert (out.exit_code, out.stdout) == (2, ""), (args, out.stderr)
        assert out.stderr.startswith(line) and out.stderr.count("\n") == 1, (args, out.stderr)


def test_a_cache_folder_that_cannot_hold_the_index_is_said_without_a_traceback(
    workspace: Path, tmp_path: Path
) -> None:
    """AGENTLS_CACHE_DIR naming a file (or index.uri a place that cannot be a folder) crashed index and search
    with a NotADirectoryError traceback."""
    a_file = tmp_path / "cache-is-a-file"
    a_file.write_text("")
    for args in (("index", "."), ("search", "price")):  # search indexes first: the index is not there
        out = agentls(*args, cwd=workspace, cache=a_file)
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        assert f"cannot create or open the index at {a_file}/index/" in out.stderr
        assert "AGENTLS_CACHE_DIR" in out.stderr and "point that at a folder you can write" in out.stderr
    (workspace / "agentls.toml").write_text(f'[index]\nuri = "{a_file}/here"\n')
    trust_workspace_settings(workspace, tmp_path / "cache")
    out = agentls("index", ".", cwd=workspace, cache=tmp_path / "cache")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert (
        f"cannot create or open the index at {a_file}/here" in out.stderr
        and "index.uri names it" in out.stderr
    )


def test_a_setting_a_run_would_ignore_stops_it_naming_file_line_and_key(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`max_minutes = "ten"` or a misspelt `max_minute` left a paid run without its time bound, with a
    warning; the run now does not start (no model is asked: the base URL refuses any connection)."""
    monkeypatch.chdir(workspace)
    env = {
        "AGENTLS_CACHE_DIR": str(cache_dir),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    }
    toml = workspace / "agentls.toml"
    for text, line in (
        (
            "[agent]\nmax_steps = 3\nmax_minute = 10\n",
            "3: ignoring `agent.max_minute`: there is no such setting (did you mean `agent.max_minutes`?)",
        ),
        ('[agent]\nmax_minutes = "ten"\n', "2: ignoring `agent.max_minutes`: Input should be a valid number"),
    ):
        toml.write_text(text)
        for args in (["run", "Tidy up"], ["implement", "shop/cart.py:1"]):
            started = time.monotonic()
            result = CliRunner().invoke(main, args, env=env)
            assert result.exit_code == 1 and time.monotonic() - started < 30, result.output
            assert f"{toml}:{line}" in result.stderr and "Fix the settings" in result.stderr, result.stderr
            assert "Traceback" not in result.output
    searched = _invoke(("search", "price"), cache_dir)  # index and search go on, with the warning
    assert searched.exit_code == 0 and "ignoring `agent.max_minutes`" in searched.stderr
