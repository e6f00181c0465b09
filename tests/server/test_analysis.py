"""Document outlines for code actions, and carrying them over an edit while the new parse runs."""

from __future__ import annotations

import pytest

from server.features.analysis import _line_change, carry_over, outline

SOURCE = '''import os


def done(x):
    """Finished."""
    return x + 1


def todo(x):
    """Do the thing."""
    raise NotImplementedError


def last():
    return 3
'''


def test_outline_finds_functions_and_documented_stubs() -> None:
    result = outline("/abs/pkg/mod.py", SOURCE)
    assert result.language == "python"
    assert [(f.name, f.start_line, f.end_line) for f in result.functions] == [
        ("done", 4, 6),
        ("todo", 9, 11),
        ("last", 14, 15),
    ]
    assert [s.name for s in result.stubs] == ["todo"]
    assert outline("mod.pyi", SOURCE).stubs == ()
    assert outline("notes.txt", SOURCE).functions == ()


def test_carry_over_moves_untouched_functions_and_refuses_touched_ones() -> None:
    before = outline("m.py", SOURCE)
    edited = SOURCE.replace("import os\n", "import os\nimport sys\nimport re\n")  # 2 lines added at line 2
    change = _line_change(SOURCE, edited)
    assert (change.start, change.old_end, change.new_end) == (2, 1, 3)
    fresh = outline("m.py", edited)
    carried = carry_over(before, change, 11, 11)  # inside `todo`, now lines 11-13
    assert carried is not None
    assert carried.functions == fresh.functions and carried.stubs == fresh.stubs
    assert carry_over(before, change, 2, 2) is None  # on the edit itself
    between = carry_over(before, change, 9, 9)  # between two untouched functions
    assert between is not None and between.function_at(9) is None and fresh.function_at(9) is None

    body_edit = SOURCE.replace("raise NotImplementedError", "return x * 2")
    change = _line_change(SOURCE, body_edit)
    assert carry_over(before, change, 10, 10) is None  # `todo` itself changed: it may be no stub now
    kept = carry_over(before, change, 5, 5)  # `done` is untouched and before the edit
    assert kept is not None and kept.function_at(5) is not None
    assert [s.name for s in kept.stubs] == []  # the changed stub is dropped, not guessed
    after = carry_over(before, change, 15, 15)
    assert after is not None and after.function_at(15) is not None and after.function_at(15).name == "last"


async def test_outline_cache_parses_each_version_once_whatever_the_version_order() -> None:
    from server.features.analysis import OutlineCache

    cache = OutlineCache()
    try:
        first = await cache.get("file:///m.py", 3, "/m.py", SOURCE)
        assert [s.name for s in first.stubs] == ["todo"]
        assert cache.cached("file:///m.py", 3) is first
        # A client that lowers the version (a reopened document) still gets a cached answer afterwards.
        edited = SOURCE.replace("raise NotImplementedError", "return 1")
        lowered = await cache.get("file:///m.py", 2, "/m.py", edited, (10, 10))
        assert lowered.stubs == ()
        assert cache.cached("file:///m.py", 2) is lowered
    finally:
        cache.shutdown()


async def test_a_parse_dropped_by_the_end_of_the_server_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """The server ends (`shutdown`) while a document is parsed: the parse is dropped, which is no error.
    It was logged as "the analysis process died", an ERROR line on stderr at every quick exit."""
    import asyncio
    import contextlib
    import logging

    from server.features.analysis import OutlineCache

    cache = OutlineCache()
    big = SOURCE * 20_000  # seconds of parsing, so it is still running when the pool ends
    try:
        await cache.get("file:///warm.py", 1, "/warm.py", SOURCE)  # the process is up and idle
        with caplog.at_level(logging.DEBUG, logger="server.features.analysis"):
            pending = cache.start("file:///big.py", 1, "/big.py", big)
            await asyncio.sleep(0.5)  # the idle process takes the job at once
            cache.shutdown(wait=False)
            with contextlib.suppress(asyncio.CancelledError):  # had it still been queued: cancelled
                await pending
    finally:
        cache.shutdown()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
