"""Chunks and symbols of real files in every language with queries, through the real grammars.

Each language has one fixture in tests/fixtures/languages/; the expected values below were read off the
fixture by hand (line numbers 1-based, columns 0-based code points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from indexing.chunker import parse_source
from indexing.config import IndexSettings
from indexing.definitions import parse_definitions
from indexing.languages import detect_language
from indexing.models import Chunk, ParseResult, Symbol

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "languages"


def parse_fixture(name: str, **settings: int) -> ParseResult:
    text = (FIXTURES / name).read_bytes().decode("utf-8", "replace")
    return parse_source(name, text, detect_language(name), IndexSettings(**settings).parse_limits())


def parse_text(path: str, text: str, language: str | None, **settings: int) -> ParseResult:
    return parse_source(path, text, language, IndexSettings(**settings).parse_limits())


def chunk_named(result: ParseResult, symbol: str, kind: str | None = None) -> Chunk:
    found = [c for c in result.chunks if c.symbol == symbol and (kind is None or c.kind == kind)]
    assert len(found) == 1, f"{symbol}: {[(c.kind, c.start_line) for c in found]}"
    return found[0]


def symbol_rows(result: ParseResult) -> set[tuple[str, str, str, int, int, str]]:
    return {(s.role, s.kind, s.name, s.line, s.column, s.container) for s in result.symbols}


@dataclass(frozen=True)
class Case:
    fixture: str
    language: str
    chunks: tuple[tuple[str, str, int, int], ...]  # (kind, qualified symbol, start line, end line)
    signature: tuple[str, str]  # (qualified symbol, signature)
    doc: tuple[str, str]  # (qualified symbol, doc)
    symbols: tuple[tuple[str, str, str, int, int, str], ...]  # (role, kind, name, line, column, container)


CASES = [
    Case(
        "inventory.py",
        "python",
        chunks=(
            ("module", "", 1, 9),
            ("class", "Item", 12, 23),  # starts at @dataclass
            ("class", "Inventory", 26, 66),
            ("function", "restock_plan", 74, 76),
            ("module", "", 85, 86),
        ),
        signature=("format_line", "def format_line(sku: str, count: int) -> str"),
        doc=(
            "restock_plan",
            "How many units of each SKU to order so that every item has at least `minimum` in stock.",
        ),
        symbols=(
            ("definition", "constant", "DEFAULT_CURRENCY", 9, 0, ""),
            ("definition", "class", "Inventory", 26, 6, ""),
            ("definition", "method", "parse_sku", 55, 8, "Inventory"),
            ("definition", "method", "render", 64, 12, "Inventory.Report"),
            ("reference", "call", "format_line", 65, 21, "Inventory.Report.render"),
            ("reference", "call", "label", 38, 38, "Inventory.add"),
            ("reference", "type", "Item", 34, 24, "Inventory.add"),
            ("reference", "call", "main", 86, 4, ""),
        ),
    ),
    Case(
        "cart.js",
        "javascript",
        chunks=(
            ("module", "", 1, 4),
            ("class", "LineItem", 6, 20),  # JSDoc above `export class`
            ("function", "grandTotal", 56, 60),
            ("function", "applyDiscount", 62, 69),
        ),
        signature=("grandTotal", "export const grandTotal = (cart) =>"),
        doc=("Cart", "The cart of one visitor.\nLines are kept in insertion order."),
        symbols=(
            ("definition", "constant", "TAX_RATE", 4, 6, ""),
            ("definition", "method", "add", 34, 2, "Cart"),
            ("reference", "class", "LineItem", 35, 21, "Cart.add"),
            ("reference", "call", "lookupPrice", 35, 45, "Cart.add"),
            ("reference", "call", "dispatchEvent", 37, 9, "Cart.add"),
            ("reference", "class", "EventTarget", 26, 19, "Cart"),
            ("reference", "call", "formatPrice", 59, 9, "grandTotal"),
        ),
    ),
    Case(
        "orders.ts",
        "typescript",
        chunks=(
            ("enum", "OrderStatus", 6, 11),
            ("interface", "Payable", 13, 19),
            ("type", "OrderId", 21, 21),
            ("class", "Order", 23, 46),
            ("function", "Orders.create", 63, 66),  # namespaces are transparent
            ("class", "Repository", 69, 78),
        ),
        signature=("refund", "export async function refund(order: Order, reason: string): Promise<void>"),
        doc=("priceOf", "Unit price of a SKU in cents."),
        symbols=(
            ("definition", "constant", "MAX_ITEMS", 4, 13, ""),  # `export const`, no `program` anchor
            ("definition", "interface", "Payable", 16, 17, ""),
            ("definition", "method", "amount", 17, 2, "Payable"),
            ("definition", "method", "persist", 77, 21, "Repository"),
            ("reference", "implementation", "Payable", 26, 30, "Order"),
            ("reference", "call", "priceOf", 42, 15, "Order.amount"),
            ("reference", "type", "OrderId", 64, 29, "Orders.create"),
            ("reference", "class", "Order", 65, 15, "Orders.create"),
        ),
    ),
    Case(
        "CartView.tsx",
        "tsx",
        chunks=(
            ("interface", "CartViewProps", 5, 9),
            ("function", "CartView", 11, 31),
            ("function", "Total", 33, 34),
            ("class", "Badge", 40, 53),
        ),
        signature=("formatCents", "function formatCents(cents: number): string"),
        doc=("CartView", "Shows the lines of an order with a checkout button."),
        symbols=(
            ("definition", "function", "handleClick", 17, 8, "CartView"),
            ("reference", "call", "setBusy", 18, 4, "CartView.handleClick"),
            ("reference", "call", "useState", 15, 26, "CartView"),
            ("reference", "call", "formatCents", 34, 61, "Total"),
            ("definition", "method", "shouldPulse", 50, 2, "Badge"),
        ),
    ),
    Case(
        "store.go",
        "go",
        chunks=(
            ("module", "", 1, 14),
            ("struct", "Product", 16, 21),
            ("interface", "Repository", 23, 27),
            ("method", "Store.Get", 41, 51),
            ("method", "Store.Restock", 61, 65),
            ("function", "Describe", 67, 70),
        ),
        signature=("Store.Get", "func (s *Store) Get(sku string) (Product, error)"),
        doc=(
            "Store.Get",
            "Get returns the product with the given SKU.\nIt returns ErrNotFound when there is none.",
        ),
        symbols=(
            ("definition", "constant", "MaxStock", 14, 6, ""),
            ("definition", "method", "Get", 25, 1, "Repository"),
            ("definition", "method", "Get", 43, 16, "Store"),
            ("reference", "call", "Lock", 44, 6, "Store.Get"),
            ("reference", "call", "Errorf", 48, 24, "Store.Get"),
            ("reference", "class", "Store", 38, 9, "NewStore"),
            ("reference", "type", "Product", 68, 16, "Describe"),
        ),
    ),
    Case(
        "ledger.rs",
        "rust",
        chunks=(
            ("enum", "Side", 9, 14),  # /// doc and #[derive] included
            ("trait", "Balance", 24, 28),
            ("impl", "Ledger", 36, 55),
            ("impl", "Ledger", 57, 64),
            ("function", "audit.line", 83, 86),
        ),
        signature=("signed", "fn signed(entry: &Entry) -> i64"),
        doc=("Side", "One side of a transaction."),
        symbols=(
            ("definition", "constant", "MAX_AMOUNT", 7, 10, ""),
            ("definition", "method", "book", 43, 11, "Ledger"),
            ("definition", "method", "balance", 27, 7, "Balance"),
            ("reference", "implementation", "Balance", 57, 5, "Ledger"),
            ("reference", "call", "or_default", 47, 50, "Ledger.book"),
            ("reference", "call", "format", 45, 23, "Ledger.book"),
            ("reference", "call", "format_account", 85, 15, "audit.line"),
        ),
    ),
    Case(
        "Library.java",
        "java",
        chunks=(
            ("module", "", 1, 5),
            ("class", "Library", 7, 58),
            ("interface", "Catalogue", 60, 65),
            ("record", "Book", 67, 74),
            ("enum", "Genre", 76, 84),
        ),
        signature=("Library", "public class Library implements Catalogue"),
        doc=("Catalogue", "Something that holds books."),
        symbols=(
            ("definition", "constant", "MAX_LOANS", 11, 29, "Library"),
            ("definition", "method", "name", 54, 22, "Library.Member"),
            ("reference", "implementation", "Catalogue", 10, 32, "Library"),
            ("reference", "call", "log", 27, 8, "Library.add"),
            ("reference", "call", "findFirst", 32, 65, "Library.find"),
            ("reference", "class", "IllegalArgumentException", 71, 22, "Book.Book"),
        ),
    ),
    Case(
        "queue.c",
        "c",
        chunks=(
            ("module", "", 1, 5),
            ("struct", "queue_t", 7, 14),  # typedef names the struct
            ("function", "queue_new", 25, 34),
            ("function", "queue_push", 36, 45),
            ("function", "main", 58, 64),
        ),
        signature=("queue_t", "typedef struct queue"),
        doc=("queue_push", "Append `value`; returns QUEUE_FULL when there is no room."),
        symbols=(
            ("definition", "constant", "QUEUE_CAPACITY", 5, 8, ""),
            ("definition", "type", "queue_t", 14, 2, ""),
            ("definition", "constant", "QUEUE_FULL", 19, 4, "queue_error"),
            ("definition", "function", "next_index", 23, 14, ""),
            ("reference", "call", "calloc", 29, 17, "queue_new"),
            ("reference", "call", "next_index", 38, 18, "queue_push"),
        ),
    ),
    Case(
        "shapes.cpp",
        "cpp",
        chunks=(
            ("module", "", 1, 9),  # includes `namespace geometry {` and kPi
            ("class", "geometry.Shape", 11, 23),
            ("method", "geometry.Circle.name", 38, 40),  # defined out of class
            ("function", "geometry.largest", 60, 66),  # template <...> included
            ("function", "main", 70, 74),
        ),
        signature=(
            "geometry.largest",
            "template <typename T> const T* largest(const std::vector<T>& shapes)",
        ),
        doc=("geometry.Shape", "Base class of all shapes."),
        symbols=(
            ("definition", "module", "geometry", 7, 10, ""),
            ("definition", "method", "area", 19, 19, "geometry.Shape"),
            ("definition", "method", "name", 38, 20, "geometry.Circle"),
            ("reference", "class", "Shape", 26, 22, "geometry.Circle"),
            ("reference", "call", "pow", 30, 53, "geometry.Circle.area"),
            ("reference", "call", "area", 55, 24, "geometry.total_area"),
            ("reference", "call", "make_unique", 72, 26, "main"),
        ),
    ),
    Case(
        "Accounts.cs",
        "csharp",
        chunks=(
            ("module", "", 1, 6),
            ("interface", "Bank.Accounts.IAccount", 7, 15),
            ("class", "Bank.Accounts.CurrentAccount", 17, 50),
            ("struct", "Bank.Accounts.Money", 59, 65),
        ),
        signature=("Bank.Accounts.CurrentAccount", "public class CurrentAccount : IAccount"),
        doc=("Bank.Accounts.IAccount", "Something with a balance."),
        symbols=(
            ("definition", "module", "Bank.Accounts", 5, 10, ""),
            ("definition", "method", "Deposit", 33, 20, "Bank.Accounts.CurrentAccount"),
            ("reference", "implementation", "IAccount", 19, 34, "Bank.Accounts.CurrentAccount"),
            ("reference", "call", "Log", 40, 18, "Bank.Accounts.CurrentAccount.Deposit"),
            ("reference", "call", "Format", 72, 30, "Bank.Accounts.Audit.Log"),
            (
                "reference",
                "class",
                "NotImplementedException",
                48,
                22,
                "Bank.Accounts.CurrentAccount.Transfer",
            ),
        ),
    ),
    Case(
        "mailer.rb",
        "ruby",
        chunks=(
            ("module", "", 1, 7),
            ("class", "Notifications.Message", 9, 25),
            ("class", "Notifications.Mailer", 27, 57),
            ("function", "notify", 60, 62),
        ),
        signature=("notify", "def notify(user)"),
        doc=("Notifications.Mailer", "Sends messages over SMTP."),
        symbols=(
            ("definition", "constant", "DEFAULT_FROM", 7, 2, "Notifications"),
            ("definition", "method", "default", 48, 13, "Notifications.Mailer"),
            ("reference", "call", "send_message", 37, 13, "Notifications.Mailer.deliver"),
            ("reference", "class", "SMTP", 36, 11, "Notifications.Mailer.deliver"),
            ("reference", "call", "deliver", 61, 32, "notify"),
        ),
    ),
    Case(
        "Invoice.php",
        "php",
        chunks=(
            ("module", "", 1, 10),
            ("interface", "Billable", 12, 18),
            ("trait", "Timestamped", 20, 31),
            ("class", "Invoice", 33, 78),
            ("function", "format_amount", 80, 86),
        ),
        signature=("format_amount", "function format_amount(float $amount): string"),
        doc=("Invoice", "An invoice with lines."),
        symbols=(
            ("definition", "constant", "VAT_RATE", 10, 6, ""),
            ("definition", "method", "addLine", 50, 20, "Invoice"),
            ("reference", "implementation", "Billable", 36, 31, "Invoice"),
            ("reference", "call", "touch", 56, 15, "Invoice.addLine"),
            ("reference", "call", "array_column", 62, 25, "Invoice.total"),
            ("reference", "call", "format_amount", 88, 5, ""),
        ),
    ),
]


@pytest.fixture(scope="module", params=CASES, ids=[case.language for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture(scope="module")
def result(case: Case) -> ParseResult:
    return parse_fixture(case.fixture)


def test_fixture_language_and_size(case: Case) -> None:
    assert detect_language(case.fixture) == case.language
    lines = (FIXTURES / case.fixture).read_text("utf-8").count("\n")
    assert 40 <= lines <= 120


def test_parses_cleanly(case: Case, result: ParseResult) -> None:
    assert result.has_syntax_errors is False
    assert {c.language for c in result.chunks} == {case.language}
    assert {c.path for c in result.chunks} == {case.fixture}


def test_expected_chunks(case: Case, result: ParseResult) -> None:
    got = {(c.kind, c.symbol, c.start_line, c.end_line) for c in result.chunks}
    missing = set(case.chunks) - got
    assert not missing, f"missing {missing}; got {sorted(got, key=lambda row: row[2])}"


def test_signature_and_doc(case: Case, result: ParseResult) -> None:
    symbol, signature = case.signature
    assert chunk_named(result, symbol).signature == signature
    symbol, doc = case.doc
    assert chunk_named(result, symbol).doc == doc


def test_expected_symbols(case: Case, result: ParseResult) -> None:
    missing = set(case.symbols) - symbol_rows(result)
    assert not missing, f"missing {missing}"


def test_symbol_positions_point_at_the_name(case: Case, result: ParseResult) -> None:
    lines = (FIXTURES / case.fixture).read_text("utf-8").split("\n")
    for s in result.symbols:
        assert s.line == s.end_line
        assert lines[s.line - 1][s.column : s.end_column] == s.name, s


def test_no_duplicate_symbols(result: ParseResult) -> None:
    keys = [(s.role, s.line, s.column) for s in result.symbols]
    assert len(keys) == len(set(keys))


def test_chunks_are_the_file_lines_and_do_not_overlap(case: Case, result: ParseResult) -> None:
    lines = (FIXTURES / case.fixture).read_text("utf-8").split("\n")
    previous_end = 0
    for chunk in sorted(result.chunks, key=lambda c: c.start_line):
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.start_line > previous_end, chunk
        previous_end = chunk.end_line


def test_stubs_have_doc_comments() -> None:
    # The agent's "implement" action needs the doc of a stub; each fixture has one.
    stubs = {
        "inventory.py": ("restock_plan", "How many units of each SKU to order"),
        "cart.js": ("applyDiscount", "Apply a discount code to the cart. Not implemented yet."),
        "orders.ts": ("refund", "Refund an order. Not implemented yet."),
        "store.go": (
            "Store.Restock",
            "Restock adds units of a SKU, capped at MaxStock.\nNot implemented yet.",
        ),
        "ledger.rs": ("Ledger.close_month", "Close the books for the month. Not implemented yet."),
        "queue.c": ("queue_pop", "Remove the oldest value into `out`. Not implemented yet."),
        "shapes.cpp": ("geometry.largest", "Largest shape by area. Not implemented yet."),
        "mailer.rb": ("Notifications.Mailer.deliver_all", "Deliver many messages, retrying failures."),
        "Invoice.php": ("Invoice.send", "Send the invoice by e-mail. Not implemented yet."),
        "Library.java": ("Library.lend", "Lends a book to a member. Not implemented yet."),
        "Accounts.cs": ("Bank.Accounts.CurrentAccount.Transfer", "Moves money to another account."),
        "CartView.tsx": ("Badge.shouldPulse", "Whether the badge should pulse. TODO: implement."),
    }
    for fixture, (symbol, doc) in stubs.items():
        # A small chunk_max_lines makes methods chunks of their own.
        result = parse_fixture(fixture, chunk_max_lines=10)
        assert chunk_named(result, symbol).doc.startswith(doc), fixture


# -- large classes, long functions, module code -----------------------------------------------------


def test_large_python_class_becomes_skeleton_and_members() -> None:
    result = parse_fixture("inventory.py", chunk_max_lines=12, window_lines=8, window_overlap=2)
    skeleton = chunk_named(result, "Inventory", "class")
    assert (skeleton.start_line, skeleton.end_line) == (26, 66)
    assert skeleton.text.split("\n")[:6] == [
        "class Inventory:",
        '    """Items by SKU, with stock counts."""',
        "",
        "    def __init__(self, currency: str = DEFAULT_CURRENCY) -> None:",
        "        ...",
        "",
    ]
    assert "    @staticmethod\n    def parse_sku(text: str) -> str:\n        ..." in skeleton.text
    assert "self._stock[sku] -= count" not in skeleton.text
    assert skeleton.text.endswith("    class Report:\n        ...")

    remove = chunk_named(result, "Inventory.remove")
    assert (remove.kind, remove.parents, remove.start_line, remove.end_line) == (
        "method",
        ("Inventory",),
        40,
        48,
    )
    assert remove.doc.startswith("Take `count` units of `sku` off the shelf.")
    parse_sku = chunk_named(result, "Inventory.parse_sku")
    assert (parse_sku.start_line, parse_sku.text.split("\n")[0]) == (54, "    @staticmethod")
    # The nested class fits in 12 lines: one chunk, its methods inside it.
    report = chunk_named(result, "Inventory.Report")
    assert (report.kind, report.start_line, report.end_line) == ("class", 58, 66)
    assert not [c for c in result.chunks if c.symbol == "Inventory.Report.render"]
    # Item is exactly 12 lines: still one chunk.
    assert (chunk_named(result, "Item").start_line, chunk_named(result, "Item").end_line) == (12, 23)


def test_large_java_class_skeleton_keeps_docs_and_elides_bodies() -> None:
    result = parse_fixture("Library.java", chunk_max_lines=12)
    skeleton = chunk_named(result, "Library", "class")
    assert "    public Optional<Book> find(String isbn) { ... }" in skeleton.text
    assert "    public static final class Member { ... }" in skeleton.text
    assert "    /** Finds a book by its ISBN. */" in skeleton.text
    assert "books.stream()" not in skeleton.text
    member = chunk_named(result, "Library.Member")
    assert (member.kind, member.start_line, member.end_line, member.doc) == (
        "class",
        46,
        57,
        "A member of the library.",
    )
    add = chunk_named(result, "Library.add")
    assert (add.kind, add.start_line, add.end_line) == ("method", 19, 28)
    assert add.signature == "public void add(Book book)"  # @Override left out
    assert add.doc == "Adds a book to the catalogue.\n\n@param book the book to add"


def test_nested_large_classes_recurse() -> None:
    body = "\n".join(f"            x{i} = {i}" for i in range(12))
    text = f"class Outer:\n    class Inner:\n        def big(self):\n{body}\n            return x0\n"
    result = parse_text("nest.py", text, "python", chunk_max_lines=10, window_lines=8, window_overlap=2)
    rows = [(c.kind, c.symbol, c.start_line, c.end_line) for c in result.chunks]
    assert rows == [
        ("class", "Outer", 1, 16),
        ("class", "Outer.Inner", 2, 16),
        ("method", "Outer.Inner.big", 3, 10),
        ("method", "Outer.Inner.big", 9, 16),
    ]
    assert result.chunks[0].text == "class Outer:\n    class Inner:\n        ..."


def test_long_function_is_windowed_and_keeps_its_name() -> None:
    body = "\n".join(f"    total += {i}" for i in range(30))
    text = f'def long_one(total):\n    """Adds numbers."""\n{body}\n    return total\n'
    result = parse_text("long.py", text, "python", chunk_max_lines=20, window_lines=12, window_overlap=2)
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks] == [
        ("function", "long_one", 1, 12),
        ("function", "long_one", 11, 22),
        ("function", "long_one", 21, 32),
        ("function", "long_one", 31, 33),
    ]
    assert {c.signature for c in result.chunks} == {"def long_one(total)"}
    assert {c.doc for c in result.chunks} == {"Adds numbers."}
    assert result.chunks[1].text.split("\n")[0] == "    total += 8"


def test_module_code_is_gathered_in_runs() -> None:
    top = "\n".join(f"CONSTANT_{i} = {i}" for i in range(7))
    text = f"import os\n\n{top}\n\n\ndef f():\n    return os.sep\n\n\nprint(f())\n"
    result = parse_text("mod.py", text, "python", window_lines=5)
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [
        ("module", 1, 5),  # split at window_lines
        ("module", 6, 9),
        ("function", 12, 13),
        ("module", 16, 16),
    ]
    assert result.chunks[-1].text == "print(f())"


def test_namespace_members_are_chunked_separately() -> None:
    result = parse_fixture("shapes.cpp")
    assert not [c for c in result.chunks if c.kind == "namespace"]
    assert chunk_named(result, "geometry.Circle").parents == ("geometry",)


# -- Markdown, windows, unusual input ---------------------------------------------------------------


def test_markdown_sections_follow_headings_outside_code() -> None:
    result = parse_fixture("guide.md")
    rows = [(c.kind, c.name, c.parents, c.start_line, c.end_line) for c in result.chunks]
    assert rows == [
        ("section", "", (), 1, 5),
        ("section", "Storefront", (), 7, 9),
        ("section", "Installation", ("Storefront",), 11, 22),  # `# ...` in fences is not a heading
        ("section", "Configuration", ("Storefront", "Installation"), 24, 26),
        ("section", "Usage", ("Storefront",), 28, 30),
        ("section", "Troubleshooting", ("Storefront",), 32, 35),  # setext heading
        ("section", "Appendix", (), 37, 39),
    ]
    assert result.symbols == ()


def test_long_markdown_section_is_windowed() -> None:
    text = "# Title\n" + "\n".join(f"line {i}" for i in range(30)) + "\n"
    result = parse_text("long.md", text, "markdown", chunk_max_lines=10, window_lines=10, window_overlap=0)
    assert [(c.name, c.start_line, c.end_line) for c in result.chunks] == [
        ("Title", 1, 10),
        ("Title", 11, 20),
        ("Title", 21, 30),
        ("Title", 31, 31),
    ]


@pytest.mark.parametrize(("path", "language"), [("notes.xyz", None), ("pyproject.toml", "toml")])
def test_files_without_queries_get_line_windows(path: str, language: str | None) -> None:
    text = "\n" + "\n".join(f"key{i} = {i}" for i in range(25)) + "\n\n"
    result = parse_text(path, text, language, window_lines=10, window_overlap=3)
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [
        ("window", 2, 11),
        ("window", 9, 18),
        ("window", 16, 25),
        ("window", 23, 26),
    ]
    assert result.chunks[0].text.split("\n")[0] == "key0 = 0"
    assert result.symbols == ()


@pytest.mark.parametrize("text", ["", "\n\n  \n", "   "])
@pytest.mark.parametrize("language", ["python", "go", "markdown", None])
def test_empty_files_have_no_chunks(text: str, language: str | None) -> None:
    assert parse_text("empty", text, language) == ParseResult(chunks=(), symbols=())


def test_syntax_errors_are_flagged_and_still_chunked() -> None:
    text = 'def ok(a):\n    return helper(a)\n\n\ndef broken(:\n    pass\n\n\nclass Fine:\n    """Doc."""\n'
    result = parse_text("broken.py", text, "python")
    assert result.has_syntax_errors is True
    chunks = {(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks}
    assert ("function", "ok", 1, 2) in chunks
    assert ("class", "Fine", 9, 10) in chunks
    assert ("reference", "call", "helper", 2, 11, "ok") in symbol_rows(result)
    covered = {line for c in result.chunks for line in range(c.start_line, c.end_line + 1)}
    assert {5, 6} <= covered  # the broken lines stay searchable


def test_invalid_utf8_keeps_line_numbers() -> None:
    raw = b"# \xff\xfe broken bytes\n\xc3\n\ndef after(x):\n    return call_me(x)  # \xe9t\xe9\n"
    text = raw.decode("utf-8", "replace")
    assert "\ufffd" in text
    result = parse_text("bad.py", text, "python")
    assert ("function", "after", 4, 5) in {(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks}
    assert ("reference", "call", "call_me", 5, 11, "after") in symbol_rows(result)
    assert ("definition", "function", "after", 4, 4, "") in symbol_rows(result)


def test_columns_count_code_points_on_non_ascii_lines() -> None:
    text = 'def f():\n    s = "héllo wörld 😀"; greet(s)\n    return ünïcode_name()\n'
    result = parse_text("u.py", text, "python")
    greet = next(s for s in result.symbols if s.name == "greet")
    assert (greet.line, greet.column, greet.end_column) == (2, 25, 30)
    assert text.split("\n")[1][25:30] == "greet"
    unicode_call = next(s for s in result.symbols if s.name == "ünïcode_name")
    assert (unicode_call.line, unicode_call.column, unicode_call.end_column) == (3, 11, 23)


def test_names_on_ascii_lines_of_a_non_ascii_file() -> None:
    # A file with any non-ASCII text takes the per-line path: on its ASCII lines a name is cut from the
    # line at its byte column, which there is its code-point column.
    text = '# ½ €\ndef f():\n    return helper(1) + other.method_call()\n\nz = "é"; last_call()'
    rows = symbol_rows(parse_text("mixed.py", text, "python"))
    assert ("reference", "call", "helper", 3, 11, "f") in rows
    assert ("reference", "call", "method_call", 3, 29, "f") in rows
    assert ("reference", "call", "last_call", 5, 9, "") in rows
    symbols = parse_text("mixed.py", text, "python").symbols
    last = next(s for s in symbols if s.name == "last_call")
    assert (last.column, last.end_column) == (9, 18)


def test_php_non_ascii_line_column() -> None:
    result = parse_fixture("Invoice.php")
    number_format = next(s for s in result.symbols if s.name == "number_format")
    assert (number_format.line, number_format.column, number_format.end_column) == (85, 11, 24)


def test_crlf_and_odd_characters_do_not_shift_lines() -> None:
    text = "x = 1\r\ny = '\x0c\u2028\x1c'\r\n\r\ndef g():\r\n    return h()\r\n"
    result = parse_text("crlf.py", text, "python")
    assert ("function", "g", 4, 5) in {(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks}
    assert ("reference", "call", "h", 5, 11, "g") in symbol_rows(result)


@pytest.mark.parametrize("language", ["python", "javascript", "rust", "c", "php", "markdown", None])
def test_garbage_never_raises(language: str | None) -> None:
    text = "\x00\x01}{)(][\ud800 def class fn \ufffd" * 50 + "\n" * 3 + "#" * 500
    result = parse_text("junk", text, language)
    assert isinstance(result, ParseResult)
    assert result.chunks, "even garbage stays searchable"
    assert all(isinstance(s, Symbol) for s in result.symbols)


def test_decorated_function_symbol_is_not_contained_by_itself() -> None:
    text = "@app.route('/')\ndef index():\n    return render()\n"
    result = parse_text("app.py", text, "python")
    assert symbol_rows(result) >= {
        ("definition", "function", "index", 2, 4, ""),
        ("reference", "call", "route", 1, 5, ""),
        ("reference", "call", "render", 3, 11, "index"),
    }
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [("function", 1, 3)]


def test_definitions_sharing_a_line_do_not_overlap() -> None:
    text = "function a() { return 1 } function b() { return a() }\n\nfunction c() {\n  return b()\n}\n"
    result = parse_text("one.js", text, "javascript")
    assert [(c.name, c.start_line, c.end_line) for c in result.chunks] == [("a", 1, 1), ("c", 3, 5)]
    assert ("definition", "function", "b", 1, 35, "") in symbol_rows(result)


def test_comments_inside_the_previous_function_are_not_taken_as_doc() -> None:
    text = "def a():\n    x = 1\n    # about x\n# helper b\n# second line\ndef b():\n    pass\n"
    result = parse_text("c.py", text, "python")
    # tree-sitter-python keeps the indented comment in a's block; b starts at its own comments.
    assert [(c.name, c.start_line, c.end_line) for c in result.chunks] == [("a", 1, 3), ("b", 4, 7)]
    text = "if X:\n    y = 1\n    # about y\n# helper b\ndef b():\n    pass\n"
    result = parse_text("c.py", text, "python")
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [
        ("module", 1, 3),
        ("function", 4, 6),
    ]


def test_go_doc_is_the_comment_block_right_above() -> None:
    text = "package p\n\n// Unrelated.\n\n// Sum adds.\n// Twice.\nfunc Sum(a, b int) int { return a + b }\n"
    result = parse_text("p.go", text, "go")
    chunk = chunk_named(result, "Sum")
    assert (chunk.start_line, chunk.doc) == (5, "Sum adds.\nTwice.")


@pytest.mark.parametrize(
    ("path", "language", "text", "signature"),
    [
        ("s.py", "python", "def f(x='#'):  # why\n    return x\n", "def f(x='#')"),
        ("s.go", "go", "package p\n\nfunc F() int { // why\n\treturn 1\n}\n", "func F() int"),
        ("s.js", "javascript", "function f(a,\n    b) /* c */ {\n  return a\n}\n", "function f(a, b)"),
    ],
)
def test_signature_is_one_line_without_trailing_comment(
    path: str, language: str, text: str, signature: str
) -> None:
    result = parse_text(path, text, language)
    assert [c.signature for c in result.chunks if c.kind == "function"] == [signature]


def test_rust_impl_for_a_reference_primitive_or_unnamed_type() -> None:
    # An impl for `&'a mut R`, `str` or `[T]` was no definition at all: its methods were top-level
    # functions (serde_json's forwarding `impl Read for &mut R` gave a bare `parse_str`).
    text = (
        "impl<'a, R: Read> Read for &'a mut R {\n    fn parse_str(&mut self) {}\n}\n"
        "impl Pattern for char {\n    fn is_match(&self) -> bool { true }\n}\n"
        "impl<T> ParallelSlice<T> for [T] {\n    fn par_chunks(&self) {}\n}\n"
        "impl<A, B> Unzip for (A, B) {\n    fn unzip(self) {}\n}\n"
        "impl<'a, T> IntoParallelIterator for &'a Vec<T> {\n    fn into_par_iter(self) {}\n}\n"
        "impl Value {\n    fn get(&self) {}\n}\n"
    )
    result = parse_definitions("r.rs", text, "rust")  # every container split into members
    assert [(c.kind, c.symbol, c.start_line) for c in result.chunks if c.kind == "method"] == [
        ("method", "R.parse_str", 2),
        ("method", "char.is_match", 5),
        ("method", "ParallelSlice.par_chunks", 8),
        ("method", "Unzip.unzip", 11),
        ("method", "Vec.into_par_iter", 14),
        ("method", "Value.get", 17),
    ]
    assert [c.symbol for c in result.chunks if c.kind == "impl"] == [
        "R",
        "char",
        "ParallelSlice",
        "Unzip",
        "Vec",
        "Value",
    ]
    assert ("definition", "method", "parse_str", 2, 7, "R") in symbol_rows(result)


def test_ruby_class_doc_one_blank_line_above() -> None:
    # Rack's style: the class comment, a blank line, the class.
    text = (
        "# frozen_string_literal: true\n"
        "\n"
        "module Rack\n"
        "  # Rack::URLMap takes a hash mapping urls or paths to apps.\n"
        "\n"
        "  class URLMap\n"
        "    def call(env)\n"
        "    end\n"
        "  end\n"
        "\n"
        "  X = 1 # trailing\n"
        "  # about X, not Other\n"
        "\n"
        "  class Other\n"
        "  end\n"
        "end\n"
    )
    result = parse_text("urlmap.rb", text, "ruby")
    urlmap = chunk_named(result, "Rack.URLMap")
    assert (urlmap.start_line, urlmap.doc) == (4, "Rack::URLMap takes a hash mapping urls or paths to apps.")
    other = chunk_named(result, "Rack.Other")
    assert (other.start_line, other.doc) == (14, "")
    # the file's magic comment is no doc of the first definition
    result = parse_text("a.rb", "# frozen_string_literal: true\n\nclass A\nend\n", "ruby")
    assert (chunk_named(result, "A").start_line, chunk_named(result, "A").doc) == (3, "")
    # a method keeps needing its comment right above it
    result = parse_definitions("b.rb", "class B\n  # not the doc\n\n  def f\n  end\nend\n", "ruby")
    assert chunk_named(result, "B.f").doc == ""


def test_ruby_attribute_methods_are_definitions() -> None:
    text = (
        "module Rack\n"
        "  class Request\n"
        "    attr_reader :env, :params\n"
        "    attr_accessor 'body'\n"
        "    attr_writer :ip\n"
        "    helper :not_an_attribute\n"
        "  end\n"
        "end\n"
    )
    definitions = {
        row for row in symbol_rows(parse_text("request.rb", text, "ruby")) if row[0] == "definition"
    }
    assert definitions == {
        ("definition", "module", "Rack", 1, 7, ""),
        ("definition", "class", "Request", 2, 8, "Rack"),
        ("definition", "property", "env", 3, 17, "Rack.Request"),
        ("definition", "property", "params", 3, 23, "Rack.Request"),
        ("definition", "property", "body", 4, 19, "Rack.Request"),
        ("definition", "property", "ip", 5, 17, "Rack.Request"),
    }


def test_ruby_methods_in_class_self_block_are_the_class_methods() -> None:
    text = (
        "class MediaType\n"
        "  class << self\n"
        "    # The media type of a content type.\n"
        "    def type(content_type)\n"
        "      content_type.split(';').first\n"
        "    end\n"
        "  end\n"
        "end\n"
    )
    result = parse_definitions("media_type.rb", text, "ruby")
    assert [(c.kind, c.symbol) for c in result.chunks if c.kind != "module"] == [
        ("class", "MediaType"),
        ("method", "MediaType.type"),
    ]
    assert chunk_named(result, "MediaType.type").doc == "The media type of a content type."
    assert ("definition", "method", "type", 4, 8, "MediaType") in symbol_rows(result)


def test_php_doc_keeps_the_descriptions_of_its_tags() -> None:
    text = (
        "<?php\nfinal class Query\n{\n"
        "    /**\n"
        "     * Parse a query string into an associative array.\n"
        "     *\n"
        "     * @param string   $str         Query string to parse\n"
        "     * @param int|bool $urlEncoding How the query string is encoded\n"
        "     * @return array<string, mixed> the pairs\n"
        "     * @phpstan-param Record $record\n"
        "     * @author Jordi Boggiano <j.boggiano@seld.be>\n"
        "     */\n"
        "    public static function parse(string $str, $urlEncoding = true): array\n"
        "    {\n        return [];\n    }\n"
        "\n    /** {@inheritDoc} */\n    public function build(): string\n    {\n        return '';\n    }\n"
        "}\n"
    )
    result = parse_definitions("Query.php", text, "php")
    assert chunk_named(result, "Query.parse").doc == (
        "Parse a query string into an associative array.\n\n"
        "Query string to parse\nHow the query string is encoded\nthe pairs"
    )
    assert chunk_named(result, "Query.build").doc == ""
    assert "@phpstan-param Record $record" in chunk_named(result, "Query.parse").text


def test_java_and_csharp_inherit_markers_are_left_out_of_the_doc() -> None:
    java = (
        "package a;\n\npublic class Stream implements Closeable {\n"
        "    /** {@inheritDoc} */\n    @Override\n    public void flush() {\n        sync();\n    }\n\n"
        "    /**\n     * {@inheritDoc}\n     * <p>Also releases the buffer.\n     */\n"
        "    public void close() {\n        release();\n    }\n\n"
        "    /** Writes {@inheritDoc} and a checksum. */\n"
        "    public void write(int b) {\n        put(b);\n    }\n"
        "}\n"
    )
    result = parse_text("Stream.java", java, "java", chunk_max_lines=10)
    assert chunk_named(result, "Stream.flush").doc == ""
    assert chunk_named(result, "Stream.close").doc == "<p>Also releases the buffer."
    assert chunk_named(result, "Stream.write").doc == "Writes and a checksum."
    assert "{@inheritDoc}" in chunk_named(result, "Stream.flush").text
    csharp = (
        "namespace A {\npublic class Stream : IStream {\n"
        "    /// <inheritdoc/>\n    public void Flush() {\n        Sync();\n    }\n\n"
        '    /// <inheritdoc cref="IStream.Flush"/>\n    public void Sync() {\n        Flush();\n    }\n\n'
        "    /// <summary>Own words.</summary>\n    /// <inheritdoc />\n    public void Close() {\n    }\n"
        "}\n}\n"
    )
    result = parse_text("Stream.cs", csharp, "csharp", chunk_max_lines=10)
    assert chunk_named(result, "A.Stream.Flush").doc == ""
    assert chunk_named(result, "A.Stream.Sync").doc == ""
    assert chunk_named(result, "A.Stream.Close").doc == "Own words."


def test_rust_doc_leaves_out_its_examples() -> None:
    text = (
        "/// Parallel iterator over a range.\n"
        "///\n"
        "/// ```\n"
        "/// let s: usize = (0..25usize).into_par_iter().zip(0..25).sum();\n"
        "/// ```\n"
        "///\n"
        "/// Implemented for all integer types.\n"
        "pub struct Iter<T> {\n    range: Range<T>,\n}\n"
    )
    chunk = chunk_named(parse_text("range.rs", text, "rust"), "Iter")
    assert chunk.doc == "Parallel iterator over a range.\n\nImplemented for all integer types."
    assert ".zip(0..25).sum()" in chunk.text
