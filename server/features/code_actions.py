"""Code actions that start agent runs: building them from a document's outline is cheap and pure.

Listing never runs the agent and never touches the index: each action only carries the `agentls.*` command
(with its arguments) that starts the run when the user picks it.

- ``refactor.rewrite.agentls.implement`` on a stub function with a doc comment, when the requested range
  touches it (doc comment and decorators included);
- ``quickfix.agentls.fix`` when the client sends diagnostics for the range;
- ``refactor.agentls.tests`` on the function at the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lsprotocol import types

from agent.testfinder import is_test_function
from server.features.analysis import Outline
from server.features.commands import FIX, IMPLEMENT, WRITE_TESTS

__all__ = [
    "CODE_ACTION_KINDS",
    "KIND_FIX",
    "KIND_IMPLEMENT",
    "KIND_TESTS",
    "fix_actions",
    "implement_actions",
    "tests_actions",
    "wanted",
]

KIND_IMPLEMENT = "refactor.rewrite.agentls.implement"
KIND_FIX = "quickfix.agentls.fix"
KIND_TESTS = "refactor.agentls.tests"
CODE_ACTION_KINDS: tuple[str, ...] = (KIND_IMPLEMENT, KIND_FIX, KIND_TESTS)

_MAX_TITLE_MESSAGE = 60


def wanted(kind: str, only: Sequence[str] | None) -> bool:
    """Whether `kind` passes the client's ``context.only`` filter (kinds are dot-separated hierarchies)."""
    if not only:
        return True
    return any(kind == o or kind.startswith(f"{o}.") for o in only)


def _lines(range_: types.Range) -> tuple[int, int]:
    """1-based inclusive lines of a range (an end at column 0 of a later line does not include it)."""
    start = range_.start.line + 1
    end = range_.end.line + 1
    if range_.end.line > range_.start.line and range_.end.character == 0:
        end -= 1
    return start, max(start, end)


def _position(line: int, character: int = 0) -> dict[str, int]:
    return {"line": line, "character": character}


def implement_actions(uri: str, outline: Outline, range_: types.Range) -> list[types.CodeAction]:
    """ "Implement `NAME` with agentls" for every stub the range touches."""
    first, last = _lines(range_)
    actions = []
    for stub in outline.stubs:
        if stub.start_line <= last and first <= stub.end_line:
            title = f"Implement `{stub.name}` with agentls"
            # The stub's last line is inside the function itself (not its doc comment above), so the
            # command finds this very function whatever the cursor was on.
            argument = {"uri": uri, "position": _position(stub.end_line - 1)}
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=KIND_IMPLEMENT,
                    command=types.Command(title=title, command=IMPLEMENT, arguments=[argument]),
                    data={"symbol": stub.symbol},
                )
            )
    return actions


def tests_actions(uri: str, outline: Outline, range_: types.Range) -> list[types.CodeAction]:
    """ "Write tests for `NAME` with agentls" on the innermost function at the cursor (not on tests)."""
    function = outline.function_at(range_.start.line + 1)
    if function is None or is_test_function(function.name):
        return []
    title = f"Write tests for `{function.name}` with agentls"
    argument = {"uri": uri, "position": _position(range_.start.line, range_.start.character)}
    return [
        types.CodeAction(
            title=title,
            kind=KIND_TESTS,
            command=types.Command(title=title, command=WRITE_TESTS, arguments=[argument]),
            data={"symbol": function.symbol},
        )
    ]


def _union(ranges: Sequence[types.Range]) -> types.Range:
    start = min((r.start for r in ranges), key=lambda p: (p.line, p.character))
    end = max((r.end for r in ranges), key=lambda p: (p.line, p.character))
    return types.Range(start=start, end=end)


def fix_actions(
    uri: str,
    diagnostics: Sequence[types.Diagnostic],
    unstructure: Callable[[Any], Any],
) -> list[types.CodeAction]:
    """ "Fix with agentls" for the diagnostics the client reported in the range."""
    relevant = [d for d in diagnostics if d.source != "agentls"]
    if not relevant:
        return []
    if len(relevant) == 1:
        message = relevant[0].message.strip().splitlines()[0] if relevant[0].message.strip() else ""
        if len(message) > _MAX_TITLE_MESSAGE:
            message = message[: _MAX_TITLE_MESSAGE - 3] + "..."
        title = f"Fix with agentls: {message}" if message else "Fix with agentls"
    else:
        title = f"Fix {len(relevant)} problems with agentls"
    argument = {
        "uri": uri,
        "range": unstructure(_union([d.range for d in relevant])),
        "diagnostics": [unstructure(d) for d in relevant],
    }
    return [
        types.CodeAction(
            title=title,
            kind=KIND_FIX,
            diagnostics=list(relevant),
            command=types.Command(title=title, command=FIX, arguments=[argument]),
        )
    ]
