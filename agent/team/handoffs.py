"""The typed handoffs of a team run: what each role hands to the next, as pydantic models.

A role produces its handoff by calling a tool whose input schema is the handoff's JSON Schema
(`submit_spec`, `submit_design`, `submit_result`, `submit_review`; see `agent.team.submit`); the input is
validated with these models, and an invalid one goes back to the role with the validation message.

- `Spec` (planner): user stories, acceptance criteria with ids (``AC1``...) that a test or a check can
  decide, open questions, what is out of scope.
- `Design` (architect): files and symbols to touch or create, interfaces, risks, and ordered `WorkItem`s,
  each naming the criteria it serves.
- `WorkResult` (coder): the files it changed and notes for QA.
- `Review` (QA): a verdict per criterion with its evidence, the overall pass or fail, and what the coder
  must fix.

`against_spec(handoff, spec, item)` checks what a schema cannot: that a review gives a verdict on every
acceptance criterion of the run's spec (and on no other), that a design's work items serve the spec's
criteria (no other, and each by some item: a criterion no coder is given would be met by none), and that
a coder's result names the work item it was given. The submit tools send its message
back to the role like a validation error.

The JSON Schemas are exported to ``agent/schemas/<Name>.json`` by ``python -m agent.team.handoffs``
(`export_schemas`); a test fails when the committed files differ from the models. `markdown(handoff)`
renders any handoff in a few lines for people (the CLI, `agentls runs ID`, the editors' run view).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "HANDOFFS",
    "SCHEMA_DIR",
    "AcceptanceCriterion",
    "Criterion",
    "Design",
    "Handoff",
    "Review",
    "Spec",
    "WorkItem",
    "WorkResult",
    "against_spec",
    "export_schemas",
    "markdown",
    "tool_schema",
]

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
"""Where the exported JSON Schemas live (``agent/schemas``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptanceCriterion(_Model):
    """One criterion a test or a check can decide."""

    id: str = Field(pattern=r"^AC\d+$", description="AC1, AC2, ...: how designs and reviews refer to it.")
    text: str = Field(min_length=1, description="What must be true, stated so that a test can check it.")


class Spec(_Model):
    """The planner's handoff: what to build and how to know it is built."""

    title: str = Field(min_length=1, description="The feature in a few words.")
    user_stories: list[str] = Field(min_length=1, description="'As a ..., I want ..., so that ...'.")
    acceptance_criteria: list[AcceptanceCriterion] = Field(min_length=1)
    open_questions: list[str] = Field(
        default_factory=list, description="Questions still open after asking the user (none is best)."
    )
    out_of_scope: list[str] = Field(default_factory=list, description="What this change will not do.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Spec:
        ids = [criterion.id for criterion in self.acceptance_criteria]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"acceptance criterion ids must be unique; repeated: {', '.join(repeated)}")
        return self

    @property
    def criterion_ids(self) -> list[str]:
        """The ids of the acceptance criteria, in order."""
        return [criterion.id for criterion in self.acceptance_criteria]


class WorkItem(_Model):
    """One piece of the design that one coder carries out."""

    id: str = Field(
        pattern=r"^(W|FIX)\d+$", description="W1, W2, ... from the design; FIX1, FIX2... for QA's rounds."
    )
    title: str = Field(min_length=1)
    description: str = Field(min_length=1, description="What to do, precisely enough to do it alone.")
    files: list[str] = Field(default_factory=list, description="Workspace-relative files it touches.")
    criteria: list[str] = Field(min_length=1, description="Ids of the acceptance criteria it serves.")


class Design(_Model):
    """The architect's handoff: how the change is made, and in which order."""

    summary: str = Field(min_length=1)
    files_to_touch: list[str] = Field(default_factory=list)
    files_to_create: list[str] = Field(default_factory=list)
    symbols: list[str] = Field(default_factory=list, description="Functions and classes to add or change.")
    interfaces: list[str] = Field(default_factory=list, description="Signatures other code relies on.")
    risks: list[str] = Field(default_factory=list)
    work_items: list[WorkItem] = Field(min_length=1, description="In the order they are carried out.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Design:
        ids = [item.id for item in self.work_items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"work item ids must be unique; got {', '.join(ids)}")
        return self


class WorkResult(_Model):
    """A coder's handoff: what it changed."""

    work_item: str = Field(description="The id of the work item (or FIX1, FIX2... for a QA round).")
    files_changed: list[str] = Field(default_factory=list)
    notes: str = Field(default="", description="What QA should know: decisions, limits, what to test.")


class Criterion(_Model):
    """QA's verdict on one acceptance criterion."""

    id: str = Field(pattern=r"^AC\d+$")
    verdict: Literal["pass", "fail"]
    evidence: str = Field(min_length=1, description="The test or check that decided it, and its output.")


class Review(_Model):
    """QA's handoff: a verdict per criterion and overall; failures go back to the coder."""

    criteria: list[Criterion] = Field(min_length=1)
    passed: bool = Field(description="True only when every criterion passes.")
    tests_added: list[str] = Field(default_factory=list, description="Test files QA wrote or extended.")
    issues: list[str] = Field(
        default_factory=list, description="Problems found in the diff (correctness, security), each fixable."
    )
    fix_instructions: str = Field(default="", description="When failing: what the coder must change.")

    @model_validator(mode="after")
    def _consistent(self) -> Review:
        failing = [criterion.id for criterion in self.criteria if criterion.verdict == "fail"]
        if self.passed and failing:
            raise ValueError(f"passed is true but criteria fail: {', '.join(failing)}")
        if not self.passed and not failing and not self.issues:
            raise ValueError("passed is false but no criterion fails and no issue is listed")
        return self


Handoff = Spec | Design | WorkItem | WorkResult | Review

HANDOFFS: Mapping[str, type[BaseModel]] = {
    "Spec": Spec,
    "Design": Design,
    "WorkItem": WorkItem,
    "WorkResult": WorkResult,
    "Review": Review,
}
"""The handoff models by name (the names of the schema files and of the "handoff" events)."""


def _ids(ids: list[str]) -> str:
    return ", ".join(ids)


def against_spec(handoff: BaseModel, spec: Spec | None, item: WorkItem | None = None) -> str | None:
    """What makes `handoff` disagree with the run's `spec` (or, for a coder's result, with the work `item` it
    was given), as a message for the role; None when it agrees (or there is nothing to check against).

    >>> spec = Spec(title="t", user_stories=["s"], acceptance_criteria=[
    ...     AcceptanceCriterion(id="AC1", text="a"), AcceptanceCriterion(id="AC2", text="b")])
    >>> print(against_spec(Review(criteria=[Criterion(id="AC1", verdict="pass", evidence="ok")],
    ...     passed=True), spec))
    The review needs one verdict on each acceptance criterion of the spec (AC1, AC2): none on AC2.
    """
    ids = spec.criterion_ids if spec is not None else []
    if isinstance(handoff, Review) and ids:
        given = [criterion.id for criterion in handoff.criteria]
        problems = []
        if missing := [i for i in ids if i not in given]:
            problems.append(f"none on {_ids(missing)}")
        if repeated := sorted({i for i in given if given.count(i) > 1}):
            problems.append(f"more than one on {_ids(repeated)}")
        if unknown := [i for i in given if i not in ids]:
            problems.append(f"{_ids(unknown)} {'is' if len(unknown) == 1 else 'are'} not in the spec")
        if problems:
            return (
                f"The review needs one verdict on each acceptance criterion of the spec ({_ids(ids)}): "
                f"{'; '.join(problems)}."
            )
    if isinstance(handoff, Design) and ids:
        served = {c for w in handoff.work_items for c in w.criteria}
        wrong = []
        if unknown := sorted(served - set(ids)):
            wrong.append(f"{_ids(unknown)} {'is' if len(unknown) == 1 else 'are'} not among them")
        if unserved := [i for i in ids if i not in served]:
            wrong.append(f"{_ids(unserved)} {'is' if len(unserved) == 1 else 'are'} served by no work item")
        if wrong:
            return (
                f"Work items serve the spec's acceptance criteria ({_ids(ids)}), each one by at least one "
                f"item; {'; '.join(wrong)}."
            )
    if isinstance(handoff, WorkResult) and item is not None and handoff.work_item != item.id:
        return f"work_item must be {item.id!r}, the work item you were given, not {handoff.work_item!r}."
    return None


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node


def tool_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema with its `$defs` inlined: the input schema of its submit tool."""
    schema = model.model_json_schema()
    result: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return result


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write ``<Name>.json`` for every handoff into `directory`; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in HANDOFFS.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _items(title: str, values: list[str]) -> list[str]:
    return [f"**{title}**", *(f"- {value}" for value in values)] if values else []


def markdown(handoff: BaseModel) -> str:
    """A short human rendering of a handoff."""
    lines: list[str] = []
    if isinstance(handoff, Spec):
        lines.append(f"### Spec: {handoff.title}")
        lines += _items("User stories", handoff.user_stories)
        lines += _items("Acceptance criteria", [f"{c.id}: {c.text}" for c in handoff.acceptance_criteria])
        lines += _items("Open questions", handoff.open_questions)
        lines += _items("Out of scope", handoff.out_of_scope)
    elif isinstance(handoff, Design):
        lines.append(f"### Design: {handoff.summary}")
        lines += _items("Files", [*handoff.files_to_touch, *(f"{f} (new)" for f in handoff.files_to_create)])
        lines += _items("Interfaces", handoff.interfaces)
        lines += _items("Risks", handoff.risks)
        lines += _items(
            "Work items", [f"{w.id}: {w.title} (serves {', '.join(w.criteria)})" for w in handoff.work_items]
        )
    elif isinstance(handoff, WorkItem):
        lines.append(f"### Work item {handoff.id}: {handoff.title} (serves {', '.join(handoff.criteria)})")
        lines.append(handoff.description)
    elif isinstance(handoff, WorkResult):
        lines.append(f"### Result of {handoff.work_item}: {', '.join(handoff.files_changed) or 'no files'}")
        if handoff.notes:
            lines.append(handoff.notes)
    elif isinstance(handoff, Review):
        lines.append(f"### Review: {'PASS' if handoff.passed else 'FAIL'}")
        lines += [f"- {c.id} {c.verdict}: {c.evidence}" for c in handoff.criteria]
        lines += _items("Issues", handoff.issues)
        if handoff.fix_instructions:
            lines.append(f"**To fix:** {handoff.fix_instructions}")
    return "\n".join(lines)


if __name__ == "__main__":
    for written in export_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written)  # noqa: T201 - a developer script, not the server
