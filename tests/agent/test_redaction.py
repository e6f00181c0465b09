"""A run's redactions (`agent.redaction.RedactionCache`): each text goes through the `Redactor` once for
the model's requests, the events and the state saved after each step that changed a file, and the saved
state is still exactly the conversation redacted with every value the run knows, a value learnt late
included. The runs go through the fake Messages API, the real overlay and the real `Redactor`.

An edit's placeholders are put back as the text they replaced in the file: for a key written there only in
base64, the base64 (an edit keeping the line, an insert or create copying it), never the decoded key.
"""

from __future__ import annotations

import base64
import collections
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import agent.redaction as redaction
from agent.resume import load_state, state_path
from indexing.secrets import Redactor, SecretEditRefused, placeholder, redact_source
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
from tests.indexing.test_secret_encodings import leaks

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


# -- a placeholder of a value written encoded is put back as the encoded text ---------------------------

STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ9xZ"
ENCODED = base64.b64encode(f'STRIPE_KEY = "{STRIPE}"'.encode()).decode()
"""The key only in base64, in a comment: no detector sees it there; the redaction decodes it."""
DEPLOY = f"# deploy settings, encoded:\n# {ENCODED}\nREGION = 'eu-west-1'\n"


@pytest.fixture
def encoded_harness(fake_anthropic: FakeAnthropic, tmp_path: Path) -> Harness:
    root = copy_workspace(tmp_path / "ws")
    (root / "deploy.py").write_text(DEPLOY)
    return Harness(fake_anthropic, root, tmp_path / "runs")


def _redacted_line(secrets: Redactor) -> str:
    """deploy.py's second line as the model reads it (the same placeholder in a view and in the index)."""
    line = redact_source(DEPLOY, secrets.key, "deploy.py")[0].splitlines()[1]
    assert "<secret:" in line and not leaks(line, (STRIPE,)), line
    if not secrets.allow_values:
        assert line == secrets.redact(DEPLOY).splitlines()[1]
    return line


def test_an_edit_keeping_an_encoded_value_writes_back_the_encoded_text(encoded_harness: Harness) -> None:
    """The model views deploy.py, whose key is written only in base64, and adds a line under the one
    holding it (the placeholder kept). Before, the placeholder was put back as the decoded key: old_str
    did not match the file and the edit failed. Now the file holds its own base64; the requests hold the
    key in no form, and the transcript records the call with its placeholder."""
    h = encoded_harness
    secrets = Redactor(KEY)
    line = _redacted_line(secrets)
    h.fake.enqueue(
        turn(text("Plan: add a comment under the encoded settings."), view("deploy.py")),
        tool_use(
            EDITOR,
            {
                "command": "str_replace",
                "path": "deploy.py",
                "old_str": f"{line}\n",
                "new_str": f"{line}\n# rotated yearly\n",
            },
        ),
        done("Added the comment."),
    )
    agent = h.agent(fast_settings(verify=False), secrets=secrets)
    result = agent.run(mean_task(h.root))
    assert result.steps == 3, (result.status, result.error)
    written = agent.overlay.read("deploy.py")
    assert written == DEPLOY.replace(f"# {ENCODED}\n", f"# {ENCODED}\n# rotated yearly\n"), written
    assert STRIPE not in written
    assert not leaks(h.bodies_text(), (STRIPE,))
    # The transcript records the call as the model made it (the runner's transcript redacts the rest).
    calls = [r for r in h.transcript_records(result) if r["type"] == "tool_call" and r["name"] == EDITOR]
    assert calls[-1]["input"]["new_str"] == f"{line}\n# rotated yearly\n"
    assert not leaks(json.dumps([r["input"] for r in calls]), (STRIPE,))
    assert (h.root / "deploy.py").read_text() == DEPLOY  # proposed, not applied


def test_an_insert_or_create_copying_an_encoded_value_writes_the_encoded_text(
    encoded_harness: Harness,
) -> None:
    """With values allowed, the model copies the line as a search hit shows it (the index's redaction)
    into deploy.py (insert) and into a new file (create). Before, both wrote the decoded key: a secret
    the user's code never held bare. Now both write deploy.py's own base64 line."""
    h = encoded_harness
    secrets = Redactor(KEY, allow_values=True)
    line = _redacted_line(secrets)
    h.fake.enqueue(
        turn(
            text("Plan: keep a copy of the encoded line."),
            tool_use(
                EDITOR,
                {"command": "insert", "path": "deploy.py", "insert_line": 3, "insert_text": f"{line}\n"},
            ),
        ),
        tool_use(EDITOR, {"command": "create", "path": "copy.py", "file_text": f"{line}\n"}),
        done("Copied the line."),
    )
    agent = h.agent(fast_settings(verify=False), secrets=secrets)
    result = agent.run(mean_task(h.root))
    assert result.steps == 3, (result.status, result.error)
    deploy, copy = agent.overlay.read("deploy.py"), agent.overlay.read("copy.py")
    assert deploy == f"{DEPLOY}# {ENCODED}\n", deploy
    assert copy == f"# {ENCODED}\n", copy
    assert STRIPE not in deploy + copy


def test_restore_edit_puts_back_what_each_placeholder_replaced() -> None:
    """Without values allowed, copying the encoded value is refused as before. In a file holding the
    value bare on one line and in base64 on another (one placeholder for both), an edit of either line
    gets that line's own text back (the reading of old_str that the file holds); a copy, which says
    neither, is refused rather than guessed. A value written bare is still put back bare."""
    secrets = Redactor(KEY)
    line = _redacted_line(secrets)
    both = f'STRIPE_KEY = "{STRIPE}"\n{DEPLOY}'

    def read(path: str) -> str | None:
        return {"deploy.py": DEPLOY, "both.py": both}.get(path)

    copy = {"command": "insert", "path": "deploy.py", "insert_line": 0, "insert_text": f"{line}\n"}
    with pytest.raises(SecretEditRefused, match="copy the secret value"):
        secrets.restore_edit(EDITOR, copy, read)

    view = secrets.redact(both)
    marker = placeholder(STRIPE, KEY)
    assert view.count(marker) == 2 and view.endswith(DEPLOY.replace(f"# {ENCODED}", line)), view
    encoded = {"command": "str_replace", "path": "both.py", "old_str": f"{line}\n", "new_str": f"{line}\n\n"}
    restored = secrets.restore_edit(EDITOR, encoded, read)
    assert restored["old_str"] == f"# {ENCODED}\n" and restored["new_str"] == f"# {ENCODED}\n\n"
    bare = {
        "command": "str_replace",
        "path": "both.py",
        "old_str": f'STRIPE_KEY = "{marker}"',
        "new_str": f'STRIPE_KEY = "{marker}"  # live',
    }
    restored = secrets.restore_edit(EDITOR, bare, read)
    assert restored["old_str"] == f'STRIPE_KEY = "{STRIPE}"'
    assert restored["new_str"] == f'STRIPE_KEY = "{STRIPE}"  # live'
    allowed = Redactor(KEY, allow_values=True)
    copied = {"command": "insert", "path": "both.py", "insert_line": 0, "insert_text": f"{line}\n"}
    with pytest.raises(SecretEditRefused, match="more than one way"):
        allowed.restore_edit(EDITOR, copied, read)
