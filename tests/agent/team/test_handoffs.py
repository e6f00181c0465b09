"""The handoff models: their committed JSON Schemas match, and validation says what is wrong."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agent.team.handoffs import HANDOFFS, SCHEMA_DIR, Review, Spec, markdown, tool_schema


@pytest.mark.parametrize("name", sorted(HANDOFFS))
def test_committed_schema_equals_the_model(name: str) -> None:
    committed = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert committed == HANDOFFS[name].model_json_schema(), (
        f"agent/schemas/{name}.json is out of date: run `python -m agent.team.handoffs`"
    )


def test_no_stray_schema_files() -> None:
    assert sorted(path.stem for path in SCHEMA_DIR.glob("*.json")) == sorted(HANDOFFS)


def test_tool_schema_has_no_references() -> None:
    schema = tool_schema(Review)
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["properties"]["criteria"]["items"]["properties"]["verdict"]["enum"] == ["pass", "fail"]


def test_spec_rejects_repeated_criterion_ids_with_a_message() -> None:
    with pytest.raises(ValidationError, match="repeated: AC1"):
        Spec(
            title="t",
            user_stories=["As a user..."],
            acceptance_criteria=[{"id": "AC1", "text": "a"}, {"id": "AC1", "text": "b"}],  # type: ignore[list-item]
        )


def test_review_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="passed is true but criteria fail: AC2"):
        Review.model_validate(
            {
                "criteria": [
                    {"id": "AC1", "verdict": "pass", "evidence": "test_a passed"},
                    {"id": "AC2", "verdict": "fail", "evidence": "test_b failed"},
                ],
                "passed": True,
            }
        )
    review = Review.model_validate(
        {"criteria": [{"id": "AC1", "verdict": "fail", "evidence": "test_a: 1 != 2"}], "passed": False}
    )
    assert "AC1 fail: test_a: 1 != 2" in markdown(review)
