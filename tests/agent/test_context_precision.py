"""What the first turn of implement and free-form runs leaves out, found by scoring it on the benchmark
repositories (`tests.benchmarks.retrieval.context_relevance --edits`, issue 13): fixture files that show
no test as the style example, definitions of a name that is some other thing (a Go ``string`` type read
as a method ``string()``, a parameter ``value`` read as the module ``mod value;``, a test's helper for
library code), callers of another class's ``close``, and an imports section that imports nothing. One
small workspace in four languages, one real lexical index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.context import Context, gather_context
from agent.task_builders import implement_task, run_task
from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex

FILES = {
    # --- Python: a stub whose doc names a helper that a test module defines too
    "shop/report.py": (
        "from shop.rows import make_rows\n\n\n"
        "def report(orders):\n"
        '    """Build the report lines of `orders` with `make_rows`."""\n'
        "    raise NotImplementedError\n"
    ),
    "shop/rows.py": "def make_rows(orders):\n    return [str(o) for o in orders]\n",
    # a conftest of fixtures sorts first in tests/ but shows no test
    "tests/conftest.py": (
        "import pytest\n\n\n@pytest.fixture\ndef orders():\n    return [1, 2, 3]\n\n\n"
        "@pytest.fixture\ndef empty():\n    return []\n"
    ),
    "tests/test_rows.py": (
        "from shop.rows import make_rows as real_rows\n\n\n"
        "def make_rows(orders):\n    return ['fake']\n\n\n"
        "def test_rows_are_strings(orders):\n    assert real_rows(orders) == ['1', '2', '3']\n"
    ),
    # --- Python: three classes define close(); one caller's file never names Pump
    "plumbing/pump.py": (
        "class Pump:\n"
        "    def __init__(self, source):\n        self.source = source\n\n"
        "    def close(self):\n"
        '        """Close the source and mark the pump as drained."""\n'
        "        raise NotImplementedError\n"
    ),
    "plumbing/files.py": "class Reader:\n    def close(self):\n        self.handle.close()\n",
    "plumbing/sockets.py": "class Socket:\n    def close(self):\n        self.fd = None\n",
    "plumbing/cleanup.py": "def finish(resource):\n    resource.close()\n    return True\n",
    "plumbing/drain.py": (
        "from plumbing.pump import Pump\n\n\ndef drain(source):\n    pump = Pump(source)\n    pump.close()\n"
    ),
    # --- Python: a class named Option (a word the context once took for Rust's Option and skipped)
    "shop/options.py": (
        "import typing as t\n\n\n"
        "class Option:\n    def __init__(self, name):\n        self.name = name\n\n\n"
        "def option(name, cls: t.Optional[t.Type[Option]] = None):\n"
        '    """Attach an option called `name`, built with `cls`."""\n'
        "    raise NotImplementedError\n"
    ),
    # --- Go: `string` in a signature is the builtin type, not the method string() of another type
    "lib/args.go": (
        "package lib\n\n"
        "// Join joins the parts with commas.\n"
        "func Join(parts []string) string {\n"
        '\tpanic("not implemented")\n'
        "}\n"
    ),
    "lib/directive.go": (
        "package lib\n\ntype Directive int\n\n"
        "// string lists the directive's flags.\n"
        "func (d Directive) string() string {\n"
        '\treturn "flags"\n'
        "}\n"
    ),
    # --- Rust: the crate's own `Result` alias is the signature's type; `value` is a parameter
    "src/lib.rs": "pub mod error;\npub mod value;\npub mod ser;\n",
    "src/error.rs": "pub struct Error;\n\npub type Result<T> = std::result::Result<T, Error>;\n",
    "src/value.rs": "pub struct Thing {\n    pub name: String,\n}\n",
    "src/ser.rs": (
        "use crate::error::Result;\nuse crate::value::Thing;\n\n"
        "/// Serialize `value` as text.\n"
        "pub fn to_text(value: &Thing) -> Result<String> {\n"
        "    todo!()\n"
        "}\n"
    ),
    # --- JavaScript: a file whose only head is 'use strict'
    "web/price.js": (
        "'use strict';\n\n"
        "function parsePriceTag(text) {\n"
        "  const amount = Number(text.replace('$', ''));\n"
        "  return { amount, currency: 'USD' };\n"
        "}\n\n"
        "module.exports = parsePriceTag;\n"
    ),
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceIndex:
    base = tmp_path_factory.mktemp("precision")
    root = base / "ws"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = WorkspaceIndex(
        root, IndexSettings(embedding=EmbeddingSettings(provider="none")), cache_dir=base / "cache", env={}
    )
    index.index()
    return index


def _read(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        file = root / path
        return file.read_text() if file.is_file() else None

    return read


def _implement(index: WorkspaceIndex, path: str, line: int) -> Context:
    task = implement_task(index.root, FILES[path], path, line)
    return gather_context(task, root=index.root, read_file=_read(index.root), index=index)


def _headers(context: Context) -> list[str]:
    return [s.header() for s in context.sections]


def test_the_style_example_is_a_real_test_with_its_imports_not_a_conftest(index: WorkspaceIndex) -> None:
    context = _implement(index, "shop/report.py", 4)
    style = [s for s in context.sections if s.reason == "an existing test, for its style"]
    assert [s.path for s in style] == ["tests/test_rows.py"], _headers(context)
    assert "def test_rows_are_strings" in style[0].text
    assert any(s.path == "tests/test_rows.py" and s.reason == "imports" for s in context.sections)


def test_a_test_modules_helper_is_not_offered_as_the_definition_library_code_uses(
    index: WorkspaceIndex,
) -> None:
    context = _implement(index, "shop/report.py", 4)
    definitions = [s for s in context.sections if "used by" in s.reason]
    assert [s.path for s in definitions] == ["shop/rows.py"], _headers(context)


def test_callers_of_a_method_many_classes_define_are_those_that_name_its_class(
    index: WorkspaceIndex,
) -> None:
    context = _implement(index, "plumbing/pump.py", 5)
    callers = [s.path for s in context.sections if s.reason.startswith("a caller of")]
    assert callers == ["plumbing/drain.py"], _headers(context)


def test_a_builtin_type_in_a_go_signature_is_not_resolved_to_a_method_of_that_name(
    index: WorkspaceIndex,
) -> None:
    context = _implement(index, "lib/args.go", 4)
    assert not any(s.path == "lib/directive.go" for s in context.sections), _headers(context)


def test_a_crates_result_alias_is_shown_and_a_parameter_is_not_read_as_a_module(
    index: WorkspaceIndex,
) -> None:
    context = _implement(index, "src/ser.rs", 5)
    paths = [s.path for s in context.sections if "used by" in s.reason]
    assert "src/error.rs" in paths, _headers(context)  # `Result` is the crate's alias
    assert not any(s.reason.startswith("`value`") for s in context.sections), _headers(context)  # mod value;


def test_an_imports_section_that_imports_nothing_is_left_out(index: WorkspaceIndex) -> None:
    context = gather_context(
        run_task("parse a price tag"), root=index.root, read_file=_read(index.root), index=index
    )
    assert any(s.path == "web/price.js" for s in context.sections), _headers(context)
    assert not any(s.reason == "imports" and s.path == "web/price.js" for s in context.sections), _headers(
        context
    )


def test_a_class_named_option_in_the_signature_is_shown(index: WorkspaceIndex) -> None:
    context = _implement(index, "shop/options.py", 9)
    signatures = [s.text for s in context.sections if s.title == "signatures"]
    assert signatures and "shop/options.py:4: class Option" in signatures[0], _headers(context)
