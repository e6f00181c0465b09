"""Environment faults (a runner or package not installed, no sandbox) are reported as such and spend no
reflection: the model is not asked to fix what only the user can. Real SDK against the fake Messages
API, real overlay, sandbox and pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.loop import RunResult
from agent.sandbox import SandboxSettings
from agent.verify import environment_fault
from tests.agent import test_honest_verification as honest
from tests.agent.agent_harness import Harness, done, fast_settings

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
ws, harness, create = honest.ws, honest.harness, honest.create  # the same workspace, harness and edits


def assert_environment_problem(h: Harness, result: RunResult, problem: str) -> None:
    assert result.status == "proposed", result.error
    assert result.reflections == 0
    assert len(h.fake.message_requests) == 2  # no turn asking the model to fix it
    proposal = result.proposal
    assert proposal is not None and not proposal.verified
    assert proposal.verification_summary.startswith("Not verified: an environment problem, not the change")
    assert problem in proposal.verification_summary
    assert not proposal.summary.startswith("WARNING")  # not "still fails after N attempts"
    [decision] = [r for r in h.transcript_records(result) if r.get("kind") == "environment_problem"]
    assert problem in decision["problem"]


def test_a_missing_test_runner_is_an_environment_problem(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(create("mathx/extra.py", "def helper():\n    return 1\n"), done("Added a helper."))
    result = h.run(settings=fast_settings(test_command="no-such-runner --all", syntax_checks=False))
    assert_environment_problem(h, result, "`no-such-runner` was not found in the sandbox (exit 127)")


def test_a_package_the_tests_need_but_nobody_installed(harness: Harness, ws: Path) -> None:
    h = harness
    (ws / "tests" / "test_needs_pkg.py").write_text("import nosuchpkg_xyz\n\n\ndef test_x():\n    pass\n")
    h.fake.enqueue(create("mathx/extra.py", "def helper():\n    return 1\n"), done("Added a helper."))
    command = f"{PYTEST} tests/test_needs_pkg.py"
    result = h.run(settings=fast_settings(test_command=command))
    assert_environment_problem(h, result, "not installed for the project's Python: nosuchpkg_xyz")


def test_no_sandbox_at_verification_keeps_the_work(harness: Harness, tmp_path: Path) -> None:
    h = harness
    h.fake.enqueue(create("mathx/extra.py", "def helper():\n    return 1\n"), done("Added a helper."))
    sandbox = SandboxSettings(bwrap_path=str(tmp_path / "no-bwrap"))
    result = h.run(settings=fast_settings(sandbox=sandbox, test_command=PYTEST))
    assert_environment_problem(h, result, "no sandbox: bubblewrap (bwrap) is not installed")


def test_what_the_change_caused_is_not_the_environments() -> None:
    never = lambda module: False  # noqa: E731
    collection = "E   ModuleNotFoundError: No module named 'yaml'\nInterrupted: 1 error during collection"
    assert environment_fault(2, collection, never) == (
        "a package the tests import is not installed for the project's Python: yaml"
    )
    assert environment_fault(2, collection, lambda module: module == "yaml") == ""  # the change imports it
    assert environment_fault(1, collection + "\nFAILED tests/test_a.py::test_a", never) == ""
    assert environment_fault(1, "/ws/.venv/bin/python: No module named pytest", never).startswith(
        "pytest is not installed"
    )
    assert environment_fault(127, "bash: line 1: tox: command not found", never) == (
        "`tox` was not found in the sandbox (exit 127)"
    )
    assert environment_fault(1, "AssertionError: assert 1 == 2", never) == ""
