"""Three-way rebase of a proposal onto a document the user edited during the run."""

from __future__ import annotations

import random

from agent.merge import rebase

BASE = "".join(f"line {i}\n" for i in range(1, 21))


def _replace(text: str, line: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line - 1] = new
    return "".join(lines)


def test_trivial_cases() -> None:
    proposed = _replace(BASE, 3, "agent\n")
    assert rebase(BASE, BASE, proposed).text == proposed
    assert rebase(BASE, proposed, proposed).text == proposed
    user = _replace(BASE, 5, "user\n")
    assert rebase(BASE, user, BASE).text == user


def test_edits_on_different_lines_combine() -> None:
    user = _replace(BASE, 2, "user edit\n")
    proposed = _replace(BASE, 15, "agent edit\n")
    result = rebase(BASE, user, proposed)
    assert result.ok and result.conflicts == ()
    assert result.text == _replace(_replace(BASE, 2, "user edit\n"), 15, "agent edit\n")


def test_user_inserting_lines_shifts_the_agent_hunk() -> None:
    user = BASE.replace("line 3\n", "line 3\nnew a\nnew b\n")
    proposed = BASE.replace("line 10\n", "line ten\n").replace("line 20\n", "")
    result = rebase(BASE, user, proposed)
    assert result.ok
    assert result.text == user.replace("line 10\n", "line ten\n").replace("line 20\n", "")


def test_adjacent_line_changes_combine() -> None:
    user = _replace(BASE, 4, "user\n")
    proposed = _replace(BASE, 5, "agent\n")
    result = rebase(BASE, user, proposed)
    assert result.ok and result.text == _replace(user, 5, "agent\n")


def test_the_same_change_on_both_sides_is_taken_once() -> None:
    both = _replace(BASE, 7, "same\n")
    proposed = _replace(both, 12, "agent only\n")
    result = rebase(BASE, both, proposed)
    assert result.ok and result.text == proposed


def test_overlapping_edits_conflict_and_return_no_text() -> None:
    user = _replace(BASE, 8, "user\n")
    proposed = _replace(_replace(BASE, 8, "agent\n"), 18, "agent far away\n")
    result = rebase(BASE, user, proposed)
    assert not result.ok and result.text is None
    assert result.conflicts == ((8, 8),)
    assert "8" in result.message and "left as it is" in result.message


def test_conflict_lines_are_in_the_users_text() -> None:
    user = BASE.replace("line 2\n", "a\nb\nc\n").replace("line 10\n", "user ten\nuser ten bis\n")
    proposed = BASE.replace("line 10\n", "agent ten\n")
    result = rebase(BASE, user, proposed)
    assert not result.ok
    # line 10 of the base is at line 12 of the user's text (two more lines above), and spans two lines.
    assert result.conflicts == ((12, 13),)


def test_insertions_at_the_same_place_conflict() -> None:
    user = BASE.replace("line 5\n", "line 5\nuser\n")
    proposed = BASE.replace("line 5\n", "line 5\nagent\n")
    result = rebase(BASE, user, proposed)
    assert not result.ok and result.conflicts == ((6, 6),)


def test_crlf_and_missing_final_newline_are_kept() -> None:
    base = "a\r\nb\r\nc\r\nd"
    user = "a\r\nB\r\nc\r\nd"
    proposed = "a\r\nb\r\nc\r\nd!"
    assert rebase(base, user, proposed).text == "a\r\nB\r\nc\r\nd!"


def test_random_non_overlapping_edits_always_merge_and_keep_both() -> None:
    rng = random.Random(7)
    for _ in range(300):
        lines = [f"l{i}\n" for i in range(rng.randint(6, 40))]
        base = "".join(lines)
        cut = rng.randint(2, len(lines) - 3)
        # the user edits strictly above `cut - 1`, the agent strictly below `cut + 1`
        user_lines, agent_lines = list(lines), list(lines)
        ui = rng.randrange(0, cut - 1)
        user_lines[ui] = f"user {ui}\n"
        ai = rng.randrange(cut + 1, len(lines))
        agent_lines[ai] = f"agent {ai}\n"
        if rng.random() < 0.5:
            user_lines.insert(ui, "user inserted\n")
        result = rebase(base, "".join(user_lines), "".join(agent_lines))
        assert result.ok, result
        assert result.text is not None
        assert f"user {ui}\n" in result.text and f"agent {ai}\n" in result.text
        assert result.text.count("\n") == len(user_lines)


def test_random_edits_never_lose_the_users_text() -> None:
    rng = random.Random(11)
    for _ in range(300):
        base_lines = [f"b{i}\n" for i in range(rng.randint(1, 15))]
        user_lines, agent_lines = list(base_lines), list(base_lines)
        for target, tag in ((user_lines, "u"), (agent_lines, "a")):
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(target) + 1)
                if rng.random() < 0.5 and i < len(target):
                    target[i] = f"{tag}{rng.randint(0, 99)}\n"
                else:
                    target.insert(i, f"{tag}+{rng.randint(0, 99)}\n")
        user = "".join(user_lines)
        result = rebase("".join(base_lines), user, "".join(agent_lines))
        if result.ok:
            assert result.text is not None
            for line in user_lines:
                if line not in base_lines:
                    assert line in result.text  # every line the user wrote survives
        else:
            assert result.text is None and result.conflicts
            for start, end in result.conflicts:
                assert 1 <= start <= end <= max(1, len(user_lines) + 1)
