"""The Neovim plugin's agent runs and their review, end to end (tests/e2e/nvim_harness.py): the preview,
accept, reject, one hunk of two, accept and commit, a team run's view, and a long file's hunks.
"""

from __future__ import annotations

import json
from pathlib import Path

from server.features.runs.proposals import file_hunks
from server.messages import HunkInfo, ProposalFileDetails, to_json
from tests.agent.agent_harness import GOOD_BODY, STUB_BODY
from tests.e2e.nvim_harness import (
    NEW_TEST,
    NEW_TEST_TEXT,
    STATS,
    SUMMARY,
    agent_script,
    nvim,
    run_nvim,
    snapshot,
    workspace,
)
from tests.e2e.test_lsp_commit import GIT_ID, git
from tests.fakes.anthropic_server import FakeAnthropic
from tests.server.test_diff_hunks import go_change

__all__ = ["nvim", "workspace"]  # the fixtures, imported for pytest


def test_implement_preview_accept_writes_every_file(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "accept"}
        )

    assert "Implement `mean` with agentls" in result["titles"]
    assert result["run_title"] == "Implement `mean` with agentls"
    assert result["status_running"].startswith("agentls:")
    # The preview: the summary on top, the diff of both files, highlighted as a diff.
    preview = "\n".join(result["preview_lines"])
    assert result["preview_filetype"] == "diff"
    assert SUMMARY in preview
    assert "+    return sum(values) / len(values)" in preview
    assert "-    raise NotImplementedError" in preview
    assert "+def test_mean_of_two_numbers():" in preview
    assert "proposal ready" in result["status_pending"]
    # Nothing was applied before the user accepted.
    assert result["disk_before"] == {STATS: original, NEW_TEST: None}
    assert result["buffers_before"][STATS] == {"text": original, "modified": False}
    # After `a`: both buffers hold the change, and both files are written.
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["buffers_after"][STATS] == {"text": expected, "modified": False}
    assert result["buffers_after"][NEW_TEST] == {"text": NEW_TEST_TEXT, "modified": False}
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}
    assert (workspace / NEW_TEST).read_text() == NEW_TEST_TEXT
    assert result["preview_open_after"] is False
    assert "proposal" not in result["status_after"]  # (re-indexing the saved files may still show)


def test_task_command_runs_the_solo_agent_and_its_proposal_previews_and_applies(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """`:[range]AgentlsTask {instruction}`: a free-form task, as `agentls run` does (the single agent loop,
    not the team), from the file and its lines; the proposal previews and applies like any run's."""
    original = (workspace / STATS).read_text()
    task = "make mean work as its docstring says, with a test"
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        env = {
            **fake.env(),
            "AGENTLS_NVIM_MODE": "accept",
            "AGENTLS_NVIM_TRIGGER": "task",
            "AGENTLS_NVIM_TASK": task,
        }
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        first = fake.message_requests[0].body

    assert result["run_title"] == f"Task: {task}"
    # The single agent loop (the team's first model call is its planner's), on the instruction and the file.
    system, prompt = str(first["system"]), str(first["messages"][0]["content"])
    assert "You are agentls, a careful software engineer" in system
    assert "planner" not in system
    assert task in prompt and STATS in prompt
    preview = "\n".join(result["preview_lines"])
    assert SUMMARY in preview
    assert "+    return sum(values) / len(values)" in preview
    assert result["disk_before"] == {STATS: original, NEW_TEST: None}
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}


def test_accept_in_the_preview_is_the_only_question(workspace: Path, tmp_path: Path, nvim: str) -> None:
    """The server marks its edit with a change annotation that needs confirmation (for clients without a
    preview). Neovim 0.11+ asked "Apply all changes?" once per file after the preview's accept, and a "No"
    to one left the other applied, the new file empty on disk, and the plugin saying "applied"."""
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        env = {**fake.env(), "AGENTLS_NVIM_MODE": "accept", "AGENTLS_NVIM_CONFIRM": "no"}
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)

    assert result["confirms"] == []
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: expected, NEW_TEST: NEW_TEST_TEXT}
    assert not [m for m in result["messages"] if m.startswith("Applied changes")], result["messages"]


def test_accept_one_hunk_of_two_writes_only_that_hunk(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "hunks"}
        )

    # `a` on the stub's hunk, `r` on the new file's, shown in the preview's header; <CR> applies.
    assert result["review_summary"] == "# 2 hunks: 1 to accept, 1 to reject, 0 undecided"
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert result["disk_after"] == {STATS: expected, NEW_TEST: None}
    assert result["buffers_after"][STATS] == {"text": expected, "modified": False}
    # Every hunk was decided: the rejected rest is dropped, nothing stays pending.
    assert result["proposal_status"] == "accepted"
    assert result["preview_open_after"] is False


def test_accept_and_commit_commits_the_accepted_hunk_with_the_edited_message(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "init")
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), **GIT_ID, "AGENTLS_NVIM_MODE": "commit"},
        )

    # The message buffer held the proposal's message to edit; nothing was committed before :w.
    assert result["commit_lines"][0].strip() and result["commit_lines"][0] != "init"
    assert any(line.startswith("# agentls: write (:w)") for line in result["commit_lines"])
    assert (
        git(workspace, "log", "-1", "--format=%s").strip() == "feat(stats): implement mean (edited in Neovim)"
    )
    assert git(workspace, "show", "--name-only", "--format=", "HEAD").split() == [STATS]
    expected = original.replace(STUB_BODY, GOOD_BODY)
    assert git(workspace, "show", f"HEAD:{STATS}") == expected
    assert result["disk_after"] == {STATS: expected, NEW_TEST: None}
    assert result["proposal_status"] == "accepted"
    # The commit is announced once (the server's message: the commit and its subject).
    head = git(workspace, "rev-parse", "HEAD").strip()[:12]
    said = [m for m in result["messages"] if f"committed {head}" in m]
    assert len(said) == 1, result["messages"]
    assert "feat(stats): implement mean (edited in Neovim)" in said[0]


