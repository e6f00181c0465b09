"""`agentls run`, `agentls implement` and `agentls runs`, driven through click against the fake server.

The CLI reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL / AGENTLS_CACHE_DIR from the environment it is given;
everything else is real (index, overlay, sandbox, verification, transcripts).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from server.cli import main
from server.features.commands import ImplementArgs, PositionArg
from server.features.runs.commands import CommandError, build_task
from tests.agent.agent_harness import (
    BAD_BODY,
    EDITOR,
    GOOD_BODY,
    SECRET,
    STUB_BODY,
    bash,
    copy_workspace,
    done,
    replace,
    view,
)
from tests.agent.test_overlay import disk_snapshot
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, fault_401, text, tool_use, turn
from tests.trusted_settings import trust_workspace_settings

AGENT_TOML = """\
[agent]
max_steps = 10

[agent.model]
max_retries = 1
retry_base_delay = 0.01
retry_max_delay = 0.05
timeout = 10

[agent.sandbox]
timeout_seconds = 20
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(AGENT_TOML)  # also marks the workspace root
    yield root


@pytest.fixture
def env(fake_anthropic: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "ANTHROPIC_AUTH_TOKEN": "",
    }


def invoke(args: list[str], env: dict[str, str], input: Any = None) -> Result:
    return CliRunner().invoke(main, args, env=env, input=input, catch_exceptions=False)


def script(fake: FakeAnthropic) -> None:
    fake.enqueue(
        turn(text("Spec: mean averages, [] raises ValueError.\nPlan: edit the stub."), view()),
        replace(STUB_BODY, GOOD_BODY),
        done("Implemented `mean`."),
    )


