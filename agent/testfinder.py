"""What a test is, and finding the tests of a symbol: one definition for the context, the verifier and
the code actions.

- `is_test_path`: a file under a ``tests``/``test``/``__tests__``/``spec`` ... folder, or named
  ``test_*``, ``*_test.*``, ``*.test.*``, ``*.spec.*``, ``*_spec.*``, ``*Test(s).*`` or ``Test*.*``;
- `is_test_function`: a function named ``test_*``, ``testX...`` or ``TestX...`` (no "write tests for" it);
- `test_candidates`: the usual places of the tests of a module (same folder, ``__tests__``, mirrored
  ``src``/``test`` trees, ``tests`` folders of its ancestors);
- `mentions` / `lines_mentioning`: a name as a whole word in a text;
- `referencing_tests`: test files that the index lists as referencing names;
- `mentioning_tests`: test files among some paths whose text mentions names (without an index).

Secret files (`agent.paths.is_secret_path`) are never returned.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from agent.paths import is_secret_path

if TYPE_CHECKING:
    from agent.ports import CodeIndex

__all__ = [
    "TEST_DIRS",
    "is_test_function",
    "is_test_path",
    "lines_mentioning",
    "mentioning_tests",
    "mentions",
    "referencing_tests",
    "test_candidates",
]

log = logging.getLogger(__name__)

TEST_DIRS = frozenset({"test", "tests", "__tests__", "spec", "specs", "testing", "e2e", "integration_tests"})
"""Folder names whose files are tests."""

_TEST_FILE_NAME = re.compile(
    r"^(?:test_.+|.+_test|.+\.(?:test|spec)|.+_spec|.+Tests?|Test[A-Z_].*)\.[A-Za-z0-9]+$",
)
_TEST_FUNCTION_NAME = re.compile(r"^(?:test_|Test[A-Z_]|test[A-Z])")


def is_test_path(path: str) -> bool:
    """Whether a workspace-relative path looks like a test file.

    >>> is_test_path("tests/test_cart.py"), is_test_path("web/cart.test.ts"), is_test_path("shop/cart.py")
    (True, True, False)
    """
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    if any(part.lower() in TEST_DIRS for part in parts[:-1]):
        return True
    return bool(_TEST_FILE_NAME.match(parts[-1]))


def is_test_function(name: str) -> bool:
    """Whether a function's short name says it is a test (``test_total``, ``testTotal``, ``TestCart``)."""
    return bool(_TEST_FUNCTION_NAME.match(name))


# pytest would collect these from any test module that imports them.
is_test_path.__test__ = False  # type: ignore[attr-defined]
is_test_function.__test__ = False  # type: ignore[attr-defined]


def test_candidates(path: str) -> Iterator[str]:
    """The usual places of the tests for the module at `path`, most specific first."""
    posix = PurePosixPath(path)
    stem, ext = posix.stem, posix.suffix
    folder = posix.parent.as_posix()
    folder = "" if folder == "." else folder
    cap = stem[:1].upper() + stem[1:]
    names = [
        f"test_{stem}{ext}",
        f"{stem}_test{ext}",
        f"{stem}.test{ext}",
        f"{stem}.spec{ext}",
        f"{cap}Test{ext}",
        f"{cap}Tests{ext}",
        f"{stem}_spec{ext}",
    ]
    dirs: list[str] = [folder, posixpath.join(folder, "__tests__")]
    parts = folder.split("/") if folder else []
    # Mirrored trees: src/main/java/a -> src/test/java/a, src/a -> tests/a, lib/a -> spec/a.
    for index, part in enumerate(parts):
        if part in ("main", "src", "lib", "app"):
            for replacement in ("test", "tests", "spec"):
                dirs.append("/".join([*parts[:index], replacement, *parts[index + 1 :]]))
    for depth in range(len(parts), -1, -1):
        ancestor = "/".join(parts[:depth])
        for test_dir in ("tests", "test", "spec"):
            dirs.append(posixpath.join(ancestor, test_dir))
    seen: set[str] = set()
    for directory in dirs:
        candidates = [*names, f"{stem}{ext}"] if PurePosixPath(directory).name in TEST_DIRS else names
        for name in candidates:
            candidate = posixpath.normpath(posixpath.join(directory, name)) if directory else name
            if candidate != path and candidate not in seen:
                seen.add(candidate)
                yield candidate


test_candidates.__test__ = False  # type: ignore[attr-defined]


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")


def mentions(text: str, name: str) -> bool:
    """Whether `name` occurs in `text` as a whole word (``$`` counts as a word character, for JavaScript)."""
    return _word(name).search(text) is not None


def lines_mentioning(text: str, name: str) -> list[int]:
    """The 1-based lines of `text` that mention `name` as a whole word."""
    pattern = _word(name)
    return [n for n, line in enumerate(text.split("\n"), 1) if pattern.search(line)]


def referencing_tests(index: CodeIndex, names: Iterable[str], *, limit: int) -> dict[str, int]:
    """Test files that the index lists as referencing any of `names`, with how many references each.

    Files come in the order the index lists them; a failing lookup counts as no references (logged).
    """
    counts: dict[str, int] = {}
    for name in names:
        try:
            symbols = index.find_symbols(name, role="reference", limit=limit)
        except Exception as error:  # a broken index must not stop a run
            log.warning("finding references to %s failed: %s", name, error)
            continue
        for symbol in symbols:
            if is_test_path(symbol.path) and not is_secret_path(symbol.path):
                counts[symbol.path] = counts.get(symbol.path, 0) + 1
    return counts


def mentioning_tests(
    paths: Iterable[str], read: Callable[[str], str | None], names: Iterable[str], *, max_files: int
) -> dict[str, int]:
    """Test files among `paths` whose text mentions any of `names`, with how many of the names each.

    At most `max_files` test files are read; `read` returns None for a file it cannot read.
    """
    names = [n for n in names if n]
    counts: dict[str, int] = {}
    scanned = 0
    for path in paths:
        if not is_test_path(path) or is_secret_path(path):
            continue
        scanned += 1
        if scanned > max_files:
            break
        text = read(path)
        if text is None:
            continue
        hits = sum(1 for name in names if mentions(text, name))
        if hits:
            counts[path] = hits
    return counts
