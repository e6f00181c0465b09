"""Verification: checking a change with what the workspace has, in the sandbox, on the overlay.

`Verifier.verify(changes)` runs, on a fresh materialized copy of the overlay under the sandbox:

1. syntax checks of the changed files whose toolchain is installed: `python -m py_compile` (.py),
   `node --check` (.js, .mjs, .cjs), `go vet` (the changed packages), `cargo check` (the crate);
2. doctests of changed Python functions whose docstrings have examples (`pytest --doctest-modules` on
   their files, or `python -m doctest` without pytest);
3. the tests that reference the changed symbols: test files (see `agent.testfinder.is_test_path`) that the
   index lists as referencing a changed function or class, or that mention it (a bounded scan when the
   index has nothing), plus test files the change itself touches; Python test files run with pytest, Go
   test folders with `go test`, others through the project's test command;
4. when no test references the change, the project's test command (`AgentSettings.test_command`, else
   `detect_test_command`).

Tests are skipped when a syntax check failed (their failures would only repeat it). Each command has the
`verify_timeout` wall-clock limit. Commands run on a throwaway copy, so nothing they write (caches,
reports) ends up in the proposal; it is removed afterwards. A copy that could not take some of the overlay's
files (a full scratch folder: `MaterializedWorkspace.unwritten`), or some of the workspace's that matter
(agentls cannot read them, or there was no room: `MaterializedWorkspace.uncopied`), runs nothing: the
verification fails with an environment problem that names them, why, and the folder. A workspace file or
folder the copy lacked matters unless the walker leaves it out as it does for the index (`.gitignore`,
`.agentlsignore`, the exclude setting, tool and cache folders) and it is not, nor holds, a file of the change
(a root-owned `build/` after a `docker build`): then the checks run, and one note of the result names what
they ran without. The exclude setting is the index's (`index.exclude` of the user's settings, then the
workspace's and the editor's: `Verifier(index_settings=...)`, which every run and ``agentls.reverify`` gets;
else the index's own settings, else the defaults). `run_tests` (the tool) runs step 3 or 4 for a symbol or
path the model names.

The outcome (`VerificationResult.outcome`) is "passed" only when something ran and nothing failed: a
test command that ran no test (pytest exit status 5, "no tests collected"; a pytest run whose tests were all
skipped or deselected; `go test` with only "[no test files]") does not fail, but it ran nothing, and a
verification with no test that ran (syntax checks only, or nothing to check) is "no_tests": not passed,
not failed, and its proposal is not `verified`.

A failure the change did not cause is an environment problem (`CheckResult.environment`,
`VerificationResult.environment_problem`, see `environment_fault`): a command or interpreter not found
(exit 126/127), pytest missing, a test module importing a package that is not installed (and that the
change did not start importing), the project's own package of a src layout (``src/pkg``) when the project
is not installed in its environment (whatever the change imports; the message says how to install it), or
no sandbox. A Rust or Go project whose `cargo` or `go` is not installed or does not run in the sandbox
(`Verifier.toolchains`, `agent.toolchains`) is one before anything runs: its checks are not run, and the
check says why and what to do. It still fails the verification (nothing was verified),
but the run does not ask the model to fix it (no reflection is spent) and the summary says what to fix
in the environment.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from agent.config import AgentSettings
from agent.hunks import line_opcodes
from agent.interpreter import Interpreter, detect_interpreter, probe
from agent.interpreter import read_text as _read
from agent.overlay import FileChange, MaterializedWorkspace, Overlay, OverlayError
from agent.paths import PathRefused
from agent.sandbox import CommandResult, SandboxUnavailable, default_scratch_dir, sandbox_path
from agent.scratch import remove_tree
from agent.testfinder import is_test_path, mentioning_tests, referencing_tests
from agent.toolchains import Toolchain, cargo_env, detect_toolchains, go_env
from indexing.definitions import FUNCTION_KINDS, parse_definitions
from indexing.languages import detect_language

if TYPE_CHECKING:
    from agent.ports import CodeIndex, Sandbox
    from indexing.config import IndexSettings

__all__ = [
    "CheckKind",
    "CheckResult",
    "Outcome",
    "VerificationResult",
    "Verifier",
    "changed_symbols",
    "detect_test_command",
    "environment_fault",
]

log = logging.getLogger(__name__)

CheckKind = Literal["syntax", "doctest", "tests"]
Outcome = Literal["passed", "failed", "no_tests"]

_SCAN_MAX_TEST_FILES = 400  # test files read when looking for mentions of a symbol without the index
_MAX_TEST_FILES = 20  # targeted test files run at most (beyond that, the whole suite is the better run)
_JS_EXTENSIONS = frozenset({".js", ".mjs", ".cjs"})
_PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class CheckResult:
    """One verification command and how it went."""

    kind: CheckKind
    name: str
    """What was checked, e.g. "python syntax", "doctests in mathx/stats.py", "tests/test_stats.py"."""
    command: str
    passed: bool
    exit_code: int | None
    output: str
    """stdout then stderr, as the sandbox kept them."""
    seconds: float
    timed_out: bool = False
    note: str = ""
    ran_nothing: bool = False
    """A test command that did not fail but ran no test ("no tests collected", all skipped)."""
    environment: str = ""
    """Why a failure is the environment's, not the change's ("pytest is not installed ..."); "" else."""

    def line(self) -> str:
        """One line for summaries: `tests tests/test_x.py: passed (1.2 s)`."""
        if self.passed and self.ran_nothing:
            state = "no tests ran"
        elif self.passed:
            state = "passed"
        elif self.timed_out:
            state = "TIMED OUT"
        elif self.environment:
            state = f"ENVIRONMENT PROBLEM: {self.environment}"
        else:
            state = f"FAILED (exit {self.exit_code})"
        note = f"; {self.note}" if self.note else ""
        return f"{self.kind} {self.name}: {state} ({self.seconds:.1f} s{note})"


@dataclass(frozen=True)
class VerificationResult:
    """Every check run for one change (or one `run_tests` call)."""

    checks: tuple[CheckResult, ...]
    files: tuple[str, ...] = ()
    """The changed files that were verified."""
    notes: tuple[str, ...] = ()
    """What was not checked and why ("no tests reference the change and no test command was found")."""
    trigger: str = "finish"
    """"finish" (the model said it was done) or "run_tests" (the model asked)."""
    seconds: float = 0.0

    @property
    def outcome(self) -> Outcome:
        """The verdict: "failed" when a check failed, "passed" when a test ran, else "no_tests"."""
        if self.failed:
            return "failed"
        return "passed" if self.ran_tests else "no_tests"

    @property
    def passed(self) -> bool:
        """True only when a test (or doctest) ran and no check failed: see `outcome`."""
        return self.outcome == "passed"

    @property
    def ran_tests(self) -> bool:
        """Whether any test or doctest actually ran (a command that collected none does not count)."""
        return any(check.kind in ("tests", "doctest") and not check.ran_nothing for check in self.checks)

    @property
    def environment_problem(self) -> str:
        """When every failed check failed because of the environment: why ("" otherwise)."""
        failed = self.failed
        if not failed or not all(check.environment for check in failed):
            return ""
        return "; ".join(dict.fromkeys(check.environment for check in failed))

    def verdict(self) -> str:
        """A few words: "passed", "no tests ran", "FAILED (1 of 2)", "not run (environment problem)"."""
        if self.environment_problem:
            return "not run (environment problem)"
        if self.outcome == "failed":
            return f"FAILED ({len(self.failed)} of {len(self.checks)})"
        return "passed" if self.outcome == "passed" else "no tests ran"

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if not check.passed)

    def summary(self) -> str:
        """A few lines for the user: the verdict, one line per check, the notes."""
        if not self.checks:
            head = "Not verified: no tests ran (nothing could be checked)."
        elif self.outcome == "passed":
            head = "Verification passed."
        elif self.outcome == "no_tests":
            head = "Not verified: no tests ran (the checks that ran found nothing wrong)."
        elif self.environment_problem:
            head = (
                f"Not verified: an environment problem, not the change, stopped the checks: "
                f"{self.environment_problem}."
            )
        else:
            head = f"Verification FAILED: {len(self.failed)} of {len(self.checks)} checks failed."
        lines = [head, *(f"- {check.line()}" for check in self.checks), *(f"- note: {n}" for n in self.notes)]
        return "\n".join(lines)

    def feedback(self, max_chars: int) -> str:
        """The failures written for the model: each failing command and the tail of its output."""
        parts = [self.summary(), ""]
        share = max(500, max_chars // max(1, len(self.failed)))
        for check in self.failed:
            output = check.output.strip() or "(no output)"
            if len(output) > share:
                output = f"[... {len(output) - share} characters cut ...]\n" + output[-share:]
            parts.append(f"## {check.kind} {check.name}\n$ {check.command}\n```\n{output}\n```")
        return "\n".join(parts)

    def as_record(self) -> dict[str, Any]:
        """The result as a transcript record's fields."""
        return {
            "trigger": self.trigger,
            "outcome": self.outcome,
            "passed": self.passed,
            "files": list(self.files),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "checks": [
                {
                    "kind": c.kind,
                    "name": c.name,
                    "command": c.command,
                    "passed": c.passed,
                    "exit_code": c.exit_code,
                    "timed_out": c.timed_out,
                    "seconds": round(c.seconds, 3),
                    "note": c.note,
                    "ran_nothing": c.ran_nothing,
                    "environment": c.environment,
                    "output": c.output[-4000:],
                }
                for c in self.checks
            ],
        }


