"""`indexing.code_pairs`: (doc comment, code) pairs from a small tree of several languages, benchmark
projects left out."""

from __future__ import annotations

import io
import json
from pathlib import Path

from indexing.code_pairs import folder_pairs, write_pairs

FILES = {
    "python/limiter/core.py": 'def throttle(fn, wait):\n    """Limit how often a function is called."""\n'
    "    return fn\n",
    "node/eta/index.js": "/**\n * Estimated time remaining, as text.\n */\nfunction formatEta(seconds) {\n"
    "  return `${seconds}s`;\n}\n",
    "go/bytesize/size.go": "package bytesize\n\n// HumanSize formats a byte count for people to read.\n"
    'func HumanSize(n int) string {\n\treturn "x"\n}\n',
    "rust/wait/src/lib.rs": "/// Sleeps until the deadline has passed.\n"
    "pub fn wait_until(t: u64) -> u64 {\n    t\n}\n",
    # a benchmark project, also as a vendored copy: never a pair
    "python/requests/api.py": 'def get(url):\n    """Sends a GET request and returns the response."""\n'
    "    return url\n",
    "python/pip/_vendor/requests/api.py": 'def post(url):\n    """Sends a POST request to the server."""\n'
    "    return url\n",
}


def test_pairs_of_four_languages_without_the_doc_in_the_code_and_without_benchmark_projects(
    tmp_path: Path,
) -> None:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    pairs = {p.name: p for p in folder_pairs(tmp_path)}

    assert set(pairs) == {"throttle", "formatEta", "HumanSize", "wait_until"}
    assert {p.language for p in pairs.values()} == {"python", "javascript", "go", "rust"}
    assert pairs["throttle"].doc == "Limit how often a function is called."
    assert pairs["formatEta"].doc == "Estimated time remaining, as text."
    assert pairs["throttle"].package == "python/limiter"
    for pair in pairs.values():
        assert pair.doc not in pair.code, pair  # the doc comment is out of the code side
        assert pair.name in pair.code
    assert pairs["wait_until"].code.startswith("pub fn wait_until")

    out = io.StringIO()
    assert write_pairs([*pairs.values(), pairs["throttle"]], out) == 4  # a repeated pair is written once
    first = json.loads(out.getvalue().splitlines()[0])
    assert set(first) == {"doc", "code", "name", "language", "package", "path"}
