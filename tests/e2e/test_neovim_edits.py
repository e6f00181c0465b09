"""The Neovim plugin's text and edits, end to end (tests/e2e/nvim_harness.py): text typed during a run, the
encodings and line endings the buffer holds, edits in other buffers, and workspace edits the server sends.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, done, replace, view
from tests.e2e.nvim_harness import (
    LABEL_PROPOSED,
    LABEL_TYPED,
    NEW_TEST,
    NEW_TEST_TEXT,
    STATS,
    SUMMARY,
    agent_script,
    nvim,
    run_nvim,
    viewed_text,
    workspace,
)
from tests.fakes.anthropic_server import FakeAnthropic, text, turn

__all__ = ["nvim", "workspace"]  # the fixtures, imported for pytest


def test_text_typed_during_the_run_is_kept(workspace: Path, tmp_path: Path, nvim: str) -> None:
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script(first_delay=3.0))
        result = run_nvim(
            nvim,
            "agent_run.lua",
            workspace,
            tmp_path,
            env={**fake.env(), "AGENTLS_NVIM_MODE": "edit_during_run"},
        )

    user_line = result["user_line"]
    edited = f"{user_line}\n{original}"
    assert result["buffers_during_run"][STATS]["text"] == edited
    stats_after = result["buffers_after"][STATS]["text"]
    # The user's line survives whatever happened to the proposal.
    assert stats_after.startswith(user_line + "\n")
    if result["proposal_status"] == "accepted":
        # Rebased onto the edited buffer: the user's line and the implementation, written.
        assert stats_after == edited.replace(STUB_BODY, GOOD_BODY)
        assert result["disk_after"][STATS] == stats_after
        assert result["disk_after"][NEW_TEST] == NEW_TEST_TEXT
    else:
        # Refused with a message saying why; nothing applied, the edit still unsaved in the buffer.
        assert any("not applied" in m for m in result["messages"]), result["messages"]
        assert stats_after == edited
        assert result["disk_after"] == {STATS: original, NEW_TEST: None}


def test_typing_after_an_emoji_reaches_the_server_as_the_buffer_holds_it(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """Neovim sends each keystroke as a ranged change, in the encoding the server chose (0.7: UTF-16, where
    an emoji is two units; 0.12: what it offered). A line with an emoji is typed, then the word after the
    emoji changed and more typed after it; the run's view of the file (the server's copy of the buffer) must
    be the buffer, its edit of that line must match it, and the accepted edit must land after the emoji."""
    original = (workspace / STATS).read_text()
    imports = "from __future__ import annotations\n"
    typed = original.replace(imports, imports + LABEL_TYPED + "\n")
    with FakeAnthropic() as fake:
        fake.enqueue(
            turn(text("Spec: `mean` averages; the label gets a second '!'."), view()),
            replace(LABEL_TYPED, LABEL_PROPOSED),
            replace(STUB_BODY, GOOD_BODY),
            done(SUMMARY),
        )
        env = {**fake.env(), "AGENTLS_NVIM_MODE": "type_after_emoji"}
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        viewed = viewed_text(fake.message_requests[1].body)
        replaced = json.dumps(fake.message_requests[2].body["messages"][-1])

    assert result["buffers_during_run"][STATS]["text"] == typed
    assert viewed == typed
    assert '"is_error": true' not in replaced, replaced
    assert result["proposal_status"] == "accepted"
    expected = typed.replace(LABEL_TYPED, LABEL_PROPOSED).replace(STUB_BODY, GOOD_BODY)
    assert result["buffers_after"][STATS]["text"] == expected
    assert result["disk_after"][STATS] == expected


def test_an_edit_in_another_buffer_just_before_a_run_reaches_the_server_first(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A line typed in tests/test_stats.py, then at once :AgentlsTask in mathx/stats.py: Neovim holds the
    other buffer's didChange back ~150 ms, and the run command flushed only its own buffer's, so the run
    began on the old text (on 0.7 an accept then refused: "you changed tests/test_stats.py since the run
    began"). Every buffer's pending changes are sent before the run command."""
    original = (workspace / STATS).read_text()
    with FakeAnthropic() as fake:
        fake.enqueue(turn(text("Read the tests first."), view("tests/test_stats.py")), *agent_script()[1:])
        env = {
            **fake.env(),
            "AGENTLS_NVIM_MODE": "edit_other_buffer",
            "AGENTLS_NVIM_TRIGGER": "task",
            "AGENTLS_NVIM_TASK": "implement mean",
        }
        result = run_nvim(nvim, "agent_run.lua", workspace, tmp_path, env=env)
        viewed = json.dumps(fake.message_requests[1].body["messages"][-1])

    # The agent's view of the other file (the run's snapshot of the open buffers) holds the user's line.
    assert "test_mean_of_several_numbers" in viewed
    assert json.dumps(result["other_line"])[1:-1] in viewed
    assert result["proposal_status"] == "accepted"
    assert result["disk_after"] == {STATS: original.replace(STUB_BODY, GOOD_BODY), NEW_TEST: NEW_TEST_TEXT}
    assert result["other_after"].startswith(result["other_line"] + "\n")