# --------------------------------------------------------------------------------------------------
# What to run


def _has_pytest(python: str) -> bool:
    """Whether `python` can import pytest (asked, so system site-packages count)."""
    answer = probe(python)
    return not isinstance(answer, str) and answer.has_pytest


def _python_tests_present(root: Path) -> bool:
    pyproject = _read(root / "pyproject.toml")
    if "[tool.pytest" in pyproject:
        return True
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    if "[pytest]" in _read(root / "tox.ini") or "[tool:pytest]" in _read(root / "setup.cfg"):
        return True
    for folder in ("tests", "test"):
        directory = root / folder
        if directory.is_dir() and (
            any(directory.glob("test_*.py"))
            or any(directory.glob("*_test.py"))
            or any(directory.glob("*/test_*.py"))
        ):
            return True
    return any(root.glob("test_*.py"))


def _installable(root: Path) -> bool:
    """Whether the project at `root` can be installed (``pip install -e .``): a ``[project]`` or Poetry
    table in pyproject.toml, or setuptools' setup.py or setup.cfg."""
    pyproject = _read(root / "pyproject.toml")
    if re.search(r"^\[(?:project|tool\.poetry)\]", pyproject, re.MULTILINE):
        return True
    return (root / "setup.py").is_file() or (root / "setup.cfg").is_file()


