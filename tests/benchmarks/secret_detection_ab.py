"""`indexing.secrets.find_secrets` of two versions on one real corpus: what each finds, and its CPU time.

    git worktree add /tmp/wt-old REV
    python -m tests.benchmarks.secret_detection_ab /tmp/wt-old SITE_PACKAGES [--files 20000] [--rounds 3]

The old module is loaded from the worktree beside this tree's (one process, interleaved rounds). Files are
the corpus's text files (code, docs, data, lock files), a seeded sample of `--files`, at most 1 MiB each.
Prints the values only one version finds (the false positives or the catches a change adds) and the CPU
time of each round. Used for BENCHMARKS.md's session 21 secret audit; not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
from pathlib import Path
from types import ModuleType

from indexing import secrets

SUFFIXES = (".py", ".js", ".ts", ".json", ".toml", ".yaml", ".yml", ".cfg", ".ini", ".md", ".txt", ".rst")
SUFFIXES += (".sh", ".env", ".lock", ".c", ".h", ".go", ".rs")


def _old(tree: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_secrets", tree / "indexing" / "secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_secrets"] = module
    spec.loader.exec_module(module)
    return module


def _texts(root: Path, count: int) -> list[tuple[str, str]]:
    files = [
        Path(folder) / name
        for folder, _, names in sorted(os.walk(root))
        for name in sorted(names)
        if name.endswith(SUFFIXES)
    ]
    random.Random(1).shuffle(files)
    texts = []
    for path in files[:count]:
        try:
            if path.stat().st_size <= 1 << 20:
                texts.append((str(path.relative_to(root)), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path, help="a worktree of the version to compare with")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    versions = {"old": _old(args.old), "new": secrets}
    texts = _texts(args.corpus, args.files)
    size = sum(len(text) for _, text in texts) / 1e6
    print(f"{len(texts)} files, {size:.1f} MB, load {os.getloadavg()[0]:.1f}")
    found = {
        name: {
            (path, f.start, text[f.start : f.end]) for path, text in texts for f in m.find_secrets(text, path)
        }
        for name, m in versions.items()
    }
    for name, other in (("new", "old"), ("old", "new")):
        only = sorted(found[name] - found[other])
        print(f"{len(found[name])} values {name}, {len(only)} found by {name} only")
        for path, _, value in only:
            print(f"  {path}: {value[:80]!r}")
    times: dict[str, list[float]] = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, module in versions.items():
            started = time.process_time()
            for path, text in texts:
                module.find_secrets(text, path)
            times[name].append(time.process_time() - started)
    for name, values in times.items():
        print(f"{name}: " + ", ".join(f"{v:.2f}" for v in values) + " s CPU")
    print(
        f"best of {args.rounds}: new/old {min(times['new']) / min(times['old']):.2f}x, "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
