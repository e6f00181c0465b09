"""`--max-minutes` of `agentls run`, `agentls implement` and `agentls runs resume`: a run past its wall-clock
budget stops as a budget stop does (exit 4, the edit so far shown as UNFINISHED, resumable), and the
resumed run counts the time the first part took (the fake API stalls mid-reply; the rest is real). A
question left unanswered on the terminal does not hold the run past its budget, and an answer typed on a
real terminal (a pty) is edited as a shell edits a line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from click.testing import Result

from agent.resume import load_state
from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, done, replace, view
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, tool_use, turn
from tests.server.test_cli_agent import env, invoke, ws

__all__ = ["env", "ws"]


def _run_seconds(env: dict[str, str], run_id: str) -> float:
    """The run's own clock (its saved state's seconds): the start of `agentls run` (its imports, seconds on a
    loaded machine; the whole command took 36 s once) is not the run's time."""
    return load_state(Path(env["AGENTLS_CACHE_DIR"]) / "runs", run_id).seconds


def _run_id(result: Result) -> str:
    match = re.search(r"\(agentls runs ([\w-]+)\)", result.stderr)
    assert match, result.stderr
    return match.group(1)


def test_run_stops_at_its_max_minutes_and_resume_counts_the_time_spent(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()), replace(STUB_BODY, GOOD_BODY), stall(60, done())
    )
    began = time.monotonic()
    instruction = "Implement mean in mathx/stats.py"
    first = invoke(["run", instruction, "--path", str(ws), "--max-minutes", "0.05"], env)
    took = time.monotonic() - began
    assert first.exit_code == 4, first.output
    assert took < 40, f"`agentls run` took {took:.1f} s with a 3 s budget and a 60 s stall"
    assert "Time budget reached" in first.stderr and "max_minutes = 0.05" in first.stderr
    assert "UNFINISHED" in first.stderr
    assert "+    return sum(values) / len(values)" in first.stdout  # the edit so far
    run_id = _run_id(first)
    assert f"agentls runs resume {run_id}" in first.stderr

    requests = len(fake_anthropic.message_requests)
    again = invoke(["runs", "resume", run_id, "--max-minutes", "0.05"], env)
    assert again.exit_code == 4, again.output
    assert "Time budget reached" in again.stderr
    assert len(fake_anthropic.message_requests) == requests  # the 3 s were spent: no call is made

    fake_anthropic.enqueue(done("Implemented `mean`."))
    resumed = invoke(["runs", "resume", _run_id(again), "--max-minutes", "5"], env)
    assert resumed.exit_code == 0, resumed.output
    assert "verification passed" in resumed.stderr