def _npm_test_script(root: Path) -> bool:
    import json

    try:
        data = json.loads(_read(root / "package.json") or "{}")
    except ValueError:
        return False
    script = data.get("scripts", {}).get("test") if isinstance(data, dict) else None
    return isinstance(script, str) and bool(script.strip()) and "no test specified" not in script


def detect_test_command(
    root: Path,
    *,
    python: str | None = None,
    has_pytest: bool | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """The workspace's test command, or None: pytest, `npm test`, `go test ./...`, `cargo test`, or for C
    and C++ `make test`/`make check` or `ctest`.

    A command is only chosen when its tool is installed (pytest importable by the project's Python;
    `has_pytest` when the caller asked it already).
    """
    if python is None:
        interpreter = detect_interpreter(root, python_tests=_python_tests_present(root))
        python, has_pytest = interpreter.python, interpreter.has_pytest
    if _python_tests_present(root) and (_has_pytest(python) if has_pytest is None else has_pytest):
        return f"{shlex.quote(python)} -m pytest -q -p no:cacheprovider"
    if (root / "package.json").is_file() and _npm_test_script(root) and which("npm"):
        return "npm test --silent"
    go = which("go")
    if (root / "go.mod").is_file() and go:
        return f"{shlex.quote(go)} test ./..."
    cargo = which("cargo")
    if (root / "Cargo.toml").is_file() and cargo:
        return f"{shlex.quote(cargo)} test --offline --quiet"
    return _c_test_command(root, which)


_MAKE_TEST_TARGET = re.compile(r"^(test|check)\s*:(?!=)", re.MULTILINE)


def _c_test_command(root: Path, which: Callable[[str], str | None]) -> str | None:
    """C and C++: `make test` (or `make check`) when the Makefile has that target, else `ctest` in a
    CMake build folder that has tests (``build/CTestTestfile.cmake``)."""
    make = which("make")
    for name in ("GNUmakefile", "makefile", "Makefile"):
        match = _MAKE_TEST_TARGET.search(_read(root / name) or "") if make else None
        if match is not None:
            return f"{shlex.quote(make or 'make')} {match.group(1)}"
    ctest = which("ctest")
    if ctest and (root / "build" / "CTestTestfile.cmake").is_file():
        return f"{shlex.quote(ctest)} --test-dir build --output-on-failure"
    return None


def _changed_new_lines(base: str, new: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of `new` that differ from `base` (a deletion marks the line after)."""
    old_lines = base.splitlines()
    new_lines = new.splitlines()
    ranges: list[tuple[int, int]] = []
    for tag, _i1, _i2, j1, j2 in line_opcodes(old_lines, new_lines):
        if tag == "equal":
            continue
        if j2 > j1:
            ranges.append((j1 + 1, j2))
        else:
            ranges.append((max(1, j1), max(1, j1 + 1)))
    return ranges


def changed_symbols(change: FileChange) -> list[str]:
    """Short names of the functions, methods and classes a change touches (in its new text).

    A deleted file touches nothing that can still be tested; a created file touches every definition.
    """
    if change.kind == "deleted":
        return []
    language = detect_language(change.path)
    if language is None:
        return []
    try:
        chunks = parse_definitions(change.path, change.new_text, language).chunks
    except Exception as error:  # a parser failure must not stop verification
        log.debug("cannot parse %s for changed symbols: %s", change.path, error)
        return []
    ranges = _changed_new_lines(change.base_text, change.new_text)
    touched = [
        chunk
        for chunk in chunks
        if chunk.name
        and (chunk.kind in FUNCTION_KINDS or chunk.kind == "class")
        and any(chunk.start_line <= end and chunk.end_line >= start for start, end in ranges)
    ]
    names: list[str] = []
    # Innermost first: the precise targets, then the classes that hold them (referenced by tests too).
    for chunk in sorted(touched, key=lambda c: (c.end_line - c.start_line, c.start_line)):
        for name in (chunk.name, *reversed(chunk.parents)):
            if name not in names:
                names.append(name)
    return names


def _has_doctest(change: FileChange) -> bool:
    if not change.path.endswith(".py") or change.kind == "deleted":
        return False
    language = detect_language(change.path)
    try:
        chunks = parse_definitions(change.path, change.new_text, language).chunks
    except Exception:
        return ">>>" in change.new_text
    ranges = _changed_new_lines(change.base_text, change.new_text)
    for chunk in chunks:
        if ">>>" not in chunk.doc and ">>>" not in chunk.text:
            continue
        if any(chunk.start_line <= end and chunk.end_line >= start for start, end in ranges):
            return True
    return False


_Command = tuple[CheckKind, str, str, dict[str, str]]
"""(kind, name, command, extra environment) of one verification command."""


@dataclass
class _Plan:
    """The commands of one verification, in order."""

    commands: list[_Command] = field(default_factory=list)
    """(kind, name, command, extra environment)."""
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[CheckKind, str, str]] = field(default_factory=list)
    """(kind, name, why) of checks the environment stops before they run (Cargo or Go not usable)."""


class Verifier:
    """Runs verification commands in the sandbox on a throwaway copy of the overlay."""

    def __init__(
        self,
        overlay: Overlay,
        sandbox: Sandbox,
        settings: AgentSettings,
        *,
        index: CodeIndex | None = None,
        cancel: threading.Event | None = None,
        scratch_dir: Path | None = None,
        which: Callable[[str], str | None] = shutil.which,
        interpreter: Interpreter | None = None,
        toolchains: tuple[Toolchain, ...] | None = None,
        index_settings: IndexSettings | None = None,
    ) -> None:
        """`interpreter`: the project's Python when the caller found it already (a run's agents share
        one); None: asked here (`agent.interpreter.detect_interpreter`). `toolchains`: the project's Cargo
        and Go likewise; None: asked here the first time they are needed (`agent.toolchains`).
        `index_settings`: the workspace's index settings (the user's, workspace's and editor's excludes
        merged), which say which uncopied files matter; None: the `index`'s, else the defaults."""
        self.overlay = overlay
        self.sandbox = sandbox
        self.settings = settings
        self.index = index
        if index_settings is None and index is not None:
            index_settings = index.settings
        self.index_settings = index_settings
        """What the walker leaves out as the index does (`_unimportant`); None: the defaults."""
        self.cancel = cancel
        configured = sandbox.settings.scratch_dir
        self._scratch = scratch_dir or (Path(configured) if configured else None) or default_scratch_dir()
        self._which = which
        self.interpreter = interpreter or detect_interpreter(
            overlay.root, python_tests=_python_tests_present(overlay.root), sandbox=sandbox
        )
        """The project's Python (`agent.interpreter`): its environment is first on the commands' PATH."""
        self._python = self.interpreter.python
        self._env = self.interpreter.env(sandbox_path(sandbox.settings))
        self._test_command: str | None = None
        self._test_command_known = False
        self._toolchains: tuple[Toolchain, ...] | None = toolchains

    # -- public ------------------------------------------------------------------------------------

    def test_command(self) -> str | None:
        """The configured test command, else the detected one (computed once)."""
        if not self._test_command_known:
            self._test_command = self.settings.test_command or detect_test_command(
                self.overlay.root,
                python=self._python,
                has_pytest=self.interpreter.has_pytest,
                which=self._which,
            )
            self._test_command_known = True
        return self._test_command

    @property
    def toolchains(self) -> tuple[Toolchain, ...]:
        """The project's Cargo and Go (`agent.toolchains`), asked once where the commands run."""
        if self._toolchains is None:
            self._toolchains = detect_toolchains(self.overlay.root, sandbox=self.sandbox, which=self._which)
        return self._toolchains

    def verify(self, changes: Sequence[FileChange], *, trigger: str = "finish") -> VerificationResult:
        """Syntax checks, doctests and the related tests (or the test suite) for `changes`."""
        plan = _Plan()
        live = [c for c in changes if c.kind != "deleted"]
        syntax = self._syntax_commands(live) if self.settings.syntax_checks else []
        plan.commands.extend(syntax)
        doctest_files = [c.path for c in live if _has_doctest(c)]
        names: list[str] = []
        for change in changes:
            for name in changed_symbols(change):
                if name not in names:
                    names.append(name)
        touched_tests = [c.path for c in live if is_test_path(c.path)]
        merged = self._test_commands(plan, names, touched_tests, doctest_files=doctest_files)
        if doctest_files and not merged:
            plan.commands.insert(len(syntax), self._doctest_command(doctest_files))
        files = tuple(c.path for c in changes)
        return self._execute(plan, files, trigger, stop_after_syntax=len(syntax))

    def run_tests(self, *, symbol: str | None = None, path: str | None = None) -> VerificationResult:
        """Tests for the model's `run_tests` call: those referencing `symbol`, the ones at `path`, or all."""
        plan = _Plan()
        if path:
            rel = self.overlay.resolve(path)
            self._tests_at(plan, rel)
        elif symbol:
            name = symbol.replace("::", ".").rsplit(".", 1)[-1]
            self._test_commands(plan, [name], [], fallback=False)  # no doctests: nothing merged
            if not plan.commands and not plan.problems:
                plan.notes.append(f"no test file references `{name}`")
                self._suite(plan)
        else:
            self._suite(plan)
        return self._execute(plan, (), "run_tests", stop_after_syntax=0)

    def tests_for(self, names: Iterable[str]) -> list[str]:
        """Test files (workspace-relative) that reference any of `names`, most referenced first."""
        names = [n for n in names if n]
        counts = referencing_tests(self.index, names, limit=500) if self.index is not None else {}
        if not counts and names:
            # The index may be missing or stale (the agent's own new tests): look at the overlay's tests.
            counts = mentioning_tests(
                (p for p in self.overlay.walk_files(".") if detect_language(p) is not None),
                self._read,
                names,
                max_files=_SCAN_MAX_TEST_FILES,
            )
        existing = [p for p in counts if self._exists(p)]
        return sorted(existing, key=lambda p: (-counts[p], p))

    # -- planning ----------------------------------------------------------------------------------

    def _read(self, rel: str) -> str | None:
        try:
            return self.overlay.read(rel)
        except (OverlayError, PathRefused):
            return None

    def _exists(self, rel: str) -> bool:
        try:
            return self.overlay.exists(rel) and not self.overlay.is_dir(rel)
        except (OverlayError, PathRefused):
            return False

    def _tool(self, name: str) -> str | None:
        """`name` on agentls' PATH, or None: also for the project's Cargo or Go when it does not run where
        the commands run (`toolchains`), so that its checks say why instead of "command not found"."""
        if name in ("cargo", "go") and any(t.tool == name and t.problem for t in self.toolchains):
            return None
        return self._which(name)

    def _unusable_toolchain(self, command: str | None) -> Toolchain | None:
        """The project's Cargo or Go that cannot run `command`, a test suite (None: none was found, as for
        a Rust or Go project without its tool), or None."""
        broken = [toolchain for toolchain in self.toolchains if toolchain.problem]
        if command is None:
            return broken[0] if broken else None
        return next((toolchain for toolchain in broken if toolchain.tool == _program(command)), None)

    def _command_env(self, command: str) -> dict[str, str]:
        """What a test command run by Cargo or Go needs in the sandbox: their variables (rustup's homes),
        and their folder first on PATH for a command that names them bare (``cargo test``)."""
        tool = _program(command)
        path = self._tool(tool) if tool in ("cargo", "go") else None
        if path is None:
            return {}
        env = cargo_env(path) if tool == "cargo" else go_env()
        return {**env, "PATH": f"{Path(path).parent}:{self._env['PATH']}"}

    def _syntax_commands(self, changes: Sequence[FileChange]) -> list[_Command]:
        out: list[_Command] = []
        python_files = [c.path for c in changes if c.path.endswith(".py")]
        if python_files:
            quoted = " ".join(shlex.quote(p) for p in python_files)
            out.append(("syntax", "python", f"{shlex.quote(self._python)} -m py_compile {quoted}", {}))
        js_files = [c.path for c in changes if PurePosixPath(c.path).suffix in _JS_EXTENSIONS]
        node = self._tool("node")
        if js_files and node:
            checks = " ; ".join(f"{shlex.quote(node)} --check {shlex.quote(p)} || rc=1" for p in js_files)
            out.append(("syntax", "javascript", f"rc=0; {checks}; exit $rc", {}))
        go_dirs = sorted({str(PurePosixPath(c.path).parent) for c in changes if c.path.endswith(".go")})
        go = self._tool("go")
        if go_dirs and go and (self.overlay.root / "go.mod").is_file():
            packages = " ".join(shlex.quote("./" + d if d != "." else ".") for d in go_dirs)
            out.append(("syntax", "go vet", f"{shlex.quote(go)} vet {packages}", self._go_env()))
        rust = [c.path for c in changes if c.path.endswith(".rs")]
        cargo = self._tool("cargo")
        if rust and cargo:
            crate = self._crate_dir(rust[0])
            if crate is not None:
                cd = f"cd {shlex.quote(crate)} && " if crate != "." else ""
                out.append(
                    (
                        "syntax",
                        "cargo check",
                        f"{cd}{shlex.quote(cargo)} check --offline --quiet",
                        self._cargo_env(cargo),
                    )
                )
        return out

    def _crate_dir(self, path: str) -> str | None:
        folder = PurePosixPath(path).parent
        while True:
            rel = folder.as_posix()
            if (self.overlay.root / rel / "Cargo.toml").is_file():
                return rel
            if rel in (".", ""):
                return None
            folder = folder.parent

    def _cargo_env(self, cargo: str) -> dict[str, str]:
        return cargo_env(cargo)

    def _go_env(self) -> dict[str, str]:
        return go_env()

    def _doctest_command(self, files: Sequence[str]) -> _Command:
        quoted = " ".join(shlex.quote(p) for p in files)
        python = shlex.quote(self._python)
        if self.interpreter.has_pytest:
            command = f"{python} -m pytest -q -p no:cacheprovider --doctest-modules {quoted}"
        else:
            command = " ; ".join(f"{python} -m doctest {shlex.quote(p)} || rc=1" for p in files)
            command = f"rc=0; {command}; exit $rc"
        return ("doctest", ", ".join(files), command, {})

    def _suite(self, plan: _Plan) -> None:
        command = self.test_command()
        broken = self._unusable_toolchain(command)
        if broken is not None:
            plan.problems.append(("tests", "test suite", broken.problem))
            return
        if command is None:
            plan.notes.append(
                "no test command was found (set agent.test_command in agentls.toml to name one)"
            )
            return
        plan.commands.append(("tests", "test suite", command, self._command_env(command)))

    def _test_commands(
        self,
        plan: _Plan,
        names: Sequence[str],
        touched_tests: Sequence[str],
        *,
        fallback: bool = True,
        doctest_files: Sequence[str] = (),
    ) -> bool:
        """Plan the tests of `names`; True when `doctest_files` were folded into the pytest run (one
        interpreter start instead of two)."""
        files = list(touched_tests)
        for path in self.tests_for(names):
            if path not in files:
                files.append(path)
        if not files:
            if fallback:
                if names:
                    plan.notes.append("no test references the changed code; ran the test suite instead")
                self._suite(plan)
            return False
        if len(files) > _MAX_TEST_FILES:
            plan.notes.append(f"{len(files)} test files reference the change; ran the test suite instead")
            self._suite(plan)
            return False
        merged = False
        python = [f for f in files if f.endswith(".py")]
        go_dirs = sorted({str(PurePosixPath(f).parent) for f in files if f.endswith(".go")})
        others = [f for f in files if not f.endswith((".py", ".go"))]
        if python:
            if self.interpreter.has_pytest:
                quoted = " ".join(shlex.quote(p) for p in python)
                command = f"{shlex.quote(self._python)} -m pytest -q -p no:cacheprovider {quoted}"
                name = ", ".join(python)
                if doctest_files:
                    modules = " ".join(shlex.quote(p) for p in doctest_files)
                    command = (
                        f"{shlex.quote(self._python)} -m pytest -q -p no:cacheprovider --doctest-modules "
                        f"{modules} {quoted}"
                    )
                    name = f"{name} and the doctests of {', '.join(doctest_files)}"
                    merged = True
                plan.commands.append(("tests", name, command, {}))
            else:
                plan.notes.append("pytest is not installed for the project's Python; Python tests not run")
        go = self._tool("go")
        if go_dirs and go:
            packages = " ".join(shlex.quote("./" + d if d != "." else ".") for d in go_dirs)
            plan.commands.append(
                ("tests", "go " + ", ".join(go_dirs), f"{shlex.quote(go)} test {packages}", self._go_env())
            )
        if others or (go_dirs and not go):
            suite = self.test_command()
            broken = self._unusable_toolchain(suite)
            if broken is not None:
                plan.problems.append(("tests", "test suite", broken.problem))
            elif suite is None:
                plan.notes.append("tests reference the change but no test command was found to run them")
            elif not any(kind == "tests" and cmd == suite for kind, _, cmd, _ in plan.commands):
                plan.commands.append(("tests", "test suite", suite, self._command_env(suite)))
        return merged

    def _tests_at(self, plan: _Plan, rel: str) -> None:
        # A pytest node id (tests/test_x.py::TestY::test_z) is a Python test file's part: pytest runs it,
        # not the project's suite command with the id after it (`make test tests/test_x.py::...`).
        python_file = rel.split("::", 1)[0].endswith(".py")
        python_tests = python_file or self.overlay.is_dir(rel)
        if python_tests and self.interpreter.has_pytest and (python_file or self._has_python_tests(rel)):
            command = f"{shlex.quote(self._python)} -m pytest -q -p no:cacheprovider {shlex.quote(rel)}"
            plan.commands.append(("tests", rel, command, {}))
            return
        go = self._tool("go")
        if rel.endswith(".go") and go:
            folder = str(PurePosixPath(rel).parent)
            plan.commands.append(("tests", rel, f"{shlex.quote(go)} test ./{folder}", self._go_env()))
            return
        suite = self.test_command()
        broken = self._unusable_toolchain(suite)
        if broken is not None:
            plan.problems.append(("tests", rel, broken.problem))
            return
        if suite is None:
            plan.notes.append("no test command was found to run tests at " + rel)
            return
        plan.commands.append(("tests", rel, f"{suite} {shlex.quote(rel)}", self._command_env(suite)))

    def _imported_by_change(self, module: str) -> bool:
        """Whether the run's change adds an import of `module` (or a workspace module of that name)."""
        pattern = re.compile(rf"^\s*(?:import|from)\s+{re.escape(module)}\b", re.MULTILINE)
        try:
            changes = self.overlay.changes()
        except Exception:  # a note on a failure, never a reason to fail
            return True
        for change in changes:
            if PurePosixPath(change.path).parts[:1] == (module,) or PurePosixPath(change.path).stem == module:
                return True
            if pattern.search(change.new_text) and not pattern.search(change.base_text):
                return True
        return False

    def _uninstalled_project(self, module: str) -> str:
        """Why `module`, the project's own package under ``src/`` (a src layout, which only imports once the
        project is installed), cannot be imported, and what to do; "" when it is not such a package."""
        found = [rel for rel in (f"src/{module}", f"src/{module}.py") if self._present(rel)]
        if not found or not _installable(self.overlay.root):
            return ""
        what = f"the project's own package `{module}` ({found[0]}) cannot be imported"
        prefix = self.interpreter.prefix
        if prefix is None:
            return (
                f"{what}: the project is not installed in an environment, and it has none (.venv, venv, env, "
                "VIRTUAL_ENV, Poetry, conda); create one and install the project and its test tools into "
                "it: `python -m venv .venv && .venv/bin/pip install -e . pytest` (or set agent.test_command)"
            )
        shown = Path(prefix)
        if shown.is_relative_to(self.overlay.root):
            shown = shown.relative_to(self.overlay.root)
        return (
            f"{what}: the project is not installed in {self.interpreter.reason} ({prefix}); install it "
            f"there: `{shown / 'bin' / 'pip'} install -e .`"
        )

    def _unimportant(self, uncopied: Sequence[str], changed: Sequence[str]) -> set[str]:
        """Those of `uncopied` (workspace files and `sub/` folders the copy could not take) that cannot
        matter to the checks: the walker leaves them out as it does for the index (.gitignore,
        .agentlsignore, the exclude setting, tool, cache and environment folders), and none is, or holds, a
        file of the change."""
        wanted = [rel for rel in uncopied if rel != "./" and not _is_or_holds(rel, changed)]
        if not wanted:
            return set()
        from indexing.config import IndexSettings  # only for a copy that could not take everything
        from indexing.models import SkippedFile, SkipReason
        from indexing.walker import walk

        settings = self.index_settings if self.index_settings is not None else IndexSettings()
        only = [rel.rstrip("/") for rel in wanted]
        left_out = (SkipReason.IGNORED, SkipReason.VANISHED)
        try:  # what the walker yields is what it keeps (an unreadable file or folder is named, not left out)
            kept = {
                item.path
                for item in walk(self.overlay.root, settings, only=only, whole_folders=True)
                if not (isinstance(item, SkippedFile) and item.reason in left_out)
            }
        except Exception as error:  # the workspace cannot be walked: every file may matter
            log.warning("cannot tell which of %s the walker ignores: %s", ", ".join(wanted), error)
            return set()
        return {rel for rel in wanted if not _is_or_holds(rel, kept)}

    def _present(self, rel: str) -> bool:
        try:
            return self.overlay.exists(rel)
        except (OverlayError, PathRefused):
            return False

    def _has_python_tests(self, rel: str) -> bool:
        return any(p.endswith(".py") and is_test_path(p) for p in self.overlay.walk_files(rel))

    # -- running -----------------------------------------------------------------------------------

    def _execute(
        self, plan: _Plan, files: tuple[str, ...], trigger: str, *, stop_after_syntax: int
    ) -> VerificationResult:
        started = time.monotonic()
        checks: list[CheckResult] = []
        notes = list(plan.notes)
        if plan.commands:
            with _Materialized(self.overlay, self._scratch) as dest:
                commands = plan.commands
                copy = dest.copy
                unimportant = self._unimportant(copy.uncopied, files)
                missing = copy.uncopied_note([rel for rel in copy.uncopied if rel not in unimportant])
                if copy.unwritten or missing:  # checks of a copy without them would prove nothing
                    checks.append(_uncopied(commands[0][0], copy.unwritten_note(), missing, self._scratch))
                    commands = []
                if unimportant:
                    notes.append(_skipped_note(copy, unimportant))
                binds = [(self.overlay.root / rel, self.overlay.root / rel) for rel in dest.bind_dirs]
                binds += self.interpreter.binds(self.overlay.root)
                for index, (kind, name, command, env) in enumerate(commands):
                    if self.cancel is not None and self.cancel.is_set():
                        notes.append("cancelled before every check ran")
                        break
                    if index == stop_after_syntax and any(not c.passed for c in checks):
                        notes.append("tests were not run: fix the syntax errors first")
                        break
                    try:
                        result = self.sandbox.run(
                            command,
                            dest.path,
                            timeout=self.settings.verify_timeout,
                            env={**self._env, **env},
                            cancel=self.cancel,
                            mount_at=self.overlay.root,
                            ro_binds=binds,
                        )
                    except SandboxUnavailable as error:
                        checks.append(_unavailable(kind, name, command, str(error)))
                        break
                    check = _check(kind, name, command, result, self.settings.verify_timeout)
                    if not check.passed and not check.timed_out:
                        fault = environment_fault(
                            check.exit_code, check.output, self._imported_by_change, self._uninstalled_project
                        )
                        check = replace(check, environment=fault)
                    checks.append(check)
        checks += [_not_run(kind, name, problem) for kind, name, problem in plan.problems]
        return VerificationResult(
            checks=tuple(checks),
            files=files,
            notes=tuple(notes),
            trigger=trigger,
            seconds=time.monotonic() - started,
        )


