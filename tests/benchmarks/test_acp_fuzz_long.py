"""The long ACP fuzz (issue 17, item 2): 4 seeds x 10,000 hostile lines against `agentls acp`, each ending
with the endpoint up, a valid ``session/new`` answered within a second, nothing written outside the
workspace and no traceback in its log. The short run (3,000 lines, one seed) is in the default suite
(tests/security/test_acp_fuzz.py).

Run: ``python -m pytest tests/benchmarks/test_acp_fuzz_long.py -m benchmark -s``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.test_acp_fuzz import _files, run_acp_fuzz, start_acp

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(1200)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_acp_fuzz_seeds(seed: int, tmp_path: Path) -> None:
    acp, ws = start_acp(tmp_path)
    try:
        outside = _files(acp.outside) | {f"home/{p}": b for p, b in _files(acp.home).items()}
        before = _files(ws)
        report, final = run_acp_fuzz(acp, ws, seed, 10_000)
        print(
            f"\nacp seed {seed}: {report.frames} frames ({report.bytes_sent / 1e6:.1f} MB), deaths "
            f"{report.deaths}, hangs {report.hangs}, {report.seconds:.1f} s, final probe {final}"
        )
        assert report.deaths == 0 and report.hangs == 0 and final is not None and final < 1.0
        assert _files(acp.outside) | {f"home/{p}": b for p, b in _files(acp.home).items()} == outside
        assert _files(ws) == before
        assert "Traceback (most recent call last)" not in acp.stderr()
    finally:
        acp.close()
