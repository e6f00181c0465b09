"""The VS Code extension inside VS Code (tests/e2e/vscode_harness.py says how): a run from the light bulb,
its notification, the diff tab, Accept, Reject, one file or one hunk of a proposal, and text typed during
the run. The palette's commands are in test_vscode_palette.py, a run's status bar and the server's
life in test_vscode_runs.py (three files, so the test run's workers take them in parallel).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.e2e.test_lsp_commit import GIT_ID, git
from tests.e2e.vscode_harness import (
    GOOD_BODY,
    NEEDS_CODE_SERVER,
    NEW_DOC,
    NEW_TEST,
    NEW_TEST_TEXT,
    OLD_DOC,
    STATS,
    STUB_BODY,
    agent_script,
    clear_notifications,
    confirm_refactor_preview,
    palette_command,
    pytest_in,
    refactor_preview,
    show_diff,
    start_run,
    title_action,
    two_hunk_script,
    vsix,
    wait_for_proposal,
    workbench,
    workspace,
)
from tests.fakes.anthropic_server import (
    FakeAnthropic,
)

__all__ = ["vsix", "workspace"]  # the fixtures, imported for pytest

pytestmark = NEEDS_CODE_SERVER


def test_implement_from_the_light_bulb_diff_accept_preview_writes_the_files(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    original = (workspace / STATS).read_text()
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "init")
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script(first_delay=2.0))
        with workbench(request, vsix, workspace, tmp_path, {**fake.env(), **GIT_ID}) as wb:
            how = start_run(wb)
            assert how == "click on the light bulb", how
            wait_for_proposal(wb)
            assert (workspace / STATS).read_text() == original  # nothing written before Accept
            show_diff(wb)
            # Apply on the preview as it opens (nothing ticked): nothing changes, and the extension says so.
            title_action(wb, "Accept Proposal")
            apply = refactor_preview(wb).locator(".monaco-button", has_text=re.compile("^Apply$"))
            wb.wait("the refactor preview", lambda: apply.first.is_visible(), timeout=60)
            apply.first.click()
            not_applied = wb.page.locator(".notification-toast", has_text="was not applied")
            wb.wait("the message that nothing was applied", lambda: not_applied.count(), timeout=30)
            wb.page.wait_for_timeout(1500)  # a second message about it would be there by now
            wb.shot("nothing-ticked-not-applied")
            # Said once (the server's note and the extension's own were two toasts), in VS Code's terms.
            said = [t for t in wb.notifications() if "was not applied" in t]
            assert len(said) == 1, said
            assert "tick the files" in said[0], said
            assert "1 proposal" in wb.status_bar()
            assert (workspace / STATS).read_text() == original
            # Accept and Commit: the proposal's subject in an input box, edited; Enter; then the preview.
            title_action(wb, "Accept and Commit Proposal")
            box = wb.page.locator(".quick-input-widget input")
            wb.wait("the commit message box", lambda: box.first.is_visible(), timeout=30)
            offered = box.first.input_value()
            wb.shot("commit-message")
            box.first.fill("feat(stats): implement mean (from VS Code)")
            wb.page.keyboard.press("Enter")
            ticked = confirm_refactor_preview(wb)
            print("refactor preview as opened:", ticked)
            expected = original.replace(STUB_BODY, GOOD_BODY)
            wb.wait("the implementation on disk", lambda: (workspace / STATS).read_text() == expected)
            wb.wait("the new test on disk", lambda: (workspace / NEW_TEST).read_text() == NEW_TEST_TEXT)
            wb.wait("the proposal gone from the status bar", lambda: "proposal" not in wb.status_bar())
            wb.shot("accepted")
            wb.wait("the commit", lambda: "implement mean" in git(workspace, "log", "-1", "--format=%s"))
    assert offered.strip() and offered != "init"
    assert git(workspace, "log", "-1", "--format=%s").strip() == "feat(stats): implement mean (from VS Code)"
    assert sorted(git(workspace, "show", "--name-only", "--format=", "HEAD").split()) == [STATS, NEW_TEST]
    tests = pytest_in(workspace)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "passed" in tests.stdout


def test_reject_from_the_notification_leaves_every_file_untouched_then_accept_one_file_of_two(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script(), *agent_script())
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            start_run(wb)
            wait_for_proposal(wb)
            wb.toast_button("Reject").click()
            wb.wait("the proposal gone from the status bar", lambda: "proposal" not in wb.status_bar())
            wb.page.wait_for_timeout(2000)
            wb.shot("rejected")
            assert "raise NotImplementedError" in wb.editor_text()
            files = [p for p in workspace.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            after = {p: p.read_bytes() for p in files}
            assert after == {p: b for p, b in before.items() if "__pycache__" not in p.parts}
            assert not (workspace / NEW_TEST).exists()
            # A second run in the same window, reviewed per file: the stub's hunk accepted, the new test
            # file's rejected; only the first reaches the disk.
            start_run(wb)
            wait_for_proposal(wb)
            show_diff(wb)
            title_action(wb, "Accept This File")
            confirm_refactor_preview(wb)
            expected = original.replace(STUB_BODY, GOOD_BODY)
            wb.wait("the implementation on disk", lambda: (workspace / STATS).read_text() == expected)
            wb.wait(
                "the rest of the proposal shown again",
                lambda: wb.page.locator(".tabs-container .tab", has_text="test_mean_more.py (new)").count(),
            )
            wb.page.locator(".tabs-container .tab", has_text="test_mean_more.py (new)").first.click()
            assert "1 proposal" in wb.status_bar()
            title_action(wb, "Reject This File")
            wb.wait("the proposal gone from the status bar", lambda: "proposal" not in wb.status_bar())
            wb.shot("one-file-accepted-one-rejected")
    assert (workspace / STATS).read_text() == original.replace(STUB_BODY, GOOD_BODY)
    assert not (workspace / NEW_TEST).exists()


def test_text_typed_during_the_run_is_kept_rebased_or_refused_with_the_message(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    original = (workspace / STATS).read_text()
    user_line = "# typed while the agent worked"
    typed = threading.Event()
    with FakeAnthropic() as fake:
        # The model's first reply waits for the typing (it waited a fixed 8 s, a margin for a slow machine).
        fake.enqueue(*agent_script(first_after=typed))
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            start_run(wb)
            wb.wait("the run in the status bar", lambda: "Implement `mean`" in wb.status_bar(), timeout=60)
            wb.page.locator(".monaco-editor .view-lines").first.click()
            wb.page.keyboard.press("Control+Home")
            wb.page.keyboard.type(user_line)
            wb.page.keyboard.press("Enter")
            wb.shot("typed-during-run")
            typed.set()
            wait_for_proposal(wb)
            wb.toast_button("Accept").click()
            refused = wb.page.locator(".notification-toast", has_text="was not applied")
            preview = refactor_preview(wb)
            outcome = wb.wait(
                "the refactor preview (rebased) or the refusal",
                lambda: "refused" if refused.count() else "rebased" if preview.count() else None,
                timeout=60,
            )
            if outcome == "rebased":
                confirm_refactor_preview(wb)
                wb.wait(
                    "the implementation in the editor",
                    lambda: "sum(values) / len(values)" in wb.editor_text(),
                )
                wb.shot("rebased")
                text_now = wb.editor_text()
                assert text_now.startswith(user_line), text_now[:200]
                wb.page.keyboard.press("Control+s")
                wb.wait(
                    "the file saved",
                    lambda: (
                        (workspace / STATS).read_text()
                        == f"{user_line}\n{original}".replace(STUB_BODY, GOOD_BODY)
                    ),
                )
            else:
                wb.shot("refused")
                message = refused.first.inner_text()
                assert "not applied" in message, message
                assert user_line in wb.editor_text()
                assert (workspace / STATS).read_text() == original


def test_accept_hunk_at_cursor_takes_the_hunk_under_the_cursor_after_lines_were_typed_above_it(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    original = (workspace / STATS).read_text()
    lines = original.splitlines()
    # As many lines as the stub's hunk sits below the docstring's: typed above both, they bring the
    # docstring's hunk to where the server's own numbers put the stub's (the wrong hunk, if they were used).
    # The server rebases the proposal onto them (they touch neither hunk).
    typed = [f"# note {i}" for i in range(lines.index(STUB_BODY.rstrip("\n")) - lines.index(OLD_DOC))]
    with FakeAnthropic() as fake:
        fake.enqueue(*two_hunk_script())
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            start_run(wb)
            wait_for_proposal(wb)
            clear_notifications(wb)
            palette_command(wb, "agentls: Show Proposal Diff")
            wb.wait("the diff tab", lambda: wb.page.locator(".monaco-diff-editor").first.is_visible())
            wb.wait("the proposal's text in the diff", lambda: NEW_DOC in wb.diff_text())
            # Typed in the file while its diff is open: the tab follows (both sides), as Accept would apply.
            wb.open_file(STATS)
            wb.page.keyboard.press("Control+Home")
            wb.page.keyboard.type("".join(f"{line}\n" for line in typed))
            wb.page.wait_for_timeout(1500)  # VS Code sends didChange after a pause in typing
            wb.shot("typed-above-the-hunks")
            wb.page.locator(".tabs-container .tab", has_text="stats.py ↔").first.click()
            modified = wb.page.locator(".monaco-diff-editor .editor.modified")
            wb.wait(
                "the typed lines on the proposal's side of the diff",
                lambda: all(
                    modified.locator(".view-line", has_text=re.compile(rf"^#\snote\s{i}$")).count()
                    for i in range(len(typed))
                ),
                timeout=20,
            )
            wb.shot("diff-follows-the-typed-lines")
            assert NEW_DOC in wb.diff_text()
            # The cursor on the new docstring, on the proposal's side of the diff.
            modified.locator(".view-line", has_text="both included").first.click()
            wb.shot("cursor-on-the-docstring-hunk")
            palette_command(wb, "agentls: Accept Hunk at Cursor")
            confirm_refactor_preview(wb)
            wb.wait(
                "the file saved with the docstring's hunk", lambda: NEW_DOC in (workspace / STATS).read_text()
            )
            wb.wait(
                "the rest of the proposal shown again",
                lambda: "sum(values) / len(values)" in wb.diff_text() and OLD_DOC not in wb.diff_text(),
            )
            wb.shot("docstring-hunk-accepted")
            assert "1 proposal" in wb.status_bar()
    typed_text = "".join(f"{line}\n" for line in typed)
    assert (workspace / STATS).read_text() == typed_text + original.replace(OLD_DOC, NEW_DOC)
