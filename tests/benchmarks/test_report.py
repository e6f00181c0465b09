"""`python -m tests.benchmarks.report` regenerates BENCHMARKS.md and keeps what was written by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import report


def _entry(key: str, measured: str, passed: bool) -> dict[str, object]:
    conditions = {
        "cpu": "cpu", "cores": 2, "memory_gib": 24, "os": "Linux", "python": "3.11", "packages": {},
        "commit": "abc1234", "load_average_1m": 0.5, "load_average_5m": 0.4,
    }  # fmt: skip
    return {
        "title": f"Title of {key}", "target": "<= 2x", "measured": measured, "passed": passed,
        "rerun": f"pytest {key}", "conditions": conditions, "measured_at": "2026-12-05T20:00:00Z",
        "command": "pytest", "details": ["a detail"],
    }  # fmt: skip


def test_the_summary_is_regenerated_and_the_hand_written_sections_are_kept(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"entries": {"index.lexical.django": _entry("django", "2.21x", False)}}))
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(
        "# Benchmarks\n\n## Summary\n\n| stale | 1.74x | yes | x |\n\n## Notes\n\n<!-- notes -->\n"
        "Analysis by hand.\n<!-- /notes -->\n\n## A session's measurements\n\nA table by hand.\n"
    )
    assert report.main(["--results", str(results), "--out", str(page)]) == 0
    text = page.read_text()
    assert "1.74x" not in text and "| 2.21x | **no** |" in text
    assert "<!-- notes -->\nAnalysis by hand.\n<!-- /notes -->" in text
    assert text.endswith("<!-- /notes -->\n\n## A session's measurements\n\nA table by hand.\n")
