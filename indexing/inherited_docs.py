"""PHP ``{@inheritDoc}`` across files: a method whose doc comment only says to inherit its doc is found by
its parent's doc, as if that doc were written above it.

The chunker sees one file, so such a method's chunk has an empty ``doc`` (`indexing.chunker`); its parent
(the interface it implements, the class it overrides) is usually another file of the workspace. After an
index run or a save has written its files' rows, `refresh` resolves the doc of every ``{@inheritDoc}``
method (``{@inheritDoc}``, ``{@inheritdoc}``, ``@inheritdoc``, alone in its doc comment) of the files
concerned, and rewrites the rows whose resolved doc changed:

- the method's chunk gets the doc in its ``doc`` column (the ranking's doc field), and in its
  ``search_text`` (the full-text index) after the chunk's text, as ``\\x1d DOC \\x1e`` followed by the doc's
  split identifiers (what `indexing.rows.search_text` adds for the text); ``\\x1d`` and ``\\x1e`` are no
  words to the tokenizer. A method without a chunk of its own (a class of at most ``chunk_max_lines``
  lines is one chunk, members included) gives its doc to its class's chunk, in ``search_text`` only;
- the chunk's vector is made again from its embedding text with the doc before the code
  (`embedding_source`, which `indexing.service` uses for every embedding text, so a later backfill or a
  model change embeds the doc too); without a model this run, the old vector is dropped and the next run
  with one embeds it.

Resolution follows the class's traits (``use T;`` in its body), then its ``extends``, then its
``implements`` names, in order and recursively (a parent whose method inherits too, or has no such
method, passes the question to its own parents). A name is resolved as PHP does, through the file's
namespace and ``use`` statements; the class is looked up among the workspace's indexed classes of that
short name, in the file that declares that full name, or, when exactly one class of that short name is
indexed, in that one. Classes outside the workspace (psr7's PSR interfaces) give nothing: such methods
keep an empty doc. Files are read from disk and parsed with tree-sitter alone (secret values redacted
first, as the index has them; docs cleaned as the chunker cleans them, `indexing.chunker.block_comment_doc`);
only files that may hold ``{@inheritDoc}`` and the parents looked up are parsed. On monolog 2.9.1 (116
files, a lexical index from scratch) the pass gives 136 of its 151 such methods a doc (the other 15 have
none to inherit: their parents' docs are only tags, or they are a trait's own methods, whose parent is
whichever class uses the trait) and costs about 0.1 s of CPU (0.30 s -> 0.42 s for the whole run).

Which files: those the run or save wrote or removed, plus, through the ``extends``/``implements`` names in
the indexed class signatures, every file whose classes descend from a class declared in a written file,
and every file whose class names a parent that no indexed class declares (an alias, or a class outside
the workspace): so a parent's edited doc reaches its children in the same update. Stale until the child's
own file changes: a child of a class whose file was deleted (its rows are gone before this runs, so the
names it declared are not known), and a class whose trait's doc changed, keep the docs they borrowed; the
files of a run interrupted between writing its rows and this pass, and of an index built on a Ray cluster
(`indexing.distributed`), keep empty docs; with a shared base (`indexing.shared`) only the classes of
the files indexed locally are looked up. A run or save that wrote no PHP file costs about nothing: no
table is read (1.4 ms for Django's 2,788 paths).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from indexing.languages import detect_language
from indexing.models import ParseLimits
from indexing.rows import CHUNKS_SCHEMA, expand_identifiers

if TYPE_CHECKING:
    from tree_sitter import Node

    from indexing.store import IndexStore

log = logging.getLogger(__name__)

MARK, END = "\x1d", "\x1e"
"""Around an inherited doc in a chunk's ``search_text``."""

_INHERIT = re.compile(r"\{?@inheritdoc\}?", re.IGNORECASE)
_INHERIT_BYTES = re.compile(rb"@inheritdoc", re.IGNORECASE)
_CLASS_KINDS = ("class", "interface", "trait", "enum")
_EXTENDS = re.compile(r"\bextends\s+(.+?)(?=\s+implements\b|$)")
_IMPLEMENTS = re.compile(r"\bimplements\s+(.+)$")
_NAME = re.compile(r"\\?[A-Za-z_\x80-\uffff][\w\x80-\uffff]*(?:\\[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)*")
_NAMESPACE = re.compile(r"^\s*namespace\s+([\w\\]+)\s*[;{]", re.MULTILINE)
_USE = re.compile(r"^\s*use\s+(?!function\b|const\b)([^;]+);", re.MULTILINE)
_DECLARATIONS = ("class_declaration", "interface_declaration", "trait_declaration", "enum_declaration")
_NAMES = ("name", "qualified_name")
_UNKEYED = b"agentls"  # `indexing.parsing`'s key for callers that pass none (the service always does)

