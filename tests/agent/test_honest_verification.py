"""A verification that ran no test is "no tests ran", not "passed": the proposal is not verified, and the
transcript and the summary say why. Real SDK against the fake Messages API, real overlay, sandbox, pytest.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.agent_harness import EDITOR, Harness, copy_workspace, done, fast_settings
from tests.fakes.anthropic_server import FakeAnthropic, tool_use


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    yield copy_workspace(tmp_path / "ws")


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, ws, tmp_path / "runs")


def create(path: str, text: str) -> object:
    return tool_use(EDITOR, {"command": "create", "path": path, "file_text": text})


def test_a_suite_that_collects_no_test_is_not_verified(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(create("mathx/extra.py", "def unused_helper():\n    return 1\n"), done("Added a helper."))
    # A test command that selects nothing: pytest exits 5, "no tests ran".
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider -k no_such_test_anywhere"
    result = h.run(settings=fast_settings(test_command=command))

    assert result.status == "proposed", result.error
    [verification] = result.verifications
    assert verification.outcome == "no_tests" and not verification.passed and not verification.failed
    assert result.reflections == 0  # nothing for the model to fix: no reflection spent
    proposal = result.proposal
    assert proposal is not None and proposal.complete and not proposal.verified
    assert proposal.verification_summary.startswith("Not verified: no tests ran")
    assert "no tests collected" in proposal.verification_summary
    assert not proposal.summary.startswith("WARNING")
    [record] = [r for r in h.transcript_records(result) if r["type"] == "verification"]
    assert record["outcome"] == "no_tests" and record["passed"] is False
    assert record["checks"][-1]["ran_nothing"] is True
    [proposal_record] = [r for r in h.transcript_records(result) if r["type"] == "proposal"]
    assert proposal_record["verified"] is False
    assert any(e.kind == "verification" and e.message == "verification no tests ran" for e in h.events)


def test_tests_that_were_all_skipped_did_not_run(harness: Harness) -> None:
    h = harness
    skipped = 'import pytest\n\n\n@pytest.mark.skip(reason="later")\ndef test_later():\n    assert False\n'
    h.fake.enqueue(create("tests/test_later.py", skipped), done("Added a test for later."))
    result = h.run()

    [verification] = result.verifications
    tests = [c for c in verification.checks if c.kind == "tests"]
    assert [c.name for c in tests] == ["tests/test_later.py"]
    assert tests[0].passed and tests[0].ran_nothing and "1 skipped" in tests[0].output
    assert verification.outcome == "no_tests"
    assert result.proposal is not None and not result.proposal.verified
