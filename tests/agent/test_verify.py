"""Verification: which checks run for a change, and how they go, in the real sandbox on the overlay."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.overlay import FileChange, Overlay, unified_diff
from agent.sandbox import Sandbox
from agent.verify import Verifier, changed_symbols, detect_test_command
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex
from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, copy_workspace, fast_settings
from tests.agent.test_overlay import disk_snapshot

PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"


def change(path: str, base: str, new: str, kind: str = "modified") -> FileChange:
    return FileChange(
        path=path,
        kind=kind,  # type: ignore[arg-type]
        old_path=None,
        base_text=base,
        new_text=new,
        base_version=None,
        diff=unified_diff(path, path, base, new),
    )


# -- what changed --------------------------------------------------------------------------------------

SOURCE = """class Cart:
    def total(self):
        return 0

    def count(self):
        return 1


def helper():
    return 2
"""


def test_changed_symbols_are_the_definitions_the_change_touches() -> None:
    edited = SOURCE.replace("return 0", "return sum(self.items)")
    assert changed_symbols(change("shop/cart.py", SOURCE, edited)) == ["total", "Cart"]
    assert changed_symbols(change("shop/cart.py", SOURCE, SOURCE.replace("return 2", "return 3"))) == [
        "helper"
    ]
    created = changed_symbols(change("shop/new.py", "", SOURCE, "created"))
    assert set(created) == {"Cart", "total", "count", "helper"}
    assert changed_symbols(change("shop/cart.py", SOURCE, "", "deleted")) == []
    assert changed_symbols(change("notes.txt", "a\n", "b\n")) == []


# -- the test command ----------------------------------------------------------------------------------


def test_detect_test_command(tmp_path: Path) -> None:
    def which(tools: set[str]) -> Callable[[str], str | None]:
        return lambda name: f"/usr/bin/{name}" if name in tools else None

    py = tmp_path / "py"
    (py / "tests").mkdir(parents=True)
    (py / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    assert detect_test_command(py, which=which(set())) == PYTEST

    node = tmp_path / "node"
    node.mkdir()
    (node / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert detect_test_command(node, which=which({"npm"})) == "npm test --silent"
    assert detect_test_command(node, which=which(set())) is None  # npm is not installed
    (node / "package.json").write_text(json.dumps({"scripts": {"test": 'echo "Error: no test specified"'}}))
    assert detect_test_command(node, which=which({"npm"})) is None

    go = tmp_path / "go"
    go.mkdir()
    (go / "go.mod").write_text("module example.com/x\n")
    assert detect_test_command(go, which=which({"go"})) == "/usr/bin/go test ./..."

    rust = tmp_path / "rust"
    rust.mkdir()
    (rust / "Cargo.toml").write_text("[package]\nname = 'x'\n")
    assert detect_test_command(rust, which=which({"cargo"})) == "/usr/bin/cargo test --offline --quiet"

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "app.py").write_text("print(1)\n")
    assert detect_test_command(empty, which=which({"npm", "go", "cargo"})) is None


# -- running checks ------------------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return copy_workspace(tmp_path / "ws")


def verifier(overlay: Overlay, **settings: object) -> Verifier:
    agent_settings = fast_settings(**settings)
    return Verifier(overlay, Sandbox(agent_settings.sandbox), agent_settings)


def test_a_good_change_runs_syntax_doctests_and_the_tests_that_use_it(ws: Path) -> None:
    before = disk_snapshot(ws)
    overlay = Overlay(ws)
    overlay.write("mathx/stats.py", overlay.read("mathx/stats.py").replace(STUB_BODY, GOOD_BODY))
    result = verifier(overlay).verify(overlay.changes())
    assert result.passed and result.ran_tests
    assert [c.kind for c in result.checks] == ["syntax", "tests"]
    assert "--doctest-modules mathx/stats.py tests/test_stats.py" in result.checks[1].command
    assert "5 passed" in result.checks[1].output  # 4 tests and the doctest
    assert result.files == ("mathx/stats.py",)
    assert "Verification passed." in result.summary()
    assert overlay.changes()[0].path == "mathx/stats.py" and len(overlay.changes()) == 1
    assert disk_snapshot(ws) == before


def test_a_syntax_error_fails_fast_and_skips_the_tests(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("mathx/stats.py", overlay.read("mathx/stats.py").replace(STUB_BODY, "    return (\n"))
    result = verifier(overlay).verify(overlay.changes())
    assert not result.passed
    [syntax] = result.checks
    assert syntax.kind == "syntax" and "SyntaxError" in syntax.output
    assert "tests were not run: fix the syntax errors first" in result.notes
    feedback = result.feedback(2_000)
    assert "SyntaxError" in feedback and "py_compile" in feedback


def test_javascript_changes_get_node_check(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.create("web/format.js", "function f( {\n")
    result = verifier(overlay, test_command="true").verify(overlay.changes())
    assert result.checks[0].name == "javascript" and not result.checks[0].passed
    assert "SyntaxError" in result.checks[0].output


def test_without_referencing_tests_the_project_suite_runs(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.create("mathx/extra.py", "def unused_helper():\n    return 1\n")
    result = verifier(overlay, test_command="echo suite ran").verify(overlay.changes())
    assert [c.name for c in result.checks] == ["python", "test suite"]
    assert result.checks[1].output == "suite ran"
    assert "no test references the changed code; ran the test suite instead" in result.notes


def test_checks_are_killed_at_the_verify_timeout(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.create("mathx/extra.py", "def unused_helper():\n    return 1\n")
    result = verifier(overlay, test_command="sleep 20", verify_timeout=0.5).verify(overlay.changes())
    suite = result.checks[-1]
    assert suite.timed_out and not suite.passed and suite.seconds < 15  # killed at 0.5 s, not the 20 s sleep
    assert "TIMED OUT" in result.summary()


def test_what_checks_write_never_reaches_the_overlay(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.create("mathx/extra.py", "def unused_helper():\n    return 1\n")
    result = verifier(overlay, test_command="touch junk.txt && echo done").verify(overlay.changes())
    assert result.passed
    assert [c.path for c in overlay.changes()] == ["mathx/extra.py"]


def test_run_tests_for_a_symbol_a_path_or_everything(ws: Path) -> None:
    overlay = Overlay(ws)
    v = verifier(overlay)
    by_symbol = v.run_tests(symbol="mathx.stats.clamp")
    assert [c.name for c in by_symbol.checks] == ["tests/test_stats.py"]
    assert not by_symbol.passed  # `mean` is still a stub
    assert "NotImplementedError" in by_symbol.checks[0].output

    overlay.create("tests/test_empty.py", "VALUE = 1\n")
    empty = v.run_tests(path="tests/test_empty.py")
    assert empty.outcome == "no_tests" and not empty.passed and not empty.failed
    assert empty.checks[0].note == "no tests collected" and empty.checks[0].ran_nothing

    suite = v.run_tests()
    assert suite.checks[0].name == "test suite" and suite.checks[0].command == PYTEST
    assert suite.trigger == "run_tests"

    unknown = verifier(overlay, test_command="echo suite").run_tests(symbol="nothing_uses_this")
    assert "no test file references `nothing_uses_this`" in unknown.notes
    assert unknown.checks[0].name == "test suite"


def test_run_tests_with_a_pytest_node_id_runs_pytest_whatever_the_suite_command(ws: Path) -> None:
    """Models name one test as pytest prints it (`tests/test_x.py::test_y`): pytest runs it, as it runs
    the file, not the project's suite command with the id after it."""
    v = verifier(Overlay(ws), test_command="echo suite ran with")
    one = v.run_tests(path="tests/test_stats.py::test_clamp")
    assert [c.command for c in one.checks] == [f"{PYTEST} tests/test_stats.py::test_clamp"]
    assert one.passed and "1 passed" in one.checks[0].output  # the file's other tests fail (a stub)
    absolute = v.run_tests(path=f"{ws}/tests/test_stats.py::test_clamp")
    assert absolute.passed and absolute.checks[0].command == one.checks[0].command


