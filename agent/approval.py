"""Asking the user to approve something the agent wants to do, and recording the answer.

`ask_approval(ask, recorder, question, subject=..., detail=...)` asks `question` with the options
``Allow`` / ``Deny`` through the run's ask callback (the editor's message or the terminal prompt) and
writes an ``approval`` record (subject, detail, approved, answer) to the run's transcript. Nobody to
ask, or no answer, is a refusal; a question withdrawn at the run's time bound (`QuestionWithdrawn`) is
one too, and a ``question_withdrawn`` decision (subject, detail, reason) says so. Subjects in use:
``network`` (a first request to a registry host), ``install`` (a package install), ``mcp_server``
(starting a workspace's MCP server), ``mcp_call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.tools.ask import NoAnswer, QuestionWithdrawn

if TYPE_CHECKING:
    from agent.recorder import Recorder
    from agent.tools.ask import AskCallback

__all__ = ["ALLOW", "DENY", "ask_approval"]

ALLOW, DENY = "Allow", "Deny"


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
