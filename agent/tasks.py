"""What the user asked the agent to do, as a typed `Task`, and the prompt that tells the model.

The language server and the CLI turn a request (a code action, a command, a CLI verb) into a `Task` with
one of the builders below; the builders check that the request makes sense (there is a function at the
cursor, it is a stub, it has a doc comment to implement from ...) and raise `TaskError` with a message
for the user when it does not. The agent loop then renders the task for the model with
`render_task_prompt`, together with the `Context` that `agent.context.gather_context` collected, and sends
`system_prompt()` as the system prompt.

Task kinds:

- ``implement``: give a stub function (``pass``, ``todo!()``, ``throw new Error("not implemented")`` ...)
  a body that does what its doc comment says;
- ``fix``: make diagnostics in a range go away;
- ``tests``: write tests for a function;
- ``edit``: change a range as the user's instruction says;
- ``ask``: answer a question about the code, with no edits;
- ``run``: a free-form instruction for the whole workspace (``agentls run``).

Stub detection (`is_stub`, `stub_functions`) parses with tree-sitter rather than matching text, so a
``pass`` in a nested block or a ``todo!()`` in a string does not make a function a stub. Finding
functions uses `indexing.chunker.parse_source` with settings that split every container into its members
(see `definition_chunks`), so methods of small classes are found as well.

Templates live in ``agent/prompts/<kind>.md`` and ``agent/prompts/system.md`` and use `string.Template`
placeholders (``$instruction``), because code in the templates is full of braces.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from string import Template
from typing import TYPE_CHECKING, Literal

from tree_sitter import Node, Tree

from agent.paths import PathRefused, is_secret_path, resolve_in_workspace
from indexing.chunker import parse_source
from indexing.config import IndexSettings
from indexing.languages import detect_language, get_parser, get_queries
from indexing.models import Chunk, ParseLimits, ParseResult

if TYPE_CHECKING:
    from agent.context import Context

__all__ = [
    "Diagnostic",
    "StubInfo",
    "Task",
    "TaskError",
    "TaskKind",
    "ask_task",
    "code_fence",
    "definition_chunks",
    "edit_task",
    "enclosing_function",
    "fix_task",
    "implement_task",
    "is_stub",
    "parse_definitions",
    "render_task_prompt",
    "run_task",
    "stub_functions",
    "system_prompt",
    "tests_task",
]

TaskKind = Literal["implement", "fix", "tests", "edit", "ask", "run"]
TASK_KINDS: tuple[TaskKind, ...] = ("implement", "fix", "tests", "edit", "ask", "run")
Severity = Literal["error", "warning", "information", "hint"]
FUNCTION_KINDS = frozenset({"function", "method"})


class TaskError(ValueError):
    """The request cannot become a task. The message says why and what the user can do instead."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem reported by the editor (compiler, linter, type checker). Lines are 1-based, inclusive."""

    message: str
    line: int
    end_line: int
    severity: Severity = "error"
    source: str = ""  # "pyright", "eslint", "rustc" ...
    code: str = ""


@dataclass(frozen=True, slots=True)
class Task:
    """One request to the agent. Paths are workspace-relative POSIX; lines 1-based and inclusive."""

    kind: TaskKind
    instruction: str
    path: str | None = None
    range: tuple[int, int] | None = None
    symbol: str | None = None  # qualified name of the function the task is about
    language: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    edits_allowed: bool = True
    signature: str = ""  # the target function's header, on one line
    doc: str = ""  # the target function's doc comment, cleaned

    @property
    def name(self) -> str | None:
        """The short name of the target symbol (``total`` for ``Cart.total``)."""
        return self.symbol.rsplit(".", 1)[-1] if self.symbol else None

    @property
    def title(self) -> str:
        """A one-line description for progress reports and run lists."""
        where = self.path or "the workspace"
        if self.kind == "implement":
            return f"Implement `{self.symbol}` in {where}"
        if self.kind == "tests":
            return f"Write tests for `{self.symbol}` in {where}"
        if self.kind == "fix":
            count = len(self.diagnostics)
            return f"Fix {count} problem{'s' if count != 1 else ''} in {where}"
        first_line = self.instruction.strip().splitlines()[0] if self.instruction.strip() else ""
        if len(first_line) > 80:
            first_line = first_line[:77] + "..."
        return f"{self.kind.capitalize()}: {first_line}"