def test_the_index_finds_the_tests_that_reference_a_symbol(ws: Path, tmp_path: Path) -> None:
    index = WorkspaceIndex(ws, IndexSettings(), cache_dir=tmp_path / "cache", env={})
    index.index()
    settings = fast_settings()
    v = Verifier(Overlay(ws), Sandbox(settings.sandbox), settings, index=index)
    assert v.tests_for(["mean"]) == ["tests/test_stats.py"]
    assert v.tests_for(["no_such_symbol_anywhere"]) == []


def test_detect_test_command_for_c_make_and_ctest(tmp_path: Path) -> None:
    def which(tools: set[str]) -> Callable[[str], str | None]:
        return lambda name: f"/usr/bin/{name}" if name in tools else None

    c = tmp_path / "c"
    c.mkdir()
    (c / "Makefile").write_text("CC := cc\nall: lib\n\ncheck: all\n\t./run-tests\n")
    assert detect_test_command(c, which=which({"make"})) == "/usr/bin/make check"
    (c / "Makefile").write_text("test := unit\nall:\n\tcc x.c\ntest: all\n\t./t\n")
    assert detect_test_command(c, which=which({"make"})) == "/usr/bin/make test"
    assert detect_test_command(c, which=which(set())) is None  # make is not installed
    (c / "Makefile").write_text("all:\n\tcc x.c\n")
    assert detect_test_command(c, which=which({"make", "ctest"})) is None  # no test target, no build

    cmake = tmp_path / "cmake"
    (cmake / "build").mkdir(parents=True)
    (cmake / "build" / "CTestTestfile.cmake").write_text("add_test(unit unit)\n")
    assert (
        detect_test_command(cmake, which=which({"ctest"}))
        == "/usr/bin/ctest --test-dir build --output-on-failure"
    )