def test_apply_edit_is_all_or_nothing_and_writes_only_what_it_touched(tmp_path: Path, nvim: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("one\ntwo\n")
    (root / "b.txt").write_text("bee\n")
    (root / "e.txt").write_text("renamed\n")
    (root / "g.txt").write_text("deleted\n")
    result = run_nvim(
        nvim, "apply_edit.lua", root, tmp_path, setup={"cmd": ["agentls-not-started"], "filetypes": ["none"]}
    )

    # A version behind the buffer's: refused whole, with the reason; nothing changed or created.
    assert result["stale"]["applied"] is False
    assert "a.txt" in result["stale"]["failureReason"] and "version 7" in result["stale"]["failureReason"]
    assert result["after_stale"] == {"a": ["ONE", "two"], "a_modified": True, "created": False}
    # The current version: applied on top of the unsaved text, the new file (and its folders) made.
    assert result["ok"] == {"applied": True}
    assert result["a"] == ["ONE", "2"]
    assert result["c"] == ["hello", "world"]
    assert result["disk"]["a"] == "ONE\n2\n"
    assert result["disk"]["c"] == "hello\nworld\n"  # no blank line added at the end
    assert not result["a_modified"] and not result["c_modified"]
    assert sorted(Path(p).name for p in result["written"]) == ["a.txt", "c.txt"]
    # b.txt was not part of the edit: its unsaved change stays unsaved.
    assert result["b_modified"] is True
    assert result["disk"]["b"] == "bee\n"
    # Not written on accept: the new file is a modified buffer for the user to :write, not 0 bytes on disk.
    assert result["unsaved"] == {"applied": True}
    assert result["d"] == ["dee"] and result["d_modified"] is True and result["d_on_disk"] is False
    # A rename and a delete: both applied, and the message counts both files (it said "1 file(s)").
    assert result["moved"] == {"applied": True}
    assert result["moved_disk"] == {"e": None, "f": "renamed\n", "g": None}
    assert result["moved_messages"] == ["move: applied to 2 file(s)"]


def test_fix_sends_another_servers_diagnostic_in_agentls_encoding(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A diagnostic of another server (UTF-16) on a line with é, € and an emoji: the range :AgentlsFix
    sends is in the encoding agentls chose (UTF-32 on current Neovims), not the other server's."""
    with FakeAnthropic() as fake:  # no script: the run it starts fails at once
        result = run_nvim(nvim, "fix_other_server.lua", workspace, tmp_path, env=fake.env())

    start, end = {"utf-16": (13, 27), "utf-32": (12, 26), "utf-8": (18, 32)}[result["encoding"]]
    expected = {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": end}}
    sent = result["sent"]
    assert sent["range"] == expected
    assert [d["range"] for d in sent["diagnostics"]] == [expected]
    diagnostic = sent["diagnostics"][0]
    assert (diagnostic["message"], diagnostic["source"], diagnostic["code"]) == (
        "undefined name",
        "otherls",
        "F821",
    )


def test_a_dos_file_accepted_in_neovim_stays_crlf(workspace: Path, tmp_path: Path, nvim: str) -> None:
    """A "\\r\\n" file (a `fileformat=dos` buffer): the agent's edit, written with "\\n" as the model sees
    the file, applies, and after the accept the file on disk is still "\\r\\n" on every line."""
    stats = workspace / STATS
    stats.write_bytes(stats.read_bytes().replace(b"\n", b"\r\n"))
    original = stats.read_bytes()
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "accept"}
        )
    assert result["proposal_status"] == "accepted"
    assert "+    return sum(values) / len(values)" in "\n".join(result["preview_lines"])
    crlf = GOOD_BODY.replace("\n", "\r\n").encode()
    assert stats.read_bytes() == original.replace(STUB_BODY.replace("\n", "\r\n").encode(), crlf)


def test_a_mac_file_is_refused_until_neovim_splits_its_lines_then_each_hunk_is_its_own(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """A file whose lines end in a lone "\\r" (classic Mac OS), changed in two places. With Neovim's default
    'fileformats' it is one line with ^M in it while the server counts its lines: the accept appended the
    new body after that line (the file corrupted, part "\\n"); now the plugin says so and refuses the edit.
    Opened again with mac in 'fileformats' and run again, git's diff was still one line for the whole file
    in the preview, and `a` on it marked no hunk; each change is now its own lines with its own mark, and
    the one accepted lands alone."""
    stats = workspace / STATS
    stats.write_bytes(stats.read_bytes().replace(b"\n", b"\r"))
    original = stats.read_bytes().decode()
    clamp, swapped = "    return max(low, min(high, value))\n", "    return min(high, max(low, value))\n"
    with FakeAnthropic() as fake:
        for _ in range(2):  # refused, then run again once Neovim splits the lines
            fake.enqueue(turn(text("Implement mean."), view()), replace(STUB_BODY, GOOD_BODY))
            fake.enqueue(replace(clamp, swapped), done(SUMMARY))
        env = {
            **fake.env(),
            "AGENTLS_NVIM_ACCEPT_LINE": "+    return sum(values) / len(values)",
            "AGENTLS_NVIM_REJECT_LINE": "+" + swapped.rstrip("\n"),
        }
        result = run_nvim(nvim, "mac_lines.lua", workspace, tmp_path, env=env)

    assert result["opened"] == {"fileformat": "unix", "lines": 1}
    said = [m for m in result["messages"] if "lone \\r (classic Mac OS)" in m]  # on attach, then on accept
    assert len(said) == 2 and ":set fileformats+=mac and open it again" in said[0], result["messages"]
    assert result["refused"] == original
    assert result["reopened"] == {"fileformat": "mac", "lines": original.count("\r")}
    diff = result["preview_lines"][result["preview_lines"].index("--- a/mathx/stats.py") :]
    assert not [line for line in diff if "\r" in line], diff
    assert "-    raise NotImplementedError" in diff and "-" + clamp.rstrip("\n") in diff
    assert result["marks"] == [
        {"line": "-" + clamp.rstrip("\n"), "mark": "<- reject"},
        {"line": "-    raise NotImplementedError", "mark": "<- accept"},
    ]
    expected = original.replace(STUB_BODY.replace("\n", "\r"), GOOD_BODY.replace("\n", "\r"))
    assert result["disk_after"] == expected and stats.read_bytes() == expected.encode()