def _program(command: str) -> str:
    """The name of the program a shell command starts with (``cargo`` of ``/x/.cargo/bin/cargo test``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    return PurePosixPath(words[0]).name if words else ""


def _not_run(kind: CheckKind, name: str, problem: str) -> CheckResult:
    """A check the environment stopped before it ran (`_Plan.problems`)."""
    return CheckResult(
        kind=kind,
        name=name,
        command="",
        passed=False,
        exit_code=None,
        output=problem,
        seconds=0.0,
        note="not run",
        environment=problem,
    )


def _is_or_holds(rel: str, paths: Collection[str]) -> bool:
    """Whether `rel` is one of `paths`, or is a folder (`sub/`) that is or holds one."""
    if rel.endswith("/"):
        return rel[:-1] in paths or any(path.startswith(rel) for path in paths)
    return rel in paths


_NAMED_SKIPPED = 20
"""How many of the workspace files the verification's copy lacked, unimportant to it, its note names."""


def _skipped_note(copy: MaterializedWorkspace, skipped: Collection[str]) -> str:
    """One line for the result: the workspace files the copy lacked that the checks ran without."""
    shown = [rel for rel in copy.uncopied if rel in skipped][:_NAMED_SKIPPED]
    more = f" and {len(skipped) - len(shown)} more" if len(skipped) > len(shown) else ""
    return (
        f"the verification's copy lacks {copy.uncopied_note(shown)}{more}: ignored (.gitignore, "
        ".agentlsignore or the exclude setting) and not part of the change, so the checks ran without them"
    )


