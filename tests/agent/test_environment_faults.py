"""Environment faults (a runner or package not installed, no sandbox) are reported as such and spend no
reflection: the model is not asked to fix what only the user can. Real SDK against the fake Messages
API, real overlay, sandbox and pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.loop import RunResult
from agent.sandbox import SandboxSettings
from agent.task_builders import run_task
from agent.verify import environment_fault
from tests.agent import test_honest_verification as honest
from tests.agent.agent_harness import Harness, done, fast_settings, result_text
from tests.fakes.anthropic_server import FakeAnthropic, tool_use

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


def src_layout(root: Path) -> Path:
    """A src-layout project (``[project]`` in pyproject.toml, code in src/pkg) that nobody installed: its
    tests, which `import pkg`, cannot import it."""
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "pkg"\nversion = "0.1"\n')
    (root / "src" / "pkg" / "__init__.py").write_text("")
    (root / "src" / "pkg" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_calc.py").write_text(
        "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    return root


def test_a_src_layout_project_not_installed_says_to_install_it(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """The tests' `ModuleNotFoundError: No module named 'pkg'` used to read as a package nobody installed,
    or, once the change added a test importing pkg, as the change's failure to fix (a reflection spent on
    what only the user can do). It is the project's own package: the model (run_tests) and the user (the
    verification summary) are told to install the project into an environment."""
    h = Harness(fake_anthropic, src_layout(tmp_path / "proj"), tmp_path / "runs")
    sub = "from pkg.ops import sub\n\n\ndef test_sub():\n    assert sub(3, 2) == 1\n"
    h.fake.enqueue(
        create("src/pkg/ops.py", "def sub(a, b):\n    return a - b\n"),
        create("tests/test_ops.py", sub),
        tool_use("run_tests", {}),
        done("Added sub, tested."),
    )
    result = h.run(run_task("add sub() to pkg with a test"), fast_settings(syntax_checks=False))
    problem = "the project's own package `pkg` (src/pkg) cannot be imported: the project is not installed"
    [seen] = h.tool_results(3)
    assert problem in result_text(seen) and "pip install -e ." in result_text(seen)
    assert result.status == "proposed", result.error
    assert result.reflections == 0 and len(h.fake.message_requests) == 4  # not asked to fix it
    proposal = result.proposal
    assert proposal is not None and not proposal.verified
    summary = proposal.verification_summary
    assert summary.startswith(
        f"Not verified: an environment problem, not the change, stopped the checks: {problem}"
    )
    assert "pip install -e ." in summary and not proposal.summary.startswith("WARNING")


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
    own = lambda module: "not installed" if module == "pkg" else ""  # noqa: E731
    assert (
        environment_fault(2, collection.replace("yaml", "pkg"), lambda module: True, own) == "not installed"
    )
    assert environment_fault(2, collection.replace("yaml", "pkg.nosub"), lambda module: True, own) == ""
