"""`agentls implement FILE:LINE` on a C file, against the fake Anthropic server, verified by `make test`.

Everything is real: the index, the overlay, bubblewrap, gcc and make in the sandbox, the verification.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from tests.agent.agent_harness import done, replace, view
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text, turn

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not (shutil.which("make") and shutil.which("cc") and shutil.which("bwrap")),
        reason="needs make, a C compiler and bubblewrap",
    ),
]

CLAMP_C = """\
#include "clamp.h"

/**
 * clamp() - Limit @value to the range [@lo, @hi].
 * Return: @lo when @value is below it, @hi when above, else @value.
 */
int clamp(int value, int lo, int hi)
{
\treturn 0;
}
"""
STUB = "\treturn 0;\n"
BODY = "\tif (value < lo)\n\t\treturn lo;\n\treturn value > hi ? hi : value;\n"

FILES = {
    "clamp.c": CLAMP_C,
    "clamp.h": "int clamp(int value, int lo, int hi);\n",
    "test_clamp.c": (
        '#include <assert.h>\n#include "clamp.h"\n\n'
        "int main(void)\n{\n\tassert(clamp(5, 0, 3) == 3);\n\tassert(clamp(-1, 0, 3) == 0);\n"
        "\tassert(clamp(2, 0, 3) == 2);\n\treturn 0;\n}\n"
    ),
    "Makefile": "test: clamp.c test_clamp.c\n\tcc -o /tmp/t clamp.c test_clamp.c && /tmp/t\n",
    "agentls.toml": "[agent]\nmax_steps = 10\n\n[agent.sandbox]\ntimeout_seconds = 20\n",
}


def test_implement_a_c_stub_from_its_doc_comment(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, content in FILES.items():
        (ws / name).write_text(content)
    env = {
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "ANTHROPIC_AUTH_TOKEN": "",
    }
    fake_anthropic.enqueue(
        turn(text("Plan: write the body."), view("clamp.c")),
        replace(STUB, BODY, path="clamp.c"),
        done("Implemented `clamp`."),
    )
    line = CLAMP_C.splitlines().index("int clamp(int value, int lo, int hi)") + 1
    result = CliRunner().invoke(main, ["implement", f"{ws}/clamp.c:{line}"], env=env, catch_exceptions=False)

    assert "Implement `clamp` in clamp.c" in result.stderr
    prompt = str(fake_anthropic.message_requests[0].body["messages"][0]["content"])
    assert "# Task: implement `clamp`" in prompt and "Limit @value to the range" in prompt
    assert "+\treturn value > hi ? hi : value;" in result.stdout
    assert "tests test suite: passed" in result.stderr, result.stderr
    (transcript,) = (tmp_path / "cache" / "runs").glob("*.jsonl")
    assert "make test" in transcript.read_text()  # the suite the verification ran
    assert result.exit_code == 0, result.output
    assert (ws / "clamp.c").read_text() == CLAMP_C  # nothing written without --apply