def _uncopied(kind: CheckKind, unwritten: str, uncopied: str, scratch: Path) -> CheckResult:
    """The verification's copy of the workspace could not take the change's files (`unwritten`), or
    workspace files that matter (`uncopied`: agentls cannot read them, or there was no room): nothing was
    checked."""
    missing = []
    if uncopied:
        missing.append(f"the workspace's {uncopied} (make them readable to agentls, or remove them)")
    if unwritten:
        missing.append(f"the change's {unwritten}")
    problem = (
        f"the verification's copy of the workspace in {scratch} could not take {' or '.join(missing)}, so "
        "nothing was checked; on a full folder, make room there, or set agent.sandbox.scratch_dir to a "
        "folder with room"
    )
    return _not_run(kind, "the workspace copy", problem)


def _unavailable(kind: CheckKind, name: str, command: str, message: str) -> CheckResult:
    return CheckResult(
        kind=kind,
        name=name,
        command=command,
        passed=False,
        exit_code=None,
        output=message,
        seconds=0.0,
        note="not run",
        environment=f"no sandbox: {message}",
    )


_NOT_FOUND = re.compile(r"(?:^|\n)(?:\S*bash: (?:line \d+: )?)?([^\s:]+): (?:command not found|No such file)")
_NO_MODULE = re.compile(r"No module named '?([\w.]+)'?")