def test_implement_takes_max_minutes_and_bad_values_are_refused(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    stats = ws / "mathx" / "stats.py"
    line = stats.read_text().splitlines().index("def mean(values: list[float]) -> float:") + 1
    fake_anthropic.enqueue(stall(20, turn(text("Plan: edit the stub."), view())))
    stopped = invoke(["implement", f"{stats}:{line}", "--max-minutes", "0.05"], env)
    assert stopped.exit_code == 4, stopped.output
    assert "Time budget reached" in stopped.stderr

    bad = invoke(["run", "x", "--path", str(ws), "--max-minutes", "soon"], env)
    assert bad.exit_code == 2 and "--max-minutes" in bad.output and "a number of minutes" in bad.output
    alone = invoke(["runs", "--max-minutes", "5"], env)
    assert alone.exit_code == 2 and "go with `agentls runs resume ID`" in alone.output


def test_a_question_left_unanswered_on_the_terminal_is_withdrawn_at_max_minutes(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """`agentls run` in a terminal whose user walked away: the prompt is given up at the bound (the
    terminal was left waiting for an answer nobody would read, and the run's result with it), the edit is
    shown as UNFINISHED, exit status 4."""
    fake_anthropic.enqueue(
        turn(
            text("Plan: edit the stub, then ask."),
            replace(STUB_BODY, GOOD_BODY),
            tool_use("ask_user", {"question": "Should [] raise?", "options": ["yes", "no"]}),
        ),
        done(),
    )
    keyboard, terminal = pty.openpty()  # stdin is a terminal on which nobody types
    command = [sys.executable, "-m", "server.cli", "run", "Implement mean", "--path", str(ws)]
    try:
        ran = subprocess.run(
            [*command, "--max-minutes", "0.1"],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,  # the code before it waited for the answer until killed
        )
    finally:
        os.close(keyboard)
        os.close(terminal)
    assert "The agent asks: Should [] raise?" in ran.stderr, ran.stderr
    assert ran.returncode == 4, ran.stderr
    assert "(The question was withdrawn: the run stopped before your answer.)" in ran.stderr
    assert "Time budget reached" in ran.stderr and "UNFINISHED" in ran.stderr
    assert "+    return sum(values) / len(values)" in ran.stdout
    assert _run_seconds(env, _run_id(ran)) < 30, "the run went on well past its 6 s budget"
    shown = invoke(["runs", _run_id(ran)], env)
    assert shown.exit_code == 0, shown.output
    assert "decision: question_withdrawn: ask_user: withdrawn unanswered (" in shown.output, shown.output


class _Terminal:
    """A real terminal (a pty, 80x24) for `agentls run`'s stdin and stdout, as a shell gives it; what the
    program writes there is read on a thread, and `type` sends keys as a keyboard does."""

    def __init__(self) -> None:
        self.keyboard, self.tty = pty.openpty()
        fcntl.ioctl(self.tty, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.screen = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.keyboard, 4096)
            except OSError:  # the program and the test closed the terminal
                return
            if not data:
                return
            self.screen += data

    def wait_for(self, text: str, count: int = 1, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while self.screen.decode(errors="replace").count(text) < count:
            assert time.monotonic() < deadline, (
                f"no {text!r} x{count} on the terminal: {bytes(self.screen)!r}"
            )
            time.sleep(0.05)

    def type(self, keys: str) -> None:
        os.write(self.keyboard, keys.encode())

    def close(self) -> None:
        os.close(self.tty)
        os.close(self.keyboard)


def test_an_answer_typed_on_a_terminal_is_edited_as_a_shell_edits_it(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """`agentls run` in a terminal: the user types the answer with a typo, fixed with the arrow keys and
    backspace as in a shell (readline), and the run gets the line as edited. The next question, half
    typed when the run's time runs out, is withdrawn there: the prompt given up mid-line, the terminal
    back as it was, exit status 4."""
    fake_anthropic.enqueue(
        turn(
            text("Plan: edit the stub, then ask."),
            replace(STUB_BODY, GOOD_BODY),
            tool_use("ask_user", {"question": "Should [] raise?", "options": ["yes", "no"]}),
        ),
        tool_use("ask_user", {"question": "Which error?"}),
        done(),
    )
    terminal = _Terminal()
    command = [sys.executable, "-m", "server.cli", "run", "Implement mean", "--path", str(ws)]
    try:
        process = subprocess.Popen(
            [*command, "--max-minutes", "0.1"],
            stdin=terminal.tty,
            stdout=terminal.tty,
            stderr=terminal.tty,
            env={**os.environ, **env, "TERM": "xterm"},
        )
        try:
            terminal.wait_for("Your answer: ")
            # "ys", Left, "e" (the missed letter), End, "!", Backspace (the slip), Enter.
            terminal.type("ys\x1b[De\x1b[F!\x7f\r")
            terminal.wait_for("Your answer: ", count=2)
            terminal.type("Value")  # and the user walks away before Enter
            process.wait(timeout=120)
        finally:
            process.kill()
        settings = termios.tcgetattr(terminal.tty)
    finally:
        terminal.close()
    screen = terminal.screen.decode(errors="replace")
    assert "The agent asks: Should [] raise?" in screen and "The agent asks: Which error?" in screen
    turn_after = fake_anthropic.message_requests[1].body["messages"][-1]["content"]
    results = [block["content"] for block in turn_after if block.get("type") == "tool_result"]
    assert results[-1] == "The user answered: yes", results[-1]
    assert process.returncode == 4, screen
    assert "(The question was withdrawn: the run stopped before your answer.)" in screen
    assert len(fake_anthropic.message_requests) == 2
    run_id = re.search(r"\(agentls runs ([\w-]+)\)", screen)
    assert run_id, screen
    assert _run_seconds(env, run_id.group(1)) < 30, "the run went on well past its 6 s budget"
    assert settings[3] & termios.ICANON and settings[3] & termios.ECHO  # readline restored the terminal
