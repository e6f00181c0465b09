"""Asking the user to approve something the agent wants to do, and recording the answer.

`ask_approval(ask, recorder, question, subject=..., detail=...)` asks `question` with the options
``Allow`` / ``Deny`` through the run's ask callback (the editor's message or the terminal prompt) and
writes an ``approval`` record (subject, detail, approved, answer) to the run's transcript. Nobody to
ask, or no answer, is a refusal; a question withdrawn at the run's time bound (`QuestionWithdrawn`) is
one too, and a ``question_withdrawn`` decision (subject, detail, reason) says so. Subjects in use:
``network`` (a first request to a registry host), ``install`` (a package install), ``mcp_server``
(starting a workspace's MCP server), ``mcp_call``, ``settings`` (a workspace file's sensitive settings).

A question asked before the run's transcript exists (``agentls acp`` asks its trust questions before a
prompt's run) is an `Asked`, handed to the run (`agent.runner.start_run`'s ``asked``), whose transcript
writes it first, as an ``approval`` record with when it was answered and, for no answer, why; a run that
ends before its transcript begins writes it in the transcript of the failed attempt
(`agent.runner.record_unstarted`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.tools.ask import NoAnswer, QuestionWithdrawn

if TYPE_CHECKING:
    from agent.recorder import Recorder
    from agent.tools.ask import AskCallback

__all__ = ["ALLOW", "DENY", "Asked", "ask_approval"]

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Asked:
    """A question of approval asked before the run started, and how it ended, for the run's transcript."""

    subject: str
    detail: str
    question: str
    approved: bool
    answer: str | None
    """The option the user chose (its name); None: no answer came."""
    reason: str | None = None
    """Why no answer came (the question was closed without a choice; the editor could not ask)."""
    asked_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))

    def record(self) -> tuple[str, dict[str, Any]]:
        """Its transcript record: ``approval`` and its fields (``reason`` only when no answer came)."""
        fields: dict[str, Any] = {
            "subject": self.subject,
            "detail": self.detail,
            "question": self.question,
            "approved": self.approved,
            "answer": self.answer,
            "asked_at": self.asked_at,
        }
        if self.reason is not None:
            fields["reason"] = self.reason
        return "approval", fields


def ask_approval(
    ask: AskCallback | None,
    recorder: Recorder | None,
    question: str,
    *,
    subject: str,
    detail: str,
    options: tuple[str, str] = (ALLOW, DENY),
) -> bool:
    """Whether the user chose the first of `options`; the question and answer are recorded."""
    answer: str | None = None
    withdrawn: QuestionWithdrawn | None = None
    if ask is not None:
        try:
            answer = ask(question, list(options))
        except QuestionWithdrawn as why:
            withdrawn = why
        except NoAnswer:
            answer = None
    approved = answer is not None and answer.strip().lower() == options[0].lower()
    if recorder is not None:
        recorder.approval(subject=subject, detail=detail, question=question, approved=approved, answer=answer)
        if withdrawn is not None:
            recorder.decision("question_withdrawn", subject=subject, detail=detail, reason=str(withdrawn))
    return approved
