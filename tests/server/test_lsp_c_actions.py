"""C and C++ files get the agent's code actions through the real server, as the other languages do.

One `agentls serve` over stdio (VS Code's capabilities, lexical-only indexing) on a writable copy of
``tests/workspaces/stubs`` with a C and a C++ file added: "Implement" on stubs documented with
``/** */``, ``/* */`` or ``//`` comments, "Write tests" on every function, "Fix" on a diagnostic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.helpers import code_actions, initialize, lsp_server, open_document, stubs_workspace

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(120)

IMPLEMENT = "refactor.rewrite.agentls.implement"
TESTS = "refactor.agentls.tests"
FIX = "quickfix.agentls.fix"

RING_C = """\
#include <stddef.h>
#include "ring.h"

/**
 * ring_push() - Append @value to @ring.
 * Return: 0, or -ENOSPC when the ring is full.
 */
int ring_push(struct ring *ring, int value)
{
\treturn 0;
}

/* The number of values in @ring. */
size_t ring_len(const struct ring *ring)
{
\treturn (ring->head - ring->tail) % RING_SIZE;
}

// Drop every value of @ring.
void ring_clear(struct ring *ring)
{
}
"""

MATRIX_CPP = """\
namespace la {

class Matrix {
 public:
  /// The transpose of this matrix.
  Matrix transpose() const {
    // TODO
    return {};
  }
};

}  // namespace la
"""


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


async def test_c_and_cpp_get_implement_tests_and_fix_actions(lsp_server, stubs_workspace: Path) -> None:
    (stubs_workspace / "ring").mkdir()
    (stubs_workspace / "ring" / "ring.c").write_text(RING_C)
    (stubs_workspace / "ring" / "matrix.cpp").write_text(MATRIX_CPP)
    client: LanguageClient = await lsp_server()
    await initialize(client, stubs_workspace)
    uri = open_document(client, stubs_workspace / "ring" / "ring.c")

    found = await code_actions(client, uri, _line(RING_C, "Append @value"))  # inside the doc comment
    implement = [a for a in found if a.kind == IMPLEMENT]
    assert [a.title for a in implement] == ["Implement `ring_push` with agentls"]
    assert implement[0].command is not None and implement[0].command.command == "agentls.implement"
    assert [a.title for a in found if a.kind == TESTS] == ["Write tests for `ring_push` with agentls"]

    found = await code_actions(client, uri, _line(RING_C, "ring_clear(struct"))
    assert "Implement `ring_clear` with agentls" in [a.title for a in found]

    line = _line(RING_C, "ring->head")
    found = await code_actions(client, uri, line)  # a finished function: tests, no implement
    assert not [a for a in found if a.kind == IMPLEMENT]
    assert [a.title for a in found if a.kind == TESTS] == ["Write tests for `ring_len` with agentls"]

    diagnostic = types.Diagnostic(
        range=types.Range(types.Position(line, 9), types.Position(line, 13)),
        message="use of undeclared identifier 'RING_SIZE'",
        severity=types.DiagnosticSeverity.Error,
        source="clang",
    )
    found = await code_actions(client, uri, line, 10, diagnostics=[diagnostic])
    fixes = [a for a in found if a.kind == FIX]
    assert [a.title for a in fixes] == ["Fix with agentls: use of undeclared identifier 'RING_SIZE'"]

    cpp = open_document(client, stubs_workspace / "ring" / "matrix.cpp")
    found = await code_actions(client, cpp, _line(MATRIX_CPP, "transpose()"))
    assert "Implement `transpose` with agentls" in [a.title for a in found]