Embed = Callable[[pa.Table], np.ndarray]
"""Vectors of chunk rows (the service's embedding of their `embedding_source` texts)."""


def inherited(search_text: str, text_chars: int) -> list[str]:
    """The inherited docs a chunk row's ``search_text`` carries after its text (`refresh`)."""
    at = search_text.find(MARK, text_chars)
    docs = []
    while at >= 0:
        end = search_text.find(END, at)
        if end < 0:
            break
        docs.append(search_text[at + 1 : end])
        at = search_text.find(MARK, end)
    return docs


def embedding_source(text: str, search_text: str) -> str:
    """What stands for a chunk's code in its embedding text: its inherited docs (if any) above its text."""
    if MARK not in search_text:
        return text
    docs = inherited(search_text, len(text))
    return "\n".join([*docs, text]) if docs else text


def _parents(signature: str) -> list[str]:
    """The names after ``extends`` and ``implements`` in a class or interface header, as written."""
    names: list[str] = []
    for pattern in (_EXTENDS, _IMPLEMENTS):
        match = pattern.search(signature)
        if match is not None:
            names.extend(
                m[0] for part in match[1].split(",") if (m := _NAME.search(part.strip())) is not None
            )
    return names


@dataclasses.dataclass(slots=True)
class _Class:
    path: str
    name: str
    fqn: str
    parents: list[str]  # full names
    docs: dict[str, str]  # method name (lower case) -> its own doc ("" when none)
    inheriting: list[str]  # methods (as written) whose doc is only {@inheritDoc}


class _Outlines:
    """The classes of PHP files read from disk, each file parsed once."""

    def __init__(self, root: Path, limits: ParseLimits) -> None:
        self.root = root
        self.limits = limits
        self.files: dict[str, list[_Class]] = {}

    def of(self, path: str) -> list[_Class]:
        found = self.files.get(path)
        if found is None:
            found = self.files[path] = self._read(path)
        return found

    def may_inherit(self, path: str) -> bool:
        """Whether a file may hold an ``{@inheritDoc}`` method (files that do not are not parsed)."""
        if path in self.files:
            return any(c.inheriting for c in self.files[path])
        try:
            return _INHERIT_BYTES.search((self.root / path).read_bytes()) is not None
        except OSError:
            return False

    def _read(self, path: str) -> list[_Class]:
        """The classes of one file: a tree-sitter parse of its text (secret values redacted, as the index
        has it), without the chunker's work (3x the parse)."""
        from indexing.chunker import block_comment_doc
        from indexing.languages import get_parser
        from indexing.secrets import redact_source
        from indexing.walker import SourceFile, decode_source

        try:
            data = (self.root / path).read_bytes()
        except OSError:
            return []
        source = decode_source(path, data, 0, self.limits)
        parser = get_parser("php")
        if not isinstance(source, SourceFile) or parser is None:
            return []
        text, _ = redact_source(source.text, self.limits.secret_key or _UNKEYED, path)
        src = text.encode("utf-8", "surrogatepass")
        classes: list[_Class] = []
        namespace = ""
        uses: dict[str, str] = {}

        def name_of(node: Node) -> str:
            return src[node.start_byte : node.end_byte].decode("utf-8", "replace")

        def visit(nodes: list[Node]) -> None:
            nonlocal namespace, uses
            for node in nodes:
                kind = node.type
                if kind == "namespace_definition":
                    named = node.child_by_field_name("name")
                    namespace, uses = (name_of(named) if named is not None else ""), {}
                    body = node.child_by_field_name("body")
                    if body is not None:
                        visit(body.children)
                elif kind == "namespace_use_declaration":
                    uses.update(_uses(name_of(node)))
                elif kind in _DECLARATIONS:
                    classes.append(self._class(node, path, namespace, uses, name_of, block_comment_doc))

        visit(parser.parse(src).root_node.children)
        return classes

    @staticmethod
    def _class(
        node: Node,
        path: str,
        namespace: str,
        uses: dict[str, str],
        name_of: Callable[[Node], str],
        doc_of: Callable[[str, str], str],
    ) -> _Class:
        named = node.child_by_field_name("name")
        name = name_of(named) if named is not None else ""
        written: list[str] = []  # parents as written: traits, then extends, then implements
        body = node.child_by_field_name("body")
        members = body.children if body is not None else []
        for member in members:
            if member.type == "use_declaration":
                written.extend(name_of(c) for c in member.named_children if c.type in _NAMES)
        for clause in node.children:
            if clause.type in ("base_clause", "class_interface_clause"):
                written.extend(name_of(c) for c in clause.named_children if c.type in _NAMES)
        parents = [_qualify(n, namespace, uses) for n in written]
        cls = _Class(path, name, f"{namespace}\\{name}" if namespace else name, parents, {}, [])
        above: Node | None = None
        for member in members:
            if member.type == "method_declaration" and (method := member.child_by_field_name("name")):
                key = name_of(method)
                comment = ""
                if (
                    above is not None
                    and above.end_point.row >= member.start_point.row - 1
                    and name_of(above).startswith("/**")
                ):
                    comment = name_of(above)
                doc = doc_of(comment, "php") if comment else ""
                if key.lower() not in cls.docs:
                    cls.docs[key.lower()] = doc
                    if not doc and _INHERIT.search(comment):
                        cls.inheriting.append(key)
            above = member if member.type == "comment" else None
        return cls


