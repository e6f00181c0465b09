"""Finding functions and stubs (`indexing.definitions`), with the real grammars of ten languages."""

from __future__ import annotations

import pytest

from indexing.definitions import FunctionSpan, Outline, _may_be_stub, innermost, is_stub, outline

# --------------------------------------------------------------------------------------------------
# is_stub truth table

STUB_TABLE = [
    # Python
    ("python", "def f():\n    pass\n", True),
    ("python", "def f():\n    ...\n", True),
    ("python", "def f():\n    raise NotImplementedError\n", True),
    ("python", "def f():\n    raise NotImplementedError('later')\n", True),
    ("python", 'def f():\n    """Only a docstring."""\n', True),
    ("python", 'def f():\n    """Doc."""\n    # TODO: write me\n    return None\n', True),
    ("python", "    @property\n    def f(self):\n        '''Doc.'''\n        pass\n", True),
    ("python", "def f():\n    return 1\n", False),
    ("python", "def f(x):\n    if x:\n        pass\n    return x\n", False),
    ("python", "def f():\n    raise ValueError('bad')\n", False),
    ("python", "def f():\n    return None\n", False),
    ("python", "@abstractmethod\ndef f(self):\n    '''Subclasses say.'''\n    ...\n", False),
    ("python", "@typing.overload\ndef f(x: int) -> int: ...\n", False),
    ("python", "def f():\n    s = 'pass'\n    return s\n", False),
    # JavaScript / TypeScript
    ("javascript", "function f() {}\n", True),
    ("javascript", "function f() {\n  // TODO\n}\n", True),
    ("javascript", "function f() {\n  throw new Error('not implemented');\n}\n", True),
    ("javascript", "const f = () => {\n  throw new Error(`Not yet implemented: ${x}`);\n};\n", True),
    ("javascript", "function f() {\n  throw new Error('bad input');\n}\n", False),
    ("javascript", "function f() {\n  return 1;\n}\n", False),
    ("javascript", "const f = () => 42;\n", False),
    ("typescript", "  async load(id: string): Promise<User> {\n    throw new Error('TODO');\n  }\n", True),
    ("typescript", "  count(): number {\n    // TODO\n  }\n", True),
    ("typescript", "  abstract count(): number;\n", False),
    ("typescript", "export function f(a: { x: number }): number {\n  return a.x;\n}\n", False),
    ("tsx", "export function View(): JSX.Element {\n  throw new Error('not implemented');\n}\n", True),
    # Go
    ("go", 'func F() error {\n\tpanic("not implemented")\n}\n', True),
    ("go", 'func (s *S) F() {\n\tpanic("TODO")\n}\n', True),
    ("go", "func F() {}\n", True),
    ("go", 'func F(x int) {\n\tif x < 0 {\n\t\tpanic("negative")\n\t}\n}\n', False),
    ("go", 'func F() {\n\tpanic("unreachable")\n}\n', False),
    # Rust
    ("rust", "pub fn f() -> u32 {\n    todo!()\n}\n", True),
    ("rust", 'fn f(&self) -> u32 {\n    unimplemented!("later");\n}\n', True),
    ("rust", 'fn f() -> &\'static str {\n    "todo!()"\n}\n', False),
    ("rust", "fn drop(&mut self) {}\n", False),
    ("rust", "fn f() -> u32 {\n    42\n}\n", False),
    # Java
    ("java", "public int f() {\n    throw new UnsupportedOperationException();\n}\n", True),
    ("java", 'public Foo(int a) {\n    throw new UnsupportedOperationException("later");\n}\n', True),
    ("java", "public String f() {\n    // TODO Auto-generated method stub\n    return null;\n}\n", True),
    ("java", "public String f() {\n    return null;\n}\n", False),
    ("java", "public void f() {}\n", False),
    ("java", 'public int f() {\n    throw new IllegalArgumentException("x");\n}\n', False),
    # C#, Ruby
    ("csharp", "public int F() {\n    throw new NotImplementedException();\n}\n", True),
    ("csharp", "public int F() => throw new NotImplementedException();\n", True),
    ("csharp", "public int F() {\n    return 1;\n}\n", False),
    ("ruby", "def f(a)\n  raise NotImplementedError\nend\n", True),
    ("ruby", "def f(a)\n  a + 1\nend\n", False),
]


@pytest.mark.parametrize(("language", "code", "expected"), STUB_TABLE)
def test_is_stub(language: str, code: str, expected: bool) -> None:
    assert is_stub(code, language) is expected


@pytest.mark.parametrize(("language", "code"), [(lang, code) for lang, code, stub in STUB_TABLE if stub])
def test_the_quick_prefilter_never_hides_a_stub(language: str, code: str) -> None:
    assert _may_be_stub(code)


def test_a_long_todo_note_does_not_hide_a_stub() -> None:
    code = "function f() {\n  // TODO: one\n  // two\n  // three\n  // four\n  // five\n}\n"
    assert _may_be_stub(code) and is_stub(code, "javascript")


def test_is_stub_is_false_without_a_function() -> None:
    assert is_stub("x = 1\n", "python") is False
    assert is_stub("anything", "no-such-language") is False


# --------------------------------------------------------------------------------------------------
# outline: what the server's code actions use


