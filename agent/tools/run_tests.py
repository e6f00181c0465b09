"""`run_tests`: the workspace's tests, run in the sandbox on the agent's current overlay.

Input: `symbol` (run the test files that reference it), `path` (a test file or folder, or a pytest node
id ``tests/test_x.py::test_y``, which pytest runs whatever the suite command is), or nothing (the
project's test command: `AgentSettings.test_command`, else the detected one). The work is done by
`agent.verify.Verifier`, so tests run on a throwaway copy of the overlay and nothing they write becomes
part of the proposal. The result is the verdict, one line per command and the tail of each failing
command's output; failing tests are a normal result (not `is_error`), a run that could not start (no test
command, a timeout) is an error. `on_result` lets the loop record each run as a verification. The tests
run on a throwaway copy, so the tool is read-only: it never changes the overlay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent.paths import PathRefused
from agent.sandbox import SandboxUnavailable
from agent.tools import CustomTool, ToolAbort, ToolError, ToolResult
from agent.verify import VerificationResult, Verifier

__all__ = ["RunTestsTool"]


class RunTestsTool(CustomTool):
    """`run_tests` through a `Verifier`."""

    name = "run_tests"
    description = (
        "Run the workspace's tests in the sandbox on your current changes. Give `symbol` to run "
        "the test files that reference it, `path` for a test file or folder, or nothing to run "
        "the project's whole test command. Returns pass/fail and the output of failures."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "symbol": {
                "type": "string",
                "description": "Run the test files that reference this function, method or class.",
            },
            "path": {
                "type": "string",
                "description": "A test file or folder to run (workspace-relative), or a pytest node id "
                "(`tests/test_x.py::test_y`).",
            },
        },
        "additionalProperties": False,
    }

    def __init__(
        self,
        verifier: Verifier,
        *,
        max_output_chars: int = 12_000,
        on_result: Callable[[VerificationResult], None] | None = None,
    ) -> None:
        self.verifier = verifier
        self.max_output_chars = max_output_chars
        self.on_result = on_result

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`run_tests: SYMBOL`, `run_tests: PATH` or `run_tests: all`."""
        return f"run_tests: {input.get('symbol') or input.get('path') or 'all'}"

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Run the tests and report."""
        symbol = str(input.get("symbol") or "").strip() or None
        path = str(input.get("path") or "").strip() or None
        try:
            result = self.verifier.run_tests(symbol=symbol, path=path)
        except PathRefused as error:
            raise ToolError(str(error)) from None
        except SandboxUnavailable as error:
            raise ToolAbort(str(error)) from error
        if self.on_result is not None:
            self.on_result(result)
        if not result.checks:
            raise ToolError("No tests were run: " + ("; ".join(result.notes) or "nothing to run") + ".")
        text = result.feedback(self.max_output_chars) if not result.passed else result.summary()
        timed_out = any(check.timed_out for check in result.checks)
        return ToolResult(text, is_error=timed_out)
