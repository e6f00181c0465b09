"""Crash consistency and hostile inputs (issue 17, items 3 and 4), short versions for the default run.

- kill -9 of `agentls index` at a few seeded points of a small corpus: each rerun ends with the same
  files, chunks and symbols as a clean run, without duplicates, and search works without repair;
- a workspace of hostile files (a 100 MB file, a 5 MB one-line minified JS file, 10,000-deep nesting in
  Python and JavaScript, invalid UTF-8, binary data with a source extension, a symlink loop, an unreadable
  file, a 3,000-file node_modules): indexing ends in bounded time and memory, each skipped file with its
  reason. Figures are printed (`pytest -s`);
- a repository whose top folder holds a package named as a standard library one (``multiprocessing``) runs
  none of its code when `agentls index` is started there.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexing.config import IndexSettings
from indexing.models import SkippedFile, SkipReason
from indexing.service import WorkspaceIndex
from indexing.walker import load_source, walk

pytestmark = pytest.mark.timeout(600)

LEXICAL = IndexSettings.model_validate({"embedding": {"provider": "none"}})


def _corpus(root: Path, files: int) -> Path:
    root.mkdir()
    rng = random.Random(3)
    for n in range(files):
        package = root / f"pkg{n % 20}"
        package.mkdir(exist_ok=True)
        body = "".join(
            f"def f{n}_{k}(x):\n    '''Add {rng.randrange(1000)}.'''\n    return x + {k}\n\n\n"
            for k in range(12)
        )
        (package / f"m{n}.py").write_text(f"class C{n}:\n    pass\n\n\n{body}")
    return root


def _counts(ws: Path, cache: Path) -> tuple[int, int, int, int]:
    index = WorkspaceIndex(ws, LEXICAL, cache_dir=cache)
    stats = index.store.stats()
    ids = index.store._tables["chunks"].to_arrow().column("id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicate chunks"
    assert index.search("f3_2 add", limit=3), "search does not work"
    return stats.files, stats.chunks, stats.symbols, len(ids)


def _index_cmd(ws: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "server.cli", "index", str(ws), "--quiet"]


def test_kill_9_during_index_then_rerun_matches_a_clean_run(tmp_path: Path) -> None:
    ws = _corpus(tmp_path / "ws", 900)
    env = dict(os.environ, HF_HUB_OFFLINE="1", AGENTLS_CACHE_DIR=str(tmp_path / "clean"))
    subprocess.run(_index_cmd(ws, tmp_path / "clean"), env=env, check=True, capture_output=True)
    clean = _counts(ws, tmp_path / "clean")
    assert clean[0] == 900
    cache = tmp_path / "killed"
    env["AGENTLS_CACHE_DIR"] = str(cache)
    rng = random.Random(17)
    points = sorted(rng.uniform(1.0, 6.0) for _ in range(3))
    for delay in points:
        proc = subprocess.Popen(
            _index_cmd(ws, cache), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.kill()
        proc.wait(30)
    subprocess.run(_index_cmd(ws, cache), env=env, check=True, capture_output=True)
    print(f"\nkilled at {[round(p, 2) for p in points]} s; clean {clean}")
    assert _counts(ws, cache) == clean


def test_hostile_inputs_are_bounded_and_each_skip_has_a_reason(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    with open(ws / "huge.py", "wb") as handle:  # 100 MB, sparse: written in no time
        handle.truncate(100 * 1024 * 1024)
    (ws / "bundle.js").write_text("var a=" + "1+" * 2_500_000 + "1;")  # 5 MB on one line
    (ws / "deep.py").write_text("x = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n")
    (ws / "deep.js").write_text("let x = " + "[" * 10_000 + "]" * 10_000 + ";\n")
    # The same nesting over many lines, which the minified-text check does not catch: the parser sees it.
    (ws / "deep_lines.py").write_text("x = " + "(\n" * 10_000 + "1" + "\n)" * 10_000 + "\n")
    (ws / "deep_lines.js").write_text("let x = " + "[\n" * 10_000 + "\n]" * 10_000 + ";\n")
    (ws / "latin1.py").write_bytes(b"def f():\n    return '\xe9\xff\xfe'\n")
    (ws / "blob.py").write_bytes(bytes(random.Random(1).randrange(256) for _ in range(50_000)))
    (ws / "loop").mkdir()
    os.symlink("../loop", ws / "loop" / "again")
    os.symlink("self", ws / "self")
    (ws / "secret_locked.py").write_text("x = 1\n")
    os.chmod(ws / "secret_locked.py", 0)
    modules = ws / "node_modules"
    for n in range(3000):
        package = modules / f"p{n % 100}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"i{n}.js").write_text(f"module.exports = {n};\n")
    (ws / "ok.py").write_text("def fine():\n    return 1\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", AGENTLS_CACHE_DIR=str(tmp_path / "cache"))
    started = time.monotonic()
    # The peak of the index's own processes, read by a parent of its own: this process's RUSAGE_CHILDREN
    # also holds the peaks of the children earlier tests of this worker ran (a model distillation's 1.7 GB).
    peak_of = (
        "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            peak_of,
            sys.executable,
            "-m",
            "server.cli",
            "index",
            str(ws),
            "--quiet",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - started
    peak_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
    os.chmod(ws / "secret_locked.py", 0o644)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Each skipped file with its reason: the walk's (names, ignores, links) and the read's (content).
    skipped: dict[str, SkippedFile] = {}
    for item in walk(ws, LEXICAL):
        outcome = item if isinstance(item, SkippedFile) else load_source(item, LEXICAL.parse_limits())
        if isinstance(outcome, SkippedFile):
            skipped[outcome.path] = outcome
    print(
        f"\nhostile workspace: {seconds:.1f} s, peak RSS of one process {peak_mb:.0f} MB; "
        f"skipped by reason {report['skipped']}"
    )
    for path, item in sorted(skipped.items()):
        print(f"  {path}: {item.reason} {item.detail}")
    assert seconds < 120 and peak_mb < 1500
    assert skipped["huge.py"].reason == SkipReason.TOO_LARGE
    assert skipped["bundle.js"].reason in (SkipReason.GENERATED, SkipReason.TOO_LARGE)
    assert skipped["blob.py"].reason in (SkipReason.BINARY, SkipReason.GENERATED)
    if os.geteuid() != 0:  # root reads anything
        assert skipped["secret_locked.py"].reason == SkipReason.UNREADABLE
    assert sum(report["skipped"].values()) >= 3
    index = WorkspaceIndex(ws, LEXICAL, cache_dir=tmp_path / "cache")
    assert index.search("fine", limit=1)
    indexed = set(index.store.file_records())
    assert {"ok.py", "latin1.py", "deep_lines.py", "deep_lines.js"} <= indexed
    assert not any(p.startswith("node_modules/") for p in indexed)


def test_indexing_from_a_repository_runs_none_of_its_code(tmp_path: Path) -> None:
    """multiprocessing started its fork server and resource tracker as ``python -c`` in the current folder,
    which ``-c`` puts first on sys.path: the repository's ``multiprocessing/__init__.py`` ran there."""
    repo, marker = tmp_path / "repo", tmp_path / "ran"
    (repo / "multiprocessing").mkdir(parents=True)
    (repo / "multiprocessing" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'a').write('ran\\n')\nraise SystemExit(0)\n"
    )
    for n in range(40):  # enough files for the parser processes' pool
        (repo / f"mod{n}.py").write_text(f"def function_{n}(value):\n    return value + {n}\n")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        ["agentls", "index", "."], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "41 files" in done.stderr
    assert not marker.exists(), "the repository's multiprocessing package ran"