def _uses(head: str) -> dict[str, str]:
    """Alias (lower case) -> full name, of the ``use`` statements in a file's head."""
    aliases: dict[str, str] = {}
    for statement in _USE.findall(head):
        statement = " ".join(statement.split())
        prefix, brace, rest = statement.partition("{")
        items = (rest.rstrip("} ") if brace else statement).split(",")
        for item in items:
            name, _, alias = item.strip().partition(" as ")
            full = (prefix.strip().strip("\\") + "\\" if brace else "") + name.strip().strip("\\")
            full = full.replace("\\\\", "\\")
            if full:
                aliases[(alias.strip() or full.rsplit("\\", 1)[-1]).lower()] = full
    return aliases


def _qualify(name: str, namespace: str, uses: dict[str, str]) -> str:
    """The full name PHP gives a class name written in a file of this namespace with these ``use``s."""
    if name.startswith("\\"):
        return name[1:]
    first, sep, rest = name.partition("\\")
    if first.lower() in uses:
        return uses[first.lower()] + sep + rest
    return f"{namespace}\\{name}" if namespace else name


class _Resolver:
    def __init__(self, outlines: _Outlines, declared: dict[str, set[str]]) -> None:
        self.outlines = outlines
        self.declared = declared  # short name (lower case) -> paths of indexed files declaring it

    def find(self, fqn: str) -> _Class | None:
        short = fqn.rsplit("\\", 1)[-1].lower()
        named = [
            c
            for p in sorted(self.declared.get(short, ()))
            for c in self.outlines.of(p)
            if c.name.lower() == short
        ]
        exact = [c for c in named if c.fqn.lower() == fqn.lower()]
        if exact:
            return exact[0]
        return named[0] if len(named) == 1 else None

    def doc(self, cls: _Class, method: str, seen: set[str]) -> str:
        """The doc ``method`` (lower case) inherits from ``cls``'s parents ("" when none)."""
        for name in cls.parents:
            parent = self.find(name)
            if parent is None or parent.fqn.lower() in seen:
                continue
            seen.add(parent.fqn.lower())
            own = parent.docs.get(method, "")
            if own:
                return own
            found = self.doc(parent, method, seen)
            if found:
                return found
        return ""


