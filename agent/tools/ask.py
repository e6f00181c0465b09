"""`ask_user`: a clarifying question routed to whoever drives the run.

The driver supplies `ask(question, options) -> answer`: the CLI prompts on the terminal, the language
server asks the editor. Without a driver that can answer (`ask` is None, or it raises `NoAnswer`), the
tool says so and tells the model to go on with the most reasonable reading and state its assumption.
The number of questions per run is bounded so that a model cannot stall a run on questions.

A run with a time bound (`agent.max_minutes`) asks through `agent.timebound.bounded_ask`: a question still
unanswered at the bound is withdrawn (`QuestionWithdrawn`), and the run stops there as the bound stops it;
for approvals, which take any `NoAnswer` as a refusal, it is one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.tools import CustomTool, ToolError, ToolResult, ToolTimeUp, one_line

__all__ = ["AskCallback", "AskUserTool", "NoAnswer", "QuestionWithdrawn"]

AskCallback = Callable[[str, Sequence[str]], str]
"""`ask(question, options)`: the user's answer (free text; one of `options` when they were given)."""


class NoAnswer(Exception):
    """The driver cannot get an answer (no terminal, the editor declined, a timeout)."""


class QuestionWithdrawn(NoAnswer, ToolTimeUp):
    """The question was withdrawn unanswered because the run's time ran out (or the run was cancelled).

    `ask_user` lets it through, so the run stops at once (the loop stops it as its time bound does); an
    approval takes it as any `NoAnswer`: a refusal."""


_NO_ANSWER = (
    "No answer is available{why}. Do not ask again: go on with the most reasonable interpretation and "
    "state the assumption you made in your final summary."
)


class AskUserTool(CustomTool):
    """`ask_user` through the driver's callback."""

    name = "ask_user"
    description = (
        "Ask the user one clarifying question when the task is ambiguous in a way that changes "
        "the result and the code cannot tell you the answer. Returns the user's answer."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "question": {"type": "string", "description": "One concise question for the user."},
            "options": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Possible answers to choose from, when there are a few clear ones.",
            },
        },
        "required": ["question"],
        "additionalProperties": False,
    }

    def __init__(self, ask: AskCallback | None, *, max_questions: int = 3) -> None:
        self.ask = ask
        self.max_questions = max_questions
        self.asked = 0

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`ask_user: QUESTION`."""
        return f"ask_user: {one_line(input.get('question', ''), 80)}"

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Ask and return the answer."""
        question = str(input["question"]).strip()
        if not question:
            raise ToolError("The question is empty.")
        options = [str(option) for option in input.get("options") or [] if str(option).strip()]
        if self.ask is None:
            return ToolResult(_NO_ANSWER.format(why=" (nobody is watching this run)"))
        if self.asked >= self.max_questions:
            return ToolResult(_NO_ANSWER.format(why=f" (you have asked {self.asked} questions already)"))
        self.asked += 1
        try:
            answer = self.ask(question, options)
        except QuestionWithdrawn:
            raise
        except NoAnswer as error:
            detail = f" ({error})" if str(error) else ""
            return ToolResult(_NO_ANSWER.format(why=detail))
        answer = answer.strip()
        if not answer:
            return ToolResult(_NO_ANSWER.format(why=" (the user gave an empty answer)"))
        return ToolResult(f"The user answered: {answer}")