def test_run_prints_the_plan_progress_diff_and_cost_and_writes_nothing(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    before = disk_snapshot(ws)
    script(fake_anthropic)
    result = invoke(["run", "Implement mean in mathx/stats.py", "--path", str(ws)], env)

    assert result.exit_code == 0, result.output
    assert "+    return sum(values) / len(values)" in result.stdout  # the diff, on stdout
    assert result.stdout.startswith("diff --git a/mathx/stats.py b/mathx/stats.py")
    err = result.stderr
    assert "Plan" in err and "Spec: mean averages" in err
    assert "-> view mathx/stats.py" in err and "-> str_replace mathx/stats.py" in err
    assert "verification passed" in err and "Implemented `mean`." in err
    assert "cost $" in err and "3 steps" in err
    assert "Nothing was written. `agentls runs export" in err and "--patch -o - | git apply` writes" in err
    assert disk_snapshot(ws) == before
    # The settings file was honoured and the run went through the index (its folder exists).
    assert (Path(env["AGENTLS_CACHE_DIR"]) / "index").is_dir()
    assert SECRET not in "\n".join(str(dict(r.body)) for r in fake_anthropic.requests)


def test_run_on_an_indexed_workspace_prints_no_fork_warning(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """Opening an existing index loads Lance, whose at-fork hook warned "UserWarning: lance is not
    fork-safe ..." on stderr at every command the sandbox started (a fork with a preexec_fn, then exec):
    the installed command, as a user runs it, prints no such warning."""
    process_env = {**os.environ, **env, "HF_HUB_OFFLINE": "1"}
    indexed = subprocess.run(
        ["agentls", "index", str(ws)], env=process_env, capture_output=True, text=True, timeout=300
    )
    assert indexed.returncode == 0, indexed.stderr
    script(fake_anthropic)
    ran = subprocess.run(
        ["agentls", "run", "Implement mean", "--path", str(ws)],
        env=process_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert "verification passed" in ran.stderr  # commands ran in the sandbox
    assert "fork-safe" not in ran.stderr and "Warning:" not in ran.stderr, ran.stderr


def test_run_says_it_started_before_it_loads_the_model_client_and_the_index(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """`agentls run` printed nothing until its "Run: ..." title, which comes once the Anthropic SDK and
    LanceDB are imported: 15-30 s of silence on a loaded 2-core machine. Its first line now comes before
    either import (an order, read from ``-X importtime``'s lines on the same stderr, not a timing)."""
    fake_anthropic.enqueue(done("Nothing to change."))
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "server.cli", "run", "Look around", "--path", str(ws)],
        env={**os.environ, **env, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stderr.splitlines()
    said = [line for line in lines if not line.startswith("import time:")]
    assert said[0] == f"agentls: starting the run in {ws} (loading the model client and the index)...", said
    first = lines.index(said[0])

    def imported(module: str) -> int:
        return next(
            i
            for i, line in enumerate(lines)
            if line.startswith("import time:") and line.split("|")[-1].strip() == module
        )

    assert first < imported("anthropic") and first < imported("indexing.service"), lines[
        first - 3 : first + 3
    ]


def test_runs_index_refresh_shows_plain_progress_lines_when_stderr_is_a_pipe(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """The index refresh before a run showed a spinner, which Rich draws only on a terminal: with stderr a
    pipe (CI, a log) nothing came between "starting the run" and the run's title, however long the
    refresh took. It now shows what ``agentls index`` shows there: plain lines, a line per phase, no
    carriage returns or control codes."""
    fake_anthropic.enqueue(done("Nothing to change."))
    ran = subprocess.run(
        [sys.executable, "-m", "server.cli", "run", "Look around", "--path", str(ws)],
        env={**os.environ, **env, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert b"\r" not in ran.stderr and b"\x1b" not in ran.stderr, ran.stderr
    lines = ran.stderr.decode().splitlines()
    starting = lines.index(f"agentls: starting the run in {ws} (loading the model client and the index)...")
    progress = [line for line in lines[starting + 1 :] if line.startswith("agentls: ")]
    assert any(re.fullmatch(r"agentls: Indexing \d+/\d+ files \(\d+ s\)", line) for line in progress), lines
    assert any(line.startswith("agentls: Building search indexes") for line in progress), lines
    title = next(i for i, line in enumerate(lines) if line.startswith("Run: "))
    assert all(lines.index(line) < title for line in progress), lines


def test_run_apply_yes_writes_the_change(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    script(fake_anthropic)
    result = invoke(["run", "Implement mean", "--path", str(ws), "--apply", "--yes"], env)
    assert result.exit_code == 0, result.output
    assert "applied: mathx/stats.py" in result.stderr
    assert GOOD_BODY in (ws / "mathx" / "stats.py").read_text()
    assert STUB_BODY not in (ws / "mathx" / "stats.py").read_text()


def test_the_agent_removes_a_byte_order_mark_through_bash(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """The model never sees a byte order mark (the editor tool hides it and its edits keep it), but its view
    says the file has one and how bash removes it; what bash writes is what the proposal and --apply do."""
    _settings(ws, "max_reflections = 0")  # the stub's own test fails verification: no second try
    stats = ws / "mathx" / "stats.py"
    body = stats.read_bytes()
    stats.write_bytes(b"\xef\xbb\xbf" + body)
    fake_anthropic.enqueue(
        turn(text("Spec: mathx/stats.py without its BOM."), view()),
        bash("sed -i '1s/^\\xEF\\xBB\\xBF//' mathx/stats.py"),
        done("Removed the byte order mark of mathx/stats.py."),
    )
    args = ["run", "Remove the BOM from mathx/stats.py", "--path", str(ws), "--apply", "--yes", "--force"]
    result = invoke(args, env)
    assert result.exit_code == 3 and "applied: mathx/stats.py" in result.stderr, result.output
    shown = [
        block["content"]
        for message in fake_anthropic.message_requests[-1].body["messages"]
        for block in (message["content"] if isinstance(message["content"], list) else [])
        if block.get("type") == "tool_result"
    ]
    assert "\ufeff" not in str(shown[0]) and "starts with a UTF-8 byte order mark" in str(shown[0]), shown
    first = body.decode().splitlines()[0]
    assert f"-\ufeff{first}\n+{first}\n" in result.stdout
    assert stats.read_bytes() == body


def test_run_apply_without_a_terminal_or_yes_refuses(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    before = disk_snapshot(ws)
    script(fake_anthropic)
    result = invoke(["run", "Implement mean", "--path", str(ws), "--apply"], env, input="y\n")
    assert result.exit_code == 1
    assert "not applying: there is no terminal to confirm on; pass --yes" in result.stderr
    assert disk_snapshot(ws) == before


class _EditsThenAnswers(io.RawIOBase):
    """stdin whose first read runs `edit` (the user changes a file while the question is open), then gives
    `answer`."""

    def __init__(self, edit: Callable[[], None], answer: bytes) -> None:
        self.edit: Callable[[], None] | None = edit
        self.answer = answer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.edit is not None and len(buffer):  # click probes the stream with read(0) first
            self.edit, edit = None, self.edit
            edit()
        data, self.answer = self.answer[: len(buffer)], self.answer[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


def _after_the_end(env: dict[str, str]) -> list[dict[str, Any]]:
    """The records of the one run's transcript after its ``run_end``."""
    (path,) = (Path(env["AGENTLS_CACHE_DIR"]) / "runs").glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    end = next(at for at, record in enumerate(records) if record["type"] == "run_end")
    return records[end + 1 :]


@pytest.mark.parametrize(
    ("flags", "typed", "outcome", "answer", "listed"),
    [
        (["--yes"], None, "allowed", "--yes", "proposed, applied"),
        ([], "y\n", "allowed", "yes", "proposed, applied"),
        ([], "n\n", "rejected", "no", "proposed, rejected"),
        ([], "", "cancelled", None, "proposed, cancelled"),  # Ctrl-D at the question
        ([], "edit", "allowed", "yes", "proposed, allowed, not written"),  # the file changed meanwhile
        (["--no-terminal"], None, "unanswered", None, "proposed, unanswered"),
    ],
)
def test_run_apply_records_the_answer_and_what_was_written(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    typed: str | None,
    outcome: str,
    answer: str | None,
    listed: str,
) -> None:
    """``--apply``'s confirmation (or --yes, or no terminal to ask on) and what came of it are in the run's
    transcript after its end, the records `agentls acp` writes: `agentls runs` lists them."""
    script(fake_anthropic)
    stats = ws / "mathx" / "stats.py"
    if "--no-terminal" not in flags:
        monkeypatch.setattr("server.cli.agent._stdin_is_terminal", lambda: True)
    given: Any = typed
    if typed == "edit":
        given = _EditsThenAnswers(lambda: stats.write_text(stats.read_text() + "# mine\n"), b"y\n")
    args = [
        "run",
        "Implement mean",
        "--path",
        str(ws),
        "--apply",
        *(f for f in flags if f != "--no-terminal"),
    ]
    result = invoke(args, env, input=given)

    after = _after_the_end(env)
    approval = after[0]
    assert (approval["type"], approval["subject"], approval["outcome"]) == ("approval", "proposal", outcome)
    assert approval["answer"] == answer and approval["files"] == ["mathx/stats.py"]
    assert approval["question"] == "Apply these changes to 1 file?" and approval["asked_at"]
    assert FAKE_API_KEY not in json.dumps(after)
    if outcome == "allowed":
        (applied,) = after[1:]
        assert (applied["kind"], applied["proposal_id"]) == ("proposal_applied", approval["detail"])
        if typed == "edit":
            assert applied["written"] == [] and "changed" in applied["error"], applied
            assert result.exit_code == 1
        else:
            assert applied["written"] == ["mathx/stats.py"] and applied["error"] is None
            assert GOOD_BODY in stats.read_text()
    else:
        assert after[1:] == [] and STUB_BODY in stats.read_text()
        assert ("reason" in approval) == (outcome in ("cancelled", "unanswered")), approval
    listing = invoke(["runs"], env)
    assert listed in listing.stdout, listing.stdout


def test_implement_file_line(fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]) -> None:
    script(fake_anthropic)
    line = (
        (ws / "mathx" / "stats.py").read_text().splitlines().index("def mean(values: list[float]) -> float:")
    )
    result = invoke(["implement", f"{ws}/mathx/stats.py:{line + 1}"], env)
    assert result.exit_code == 0, result.output
    assert "Implement `mean` in mathx/stats.py" in result.stderr
    assert "+    return sum(values) / len(values)" in result.stdout
    prompt = str(fake_anthropic.message_requests[0].body["messages"][0]["content"])
    assert "# Task: implement `mean`" in prompt


def test_implement_refuses_a_function_that_is_not_a_stub(ws: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["implement", f"{ws}/mathx/stats.py:7"], env=env)
    assert result.exit_code == 1 and "`clamp` already has a body" in result.stderr


@pytest.mark.parametrize(
    ("where", "wanted"),
    [
        ("stats.py", "a file, a colon and a line number (src/app.py:42)"),
        ("stats.py:abc", "a file, a colon and a line number (src/app.py:42)"),
        ("stats.py:1.5", "a file, a colon and a line number (src/app.py:42)"),
        ("stats.py:0", "a file and a line number of 1 or more (lines are counted from 1)"),
        ("stats.py:-3", "a file and a line number of 1 or more (lines are counted from 1)"),
    ],
)
def test_implement_refuses_a_malformed_file_line_in_one_line(
    ws: Path, env: dict[str, str], where: str, wanted: str
) -> None:
    """A bad FILE:LINE is a bad argument: exit status 2 and one line saying what it takes, as a bad
    option value gets (it was exit status 1, and `stats.py:0` was taken for a line outside the file)."""
    argument = f"{ws}/mathx/{where}"
    result = CliRunner().invoke(main, ["implement", argument], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"agentls implement: FILE:LINE must be {wanted}, not {argument!r}\n"
    assert result.stdout == ""


@pytest.mark.parametrize("past", [1, 2, 400])
def test_implement_refuses_a_line_past_the_end_of_the_file_in_one_line(
    ws: Path, env: dict[str, str], past: int
) -> None:
    """stats.py has 19 lines and ends in a newline. Line 20, the empty "line" after that newline that
    editors do not show, was taken for a line of the file (exit 1: no function or method there), and a
    line past it was said to be outside a file of 20 lines (exit 1). A line past the end is a bad FILE:LINE:
    exit status 2 and one line, as a malformed one; the editor's agentls.implement counts the same lines."""
    stats = ws / "mathx" / "stats.py"
    text = stats.read_text()
    count = len(text.splitlines())
    assert text.endswith("\n") and count == 19
    argument = f"{stats}:{count + past}"
    result = CliRunner().invoke(main, ["implement", argument], env=env)
    assert result.exit_code == 2, result.output
    wanted = f"a line of mathx/stats.py, which has {count} lines"
    assert result.stderr == f"agentls implement: FILE:LINE must be {wanted}, not {argument!r}\n"
    assert result.stdout == ""
    position = PositionArg(line=count + past - 1, character=0)  # LSP lines count from 0
    args = ImplementArgs(uri=stats.as_uri(), position=position)
    outside = rf"^line {count + past} is outside mathx/stats.py, which has {count} lines$"
    with pytest.raises(CommandError, match=outside):
        build_task("agentls.implement", args, [ws], lambda path: path.read_text())


def test_runs_lists_and_shows_runs(fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]) -> None:
    script(fake_anthropic)
    assert invoke(["run", "Implement mean", "--path", str(ws)], env).exit_code == 0

    listing = invoke(["runs"], env)
    assert listing.exit_code == 0
    header, row = listing.stdout.strip().splitlines()
    assert header.split()[:5] == ["ID", "DATE", "STATUS", "TOKENS", "COST"]
    run_id = row.split()[0]
    assert "proposed" in row and "Run: Implement mean" in row

    shown = invoke(["runs", run_id[:15]], env)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert f"Run {run_id}  [proposed]" in out
    assert "| Spec: mean averages" in out  # the plan
    assert "-> str_replace mathx/stats.py" in out and "ok: The file mathx/stats.py has been edited." in out
    assert "verification (finish): passed" in out
    assert "(verified)" in out and "+    return sum(values) / len(values)" in out
    assert "Cost:    $" in out and "3 steps" in out

    missing = CliRunner().invoke(main, ["runs", "nope"], env=env)
    assert missing.exit_code == 1 and "no run 'nope'" in missing.stderr


def test_a_missing_key_is_reported_before_anything_else(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    env = {**env, "ANTHROPIC_API_KEY": ""}
    result = CliRunner().invoke(main, ["run", "Implement mean", "--path", str(ws)], env=env)
    assert result.exit_code == 1
    assert "ANTHROPIC_API_KEY is missing" in result.stderr
    assert fake_anthropic.requests == []
    assert not Path(env["AGENTLS_CACHE_DIR"]).exists()  # not even the index was built


def test_a_failed_run_exits_with_its_message(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    fake_anthropic.enqueue(fault_401())
    result = CliRunner().invoke(main, ["run", "Implement mean", "--path", str(ws)], env=env)
    assert result.exit_code == 1
    assert "ANTHROPIC_API_KEY is invalid" in result.stderr
    assert result.stdout == ""


def test_runs_options_of_another_form_are_refused_not_ignored(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """`runs ID --json` printed the run as text and `runs --max-cost 5` listed the runs: both are refused
    with exit status 2 and what goes with what, as any bad option is."""
    script(fake_anthropic)
    assert invoke(["run", "Implement mean", "--path", str(ws)], env).exit_code == 0
    run_id = invoke(["runs"], env).stdout.strip().splitlines()[1].split()[0]
    for args, said in (
        (["runs", run_id, "--json"], "--json goes with the list of runs (`agentls runs --json`"),
        (
            ["runs", "--max-cost", "5"],
            "--max-cost, --max-steps and --max-minutes go with `agentls runs resume ID`",
        ),
        (
            ["runs", run_id, "--max-steps", "3"],
            "--max-cost, --max-steps and --max-minutes go with `agentls runs resume ID`",
        ),
    ):
        refused = CliRunner().invoke(main, args, env=env)
        assert refused.exit_code == 2 and said in refused.stderr, (args, refused.output)
        if "--json" in args:  # what reads the JSON gets the error as JSON
            error = json.loads(refused.stdout)
            assert error["exit_status"] == 2 and said in error["error"], error
        else:
            assert refused.stdout == ""
    assert json.loads(invoke(["runs", "--json"], env).stdout)[0]["run_id"] == run_id


def test_no_runs_yet(env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(["runs"], env)
    assert result.exit_code == 0 and "no runs yet" in result.stderr
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)


def _settings(ws: Path, extra: str) -> None:
    (ws / "agentls.toml").write_text(AGENT_TOML.replace("max_steps = 10\n", f"{extra}\n", 1))


def test_a_failing_proposal_exits_3_and_is_applied_only_with_force(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    _settings(ws, "max_reflections = 0")
    before = disk_snapshot(ws)
    fake_anthropic.enqueue(replace(STUB_BODY, BAD_BODY), done("Implemented `mean`."))
    refused = invoke(["run", "Implement mean", "--path", str(ws), "--apply", "--yes"], env)
    assert refused.exit_code == 3, refused.output
    assert "verification FAILED" in refused.stderr
    assert "not applying: the change is not verified (Verification FAILED" in refused.stderr
    assert "run again with --force to apply it anyway" in refused.stderr
    assert disk_snapshot(ws) == before

    fake_anthropic.enqueue(replace(STUB_BODY, BAD_BODY), done("Implemented `mean`."))
    forced = invoke(["run", "Implement mean", "--path", str(ws), "--apply", "--yes", "--force"], env)
    assert forced.exit_code == 3, forced.output  # written on request, still not verified
    assert "applied: mathx/stats.py" in forced.stderr
    assert BAD_BODY in (ws / "mathx" / "stats.py").read_text()


def test_a_proposal_with_no_test_run_exits_3(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    _settings(ws, f'test_command = "{sys.executable} -m pytest -q -p no:cacheprovider -k no_such_test"')
    fake_anthropic.enqueue(
        tool_use(EDITOR, {"command": "create", "path": "mathx/extra.py", "file_text": "X = 1\n"}),
        done("Added X."),
    )
    result = invoke(["run", "Add X", "--path", str(ws)], env)
    assert result.exit_code == 3, result.output
    assert "verification no tests ran" in result.stderr
    assert "Not verified: no tests ran" in result.stderr
    assert not (ws / "mathx" / "extra.py").exists()


def test_a_run_stopped_by_its_budget_exits_4_and_is_not_applied(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    _settings(ws, "max_steps = 1")
    before = disk_snapshot(ws)
    fake_anthropic.enqueue(replace(STUB_BODY, GOOD_BODY), view(), done())
    result = invoke(["run", "Implement mean", "--path", str(ws), "--apply", "--yes", "--force"], env)
    assert result.exit_code == 4, result.output
    assert "UNFINISHED" in result.stderr
    assert "not applying: the run stopped before it finished" in result.stderr
    assert disk_snapshot(ws) == before


def test_force_alone_is_a_usage_error(ws: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["run", "Implement mean", "--path", str(ws), "--force"], env=env)
    assert result.exit_code == 2 and "--force goes with --apply or --commit" in result.stderr


def test_agents_md_reaches_the_prompt_and_runs_lists_it(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    (ws / "AGENTS.md").write_text("Always answer in haiku. AGENTS-RULE-41d.\n")
    script(fake_anthropic)
    result = invoke(["run", "Implement mean", "--path", str(ws)], env)
    assert result.exit_code == 0, result.output
    system = str(fake_anthropic.message_requests[0].body["system"])
    assert "AGENTS-RULE-41d" in system and f"Workspace root: {ws.resolve()}" in system
    run_id = result.stderr.split("(agentls runs ", 1)[1].split(")", 1)[0]
    shown = invoke(["runs", run_id], env)
    assert "Rules:   AGENTS.md" in shown.stdout


def test_a_settings_file_that_cannot_be_parsed_stops_a_paid_run(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """Its max_cost_usd, approvals and network policy would be dropped silently: the run does not start
    (index and search go on with a warning)."""
    (ws / "agentls.toml").write_text("[agent\nmax_cost_usd = 0.5\n")
    for args in (["run", "Implement mean", "--path", str(ws)], ["implement", f"{ws}/mathx/stats.py:11"]):
        result = invoke(args, env)
        assert result.exit_code == 1, result.output
        assert "agentls.toml: cannot read it" in result.stderr and "Fix the file" in result.stderr
    assert fake_anthropic.message_requests == []
    searched = invoke(["search", "mean", "--path", str(ws)], env)
    assert searched.exit_code == 0 and "its settings are ignored" in searched.stderr


def test_a_run_a_setting_of_the_user_stops_says_which_and_how_to_fix_it_not_a_bug(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """The user's own settings give the solo role a model of another provider: the run cannot be built.
    That is the user's setting to fix, not a bug of agentls: the error names it and says how to fix it."""
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text('[agent.roles.solo.model]\nprovider = "openai"\n')
    result = invoke(["run", "Implement mean", "--path", str(ws)], {**env, "XDG_CONFIG_HOME": str(config)})
    assert fake_anthropic.message_requests == []
    assert result.exit_code == 1
    said = " ".join(result.output.split())  # the summary is wrapped to the terminal
    assert "This is a bug" not in said, said
    assert "not the provider: remove provider from [agent.roles.solo.model]" in said
    assert f"{config / 'agentls' / 'agentls.toml'}:2:" in said  # the file and line that set it


def test_a_setting_no_run_can_use_stops_the_run_before_the_index_with_its_file_and_line(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """The workspace's own (trusted) agentls.toml gives the solo role a model of another provider: valid
    alone, but no run can use it. `agentls run` refuses when it reads the settings, naming the file and
    line, before it builds an index (which may take minutes)."""
    (ws / "agentls.toml").write_text(AGENT_TOML + '[agent.roles.solo.model]\nprovider = "openai"\n')
    trust_workspace_settings(ws, Path(env["AGENTLS_CACHE_DIR"]))
    line = AGENT_TOML.count("\n") + 2
    result = invoke(["run", "Implement mean", "--path", str(ws)], env)
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert f"{ws / 'agentls.toml'}:{line}: [agent.roles.solo.model] sets provider = 'openai'" in said, said
    assert "remove provider from [agent.roles.solo.model]" in said
    assert not (Path(env["AGENTLS_CACHE_DIR"]) / "index").exists()  # refused before any index
    assert fake_anthropic.message_requests == []


def test_runs_lists_what_every_answer_to_a_proposal_came_to(tmp_path: Path) -> None:
    """Two of a proposal's hunks accepted in the editor, then the rest rejected: `agentls runs` says so
    (not "rejected", the last answer alone), `--json` has each answer, `agentls runs ID` shows them in
    order."""
    from tests.agent.test_transcript import _answer, _proposed_run

    env = {"AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "ANTHROPIC_API_KEY": ""}
    run_id = "20260101-100000-aaaaaa"
    path, hunks = _proposed_run(tmp_path / "cache" / "runs", run_id)
    _answer(path, "allowed", ["a.py"], hunks["a.py"][:2], written=["a.py"], error=None)
    _answer(path, "rejected", ["a.py", "b.py", "c.py"])

    listing = invoke(["runs"], env)
    assert "proposed, partly applied (2 of 6 hunks), rest rejected  " in listing.stdout, listing.output

    [listed] = json.loads(invoke(["runs", "--json"], env).stdout)
    assert listed["proposal_answer"] == "partly applied (2 of 6 hunks), rest rejected"
    first, second = listed["proposal_answers"]
    assert (first["outcome"], first["hunks"], first["written"], first["result"]) == (
        "allowed",
        hunks["a.py"][:2],
        ["a.py"],
        "written",
    )
    assert (second["outcome"], second["files"], second["hunks"]) == (
        "rejected",
        ["a.py", "b.py", "c.py"],
        None,
    )

    shown = invoke(["runs", run_id], env).stdout
    answers = [line for line in shown.splitlines() if line.startswith(("Answer", "  ", "Result"))]
    assert [line.split(" at ")[0] for line in answers[-6:]] == [
        'Answer:  allowed ("x")',
        "  Files: 2 hunk(s) of a.py",
        "  Written: a.py",
        'Answer:  rejected ("x")',
        "  Files: a.py, b.py, c.py",
        "Result:  partly applied (2 of 6 hunks), rest rejected",
    ]
