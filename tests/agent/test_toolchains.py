"""A Rust or Go project's `cargo` or `go` is checked before its tests run, as the project's Python is: not
installed, or installed where the sandbox does not show it, is an environment problem that says what to
do (verification, the run's warning, the prompt's environment section), not a bare "command not found".
Real project folders, the real sandbox, the real SDK against the fake Messages API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.overlay import Overlay
from agent.project import environment_section
from agent.sandbox import Sandbox
from agent.task_builders import run_task
from agent.verify import Verifier
from tests.agent.agent_harness import Harness, done, fast_settings
from tests.agent.test_honest_verification import create
from tests.fakes.anthropic_server import FakeAnthropic


def rust_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "rs"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "lib.rs").write_text(
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n"
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(1, 2), 3);\n"
        "    }\n}\n"
    )
    return root


def go_project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/gp\n\ngo 1.21\n")
    (root / "add.go").write_text("package gp\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n")
    (root / "add_test.go").write_text(
        'package gp\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n'
        '\t\tt.Fatal("Add(1, 2) != 3")\n\t}\n}\n'
    )
    return root


def fixed(root: Path, path: str) -> Overlay:
    """The project's overlay with `add` fixed (a - b becomes a + b)."""
    overlay = Overlay(root)
    overlay.write(path, overlay.read(path).replace("a - b", "a + b"))
    return overlay


def verifier(overlay: Overlay, path: str | None = None) -> Verifier:
    """A Verifier in the real sandbox; `path`: agentls' PATH for finding tools (None: this machine's)."""
    settings = fast_settings()
    which = (lambda name: shutil.which(name, path=path)) if path is not None else shutil.which
    return Verifier(overlay, Sandbox(settings.sandbox), settings, which=which)


@pytest.mark.parametrize(
    ("make", "path", "language", "tool", "manifest"),
    [
        (rust_project, "src/lib.rs", "Rust", "cargo", "Cargo.toml"),
        (go_project, "add.go", "Go", "go", "go.mod"),
    ],
)
def test_a_project_whose_tool_is_not_installed_is_told_to_install_it(
    tmp_path: Path, make: Callable[[Path], Path], path: str, language: str, tool: str, manifest: str
) -> None:
    """On a machine without the tool (agentls' PATH is an empty folder here, whatever this machine has),
    verification said "no tests ran" (no test command found), as if the project had no tests."""
    root = make(tmp_path / "project")
    (tmp_path / "bin").mkdir()
    v = verifier(fixed(root, path), path=str(tmp_path / "bin"))
    problem = f"this is a {language} project ({manifest}) but `{tool}`"
    result = v.verify(v.overlay.changes())
    assert result.summary().startswith(
        f"Not verified: an environment problem, not the change, stopped the checks: {problem} is not "
    )
    assert result.outcome == "failed" and not result.passed
    assert [check.note for check in result.checks] == ["not run"]  # nothing ran to say "command not found"
    [toolchain] = v.toolchains
    assert toolchain.path is None and toolchain.problem.startswith(f"{problem} is not installed")
    asked = v.run_tests()  # what the model sees when it asks
    assert asked.environment_problem == toolchain.problem and "or set agent.test_command" in asked.feedback(
        2000
    )
    section = environment_section(root, python=None, test_command=None, toolchains=v.toolchains)
    assert f"- {language}: {tool} NOT usable: {problem} is not installed" in section


def test_a_go_the_sandbox_does_not_show_is_a_warning_and_an_environment_problem(
    fake_anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`go` installed in a folder the sandbox does not mount (here a `go` in the test's temporary folder,
    first on agentls' PATH; the sandbox has its own /tmp): the run warns at its start, the model's prompt
    says so, and verification reports it instead of running `go test` into "No such file or directory"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text("#!/bin/sh\necho 'go version go1.22.0 linux/amd64'\n")
    (bin_dir / "go").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    h = Harness(fake_anthropic, go_project(tmp_path / "gp"), tmp_path / "runs")
    h.fake.enqueue(
        create("sub.go", "package gp\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"), done("Sub.")
    )
    result = h.run(run_task("add Sub"))

    problem = f"`{bin_dir / 'go'}` (go, for go.mod) does not run in the sandbox: "
    [warning] = [e for e in h.events if e.kind == "warning" and e.data["subject"] == "toolchain"]
    assert warning.message.startswith(problem)
    assert "agent.sandbox.extra_ro_paths" in warning.message
    assert f"- Go: go NOT usable: {problem}" in str(h.fake.message_requests[0].body["system"])
    assert result.status == "proposed" and result.reflections == 0, result.error
    proposal = result.proposal
    assert proposal is not None and not proposal.verified
    assert proposal.verification_summary.startswith(
        f"Not verified: an environment problem, not the change, stopped the checks: {problem}"
    )


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed on this machine")
def test_a_rust_project_with_cargo_runs_its_tests_in_the_sandbox(tmp_path: Path) -> None:
    """The present path: cargo answers in the sandbox, and the detected `cargo test` runs there (through
    rustup's proxy too, which needs RUSTUP_HOME: the suite used to run without it and failed)."""
    v = verifier(fixed(rust_project(tmp_path / "rs"), "src/lib.rs"))
    result = v.verify(v.overlay.changes())
    assert result.passed, result.feedback(2000)
    assert [check.name for check in result.checks] == ["cargo check", "test suite"]
    [toolchain] = v.toolchains
    assert toolchain.problem == "" and toolchain.version.startswith("cargo ")
    assert toolchain.probed == "sandbox"


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed on this machine")
def test_a_go_project_with_go_runs_its_tests_in_the_sandbox(tmp_path: Path) -> None:
    v = verifier(fixed(go_project(tmp_path / "gp"), "add.go"))
    result = v.verify(v.overlay.changes())
    assert result.passed, result.feedback(2000)
    [toolchain] = v.toolchains
    assert toolchain.problem == "" and toolchain.version.startswith("go version")