def environment_fault(
    exit_code: int | None,
    output: str,
    imported_by_change: Callable[[str], bool],
    uninstalled_project: Callable[[str], str] | None = None,
) -> str:
    """Why a failed check failed because of the environment, or "" when the change may be the cause.

    `imported_by_change(module)`: whether the change added an import of that top-level module (then a
    missing package is the change's problem, not the environment's). `uninstalled_project(module)`: why
    `module`, the project's own package, cannot be imported (a src layout not installed), or "" when it is
    not the project's; such a module is the environment's problem even when the change imports it.
    """
    if exit_code in (126, 127):
        found = _NOT_FOUND.search(output)
        what = f"`{found.group(1)}`" if found else "the command"
        verb = "is not executable" if exit_code == 126 else "was not found"
        return f"{what} {verb} in the sandbox (exit {exit_code})"
    named = _NO_MODULE.findall(output)
    missing = [name.split(".")[0] for name in named]
    if not missing or re.search(r"^FAILED ", output, re.MULTILINE):
        return ""
    if "pytest" in missing or "_pytest" in missing:
        return "pytest is not installed for the project's Python (install it in the project's environment)"
    # Only a missing top-level name: "No module named 'pkg.sub'" means pkg imports, and sub is not there.
    own = uninstalled_project or (lambda module: "")
    why = next(filter(None, (own(name) for name in dict.fromkeys(n for n in named if "." not in n))), "")
    if why:
        return why
    if any(imported_by_change(name) for name in missing):
        return ""
    names = ", ".join(dict.fromkeys(missing))
    return f"a package the tests import is not installed for the project's Python: {names}"