@dataclass(frozen=True, slots=True)
class StubInfo:
    """A function whose body is a stub and which has a doc comment: what "Implement X" code actions list.

    Lines are 1-based and inclusive; the range starts at the doc comment or decorators above the function.
    """

    name: str
    qualified: str
    start_line: int
    end_line: int
    doc: str
    signature: str = ""


# ---------------------------------------------------------------------------------------------------
# Finding functions


@functools.cache
def _definition_limits() -> ParseLimits:
    # A zero line limit makes the chunker split every container (even a three-line class) into its
    # members, and a huge window keeps each function in one chunk, so every function and method becomes
    # exactly one chunk with its doc and signature.
    return dataclasses.replace(IndexSettings().parse_limits(), chunk_max_lines=0, window_lines=1_000_000_000)


def parse_definitions(path: str, text: str, language: str | None) -> ParseResult:
    """Parse a file so that each function, method and class is its own chunk (one tree-sitter parse).

    The symbols are the same as `indexing.chunker.parse_source` reports for the index.
    """
    return parse_source(path, text, language, _definition_limits())


def definition_chunks(path: str, text: str, language: str | None) -> tuple[Chunk, ...]:
    """The chunks of `parse_definitions`: one per definition (containers as skeletons), plus module runs."""
    return parse_definitions(path, text, language).chunks


def enclosing_function(chunks: Iterable[Chunk], line: int) -> Chunk | None:
    """The innermost function or method chunk whose range holds the 1-based `line`, or None."""
    best: Chunk | None = None
    for chunk in chunks:
        if (
            chunk.kind in FUNCTION_KINDS
            and chunk.start_line <= line <= chunk.end_line
            and (best is None or chunk.end_line - chunk.start_line < best.end_line - best.start_line)
        ):
            best = chunk
    return best


def _functions_in(chunks: Iterable[Chunk], start: int, end: int) -> list[Chunk]:
    return [c for c in chunks if c.kind in FUNCTION_KINDS and c.start_line <= end and c.end_line >= start]


# ---------------------------------------------------------------------------------------------------
# Stub detection

_FUNCTION_NODES: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition"}),
    "javascript": frozenset(
        {
            "function_declaration",
            "function_expression",
            "function",
            "arrow_function",
            "method_definition",
            "generator_function_declaration",
            "generator_function",
        }
    ),
    "go": frozenset({"function_declaration", "method_declaration", "func_literal"}),
    "rust": frozenset({"function_item"}),
    "java": frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"}),
    "csharp": frozenset({"method_declaration", "constructor_declaration", "local_function_statement"}),
    "c": frozenset({"function_definition"}),
    "cpp": frozenset({"function_definition"}),
    "php": frozenset({"function_definition", "method_declaration"}),
    "ruby": frozenset({"method", "singleton_method"}),
}
_FUNCTION_NODES["typescript"] = _FUNCTION_NODES["tsx"] = _FUNCTION_NODES["javascript"]

# Languages where a method's text alone does not parse: it is parsed again inside a class.
_CLASS_WRAPPED = frozenset({"javascript", "typescript", "tsx", "java", "csharp", "php", "cpp"})

