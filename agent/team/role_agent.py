"""`RoleAgent`: the agent loop (`agent.loop.Agent`) for one team role, ending when its handoff is accepted.

The loop is the solo one, unchanged, with a few differences that make it a role rather than a run:

- its tools are the role's (`agent.tools.toolset`) plus the role's submit tool (`agent.team.submit`),
  and the run ends as soon as that tool accepts a handoff;
- a reply without a tool call is taken as the handoff when it holds one as JSON (the whole reply, or a
  fenced block: models often write the document instead of calling the tool), validated as the submit
  tool validates it; otherwise (or when it is invalid, with the validation message, or not JSON at all,
  with the parser's) it gets a reminder, twice, then the role's run ends with no handoff (the team engine
  reports the node as failed);
- a submit call cut off at max_tokens is told that the handoff must fit in one call, shorter (not the
  solo loop's advice to split an edit into several calls, which a handoff cannot be);
- it never verifies, reflects or proposes: QA checks the work and the team engine proposes the shared
  overlay's changes once at the end;
- its budget checks speak of the whole run (and of its node's own cap): the loop's own check sees only
  the share of the run's budget the role was given, and would say what the role spent against it;
- it never writes the run's saved state (`agent.resume`) itself: the team's state holds the user's task and
  where in the graph the run is, so a role's edits are saved through the engine's `checkpoint` as they
  happen, and a role's own end (which is not the run's) saves nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.loop import Agent, Limit, RunStatus, Submitted
from agent.models import ModelResponse
from agent.proposal import Proposal
from agent.team.submit import SubmitTool
from agent.tools import ToolAbort, ToolError, one_line
from agent.tools.toolset import toolset

__all__ = ["Limit", "RoleAgent", "broken_json", "handoff_in_text"]

_REMINDERS = 2
_CUT_HANDOFF = (
    "This {name} call was cut off at the output token limit (max_tokens = {limit:,}) before your {handoff} "
    "was complete, so it was NOT submitted. A {handoff} is one call and cannot be sent in parts: call {name} "
    "again with a shorter {handoff} (brief texts, no code or long output in it)."
)
_FENCED = re.compile(r"```[A-Za-z]*[ \t]*\n(.*?)```", re.DOTALL)


def handoff_in_text(text: str) -> dict[str, Any] | None:
    """The JSON object a reply holds: a fenced block (the last one that is an object), else the reply from
    its first ``{`` to its last ``}``; None when there is none.

    >>> handoff_in_text('Here it is:\\n```json\\n{"work_item": "W1"}\\n```')
    {'work_item': 'W1'}
    >>> handoff_in_text("Done, nothing to add.") is None
    True
    """
    for candidate in _candidates(text):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def broken_json(text: str) -> str | None:
    """Why the JSON object a reply means to hold does not parse (the parser's message, for the first text
    that looks like one: a fenced block or the braces); None when the reply holds none.

    >>> broken_json('```json\\n{"work_item": "W1", "done": True}\\n```')
    'Expecting value: line 1 column 29 (char 28)'
    """
    for candidate in _candidates(text):
        if not candidate.strip().startswith("{"):
            continue
        try:
            json.loads(candidate)
        except ValueError as error:
            return str(error)
    return None


def _candidates(text: str) -> list[str]:
    """Where a reply may hold a JSON document: its fenced blocks, the last first, then its braces."""
    candidates = [match.group(1) for match in _FENCED.finditer(text)][::-1]
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    return candidates


class RoleAgent(Agent):
    """One role's agent on the team's shared overlay."""

    def __init__(
        self,
        *args: Any,
        submit: SubmitTool,
        checkpoint: Callable[[Agent], None] | None = None,
        limits: Sequence[Limit] = (),
        **kwargs: Any,
    ) -> None:
        """`checkpoint(agent)`: save the team run's state with this role's work so far (the engine's);
        `limits`: the run's and the node's budgets, checked before each call in their own terms."""
        self.limits = tuple(limits)  # before the loop's own __init__, which reads `_limits`
        super().__init__(*args, **kwargs)
        self.submit = submit
        self.checkpoint = checkpoint
        registry = toolset(self.role, self.resources)
        registry.add(submit)
        self._tools = registry
        self._reminders = 0

    def execute(self, response: ModelResponse) -> None:
        """Run the turn; a handoff accepted in it ends the role's run."""
        super().execute(response)
        if self.submit.accepted is not None:
            raise Submitted(response.text)

    def _limits(self) -> tuple[Limit, ...]:
        """The run's and the node's budgets first, then the role's own share of the run's."""
        return (*self.limits, *super()._limits())

    def _done(self, text: str) -> None:
        invalid = self._submit_text(text) if self.submit.accepted is None else None
        if self.submit.accepted is not None:
            raise Submitted(text)
        if self._reminders >= _REMINDERS:
            last = f"; its last reply: {one_line(text, 200)}" if text.strip() else ""
            raise ToolAbort(
                f"it answered {self._reminders + 1} times without calling `{self.submit.name}`{last}"
            )
        self._reminders += 1
        reminder = (
            f"You have not submitted your {self.submit.handoff} yet. Call `{self.submit.name}` with it now; "
            "the team cannot go on without it."
        )
        if invalid:
            reminder = f"{invalid}\n\n{reminder}"
        self.messages.append({"role": "user", "content": reminder})

    def _submit_text(self, text: str) -> str | None:
        """Submit the handoff the reply holds as JSON, if any; the validation message when it is invalid
        (the parser's when it is not JSON)."""
        document = handoff_in_text(text)
        if document is None:
            broken = broken_json(text)
            if broken is None:
                return None
            handoff = self.submit.handoff
            return f"The {handoff} in your reply was not submitted: it is not valid JSON ({broken})."
        try:
            self.submit.run(document)  # ToolAbort (invalid too often) ends the role's run
        except ToolError as invalid:
            return f"The {self.submit.handoff} in your reply was not submitted: {invalid}"
        self._decision("handoff_in_text", handoff=self.submit.handoff, tool=self.submit.name)
        return None

    def _cut_call(self, use: Mapping[str, Any], window_full: bool = False) -> dict[str, Any]:
        """A submit call cut at max_tokens: the handoff must fit in one call, so it is asked for shorter."""
        if window_full or use.get("name") != self.submit.name:
            return super()._cut_call(use, window_full)
        limit = self._max_tokens_in_use or self.settings.model.max_tokens
        message = _CUT_HANDOFF.format(name=self.submit.name, handoff=self.submit.handoff, limit=limit)
        return self._not_run(use, message, "cut off at max_tokens")

    def _save_state(self, status: str, error: str | None) -> None:
        if status == "running" and self.checkpoint is not None:
            self.checkpoint(self)

    def _finish(self, text: str) -> tuple[RunStatus, str, Proposal | None]:
        return "no_changes", text.strip(), None

    def _keep_work(self, message: str, reason: str, *, early: bool = False) -> tuple[str, Proposal | None]:
        return message, None
