"""A run's redactions (`agent.redaction.RedactionCache`): each text goes through the `Redactor` once for
the model's requests, the events and the state saved after each step that changed a file, and the saved
state is still exactly the conversation redacted with every value the run knows, a value learnt late
included. The runs go through the fake Messages API, the real overlay and the real `Redactor`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import agent.redaction as redaction
from agent.resume import load_state, state_path
from indexing.secrets import Redactor, placeholder
from tests.agent.agent_harness import (
    EDITOR,
    SECRET,
    Harness,
    copy_workspace,
    done,
    fast_settings,
    mean_task,
    result_text,
    view,
)
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn

LATE = "tok-4Hq9ZpL2xV7mN3cR8wK1"
"""Bare in token.txt (no detector sees it there), with its name in config.py (where one does)."""

EDITS = 12
KEY = b"k" * 32


class CountingRedactor(Redactor):
    """The real `Redactor`, counting the texts it is given."""

    def __init__(self) -> None:
        super().__init__(KEY)
        self.texts: collections.Counter[str] = collections.Counter()

    def redact(self, text: str, filename: str = "") -> str:
        self.texts[text] += 1
        return super().redact(text, filename)


def _uncached(secrets: Redactor, value: Any) -> Any:
    """What the saved state held before `RedactionCache`: every text redacted again, identifiers left."""
    if isinstance(value, str):
        return secrets.redact(value)
    if isinstance(value, Mapping):
        return {k: v if k in redaction._KEEP else _uncached(secrets, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_uncached(secrets, v) for v in value]
    return value


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, tmp_path: Path) -> Harness:
    root = copy_workspace(tmp_path / "ws")
    (root / "token.txt").write_text(f"{LATE}\n")
    (root / "config.py").write_text(f'api_key = "{LATE}"\n')
    return Harness(fake_anthropic, root, tmp_path / "runs")


def _run_with_many_edits(h: Harness, secrets: Redactor) -> tuple[Any, Any, list[bytes]]:
    """A run that views token.txt (the value bare, not known yet), then config.py (learnt), then makes
    `EDITS` edits, each step saving the state; the state files as they were during the run."""
    saved: list[bytes] = []

    def on_event(event: Any) -> None:
        if event.kind == "step" and agent.task is not None:
            path = state_path(h.runs_dir, agent.run_id)
            if path.exists():
                saved.append(path.read_bytes())

    h.fake.enqueue(
        turn(text("Plan: read the token, then write notes."), view("token.txt")),
        view("config.py"),
        *(
            tool_use(EDITOR, {"command": "create", "path": f"notes_{n}.py", "file_text": f"NOTE = {n}\n"})
            for n in range(EDITS)
        ),
        done("Wrote the notes."),
    )
    agent = h.agent(fast_settings(verify=False, max_steps=40), secrets=secrets, on_event=on_event)
    result = agent.run(mean_task(h.root))
    return agent, result, saved


def test_each_text_is_redacted_once_across_the_states_saved_during_a_run(harness: Harness) -> None:
    """Before, each save redacted the whole conversation again: the first turn went through the
    `Redactor` once per save. Now a text is redacted once, and once more if it came before the run learnt
    a value (the state holds every text redacted with all the values known)."""
    secrets = CountingRedactor()
    agent, result, saved = _run_with_many_edits(harness, secrets)

    assert result.steps == EDITS + 3, (result.status, result.error)
    assert len(saved) >= EDITS  # a state saved after each edit
    first_turn = agent.messages[0]["content"]  # the context and the task
    assert secrets.texts[first_turn] in (1, 2)
    assert max(secrets.texts.values()) <= 2, secrets.texts.most_common(3)


def test_the_saved_state_is_the_conversation_redacted_with_every_value_known(harness: Harness) -> None:
    """token.txt's value was not known when the model got the view (it saw it bare: the documented limit
    for a value no detector sees); once config.py taught it, every state on disk has its placeholder, also
    in that earlier view, and the last state is exactly the uncached redaction of the conversation."""
    secrets = Redactor(KEY)
    agent, result, saved = _run_with_many_edits(harness, secrets)

    marker = placeholder(LATE, KEY)
    first_view = json.dumps(dict(harness.fake.message_requests[1].body))
    assert LATE in first_view  # sent before the value was known
    assert saved and all(LATE.encode() not in blob and SECRET.encode() not in blob for blob in saved)
    final = state_path(harness.runs_dir, result.run_id).read_bytes()
    assert LATE.encode() not in final and SECRET.encode() not in final
    state = load_state(harness.runs_dir, result.run_id)
    views = [
        result_text(block)
        for message in state.messages
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert marker in views[0] and marker in views[1], views[:2]
    assert state.messages == _uncached(secrets, agent.messages)


def test_current_redoes_a_text_redacted_before_a_value_was_learnt_and_sent_keeps_it() -> None:
    secrets = CountingRedactor()
    cache = redaction.RedactionCache(secrets)
    bare = f"printed: {LATE}\n"
    assert cache.sent(bare) == bare == cache.current(bare)
    assert secrets.texts[bare] == 1
    cache.current(f'api_key = "{LATE}"\n')  # the run learns the value
    marker = placeholder(LATE, KEY)
    assert cache.current(bare) == f"printed: {marker}\n" == secrets.redact(bare)
    assert cache.sent(bare) == bare  # the model's prefix stays byte-identical
    before = secrets.texts[bare]
    assert cache.current(bare) == f"printed: {marker}\n"
    assert secrets.texts[bare] == before  # exact again until another value is learnt


def test_the_cache_is_bounded_and_drops_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_CACHE_LIMIT", 3)
    secrets = CountingRedactor()
    cache = redaction.RedactionCache(secrets)
    for name in ("a", "b", "c"):
        cache.current(f"text {name}")
    cache.sent("text a")  # used: kept
    cache.current("text d")  # drops b
    assert len(cache._entries) == 3
    cache.current("text a")
    cache.current("text b")
    assert secrets.texts["text a"] == 1 and secrets.texts["text b"] == 2
