"""Project instructions (AGENTS.md, CLAUDE.md, .agentls/rules/*.md) and the environment reach the system
prompt of the run's requests (real SDK against the fake Messages API) and are listed in `run_start`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.project import find_instructions, instructions_section
from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, Harness, copy_workspace, done, replace
from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = copy_workspace(tmp_path / "ws")
    (root / "AGENTS.md").write_text("# Root rules\nUse tabs-never; ROOT-RULE-7c1.\n")
    (root / "mathx" / "CLAUDE.md").write_text("Near rule: MATHX-RULE-2b9, keep functions pure.\n")
    (root / ".agentls" / "rules").mkdir(parents=True)
    (root / ".agentls" / "rules" / "style.md").write_text("STYLE-RULE-5e0: docstrings on everything.\n")
    (root / "other").mkdir()
    (root / "other" / "AGENTS.md").write_text("OTHER-RULE-not-for-this-task\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "feature/rules"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    (root / "notes.txt").write_text("untracked\n")
    yield root


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, ws, tmp_path / "runs")


def _system(body: object) -> str:
    system = body["system"]  # type: ignore[index]
    if isinstance(system, str):
        return system
    return "".join(str(block.get("text", "")) for block in system)


def test_agents_md_and_the_environment_reach_the_system_prompt(harness: Harness, ws: Path) -> None:
    h = harness
    h.fake.enqueue(replace(STUB_BODY, GOOD_BODY), done())
    result = h.run()  # the task is about mathx/stats.py

    assert result.status == "proposed", result.error
    first, second = (_system(r.body) for r in h.fake.message_requests)
    assert first == second  # computed once: the cached prefix does not move
    # Nearest first: mathx/CLAUDE.md, then the root's AGENTS.md, then the rules; not other/AGENTS.md.
    assert first.index("MATHX-RULE-2b9") < first.index("ROOT-RULE-7c1") < first.index("STYLE-RULE-5e0")
    assert "# Project instructions" in first and "## mathx/CLAUDE.md" in first
    assert "OTHER-RULE" not in first
    assert f"- Workspace root: {ws.resolve()}" in first
    assert "- Git: branch feature/rules; 0 changed, 1 untracked file(s)" in first
    assert "- Test command: " in first and "- Date: " in first and "- OS: " in first
    assert first.startswith("You are agentls")  # the role's prompt stays first
    [start] = [r for r in h.transcript_records(result) if r["type"] == "run_start"]
    assert [f["path"] for f in start["instructions"]] == [
        "mathx/CLAUDE.md",
        "AGENTS.md",
        ".agentls/rules/style.md",
    ]
    assert not any(f["truncated"] or f["omitted"] for f in start["instructions"])


def test_instructions_are_capped_with_a_note(ws: Path) -> None:
    (ws / "AGENTS.md").write_text("A" * 3000)
    files = find_instructions(ws, "mathx/stats.py", max_bytes=1000)
    assert [(f.path, f.truncated, f.omitted) for f in files] == [
        ("mathx/CLAUDE.md", False, False),
        ("AGENTS.md", True, False),
        (".agentls/rules/style.md", False, True),
    ]
    assert sum(len(f.text.encode()) for f in files) <= 1000
    section = instructions_section(files, 1000)
    assert "[... cut: the instruction files exceed 1,000 bytes; read AGENTS.md for the rest]" in section
    assert "(left out: the instruction files exceed 1,000 bytes)" in section
    assert find_instructions(ws / "tests", None) == []  # no instruction file there
    assert instructions_section([]) == ""
