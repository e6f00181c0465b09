"""The submit tools: how a role hands its document to the next, validated against the handoff's model.

`SubmitTool(model)` is a tool (`submit_spec`, `submit_design`, `submit_result`, `submit_review`) whose
input schema is the handoff's JSON Schema (`agent.team.handoffs.tool_schema`). A valid input is parsed
into the model and kept as `accepted`; the role's loop then ends (`agent.team.role_agent.RoleAgent`). An
invalid one comes back to the role as a tool error whose first line names each problem (field, what is
wrong, the value given: the line a stop for the same failing call quotes), at most `max_invalid` times;
the next invalid submission raises `ToolAbort`, which ends the role's run with a message saying what was
wrong. A `check` (the engine's `agent.team.handoffs.against_spec`) adds what the
schema cannot say, such as a review without a verdict on every criterion of the spec; its message counts
as a validation error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from agent.team.handoffs import HANDOFFS, tool_schema
from agent.tools import CustomTool, ToolAbort, ToolError, one_line

__all__ = ["SUBMIT_TOOL_NAMES", "SubmitTool", "problems"]

SUBMIT_TOOL_NAMES: Mapping[str, str] = {
    "Spec": "submit_spec",
    "Design": "submit_design",
    "WorkResult": "submit_result",
    "Review": "submit_review",
}
"""The submit tool of each handoff a role produces."""


class SubmitTool(CustomTool):
    """Validates and keeps one role's handoff."""

    read_only = True  # it changes no file

    def __init__(
        self, handoff: str, *, max_invalid: int = 3, check: Callable[[BaseModel], str | None] | None = None
    ) -> None:
        self.handoff = handoff
        self.model: type[BaseModel] = HANDOFFS[handoff]
        self.name = SUBMIT_TOOL_NAMES[handoff]
        self.description = (
            f"Submit your {handoff} (the role's result). It is validated against the {handoff} schema; "
            "a validation error comes back to you to fix and submit again. Call it once, at the end."
        )
        self.input_schema: Mapping[str, Any] = tool_schema(self.model)
        self.max_invalid = max_invalid
        self.check = check
        self.invalid = 0
        self.accepted: BaseModel | None = None

    def describe(self, input: Mapping[str, Any]) -> str:  # type: ignore[override]
        """`submit_spec: {...}`."""
        return f"{self.name}: {one_line(dict(input), 80)}"

    def run(self, input: Mapping[str, Any]) -> str:
        """Validate `input`; keep it, or raise the validation message for the model."""
        try:
            document = self.model.model_validate(dict(input))
        except ValidationError as invalid:
            self._invalid(problems(invalid), invalid)
        disagrees = self.check(document) if self.check is not None else None
        if disagrees:
            self._invalid(disagrees, None)
        self.accepted = document
        return f"{self.handoff} accepted."

    def _invalid(self, error: str, cause: Exception | None) -> NoReturn:
        self.invalid += 1
        if self.invalid > self.max_invalid:
            raise ToolAbort(
                f"the {self.handoff} was invalid {self.invalid} times; the last error: {error}"
            ) from cause
        message = f"The {self.handoff} is not valid: {error} Fix it and call {self.name} again."
        raise ToolError(message) from cause


def problems(invalid: ValidationError) -> str:
    """pydantic's errors in one line, each as field, problem and the value given.

    >>> from agent.team.handoffs import AcceptanceCriterion
    >>> try:
    ...     AcceptanceCriterion.model_validate({"id": "one"})
    ... except ValidationError as invalid:
    ...     print(problems(invalid))
    id: String should match pattern '^AC\\d+$' (got 'one'); text: Field required.
    """
    found = []
    for error in invalid.errors(include_url=False):
        where = ".".join(str(key) for key in error["loc"])
        what = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        given = isinstance(value, (str, int, float, bool)) and error["type"] != "missing"
        found.append(
            f"{where + ': ' if where else ''}{what}"
            + (f" (got {one_line(repr(value), 60)})" if given else "")
        )
    return "; ".join(found).rstrip(".") + "."
