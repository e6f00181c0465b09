"""Whether two versions of secret detection find the same: `indexing.secrets.find_secrets` and
`indexing.secrets.redact_source` (text, placeholders, segments) on real corpora, this tree's test files and
seeded random texts made of the detectors' pieces. Each version runs in its own process, from its own tree
(run the script by its path, so that ``indexing`` is imported from `PYTHONPATH`, not from the current
directory as ``python -m`` would):

    git worktree add /tmp/wt-old REV
    PYTHONPATH=/tmp/wt-old python tests/benchmarks/secret_redaction_ab.py dump /tmp/old.pickle
    PYTHONPATH=. python tests/benchmarks/secret_redaction_ab.py dump /tmp/new.pickle
    python tests/benchmarks/secret_redaction_ab.py compare /tmp/old.pickle /tmp/new.pickle

`dump` runs the version on `PYTHONPATH` (it prints which) and writes, per text, what it found; both read
the texts from the corpora cache and the ``tests`` folder of the current directory, so run both from the
same checkout, one after the other. `compare` prints the counts per set of texts (texts, values found,
texts redacted) and every text whose results differ, and exits 1 when one does. Used for BENCHMARKS.md's
"Secret detection's cost (session 27)"; not a test (the corpora take minutes).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import os
import pickle
import random
import sys
from pathlib import Path
from urllib.parse import quote

KEY = b"ab-key-0123456789abcdef0123456789"
CORPORA = {"django": "django-5.1.4", "mixed": "mixed-v1"}
TEST_SUFFIXES = (".py", ".json", ".toml", ".yaml", ".yml", ".txt", ".md", ".env", ".js", ".ts", ".go", ".rs")


def _corpus(name: str) -> list[tuple[str, str]]:
    """The files the lexical index reads of a benchmark corpus (walked, loaded, not skipped)."""
    from tests.benchmarks.test_index_speed import LEXICAL, _sources

    cache = Path(os.environ.get("AGENTLS_BENCH_CACHE") or Path.home() / ".cache" / "agentls-bench")
    return [(s.path, s.text) for s in _sources(cache / "corpora" / CORPORA[name], LEXICAL)]


def _test_files() -> list[tuple[str, str]]:
    """This tree's test files and fixtures (the security tests' secret-holding texts among them)."""
    root = Path.cwd() / "tests"
    texts = []
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            path = Path(folder) / name
            if not name.endswith(TEST_SUFFIXES) or "results" in path.parts:
                continue
            try:
                if path.stat().st_size <= 1 << 20:
                    texts.append((str(path.relative_to(root.parent)), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
    return texts


def _random_texts(count: int, seed: int) -> list[tuple[str, str]]:
    """Texts of the detectors' pieces in random order: key formats, hint words, assignment signs, quotes,
    random tokens, base64, hex, percent and gzip encodings of secret-holding lines, allowlist comments,
    private key blocks, URLs with passwords, continuations and characters beyond ASCII."""
    rng = random.Random(seed)
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def token(n: int, chars: str = alnum) -> str:
        return "".join(rng.choice(chars) for _ in range(n))

    def secret_line() -> str:
        return rng.choice(
            [
                f'password = "{token(14)}"',
                f"AWS_SECRET_ACCESS_KEY={token(40)}",
                f"api_key: {token(32)}",
                f"token = 'ghp_{token(36)}'",
                f"Authorization: Bearer {token(30)}",
                f"db_password='{token(10)}'",
            ]
        )

    def piece() -> str:
        kind = rng.randrange(24)
        if kind == 0:
            prefix = rng.choice(
                ["AKIA", "ASIA", "A3T", "AIza", "sk_live_", "rk_live_", "sk-ant-", "sk-proj-"]
            )
            return prefix + token(rng.choice([16, 20, 35, 40]))
        if kind == 1:
            return rng.choice(["ghp_", "gho_", "github_pat_", "glpat-", "xoxb-", "npm_", "pypi-AgE"]) + token(
                rng.choice([10, 30, 36, 50])
            )
        if kind == 2:
            return f"eyJ{token(20)}.eyJ{token(20)}.{token(20)}"
        if kind == 3:
            return rng.choice(
                ["password", "PASSWORD", "passwd", "pwd", "secret", "SECRET_KEY", "api_key", "db_key"]
            )
        if kind == 4:
            return rng.choice(
                ["token", "auth", "Bearer", "bearer", "cookie", "credential", "contraseña", "private_key"]
            )
        if kind == 5:
            return rng.choice([" = ", "=", ": ", ":", " := ", " => ", "(", "==", "!="])
        if kind == 6:
            return rng.choice(['"', "'", "`"])
        if kind == 7:
            return token(rng.randrange(4, 60))
        if kind == 8:
            return token(rng.randrange(8, 40), "0123456789abcdef")
        if kind == 9:
            return base64.b64encode(secret_line().encode()).decode()
        if kind == 10:
            return base64.urlsafe_b64encode(("\ufeff" + secret_line()).encode()).decode()
        if kind == 11:
            return secret_line().encode().hex()
        if kind == 12:
            return quote(secret_line(), safe="")
        if kind == 13:
            return base64.b64encode(gzip.compress(secret_line().encode(), mtime=0)).decode()
        if kind == 14:
            return "  # pragma: allowlist secret"
        if kind == 15:
            body = f"{token(64)}\n{token(40)}=="
            return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
        if kind == 16:
            return f"https://{token(6)}:{token(12)}@example.com/"
        if kind == 17:
            return "\\\n"
        if kind == 18:
            return rng.choice(["\u0130", "\u212a", "é", "日本", "\t"])
        if kind == 19:
            return secret_line()
        if kind == 20:
            return rng.choice(["get_secret()", "os.environ['TOKEN']", "${TOKEN}", "$PASSWORD", "EXAMPLEKEY"])
        if kind == 21:
            return "hooks.slack.com/services/" + token(30, alnum + "/")
        return "\n"

    texts = []
    for i in range(count):
        suffix = rng.choice([".py", ".js", ".ts", ".go", ".yaml", ".env", ".json", ".txt", ".sh", ""])
        name = f"r{seed}-{i}{suffix}"
        texts.append((name, "".join(piece() for _ in range(rng.randrange(1, 40)))))
    return texts


def _sets() -> dict[str, list[tuple[str, str]]]:
    return {
        "django": _corpus("django"),
        "mixed": _corpus("mixed"),
        "tests": _test_files(),
        "random": _random_texts(30000, 27) + _random_texts(30000, 2027),
    }


def dump(out: Path) -> None:
    from indexing import secrets
    from indexing.secrets import find_secrets, redact_source

    print(f"indexing.secrets from {secrets.__file__}", file=sys.stderr)
    results: dict[str, list[tuple[str, object]]] = {}
    for name, texts in _sets().items():
        rows = []
        for path, text in texts:
            found = tuple((f.start, f.end, f.kind) for f in find_secrets(text, path))
            segments: list[tuple[str, str]] = []
            redacted, used = redact_source(text, KEY, path, segments)
            digest = hashlib.sha256(redacted.encode("utf-8", "surrogatepass")).hexdigest()
            rows.append((path, (found, digest, tuple(sorted(used.items())), tuple(segments))))
        results[name] = rows
        print(f"{name}: {len(rows)} texts", file=sys.stderr)
    out.write_bytes(pickle.dumps(results))


def compare(old_path: Path, new_path: Path) -> int:
    old, new = pickle.loads(old_path.read_bytes()), pickle.loads(new_path.read_bytes())
    differ = 0
    for name in old:
        rows_old, rows_new = dict(old[name]), dict(new.get(name, []))
        values = sum(len(result[0]) for result in rows_old.values())
        redacted = sum(1 for result in rows_old.values() if result[2])
        both = [path for path in rows_old if path in rows_new]
        changed = [path for path in both if rows_old[path] != rows_new[path]]
        differ += len(changed)
        print(
            f"{name}: {len(both)} texts compared ({len(rows_old) - len(both)} old only, "
            f"{len(rows_new) - len(both)} new only), {values} values found, {redacted} texts redacted; "
            f"{len(changed)} differ{' ' + ', '.join(changed[:20]) if changed else ''}"
        )
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump").add_argument("out", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("old", type=Path)
    both.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out)
    else:
        sys.exit(compare(args.old, args.new))


if __name__ == "__main__":
    main()
