"""What a test is and how a symbol's tests are found (`agent.testfinder`): one definition for the context,
the verifier and the code actions."""

from __future__ import annotations

import pytest

from agent.testfinder import (
    is_test_function,
    is_test_path,
    lines_mentioning,
    mentioning_tests,
    mentions,
    test_candidates,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_cart.py", True),
        ("shop/cart_test.py", True),
        ("inventory/stock_test.go", True),
        ("web/cart.test.ts", True),
        ("web/cart.spec.js", True),
        ("web/__tests__/cart.js", True),
        ("app/src/test/java/shop/PricingTest.java", True),
        ("spec/models/user_spec.rb", True),
        ("shop/cart.py", False),
        ("shop/contest.py", False),
        ("app/src/main/java/shop/Pricing.java", False),
        ("shop/attestation.py", False),
        ("shop/Testimony.py", False),
        ("src/TestHelpers.cs", True),
    ],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("test_total", True), ("testTotal", True), ("TestCart", True), ("total", False), ("testimony", False)],
)
def test_is_test_function(name: str, expected: bool) -> None:
    assert is_test_function(name) is expected


def test_candidates_start_next_to_the_module_and_mirror_src_trees() -> None:
    found = list(test_candidates("src/shop/cart.py"))
    assert found[0] == "src/shop/test_cart.py"
    assert "tests/shop/test_cart.py" in found and "tests/test_cart.py" in found
    assert "src/shop/cart.py" not in found and len(found) == len(set(found))


def test_mentions_whole_words_only() -> None:
    text = "total = 1\nsubtotal = 2\n$total()\nx.total\n"
    assert mentions(text, "total") and not mentions("subtotal_x", "total")
    assert lines_mentioning(text, "total") == [1, 4]


def test_mentioning_tests_reads_test_files_only_and_at_most_max_files() -> None:
    files = {
        "shop/cart.py": "total",
        "tests/test_cart.py": "from shop.cart import total, add",
        "tests/test_other.py": "nothing here",
        "tests/.env": "total",
        "tests/test_z.py": "total",
    }
    read: list[str] = []

    def reader(path: str) -> str | None:
        read.append(path)
        return files[path]

    counts = mentioning_tests(files, reader, ["total", "add", ""], max_files=2)
    assert counts == {"tests/test_cart.py": 2}
    assert read == ["tests/test_cart.py", "tests/test_other.py"]  # no source, no secret, two files at most