def refresh(
    store: IndexStore, root: Path, changed: Iterable[str], limits: ParseLimits, embed: Embed | None = None
) -> int:
    """Resolve the ``{@inheritDoc}`` methods of the PHP files among ``changed`` (written or removed by this
    run) and of the files whose classes descend from theirs, and rewrite the chunk rows whose inherited
    doc changed (their vectors with ``embed``, else dropped). The number of rows rewritten."""
    written = sorted({p for p in changed if detect_language(p) == "php"})
    if not written:
        return 0
    chunks = store.table("chunks")
    if chunks is None:
        return 0
    kinds = ", ".join(f"'{k}'" for k in _CLASS_KINDS)
    heads = (
        chunks.search().where(f"language = 'php' AND kind IN ({kinds})").select(["path", "name", "signature"])
    )
    heads = heads.to_arrow().to_pylist()
    declared: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}  # parent short name (lower case) -> paths of classes naming it
    names_of: dict[str, set[str]] = {}  # path -> short names (lower case) it declares
    for row in heads:
        short = row["name"].lower()
        declared.setdefault(short, set()).add(row["path"])
        names_of.setdefault(row["path"], set()).add(short)
        for parent in _parents(row["signature"]):
            children.setdefault(parent.rsplit("\\", 1)[-1].lower(), set()).add(row["path"])
    # A parent named by an alias (`use A\\B as C`) or not indexed may be any class: such children are
    # looked at whenever a class changes.
    anyone = {p for name, paths in children.items() if name not in declared for p in paths}
    # The written files, and the files whose classes descend from a class they declare.
    files = set(written)
    todo = [name for p in written for name in names_of.get(p, ())]
    seen_names = set(todo)
    if todo:
        children[""] = anyone
        todo.append("")
    while todo:
        for path in children.get(todo.pop(), ()):
            files.add(path)
            for name in names_of.get(path, ()):
                if name not in seen_names:
                    seen_names.add(name)
                    todo.append(name)
    outlines = _Outlines(root, limits)
    resolver = _Resolver(outlines, declared)
    wanted: dict[str, dict[tuple[str, str], str]] = {}  # path -> (class, method) -> inherited doc
    for path in sorted(files):
        if path not in names_of:  # removed, or no class in it
            continue
        for cls in outlines.of(path) if outlines.may_inherit(path) else ():
            for method in cls.inheriting:
                doc = resolver.doc(cls, method.lower(), {cls.fqn.lower()})
                wanted.setdefault(path, {})[(cls.name, method)] = doc
    if not wanted:
        return 0
    rows = _rewritten(chunks, wanted)
    if rows is None:
        return 0
    vectors = None
    if embed is not None and store.has_vectors:
        try:
            vectors = embed(rows)
        except Exception as exc:  # the next run with a model embeds them
            log.info("embedding the chunks with inherited docs failed: %s", exc)
    store.replace_chunks(rows, vectors)
    log.debug("inherited docs: %d chunk rows rewritten in %d files", rows.num_rows, len(wanted))
    return int(rows.num_rows)


def _rewritten(chunks: Any, wanted: dict[str, dict[tuple[str, str], str]]) -> pa.Table | None:
    """The chunk rows of these files given their inherited docs, those that differ from the stored ones."""
    from indexing.store import in_list

    changed: list[dict[str, Any]] = []
    by_path: dict[str, list[dict[str, Any]]] = {}
    paths = sorted(wanted)
    for start in range(0, len(paths), 500):
        stored = (
            chunks.search().where(in_list("path", paths[start : start + 500])).select(CHUNKS_SCHEMA.names)
        )
        for row in stored.to_arrow().to_pylist():
            by_path.setdefault(row["path"], []).append(row)
    for path, docs in wanted.items():
        rows = by_path.get(path, [])
        given: dict[int, list[str]] = {}  # row index -> inherited docs for its search_text
        method_doc: dict[int, str] = {}
        touched: set[int] = set()  # rows whose inherited docs are set again (none: the stale ones go)
        for (cls, method), doc in docs.items():
            own = [
                n
                for n, r in enumerate(rows)
                if r["kind"] == "method"
                and r["name"] == method
                and str(r["symbol"]).split(".")[-2:] == [cls, method]
            ]
            if not own:  # a member of a class chunk
                own = [n for n, r in enumerate(rows) if r["kind"] in _CLASS_KINDS and r["name"] == cls]
            touched.update(own)
            for n in own:
                if rows[n]["kind"] == "method":
                    method_doc[n] = doc
                if doc:
                    given.setdefault(n, []).append(doc)
        for n in sorted(touched):
            row = rows[n]
            text_chars = int(row["text_chars"])
            search_text = str(row["search_text"])
            cut = search_text.find("\n" + MARK, text_chars)
            base = search_text if cut < 0 else search_text[:cut]
            extra = "".join(f"\n{MARK}{d}{END}{expand_identifiers(d)}" for d in given.get(n, []))
            new = {**row, "search_text": base + extra}
            if n in method_doc:
                new["doc"] = method_doc[n]
            if new != row:
                changed.append(new)
    if not changed:
        return None
    return pa.Table.from_pylist(changed, schema=CHUNKS_SCHEMA)