def test_outline_lists_functions_and_documented_stubs_from_one_parse() -> None:
    text = (
        "class Cart:\n"
        "    def total(self):\n"
        "        return 1\n"
        "\n"
        "    def add(self, item):\n"
        '        """Add an item."""\n'
        "        raise NotImplementedError\n"
        "\n"
        "def helper():\n"
        "    pass\n"
    )
    found = outline("shop/cart.py", text)
    assert found.language == "python"
    assert [(f.symbol, f.start_line, f.end_line) for f in found.functions] == [
        ("Cart.total", 2, 3),
        ("Cart.add", 5, 7),
        ("helper", 9, 10),
    ]
    assert [(s.symbol, s.doc) for s in found.stubs] == [("Cart.add", "Add an item.")]  # helper has no doc
    assert found.function_at(6) == found.functions[1]
    assert found.function_at(4) is None
    assert outline("api.pyi", text).stubs == ()
    assert outline("notes.txt", text) == Outline("text")  # a language without functions


def test_innermost_prefers_the_shortest_span() -> None:
    outer, inner = FunctionSpan("f", "f", 1, 10), FunctionSpan("g", "f.g", 3, 5)
    assert innermost([outer, inner], 4) is inner
    assert innermost([outer, inner], 7) is outer
    assert innermost([outer, inner], 11) is None


@pytest.mark.parametrize(
    ("language", "body", "expected"),
    [
        ("c", "return -ENOSYS;", True),
        ("c", "abort();", True),
        ("c", 'assert(0 && "not implemented");', True),
        ("cpp", "std::abort();", True),
        ("cpp", "return -EOPNOTSUPP;", True),
        ("c", "return -EINVAL;", False),
        ("c", "return a + b;", False),
    ],
)
def test_c_and_cpp_placeholder_bodies(language: str, body: str, expected: bool) -> None:
    for code in (f"int add(int a, int b)\n{{\n\t{body}\n}}\n", f"int add(int a, int b) {{ {body} }}\n"):
        assert is_stub(code, language) is expected, code
        if expected:
            assert _may_be_stub(code), code


C_STUBS = """\
#include <stddef.h>

/**
 * Return the sum of a and b.
 */
int add(int a, int b)
{
\treturn 0;
}

// Count the set bits in x.
static unsigned popcount(unsigned x) {
}

/* Reverse the string s in place. */
void reverse(char *s)
{
\t/* TODO */
}

/* Look up key in the table; NULL when absent. */
struct entry *lookup(struct table *t, const char *key) { return NULL; }

/** Multiply a and b. */
int mul(int a, int b) { return a * b; }

static int helper(void) { return 0; }
"""


def test_c_stubs_with_block_line_and_kernel_style_doc_comments() -> None:
    found = outline("lib/math.c", C_STUBS)
    assert [(s.symbol, s.doc) for s in found.stubs] == [
        ("add", "Return the sum of a and b."),
        ("popcount", "Count the set bits in x."),
        ("reverse", "Reverse the string s in place."),
        ("lookup", "Look up key in the table; NULL when absent."),
    ]  # mul has a body; helper has no doc comment
    assert [f.symbol for f in found.functions] == ["add", "popcount", "reverse", "lookup", "mul", "helper"]


def test_cpp_stubs_and_empty_constructors() -> None:
    text = (
        "/// Greatest common divisor of a and b.\n"
        "int gcd(int a, int b) {\n  return 0;\n}\n\n"
        "class Stack {\n public:\n"
        "  /** An empty stack. */\n  Stack() {}\n"
        "  /** Drop every element. */\n  ~Stack() {}\n"
        "  // Push x on top of the stack.\n  void push(int x) {}\n"
        "  /** Size. */\n  int size() const { return n; }\n"
        "};\n"
    )
    found = outline("src/stack.cpp", text)
    assert [s.symbol for s in found.stubs] == ["gcd", "Stack.push"]
    assert found.stubs[1].doc == "Push x on top of the stack."


@pytest.mark.parametrize(
    ("language", "code", "expected"),
    [
        ("c", "int f(void)\n{\n}\n", True),
        ("c", "void *f(void) { return NULL; }\n", True),
        ("c", "bool f(void) { return false; }\n", True),
        ("c", "int f(int x)\n{\n\treturn x;\n}\n", False),
        ("c", "int f(void)\n{\n\tg();\n\treturn 0;\n}\n", False),
        ("cpp", "int* f() { return nullptr; }\n", True),
        ("cpp", "Foo::Foo() {}\n", False),
    ],
)
def test_c_and_cpp_empty_and_placeholder_return_bodies(language: str, code: str, expected: bool) -> None:
    assert is_stub(code, language) is expected, code
    if expected:
        assert _may_be_stub(code), code


def test_c_configuration_fallbacks_are_not_stubs() -> None:
    text = (
        "#ifndef _RING_H\n#define _RING_H\n\n"
        "/* Flush the ring. */\nstatic inline void ring_flush(void) {}\n\n"  # in a header guard only: a stub
        "#ifdef CONFIG_RING_STATS\n"
        "/* Count a push. */\nvoid ring_count(void)\n{\n\tstats++;\n}\n"
        "#else\n"
        "/* Count a push. */\nstatic inline void ring_count(void) {}\n"  # the !CONFIG variant
        "/* The ring's size. */\nstatic inline int ring_size(void) { return 0; }\n"  # in a conditional
        "/* Reset the ring. */\nstatic inline int ring_reset(void)\n{\n\t/* TODO */\n\treturn 0;\n}\n"
        "#endif\n\n"
        "/* Architectures may override this. */\nbool __weak arch_ring_ok(void)\n{\n\treturn false;\n}\n"
        "#endif\n"
    )
    assert [s.symbol for s in outline("include/ring.h", text).stubs] == ["ring_flush", "ring_reset"]
