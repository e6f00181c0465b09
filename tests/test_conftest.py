"""The order tests/conftest.py gives the test files for ``--dist loadfile``: the slowest known files first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SLOWEST_FILES, pytest_collection_modifyitems

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Collected:
    """What the ordering reads of a collected test: its node id."""

    nodeid: str


def test_every_slowest_file_listed_is_a_test_file() -> None:
    """A file renamed or split leaves its old name here, where it orders nothing: the list must follow."""
    assert SLOWEST_FILES
    missing = [path for path in SLOWEST_FILES if not (REPO / path).is_file()]
    assert missing == []
    assert all(Path(path).name.startswith("test_") for path in SLOWEST_FILES)


def test_the_slowest_files_go_first_longest_first_then_the_most_tests(pytestconfig: pytest.Config) -> None:
    slowest, second = sorted(SLOWEST_FILES, key=SLOWEST_FILES.__getitem__, reverse=True)[:2]
    items = [
        Collected("tests/a/test_one.py::test_a"),
        Collected(f"{second}::test_b"),
        Collected("tests/a/test_three.py::test_c"),
        Collected("tests/a/test_three.py::test_d"),
        Collected(f"{slowest}::test_e"),
        Collected(f"{second}::test_f"),
        Collected("tests/a/test_three.py::test_g"),
    ]
    pytest_collection_modifyitems(pytestconfig, items)  # type: ignore[arg-type]
    assert [item.nodeid.rsplit("::", 1)[1] for item in items] == [
        "test_e",
        "test_b",
        "test_f",
        "test_c",
        "test_d",
        "test_g",
        "test_a",
    ]
