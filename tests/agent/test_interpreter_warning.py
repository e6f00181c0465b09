"""The fallback interpreter's warning reaches the user: an "interpreter" warning event of the run (once,
also in a run that delegates), a line on the CLI's stderr, the transcript's decision, and in the
language server an ``agentls/runEvent`` warning, a ``window/showMessage`` warning (once a session for
the same warning) and the progress line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types
from rich.console import Console

from agent.loop import AgentEvent
from server.cli.agent import _Printer
from server.features.runs.manager import RUN_EVENT, Run
from tests.agent.agent_harness import Harness, copy_workspace, done
from tests.fakes.anthropic_server import FakeAnthropic
from tests.server.test_proposals import PlainEditor, manager_with


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, tmp_path: Path) -> Iterator[Harness]:
    # The stand-in workspace has Python tests and no environment: a fallback Python runs them.
    yield Harness(fake_anthropic, copy_workspace(tmp_path / "ws"), tmp_path / "runs")


def test_the_fallback_interpreter_is_a_warning_event_and_a_cli_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    h.fake.enqueue(done("Nothing to change."))
    caplog.set_level(logging.WARNING)
    result = h.run()
    # Said once, by the event: a WARNING log of it printed the same line twice on the CLI.
    assert not [r for r in caplog.records if "no project environment" in r.getMessage()]
    warnings = [e for e in h.events if e.kind == "warning"]
    assert len(warnings) == 1 and warnings[0].data["subject"] == "interpreter"
    assert "no project environment was found" in warnings[0].message
    decision = next(r for r in h.transcript_records(result) if r.get("kind") == "interpreter")
    assert decision["warning"] == warnings[0].message and decision["probed"] == "sandbox"

    out = io.StringIO()
    _Printer(Console(file=out, width=400, color_system=None))(warnings[0])
    assert out.getvalue().startswith("warning: Using ") and "python -m venv .venv" in out.getvalue()


def test_the_server_forwards_a_warning_to_the_editor(tmp_path: Path) -> None:
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    manager = manager_with(tmp_path, editor)
    run = Run("r1", "implement mean", "implement", tmp_path)
    text = "Using /usr/bin/python3 (the system's python3; it has pytest): no project environment was found."
    manager._on_event(run, AgentEvent(kind="warning", message=text, data={"subject": "interpreter"}))
    [params] = [p for m, p in editor.notified if m == RUN_EVENT]
    sent = (params.run_id, params.kind, params.message, params.subject)
    assert sent == ("r1", "warning", text, "interpreter")
    assert editor.shown == [(f"agentls: {text}", types.MessageType.Warning)]

    # The next run of the session with the same Python: in its events and progress, not in another pop-up.
    second = Run("r2", "implement median", "implement", tmp_path)
    manager._on_event(second, AgentEvent(kind="warning", message=text, data={"subject": "interpreter"}))
    assert [p.run_id for m, p in editor.notified if m == RUN_EVENT] == ["r1", "r2"]
    assert second.message == f"warning: {text}"
    assert len(editor.shown) == 1
    other = text.replace("/usr/bin/python3", "/opt/python3")
    manager._on_event(second, AgentEvent(kind="warning", message=other, data={"subject": "interpreter"}))
    assert editor.shown[1:] == [(f"agentls: {other}", types.MessageType.Warning)]
    assert run.message == f"warning: {text}"
