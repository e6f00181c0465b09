"""`RoleAgent`: the agent loop (`agent.loop.Agent`) for one team role, ending when its handoff is accepted.

The loop is the solo one, unchanged, with three differences that make it a role rather than a run:

- its tools are the role's (`agent.tools.toolset`) plus the role's submit tool (`agent.team.submit`),
  and the run ends as soon as that tool accepts a handoff;
- a reply without a tool call and without a handoff gets a reminder (twice), then ends the role's run
  with no handoff (the team engine reports the node as failed);
- it never verifies, reflects or proposes: QA checks the work and the team engine proposes the shared
  overlay's changes once at the end.
"""

from __future__ import annotations

from typing import Any

from agent.loop import Agent, RunStatus, Submitted
from agent.models import ModelResponse
from agent.proposal import Proposal
from agent.team.submit import SubmitTool
from agent.tools.toolset import toolset

__all__ = ["RoleAgent"]

_REMINDERS = 2


class RoleAgent(Agent):
    """One role's agent on the team's shared overlay."""

    def __init__(self, *args: Any, submit: SubmitTool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit = submit
        registry = toolset(self.role, self.resources)
        registry.add(submit)
        self._tools = registry
        self._reminders = 0

    def execute(self, response: ModelResponse) -> None:
        """Run the turn; a handoff accepted in it ends the role's run."""
        super().execute(response)
        if self.submit.accepted is not None:
            raise Submitted(response.text)

    def _done(self, text: str) -> None:
        if self.submit.accepted is not None or self._reminders >= _REMINDERS:
            raise Submitted(text)
        self._reminders += 1
        self.messages.append(
            {
                "role": "user",
                "content": f"You have not submitted your {self.submit.handoff} yet. Call "
                f"`{self.submit.name}` with it now; the team cannot go on without it.",
            }
        )

    def _finish(self, text: str) -> tuple[RunStatus, str, Proposal | None]:
        return "no_changes", text.strip(), None

    def _keep_work(self, message: str, reason: str, *, early: bool = False) -> tuple[str, Proposal | None]:
        return message, None