def _check(kind: CheckKind, name: str, command: str, result: CommandResult, timeout: float) -> CheckResult:
    output = "\n".join(part.rstrip("\n") for part in (result.stdout, result.stderr) if part.strip())
    note = ""
    passed = result.exit_code == 0 and not result.timed_out and not result.cancelled
    if result.timed_out:
        note = f"killed after {timeout:g} s"
    elif result.cancelled:
        note = "cancelled"
    elif " -m pytest " in f" {command} " and result.exit_code == _PYTEST_NO_TESTS:
        passed, note = True, "no tests collected"
    ran_nothing = note == "no tests collected" or (
        passed and kind in ("tests", "doctest") and _ran_no_test(command, output)
    )
    if ran_nothing and not note:
        note = "no tests ran"
    return CheckResult(
        kind=kind,
        name=name,
        command=command,
        passed=passed,
        exit_code=result.exit_code,
        output=output,
        seconds=result.duration,
        timed_out=result.timed_out,
        note=note,
        ran_nothing=ran_nothing,
    )


_PYTEST_SUMMARY = re.compile(r"^=*\s*(?:no tests ran|\d+ \w+.*) in [\d.]+s\b.*$", re.MULTILINE)
_PYTEST_RAN = re.compile(r"\b\d+ (?:passed|failed|xfailed|xpassed|errors?)\b")


