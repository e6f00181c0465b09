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


def _indexed(base: Path, files: dict[str, str]) -> WorkspaceIndex:
    """A real lexical index of a workspace under `base` holding `files`."""
    root = base / "ws"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = WorkspaceIndex(
        root, IndexSettings(embedding=EmbeddingSettings(provider="none")), cache_dir=base / "cache", env={}
    )
    index.index()
    return index


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceIndex:
    return _indexed(tmp_path_factory.mktemp("precision"), FILES)


def _read(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        file = root / path
        return file.read_text() if file.is_file() else None

    return read


def _implement(index: WorkspaceIndex, path: str, line: int) -> Context:
    task = implement_task(index.root, (index.root / path).read_text(), path, line)
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


# --- Session 26: what the benchmark's first turns still showed that is no use ----------------------------

SESSION_26 = {
    "tools/screen.py": (
        'import os\n\n\ndef clear():\n    """Clear the terminal screen."""\n    raise NotImplementedError\n'
    ),
    "tools/report.py": (
        'import sys\n\n\ndef main():\n    """Print the report of the day."""\n    raise NotImplementedError\n'
    ),
    # calls some set's clear(), not the function tools.screen.clear
    "tests/test_shells.py": (
        "def test_a_set_of_shells_empties():\n"
        '    shells = {"bash", "zsh"}\n    shells.clear()\n    assert not shells\n'
    ),
    # names the module, so `screen.clear()` is the function
    "tests/test_screen.py": (
        "from tools import screen\n\n\ndef test_clear_runs():\n    screen.clear()\n    assert True\n\n\n"
        "def test_clear_twice():\n    screen.clear()\n    screen.clear()\n"
    ),
    # its usual name says it tests tools/report.py, but only a comment says "main"
    "tests/test_report.py": (
        "# The report is printed by the main entry point.\n"
        "def test_lines_are_text():\n    assert str(1) == '1'\n"
    ),
    # a doc comment the chunker keeps apart from the code it documents
    "web/response.js": (
        "'use strict';\n\nvar cookie = require('cookie');\n\n"
        "res.clearCookie = function clearCookie(name, options) {\n"
        "  var opts = Object.assign({ expires: new Date(1), path: '/' }, options);\n"
        "  return this.cookie(name, '', opts);\n};\n\n"
        "/**\n * Set cookie `name` to `value`, with the given `options`.\n *\n * Options:\n *\n"
        " *    - `maxAge`   max-age in milliseconds, converted to `expires`\n"
        ' *    - `signed`   sign the cookie\n *    - `path`     defaults to "/"\n *\n * Examples:\n *\n'
        " *    res.cookie('rememberme', '1', { maxAge: 900000, httpOnly: true })\n *\n"
        " * @param {String} name\n * @param {String|Object} value\n * @param {Object} [options]\n"
        " * @return {ServerResponse} for chaining\n * @public\n */\n\n"
        "res.cookie = function (name, value, options) {\n"
        "  var opts = Object.assign({}, options);\n"
        "  if ('maxAge' in opts) {\n    opts.expires = new Date(Date.now() + opts.maxAge);\n  }\n"
        "  this.append('Set-Cookie', cookie.serialize(name, String(value), opts));\n  return this;\n};\n"
    ),
    # outside a browser the methods do nothing: `write() {},` is a stub
    "web/cookies.js": (
        "import platform from './platform.js';\n\nexport default platform.isBrowser ?\n  {\n"
        "    write(name, value) {\n      document.cookie = name + '=' + encodeURIComponent(value);\n    },\n"
        "    read(name) {\n      return document.cookie.includes(name) ? name : null;\n    },\n"
        "  }\n  :\n  {\n"
        "    write() {},\n    read() {\n      return null;\n    },\n  };\n"
    ),
}


@pytest.fixture(scope="module")
def index26(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceIndex:
    return _indexed(tmp_path_factory.mktemp("precision26"), SESSION_26)


def test_a_test_of_some_objects_method_is_no_test_of_a_function_of_that_name(index26: WorkspaceIndex) -> None:
    """tests/test_shells.py calls a set's clear() (the index lists it as a reference to `clear`): no test
    of the function tools.screen.clear, which a test reaches as `screen.clear()`, naming its module.
    Before, both were shown as "tests that use `clear`"."""
    headers = _headers(_implement(index26, "tools/screen.py", 4))
    assert any(h.startswith("## tests/test_screen.py:") for h in headers), headers
    assert not any("test_shells.py" in h for h in headers), headers


def test_a_test_file_that_names_the_function_only_in_a_comment_is_not_its_test(
    index26: WorkspaceIndex,
) -> None:
    """tests/test_report.py has the usual name of tools/report.py's tests but says "main" only in a comment:
    the run gets a real test for its style instead. Before, it was shown as "tests that use `main`"."""
    context = _implement(index26, "tools/report.py", 4)
    assert not any("test_report.py" in h for h in _headers(context)), _headers(context)
    style = [s for s in context.sections if s.reason == "an existing test, for its style"]
    assert style and "def test_" in style[0].text, _headers(context)


def test_search_hits_that_are_a_lone_doc_comment_or_an_empty_method_are_left_out(
    index26: WorkspaceIndex,
) -> None:
    """A free-form run's hits: the doc comment of res.cookie, a chunk of its own, is not shown apart from
    the code it documents, and `write() {},` (outside a browser) shows nothing. Before, both were sections
    of their own."""
    root = index26.root
    for query in ("set a cookie with maxAge", "write cookies"):
        context = gather_context(run_task(query), root=root, read_file=_read(root), index=index26)
        for section in context.sections:
            code = [
                ln for ln in section.text.split("\n") if ln.strip() and not ln.strip().startswith(("/", "*"))
            ]
            assert code, (query, section.header())
            assert section.text.strip() != "write() {},", (query, section.header())
        assert any("res.cookie = function" in s.text for s in context.sections), _headers(context)


def _long_go_function() -> str:
    """A 313-line Go function, indexed as six windows, each naming the route, path, params and handler."""
    lines = [
        "// lookupRoute returns the handler registered for path, capturing its params.",
        "func (n *node) lookupRoute(path string, params *Params) (handler Handler) {",
    ]
    for i in range(28):
        lines += [
            f"\t// step {i}: match the route path prefix and capture params for the handler",
            f"\tif len(path) > {i} && n.path[{i}] == path[{i}] {{",
            f'\t\tparams.add("p{i}", path[{i}:])',
            f"\t\tn = n.children[{i % 3}]",
            "\t}",
            f"\tcount{i} := len(*params)",
            f"\t_ = count{i}",
            "\tif n == nil {\n\t\treturn nil\n\t}",
            "\t",
        ]
    lines += ["\treturn n.handler", "}"]
    return "package gin\n\n" + "\n".join(lines) + "\n"


def test_a_questions_context_keeps_every_window_of_the_long_function_it_asks_about(tmp_path: Path) -> None:
    """A free-form run's hits are its whole context: the search behind them keeps a file's hits in score
    order (`WorkspaceIndex.search(diverse=False)`), so the windows of one long function all come, not
    a one-line mention in another file in place of one. Before (the ranking's file diversity, d8e39bc), the
    function's fifth and further windows scored half each and its last window gave way to another file's
    (gin's node.getValue lost its head window, its signature, on the held-out split)."""
    files = {"tree.go": _long_go_function()}
    for name in ("logger", "context", "errors"):
        files[f"{name}.go"] = (
            f"package gin\n\n// {name}Route logs the route path of a handler and its params.\n"
            f"func {name}Route(path string, params *Params, handler Handler) string {{\n\treturn path\n}}\n"
        )
    index = _indexed(tmp_path, files)
    root = index.root
    query = "look up the route handler for a path and capture params"
    context = gather_context(run_task(query), root=root, read_file=_read(root), index=index)
    shown = {n for s in context.sections if s.path == "tree.go" for n in range(s.start_line, s.end_line + 1)}
    missing = set(range(3, 315)) - shown
    assert not missing, (min(missing), max(missing), _headers(context))
