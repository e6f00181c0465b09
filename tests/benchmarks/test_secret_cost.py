"""What secret detection costs the lexical index (issue 17, item 1): the parser processes' work per file
with secret detection (`indexing.secrets.redact_source` before `parse_source`, as
`indexing.parsing._read_and_parse` does: the detectors, then the values written encoded) against the same
work without it, in one process, interleaved, best of rounds, on Django and on the mixed corpus. Each side
is timed in CPU seconds of this process (`time.process_time`), not wall time: on a shared machine the wall
clock also counts the time spent waiting for a core, which moved the ratio by more than the 5-10% it is
there to see.

Both sides run with the cyclic garbage collector paused, as a parser process runs all of its work
(`indexing.parsing.init_parser_process`): until session 26 they ran with it on, in the test process,
whose heap (pytest, the corpus's texts) each full collection walks. That timed collections the indexing
never makes: 0.3-0.4 s of the 3.4-3.7 s without detection on Django at load 12, 0.7 s of the mixed
corpus's 6-7 s, and as much or more with detection; the ratio was 1.17x against 1.15x paused on Django
and 1.13x either way on the mixed corpus (best of 3, `BENCHMARKS.md`, "Indexing speed targets (session
26)"). The garbage of one side is collected before it is timed. Best of five rounds each (three until
session 26: the rounds with detection moved by up to 0.3 s from run to run).

Target: at most 1.15x. Issue 17 asks that detection not make indexing much slower and gives no figure;
1.15x is what the indexing target leaves (lexical index <= 2x tree-sitter alone, measured at 1.74x
before secret detection existed: 2 / 1.74 = 1.15). The store's work is not in either side, so the
ratio is an upper bound of the slowdown of a whole index.
"""

from __future__ import annotations

import gc
import time

import pytest

from indexing.chunker import parse_source
from indexing.config import IndexSettings
from indexing.secrets import find_secrets, redact_source
from tests.benchmarks.corpora import Corpus
from tests.benchmarks.harness import Entry, record, rerun_command
from tests.benchmarks.test_index_speed import LEXICAL, _sources

pytestmark = pytest.mark.benchmark

MAX_RATIO = 1.15
ROUNDS = 5
KEY = b"benchmark-key-0123456789abcdef01"


def _parse_all(sources: list, settings: IndexSettings, *, detect: bool) -> tuple[float, int]:
    """The parser processes' work on `sources`, CPU seconds of this process, the collector paused as in
    a parser process (the garbage left before is collected first, untimed)."""
    limits = settings.parse_limits()
    chunks = 0
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for source in sources:
            text = redact_source(source.text, KEY, source.path)[0] if detect else source.text
            chunks += len(parse_source(source.path, text, source.language, limits).chunks)
        return time.process_time() - start, chunks
    finally:
        gc.enable()


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("corpus_name", ["django", "mixed"])
def test_secret_detection_cost_on_indexing(corpus_name: str, request: pytest.FixtureRequest) -> None:
    corpus: Corpus = request.getfixturevalue(f"{corpus_name}_corpus")
    sources = _sources(corpus.root, LEXICAL)
    _parse_all(sources[:200], LEXICAL, detect=True)  # warm: grammars, queries, detect-secrets loaded
    off: list[float] = []
    on: list[float] = []
    for _ in range(ROUNDS):
        seconds, chunks_off = _parse_all(sources, LEXICAL, detect=False)
        off.append(seconds)
        seconds, chunks_on = _parse_all(sources, LEXICAL, detect=True)
        on.append(seconds)
    start = time.process_time()
    values = sum(len(find_secrets(s.text, s.path)) for s in sources)
    detect_alone = time.process_time() - start
    ratio = min(on) / min(off)
    record(
        Entry(
            key=f"index.secrets.{corpus_name}",
            title=f"Secret detection's cost on lexical indexing ({corpus_name})",
            target=f"parse work with secret detection <= {MAX_RATIO:g}x without (CPU, one process, same run)",
            measured=f"{min(on):.2f} s vs {min(off):.2f} s of CPU = {ratio:.2f}x",
            passed=ratio <= MAX_RATIO,
            figures={
                "with_seconds": [round(x, 3) for x in on],
                "without_seconds": [round(x, 3) for x in off],
                "ratio": round(ratio, 3),
                "find_secrets_seconds": round(detect_alone, 3),
                "values": values,
                "files": len(sources),
            },
            details=[
                f"corpus: {corpus.describe()}; {len(sources)} files, {chunks_off} chunks",
                f"without detection (load + parse_source), rounds: {', '.join(f'{x:.2f} s' for x in off)}",
                f"with detection (+ redact_source), rounds: {', '.join(f'{x:.2f} s' for x in on)}",
                f"find_secrets alone: {detect_alone:.2f} s of CPU, {values} values",
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert chunks_on >= chunks_off * 0.99  # the same code indexed (placeholders may split no chunk)
    assert ratio <= MAX_RATIO, (
        f"secret detection made the parse work {ratio:.2f}x slower (target {MAX_RATIO})"
    )