def _ran_no_test(command: str, output: str) -> bool:
    """Whether a successful test command visibly ran no test: a pytest summary with nothing passed
    (all skipped or deselected), or `go test` reporting only packages without test files."""
    if " -m pytest " in f" {command} ":
        summaries = _PYTEST_SUMMARY.findall(output)
        return bool(summaries) and not _PYTEST_RAN.search(summaries[-1])
    if " test " in f" {command} " and "[no test files]" in output:
        return not any(line.startswith(("ok ", "ok\t")) for line in output.splitlines())
    return False


@dataclass(frozen=True)
class _Dest:
    path: Path
    bind_dirs: tuple[str, ...]
    copy: MaterializedWorkspace
    """What the copy took: its `unwritten` (the change's files it could not take) and `uncopied` (the
    workspace's)."""


class _Materialized:
    """A fresh copy of the overlay for one verification, removed afterwards."""

    def __init__(self, overlay: Overlay, scratch: Path) -> None:
        self.overlay = overlay
        self.scratch = scratch
        self.path: Path | None = None

    def __enter__(self) -> _Dest:
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="agentls-verify-", dir=self.scratch))
        materialized = self.overlay.materialize(self.path)
        return _Dest(self.path, materialized.bind_dirs, materialized)

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.overlay.forget(self.path)
            remove_tree(self.path, "verification's workspace copy")
            self.path = None