def test_team_run_view_qa_verdict_and_honest_verification_labels(tmp_path: Path, nvim: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    result = run_nvim(
        nvim, "team_view.lua", root, tmp_path, setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]}
    )

    # The plan and the first role before :AgentlsRun opened the buffer; later events refresh it.
    before = "\n".join(result["run_before"])
    assert "- [x] write the spec" in before and "- [~] design vouchers" in before
    assert "- [ ] code and test" in before and "- planner: finished" in before
    after = "\n".join(result["run_after"])
    assert "## architect: Design (architect)" in after
    assert "- create shop/vouchers.py" in after and "- architect: finished" in after
    # A run's warning (here the interpreter probe's fallback) shows its message, not just its kind.
    assert "## Warnings" in after and "## Warnings" not in before
    assert (
        "- interpreter: The sandbox could not run .venv/bin/python; tests run with the host's python3."
        in after
    )
    assert "  Set agent.python." in after
    assert result["run_buffer_filetype"] == "markdown"
    # The QA verdict with the proposal.
    assert "# QA verdict: passed" in result["team_preview"]
    assert "#   AC1 pass: VOUCHER = 5 is defined" in result["team_preview"]
    # No test ran: "not verified", never "FAILED"; failing checks are still FAILED.
    label = next(line for line in result["no_tests"] if line.startswith("# verification:"))
    assert label.startswith("# verification: not verified (no tests ran)") and "FAILED" not in label
    assert next(line for line in result["failing"] if line.startswith("# verification:")).startswith(
        "# verification: FAILED"
    )
    # Hunks: a `-`/`+` line is its own hunk; a `@@` or context line means its section's; a file header,
    # the file's.
    assert result["order"] == ["a.py#1", "a.py#2", "b.py#1"]
    assert result["at_minus_two"] == ["a.py#1"] and result["at_plus_five"] == ["a.py#2"]
    assert result["at_section"] == ["a.py#1", "a.py#2"] == result["at_context"]
    assert result["at_file_b"] == ["b.py#1"] == result["at_bee"]
    assert result["plan_partial"] == {"action": "partial", "hunks": ["a.py#1"], "undecided": 1}
    assert result["plan_all"] == {"action": "accept", "undecided": 0}
    assert result["plan_none"] == {"action": "none", "undecided": 2}


def test_each_changed_line_of_a_long_files_diff_is_one_hunk_in_the_preview(tmp_path: Path, nvim: str) -> None:
    # 270 lines of Go, four changes (tests/server/test_diff_hunks.py), sent as `agentls/proposal` sends
    # them. When the diff used difflib's autojunk and the hunks did not, the last handler's diff showed
    # eight lines replaced for two changed ones: twelve of its sixteen `-`/`+` lines were in no hunk, and
    # `a` on one of them accepted both of the section's hunks.
    change = go_change()
    hunks = file_hunks(change)
    details = ProposalFileDetails(
        uri=(tmp_path / "h.go").as_uri(),
        path="h.go",
        kind="modified",
        diff=change.diff,
        hunks=[HunkInfo(h.id, h.old_start, h.old_lines, h.new_start, h.new_lines) for h in hunks],
    )
    case = tmp_path / "case.json"
    case.write_text(json.dumps([to_json(details)]), encoding="utf-8")
    root = tmp_path / "ws"
    root.mkdir()
    result = run_nvim(
        nvim,
        "review_hunks.lua",
        root,
        tmp_path,
        env={"AGENTLS_NVIM_CASE": str(case)},
        setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]},
    )

    changed = [line for line in result["lines"] if line["text"][:1] in ("-", "+")]
    changed = [line for line in changed if line["text"][:4] not in ("--- ", "+++ ")]
    for line in changed:
        assert line["hunk"] is not None and line["at"] == [line["hunk"]], line
    assert len(changed) == 11
    assert sorted({line["hunk"] for line in changed}) == sorted(h.id for h in hunks)
    last = [line["text"] for line in changed if line["hunk"] in (hunks[2].id, hunks[3].id)]
    assert last == [
        "-\tv, err := load29(r)",
        "+\tv, err := fetch29(r)",
        "-\tfmt.Fprintln(w, v)",
        "+\tfmt.Fprintln(w, v, err)",
    ]


def test_reject_leaves_every_file_untouched(workspace: Path, tmp_path: Path, nvim: str) -> None:
    before = snapshot(workspace)
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), "AGENTLS_NVIM_MODE": "reject", "AGENTLS_NVIM_TRIGGER": "command"},
        )

    assert result["run_title"] == "Implement `mean` with agentls"  # :AgentlsImplement found the action
    assert "+    return sum(values) / len(values)" in "\n".join(result["preview_lines"])
    assert result["proposal_status"] == "rejected"
    assert result["preview_open_after"] is False
    assert result["buffers_after"][STATS] == {"text": before[STATS].decode(), "modified": False}
    assert result["buffers_after"][NEW_TEST] is None
    assert snapshot(workspace) == before
    assert any("rejected" in m for m in result["messages"])