_NOT_IMPLEMENTED = re.compile(
    r"not[\s_-]*(?:yet[\s_-]*)?implemented|unimplemented|\btodo\b|implement[\s_-]*me|\bstub\b", re.IGNORECASE
)
_TODO_COMMENT = re.compile(
    r"\b(?:TODO|FIXME|XXX)\b|not\s+(?:yet\s+)?implemented|implement\s+me", re.IGNORECASE
)
_TRIVIAL_RETURN = re.compile(
    r"return(?:\s*\(?\s*(?:null|nil|None|undefined|nullptr|NULL|0|0\.0|0L|-1|false|False|true|True|\"\"|''"
    r"|default(?:\(\w+\))?|Ok\(\(\)\)|\{\}|\[\])\s*\)?)?\s*;?"
)
_EMPTY_IS_STUB = frozenset({"javascript", "typescript", "tsx", "go"})


def _message_says_not_implemented(args: str) -> bool:
    return bool(_NOT_IMPLEMENTED.search(args))


def _stub_statement(language: str, text: str) -> bool:
    """Whether one statement (whitespace collapsed) is a language's way of saying "not written yet"."""
    if language == "python":
        return bool(
            re.fullmatch(r"pass|\.\.\.|raise\s+NotImplementedError(?:\s*\(.*\))?(?:\s+from\s+\w+)?", text)
        )
    if language in ("javascript", "typescript", "tsx"):
        match = re.fullmatch(r"throw\s+(?:new\s+)?Error\s*\((.*)\)\s*;?", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "go":
        match = re.fullmatch(r"panic\s*\((.*)\)", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "rust":
        return bool(re.fullmatch(r"(?:std::|core::)?(?:todo|unimplemented)!\s*[(\[{].*[)\]}]\s*;?", text))
    if language == "java":
        if re.fullmatch(r"throw\s+new\s+(?:java\.lang\.)?UnsupportedOperationException\s*\(.*\)\s*;", text):
            return True
        match = re.fullmatch(
            r"throw\s+new\s+(?:[\w.]+\.)?(?:RuntimeException|IllegalStateException|AssertionError|Error)"
            r"\s*\((.*)\)\s*;",
            text,
        )
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "csharp":
        return bool(
            re.fullmatch(r"(?:=>\s*)?throw\s+new\s+(?:System\.)?NotImplementedException\s*\(.*\)\s*;?", text)
        )
    if language in ("cpp", "php"):
        match = re.fullmatch(r"throw\s+(?:new\s+)?[\\\w:]+\s*\((.*)\)\s*;", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "ruby":
        return bool(re.fullmatch(r"raise\s+NotImplementedError\b.*", text))
    return False


_SPACES = re.compile(r"\s+")
_ABSTRACT_DECORATOR = re.compile(
    r"^\s*@(?:[\w.]+\.)?(?:abstractmethod|abstractproperty|overload)\b", re.MULTILINE
)


def _node_text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _first_function(tree: Tree, types: frozenset[str]) -> Node | None:
    """The outermost function node with a body, in document order."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in types:
            return node
        stack.extend(reversed(node.children))
    return None


def _parse_function(text: str, language: str) -> Node | None:
    """The function node of a chunk's text, parsing it inside a class when it is a bare method."""
    parser = get_parser(language)
    types = _FUNCTION_NODES.get(language)
    if parser is None or types is None:
        return None
    prefix = "<?php\n" if language == "php" and "<?php" not in text else ""
    tree = parser.parse((prefix + text).encode("utf-8", "replace"))
    node = _first_function(tree, types)
    if language in _CLASS_WRAPPED and (node is None or node.has_error):
        wrapped = parser.parse(f"{prefix}class AgentlsStub {{\n{text}\n}}\n".encode("utf-8", "replace"))
        other = _first_function(wrapped, types)
        if other is not None and (node is None or not other.has_error):
            node = other
    return node


def _statements(body: Node) -> list[Node]:
    out: list[Node] = []
    for child in body.named_children:
        if child.type == "statement_list":  # Go wraps a block's statements in one
            out.extend(child.named_children)
        else:
            out.append(child)
    return out


def _comments_inside(function: Node, after: int) -> list[str]:
    found: list[str] = []
    stack = [function]
    while stack:
        node = stack.pop()
        if "comment" in node.type and node.start_byte >= after:
            found.append(_node_text(node))
            continue
        stack.extend(node.children)
    return found


def _is_docstring(node: Node) -> bool:
    if node.type == "expression_statement" and node.named_child_count == 1:
        node = node.named_children[0]
    return node.type in ("string", "concatenated_string")


def _body_is_stub(function: Node, language: str) -> bool:
    body = function.child_by_field_name("body")
    if body is None and language != "ruby":
        return False  # a declaration without a body (interface method, abstract, overload signature)
    params = function.child_by_field_name("parameters")
    header_end = min(
        body.start_byte if body is not None else function.end_byte, params.end_byte if params else 10**12
    )
    statements = _statements(body) if body is not None else []
    if body is not None and body.type in ("arrow_expression_clause", "expression"):
        statements = [body]  # C# `=> throw ...;`
    elif (
        body is not None
        and language in ("javascript", "typescript", "tsx")
        and body.type != "statement_block"
    ):
        return False  # an arrow function returning an expression
    statements = [s for s in statements if "comment" not in s.type]
    if language == "python" and statements and _is_docstring(statements[0]):
        statements = statements[1:]
        if not statements:
            return True  # docstring only
    texts = [_SPACES.sub(" ", _node_text(s)).strip() for s in statements]
    if len(texts) == 1 and _stub_statement(language, texts[0]):
        return True
    if not texts and language in _EMPTY_IS_STUB:
        return True
    if len(texts) <= 1 and (not texts or _TRIVIAL_RETURN.fullmatch(texts[0])):
        # `// TODO` with nothing, or with the placeholder return an IDE generates.
        return any(_TODO_COMMENT.search(c) for c in _comments_inside(function, header_end))
    return False


def is_stub(chunk_text: str, language: str) -> bool:
    """Whether the first function in `chunk_text` has a placeholder body rather than an implementation.

    Stubs, by language: Python ``pass``, ``...``, ``raise NotImplementedError[(...)]`` or a docstring alone
    (not ``@abstractmethod`` or ``@overload`` functions, whose bodies are meant to be empty); JavaScript
    and TypeScript an empty ``{}`` (comments allowed) or ``throw new Error("not implemented")`` (any
    message saying not implemented or TODO); Go empty or ``panic("not implemented")`` / ``panic("TODO")``;
    Rust ``todo!()`` or ``unimplemented!()``; Java ``throw new UnsupportedOperationException(...)``; C#
    ``throw new NotImplementedException()``; Ruby ``raise NotImplementedError``. In every language a body
    that holds a TODO/FIXME comment and nothing else, or only a placeholder ``return null``/``0``/``false``,
    is a stub too.
    """
    if language == "python" and _ABSTRACT_DECORATOR.search(chunk_text.split("def ", 1)[0]):
        return False
    function = _parse_function(chunk_text, language)
    return function is not None and _body_is_stub(function, language)


# A stub's body is short and sits at the end of its chunk: if none of these appear in the last lines,
# the chunk is not parsed again. Only a speed-up; `is_stub` decides.
_STUB_HINT = re.compile(
    r"pass\b|\.\.\.|notimplemented|not\s*(?:yet\s*)?implemented|\btodo\b|fixme|\bxxx\b|unimplemented|"
    r"unsupportedoperation|implement\s*me|\bstub\b|[\"']\s*$|\{\s*\}|\{\s*(?://|/\*|#)|\{\s*$|"
    r"^\s*(?://|#|/\*|\*)",  # a comment among the last lines: a long TODO note may hide the marker
    re.IGNORECASE | re.MULTILINE,
)
_STUB_TAIL_LINES = 4


def _may_be_stub(text: str) -> bool:
    """Whether the last non-blank lines of a function's text hold anything a stub body is made of."""
    tail: list[str] = []
    end = len(text)
    while end > 0 and len(tail) < _STUB_TAIL_LINES:
        start = text.rfind("\n", 0, end) + 1
        if text[start:end].strip():
            tail.append(text[start:end])
        end = start - 1
    return bool(_STUB_HINT.search("\n".join(reversed(tail))))


def _chunk_is_stub(chunk: Chunk) -> bool:
    return _may_be_stub(chunk.text) and is_stub(chunk.text, chunk.language)


def stub_functions(path: str, text: str, language: str | None) -> list[StubInfo]:
    """The functions of a file that "Implement X" can be offered on: stubs with a doc comment.

    One parse of the file; only functions whose last lines look like a stub are parsed again (a few
    lines each). Python stub files (``.pyi``) have no stubs to implement: their bodies are ``...`` by
    design.
    """
    if language is None or path.endswith(".pyi") or get_queries(language) is None:
        return []
    return [
        StubInfo(c.name, c.symbol, c.start_line, c.end_line, c.doc, c.signature)
        for c in definition_chunks(path, text, language)
        if c.kind in FUNCTION_KINDS and c.doc.strip() and _chunk_is_stub(c)
    ]


# ---------------------------------------------------------------------------------------------------
# Builders


def _normalize_path(path: str, root: Path | None) -> str:
    """A workspace-relative POSIX path; secret files and paths outside the workspace are refused."""
    if root is not None:
        try:
            rel = resolve_in_workspace(root, path)
        except PathRefused as error:
            raise TaskError(str(error)) from None
        if rel == ".":
            raise TaskError(f"{path} is the workspace folder; name a file inside it")
        return rel
    rel = path.replace("\\", "/")
    if not rel.strip():
        raise TaskError("the file path is empty; name a file in the workspace")
    if PurePosixPath(rel).is_absolute():
        raise TaskError(f"{path} is absolute; pass the workspace root too, or a workspace-relative path")
    rel = posixpath.normpath(rel)
    if rel == ".." or rel.startswith("../"):
        raise TaskError(f"{path} is outside the workspace; agentls only works on files inside it")
    if is_secret_path(rel):
        raise TaskError(
            f"{rel} looks like a secret file (keys, tokens, credentials); agentls never reads or edits those"
        )
    return rel


def _check_line(line: int, text: str, path: str) -> None:
    count = text.count("\n") + 1
    if line < 1 or line > count:
        raise TaskError(f"line {line} is outside {path}, which has {count} lines")


def _check_range(range_: tuple[int, int] | None) -> tuple[int, int] | None:
    if range_ is None:
        return None
    start, end = range_
    if start < 1 or end < start:
        raise TaskError(
            f"the range {start}-{end} is not valid; lines are 1-based and the end must not precede the start"
        )
    return (start, end)


def _function_at(path: str, text: str, line: int, what: str) -> tuple[Chunk, str]:
    language = detect_language(path)
    if language is None or get_queries(language) is None:
        raise TaskError(
            f"agentls cannot find functions in {path}: it has no parser for this kind of file; "
            f"use agentls.edit with an instruction instead"
        )
    _check_line(line, text, path)
    function = enclosing_function(definition_chunks(path, text, language), line)
    if function is None:
        raise TaskError(
            f"there is no function or method at line {line} of {path}; "
            f"put the cursor inside the function to {what}"
        )
    return function, language


def implement_task(root: Path, text_of_file: str, path: str, line: int) -> Task:
    """The task of implementing the stub function at (or whose doc comment holds) 1-based `line`.

    Raises `TaskError` when there is no function there, when it already has a body, or when it has no
    doc comment saying what it should do.
    """
    rel = _normalize_path(path, root)
    if rel.endswith(".pyi"):
        raise TaskError(
            f"{rel} is a type stub file: its functions are declarations, there is nothing to implement"
        )
    function, language = _function_at(rel, text_of_file, line, "implement")
    name = function.symbol
    if not _chunk_is_stub(function):
        raise TaskError(f"`{name}` already has a body; use agentls.edit to change it")
    if not function.doc.strip():
        raise TaskError(
            f"`{name}` has no doc comment to implement from; write a docstring or doc comment saying what it "
            f"should do, or use agentls.edit with an instruction"
        )
    instruction = f"Implement `{name}` so that it does what its doc comment says."
    return _function_task("implement", instruction, rel, function, language)


def tests_task(text: str, path: str, line: int, *, root: Path | None = None) -> Task:
    """The task of writing tests for the function at 1-based `line` (a stub too: tests first is fine)."""
    rel = _normalize_path(path, root)
    function, language = _function_at(rel, text, line, "write tests for")
    return _function_task("tests", f"Write tests for `{function.symbol}`.", rel, function, language)


def _function_task(kind: TaskKind, instruction: str, rel: str, function: Chunk, language: str) -> Task:
    """A task about one function: its range, name, signature and doc come from its chunk."""
    return Task(
        kind=kind,
        instruction=instruction,
        path=rel,
        range=(function.start_line, function.end_line),
        symbol=function.symbol,
        language=language,
        signature=function.signature,
        doc=function.doc,
    )


# pytest would collect `tests_task` from any test module that imports it, as a test named "tests_task".
tests_task.__test__ = False  # type: ignore[attr-defined]


def _target_in(path: str, text: str | None, start: int, end: int) -> Chunk | None:
    """The one function that a range lies in, when the file's text is known."""
    if text is None:
        return None
    language = detect_language(path)
    if language is None or get_queries(language) is None:
        return None
    functions = _functions_in(definition_chunks(path, text, language), start, end)
    holding = [f for f in functions if f.start_line <= start and end <= f.end_line]
    if not holding:
        return None
    return min(holding, key=lambda c: c.end_line - c.start_line)


def fix_task(
    path: str,
    diagnostics: Iterable[Diagnostic],
    range: tuple[int, int] | None = None,
    *,
    text: str | None = None,
    root: Path | None = None,
    instruction: str = "",
) -> Task:
    """The task of fixing `diagnostics` in `path` (all of them, or those that touch `range`).

    With the file's `text`, the task also names the function the problems are in.
    """
    rel = _normalize_path(path, root)
    wanted = _check_range(range)
    chosen = tuple(
        d
        for d in diagnostics
        if wanted is None or (d.line <= wanted[1] and max(d.end_line, d.line) >= wanted[0])
    )
    if not chosen:
        raise TaskError(
            f"there are no diagnostics {'in the selected range of ' if wanted else 'in '}{rel}; "
            f"select a line with an error or warning, or use agentls.edit with an instruction"
        )
    start = min(d.line for d in chosen)
    end = max(max(d.end_line, d.line) for d in chosen)
    if wanted is not None:
        start, end = min(start, wanted[0]), max(end, wanted[1])
    function = _target_in(rel, text, start, end)
    listed = "; ".join(
        d.message.strip().splitlines()[0] if d.message.strip() else "(no message)" for d in chosen
    )
    return Task(
        kind="fix",
        instruction=instruction.strip() or f"Fix the reported problems: {listed}",
        path=rel,
        range=(start, end),
        symbol=function.symbol if function is not None else None,
        language=detect_language(rel),
        diagnostics=chosen,
        signature=function.signature if function is not None else "",
        doc=function.doc if function is not None else "",
    )


def edit_task(
    path: str, range: tuple[int, int], instruction: str, *, text: str | None = None, root: Path | None = None
) -> Task:
    """The task of changing lines `range` of `path` as `instruction` says."""
    if not instruction.strip():
        raise TaskError(
            "the edit instruction is empty; say what should change, e.g. 'use a dict instead of a list'"
        )
    rel = _normalize_path(path, root)
    wanted = _check_range(range)
    assert wanted is not None  # for mypy: `range` is required here
    function = _target_in(rel, text, *wanted)
    return Task(
        kind="edit",
        instruction=instruction.strip(),
        path=rel,
        range=wanted,
        symbol=function.symbol if function is not None else None,
        language=detect_language(rel),
        signature=function.signature if function is not None else "",
        doc=function.doc if function is not None else "",
    )


def ask_task(
    question: str,
    path: str | None = None,
    range: tuple[int, int] | None = None,
    *,
    text: str | None = None,
    root: Path | None = None,
) -> Task:
    """A question about the code (optionally about a file or a range of it). The agent does not edit."""
    if not question.strip():
        raise TaskError("the question is empty; ask something about the code")
    rel = _normalize_path(path, root) if path is not None else None
    wanted = _check_range(range)
    if wanted is not None and rel is None:
        raise TaskError("a range was given without a file; pass the file the range belongs to")
    function = _target_in(rel, text, *wanted) if rel is not None and wanted is not None else None
    return Task(
        kind="ask",
        instruction=question.strip(),
        path=rel,
        range=wanted,
        symbol=function.symbol if function is not None else None,
        language=detect_language(rel) if rel is not None else None,
        edits_allowed=False,
    )


def run_task(instruction: str, *, path: str | None = None, root: Path | None = None) -> Task:
    """A free-form instruction for the workspace, optionally focused on one file or folder (`path`)."""
    if not instruction.strip():
        raise TaskError("the instruction is empty; say what the agent should do")
    rel = _normalize_path(path, root) if path is not None else None
    return Task(
        kind="run",
        instruction=instruction.strip(),
        path=rel,
        language=detect_language(rel) if rel is not None else None,
    )


# ---------------------------------------------------------------------------------------------------
# Prompts


@functools.cache
def _template(name: str) -> Template:
    text = (resources.files("agent") / "prompts" / f"{name}.md").read_text("utf-8")
    return Template(text)


def system_prompt() -> str:
    """The agent's system prompt (stable across runs, so it can be cached)."""
    return _template("system").template.strip() + "\n"


def code_fence(text: str, info: str = "") -> str:
    """`text` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        where = f"line {d.line}" if d.end_line <= d.line else f"lines {d.line}-{d.end_line}"
        origin = " ".join(part for part in (d.source, f"[{d.code}]" if d.code else "") if part)
        message = " ".join(d.message.split())
        lines.append(f"- {where}, {d.severity}{f' from {origin}' if origin else ''}: {message}")
    return "\n".join(lines) if lines else "(none)"


def _location(task: Task) -> str:
    if task.path is None:
        return "the workspace"
    if task.range is None:
        return task.path
    start, end = task.range
    return f"{task.path}:{start}" if start == end else f"{task.path}:{start}-{end}"


def prompt_fields(task: Task, context: Context | None) -> Mapping[str, str]:
    """The values the templates' placeholders take."""
    language = task.language or ""
    return {
        "kind": task.kind,
        "instruction": task.instruction,
        "path": task.path or "",
        "location": _location(task),
        "symbol": task.symbol or "",
        "name": task.name or "",
        "language": language,
        "signature": code_fence(task.signature, language) if task.signature else "(unknown)",
        "doc": code_fence(task.doc, "text") if task.doc else "(none)",
        "diagnostics": _diagnostics_text(task.diagnostics),
        "context": context.render() if context is not None else "(no workspace context was gathered)",
        "edits": "You may edit files." if task.edits_allowed else "Do not edit any file: answer only.",
    }


def render_task_prompt(task: Task, context: Context | None) -> str:
    """The user message that starts a run: the workspace context first (a stable, cacheable prefix),
    then the task rendered from ``agent/prompts/<kind>.md``."""
    return _template(task.kind).substitute(prompt_fields(task, context)).strip() + "\n"
