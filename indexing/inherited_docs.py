"""Inherited docs across files: a PHP or Java method whose doc comment only says ``{@inheritDoc}``, a C#
method whose doc is only ``<inheritdoc/>``, is found by its parent's doc, as if that doc were written above
it.

The chunker sees one file, so such a method's chunk has an empty ``doc`` (`indexing.chunker` leaves the
markers out); its parent (the interface it implements, the class it overrides) is usually another file of
the workspace. After an index run or a save has written its files' rows, `refresh` resolves the doc of
every such method (PHP: ``{@inheritDoc}``, ``{@inheritdoc}``, ``@inheritdoc``; Java: ``{@inheritDoc}``;
C#: ``<inheritdoc/>``, ``<inheritdoc cref="..."/>``; alone in its doc comment) of the files concerned, and
rewrites the rows whose resolved doc changed:

- the method's chunk gets the doc in its ``doc`` column (the ranking's doc field), and in its
  ``search_text`` (the full-text index) after the chunk's text, as ``\\x1d DOC \\x1e`` followed by the doc's
  split identifiers (what `indexing.rows.search_text` adds for the text); ``\\x1d`` and ``\\x1e`` are no
  words to the tokenizer. A method without a chunk of its own (a class of at most ``chunk_max_lines``
  lines is one chunk, members included) gives its doc to its class's chunk, in ``search_text`` only.
  Rows are told apart by their lines, so a Java or C# overload with a doc of its own keeps it;
- the chunk's vector is made again from its embedding text with the doc before the code
  (`embedding_source`, which `indexing.service` uses for every embedding text, so a later backfill or a
  model change embeds the doc too); without a model this run, the old vector is dropped and the next run
  with one embeds it.

Resolution follows the class's parents in order and recursively (a parent whose method inherits too, or
has no such method, passes the question to its own parents); a method is matched by name (overloads: the
first with a doc). One small reader per language (`_Reader`) gives a file's classes, their parents and
their methods' docs from a tree-sitter parse:

- PHP: traits (``use T;`` in the body), then ``extends``, then ``implements``; names resolved as PHP does,
  through the file's namespace and ``use`` statements;
- Java: ``extends``, then ``implements`` (an interface's ``extends`` list); a name is the single-type
  import of that name, else the class of the file's ``package``, else one of the on-demand (``.*``)
  imports' packages; nested classes count as ``Outer.Inner``;
- C#: the base list (``class A : B, IC``: a class first, then interfaces); a name is a ``using X = ...``
  alias, else looked up in the enclosing namespaces (blocks, nested, or file-scoped), innermost first,
  then the global one, then the ``using`` directives' namespaces.

The class is looked up among the workspace's indexed classes of that short name, in the file that declares
the first of its possible full names, or, when exactly one class of that short name is indexed, in that
one. Classes outside the workspace (psr7's PSR interfaces, the JDK, .NET) give nothing: such methods keep
an empty doc. Files are read from disk and parsed with tree-sitter alone (secret values redacted first, as
the index has them; docs cleaned as the chunker cleans them, `indexing.chunker.comment_doc`); only files
whose bytes hold the marker and the parents looked up are parsed. On monolog 2.9.1 (116 files, a lexical
index from scratch) the pass gives 136 of its 151 such methods a doc (the other 15 have none to inherit:
their parents' docs are only tags, or they are a trait's own methods, whose parent is whichever class uses
the trait) and costs about 0.1 s of CPU (0.30 s -> 0.42 s for the whole run); on a generated Java
workspace of 200 files (20 interfaces, 180 classes, 540 ``{@inheritDoc}`` methods, all resolved) about
0.1 s (0.19-0.26 s -> 0.31-0.35 s). No real Java or C# repository was at hand to measure.

Which files: those the run or save wrote or removed, plus, through the parent names in the indexed class
signatures, every file whose classes descend from a class declared in a written file, and every file whose
class names a parent that no indexed class declares (an alias, or a class outside the workspace): so a
parent's edited doc reaches its children in the same update. Each language is its own pass (its own
classes). Stale until the child's own file changes: a child of a class whose file was deleted (its rows
are gone before this runs, so the names it declared are not known), and a class whose trait's doc changed,
keep the docs they borrowed; the files of a run interrupted between writing its rows and this pass keep
empty docs (an index built on a Ray cluster, `indexing.distributed`, runs this pass in the driver after its
commit, as a local run does); with a shared base
(`indexing.shared`) only the classes of the files indexed locally are looked up. Not inherited: a Java
method without any doc comment (Javadoc copies the overridden method's doc then too), and a doc with the
marker among prose of its own (Java's inline ``{@inheritDoc}``, C#'s ``<inheritdoc/>`` beside a
``<summary>``): those keep their own words. A run or save that wrote no PHP, Java or C# file costs about
nothing: no table is read (1.4 ms for Django's 2,788 paths).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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

_CLASS_KINDS = ("class", "interface", "trait", "enum", "struct", "record")
_EXTENDS = re.compile(r"\bextends\s+(.+?)(?=\s+implements\b|$)")
_IMPLEMENTS = re.compile(r"\bimplements\s+(.+)$")
_NAME = re.compile(r"\\?[A-Za-z_\x80-\uffff][\w\x80-\uffff]*(?:\\[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)*")
_DOTTED = re.compile(
    r"[A-Za-z_$\x80-\uffff][\w$\x80-\uffff]*(?:\s*\.\s*[A-Za-z_$\x80-\uffff][\w$\x80-\uffff]*)*"
)
_TYPE_ARGUMENTS = re.compile(r"<[^<>]*>")
_USE = re.compile(r"^\s*use\s+(?!function\b|const\b)([^;]+);", re.MULTILINE)

Embed = Callable[[pa.Table], np.ndarray]
"""Vectors of chunk rows (the service's embedding of their `embedding_source` texts)."""
Text = Callable[["Node"], str]
"""The source text of a node."""


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


def _parents(signature: str, name: re.Pattern[str] = _NAME) -> list[str]:
    """The names after ``extends`` and ``implements`` in a PHP (or Java) class or interface header, as
    written."""
    names: list[str] = []
    for pattern in (_EXTENDS, _IMPLEMENTS):
        match = pattern.search(signature)
        if match is not None:
            names.extend(
                "".join(m[0].split())
                for part in match[1].split(",")
                if (m := name.search(part.strip())) is not None
            )
    return names


def _bare(type_name: str) -> str:
    """A Java or C# type as written, without its type arguments, ``global::`` or spaces: a class name."""
    type_name = _bare_arguments(type_name)
    match = _DOTTED.search(type_name.replace("global::", "").replace("::", "."))
    return "".join(match[0].split()) if match is not None else ""


@dataclasses.dataclass(slots=True)
class _Class:
    path: str
    name: str
    fqn: str
    parents: list[list[str]]  # each parent as the full names it may stand for, the likeliest first
    docs: dict[str, str]  # method name (lower case) -> its own doc ("" when none)
    inheriting: list[tuple[str, int, int]]  # methods whose doc is only the marker: (name, first, last line)


class _Reader:
    """One language's outline: its classes, their parents' possible full names, their methods' docs.
    Subclasses read a file's tree (`classes`) and a class signature as indexed (`signature_parents`)."""

    language: ClassVar[str]
    separator: ClassVar[str]  # between the parts of a full name
    marker: ClassVar[re.Pattern[bytes]]  # the quick check of a file's bytes before it is parsed
    inherit: ClassVar[re.Pattern[str]]  # the marker in a doc comment
    comments: ClassVar[tuple[str, ...]] = ("comment",)  # node types of comments
    methods: ClassVar[tuple[str, ...]] = ("method_declaration",)  # node types of methods

    def classes(self, root: Node, text: Text, path: str) -> list[_Class]:
        raise NotImplementedError

    def signature_parents(self, signature: str) -> list[str]:
        """The parent names in a class's indexed signature, as written (which files may descend)."""
        raise NotImplementedError

    def short(self, name: str) -> str:
        return name.rsplit(self.separator, 1)[-1].lower()

    def _class(
        self, path: str, name: str, fqn: str, parents: list[list[str]], members: list[Node], text: Text
    ) -> _Class:
        """A class and the docs of its methods (``members``: its body's children)."""
        from indexing.chunker import comment_doc

        cls = _Class(path, name, fqn, parents, {}, [])
        above: list[Node] = []  # the comments right above the member
        for member in members:
            if member.type in self.comments:
                if above and above[-1].end_point.row < member.start_point.row - 1:
                    above = []
                above.append(member)
                continue
            named = member.child_by_field_name("name") if member.type in self.methods else None
            if named is not None:
                key = text(named)
                comment = self._doc_comment(above, member, text)
                doc = comment_doc(comment, self.language) if comment else ""
                if not cls.docs.get(key.lower()):
                    cls.docs[key.lower()] = doc
                if not doc and self.inherit.search(comment):
                    cls.inheriting.append((key, member.start_point.row + 1, member.end_point.row + 1))
            above = []
        return cls

    @staticmethod
    def _doc_comment(above: list[Node], member: Node, text: Text) -> str:
        """The doc comment of a member: the ``/** */`` block right above it, or the ``///`` lines."""
        if not above or above[-1].end_point.row < member.start_point.row - 1:
            return ""
        last = text(above[-1])
        if last.startswith("/**"):
            return last
        lines = [text(c) for c in above if c.start_point.row == c.end_point.row]
        while lines and not lines[0].startswith("///"):
            lines.pop(0)
        return "\n".join(lines) if lines and all(line.startswith("///") for line in lines) else ""


class _PhpReader(_Reader):
    """PHP: ``namespace`` and ``use`` statements; traits, then ``extends``, then ``implements``."""

    language = "php"
    separator = "\\"
    marker = re.compile(rb"@inheritdoc", re.IGNORECASE)
    inherit = re.compile(r"\{?@inheritdoc\}?", re.IGNORECASE)
    _DECLARATIONS = ("class_declaration", "interface_declaration", "trait_declaration", "enum_declaration")
    _NAMES = ("name", "qualified_name")

    def signature_parents(self, signature: str) -> list[str]:
        return _parents(signature)

    def classes(self, root: Node, text: Text, path: str) -> list[_Class]:
        classes: list[_Class] = []
        namespace = ""
        uses: dict[str, str] = {}

        def visit(nodes: list[Node]) -> None:
            nonlocal namespace, uses
            for node in nodes:
                kind = node.type
                if kind == "namespace_definition":
                    named = node.child_by_field_name("name")
                    namespace, uses = (text(named) if named is not None else ""), {}
                    body = node.child_by_field_name("body")
                    if body is not None:
                        visit(body.children)
                elif kind == "namespace_use_declaration":
                    uses.update(_uses(text(node)))
                elif kind in self._DECLARATIONS:
                    classes.append(self._php_class(node, path, namespace, uses, text))

        visit(root.children)
        return classes

    def _php_class(self, node: Node, path: str, namespace: str, uses: dict[str, str], text: Text) -> _Class:
        named = node.child_by_field_name("name")
        name = text(named) if named is not None else ""
        written: list[str] = []  # parents as written: traits, then extends, then implements
        body = node.child_by_field_name("body")
        members = body.children if body is not None else []
        for member in members:
            if member.type == "use_declaration":
                written.extend(text(c) for c in member.named_children if c.type in self._NAMES)
        for clause in node.children:
            if clause.type in ("base_clause", "class_interface_clause"):
                written.extend(text(c) for c in clause.named_children if c.type in self._NAMES)
        parents = [[_qualify(n, namespace, uses)] for n in written]
        fqn = f"{namespace}\\{name}" if namespace else name
        return self._class(path, name, fqn, parents, members, text)


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


class _JavaReader(_Reader):
    """Java: ``package``, single-type and on-demand (``.*``) imports; ``extends``, then ``implements``
    (an interface: its ``extends`` list); nested classes as ``Outer.Inner``."""

    language = "java"
    separator = "."
    marker = re.compile(rb"\{@inheritDoc\}")
    inherit = re.compile(r"\{@inheritDoc\}")
    comments = ("block_comment", "line_comment")
    _DECLARATIONS = ("class_declaration", "interface_declaration", "enum_declaration", "record_declaration")
    _PARENTS = ("superclass", "super_interfaces", "extends_interfaces")

    def signature_parents(self, signature: str) -> list[str]:
        return _parents(_bare_arguments(signature), _DOTTED)

    def classes(self, root: Node, text: Text, path: str) -> list[_Class]:
        package = ""
        single: dict[str, str] = {}  # simple name -> full name, of `import a.b.C;`
        on_demand: list[str] = []  # `import a.b.*;`
        declarations: list[Node] = []
        for node in root.children:
            if node.type == "package_declaration":
                named = next((c for c in node.named_children if "identifier" in c.type), None)
                package = "".join(text(named).split()) if named is not None else ""
            elif node.type == "import_declaration" and not any(c.type == "static" for c in node.children):
                named = next((c for c in node.named_children if "identifier" in c.type), None)
                full = "".join(text(named).split()) if named is not None else ""
                if any(c.type == "asterisk" for c in node.children):
                    on_demand.append(full)
                elif full:
                    single[full.rsplit(".", 1)[-1]] = full
            elif node.type in self._DECLARATIONS:
                declarations.append(node)

        def candidates(name: str) -> list[str]:
            first, dot, rest = name.partition(".")
            if first in single:
                return [single[first] + dot + rest]
            local = f"{package}.{name}" if package else name
            return [local, *(f"{p}.{name}" for p in on_demand), name]

        classes: list[_Class] = []

        def visit(node: Node, outer: str) -> None:
            named = node.child_by_field_name("name")
            name = text(named) if named is not None else ""
            qualified = f"{outer}.{name}" if outer else name
            parents = [
                candidates(_bare(text(t)))
                for clause in node.children
                if clause.type in self._PARENTS
                for t in _types(clause)
            ]
            body = node.child_by_field_name("body")
            members = list(body.children) if body is not None else []
            for member in list(members):
                if member.type == "enum_body_declarations":
                    members.extend(member.children)
            fqn = f"{package}.{qualified}" if package else qualified
            classes.append(self._class(path, name, fqn, parents, members, text))
            for member in members:
                if member.type in self._DECLARATIONS:
                    visit(member, qualified)

        for node in declarations:
            visit(node, "")
        return classes


class _CSharpReader(_Reader):
    """C#: ``namespace`` (blocks, nested, and file-scoped) and ``using`` directives (``using X = ...``
    aliases); the base list ``class A : B, IC`` (a class first, then interfaces); nested types."""

    language = "csharp"
    separator = "."
    marker = re.compile(rb"<inheritdoc\b", re.IGNORECASE)
    inherit = re.compile(r"<inheritdoc\b", re.IGNORECASE)
    _DECLARATIONS = (
        "class_declaration",
        "interface_declaration",
        "struct_declaration",
        "record_declaration",
        "record_struct_declaration",
    )
    _BASE = re.compile(r":(?!:)(.*?)(?:\bwhere\b|$)")

    def signature_parents(self, signature: str) -> list[str]:
        match = self._BASE.search(_bare_arguments(signature))
        if match is None:
            return []
        return [name for part in match[1].split(",") if (name := _bare(part.split("(")[0]))]

    def classes(self, root: Node, text: Text, path: str) -> list[_Class]:
        classes: list[_Class] = []

        def usings(nodes: list[Node], aliases: dict[str, str], opened: list[str]) -> None:
            for node in nodes:
                if node.type != "using_directive" or any(c.type == "static" for c in node.children):
                    continue
                names = [c for c in node.named_children if c.type in ("identifier", "qualified_name")]
                if any(c.type == "=" for c in node.children) and len(names) >= 2:
                    aliases[text(names[0])] = _bare(text(node)[text(node).index("=") + 1 :])
                elif names:
                    opened.append(_bare(text(names[-1])))

        def visit(
            nodes: list[Node], namespace: str, aliases: dict[str, str], opened: list[str], outer: str
        ) -> None:
            aliases, opened = dict(aliases), list(opened)
            usings(nodes, aliases, opened)
            for node in nodes:
                if node.type in ("namespace_declaration", "file_scoped_namespace_declaration"):
                    named = node.child_by_field_name("name")
                    inner = _bare(text(named)) if named is not None else ""
                    inner = f"{namespace}.{inner}" if namespace and inner else inner or namespace
                    body = node.child_by_field_name("body")
                    if body is not None:
                        visit(body.children, inner, aliases, opened, "")
                    else:  # file-scoped: the declarations that follow are in it
                        namespace = inner
                elif node.type in self._DECLARATIONS:
                    declare(node, namespace, aliases, opened, outer)

        def candidates(name: str, namespace: str, aliases: dict[str, str], opened: list[str]) -> list[str]:
            first, dot, rest = name.partition(".")
            if first in aliases:
                return [aliases[first] + dot + rest]
            parts = namespace.split(".") if namespace else []
            enclosing = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
            return [*(f"{ns}.{name}" for ns in enclosing), name, *(f"{ns}.{name}" for ns in opened)]

        def declare(
            node: Node, namespace: str, aliases: dict[str, str], opened: list[str], outer: str
        ) -> None:
            named = node.child_by_field_name("name")
            name = text(named) if named is not None else ""
            qualified = f"{outer}.{name}" if outer else name
            bases = next((c for c in node.children if c.type == "base_list"), None)
            parents = [
                candidates(_bare(text(t).split("(")[0]), namespace, aliases, opened)
                for t in (bases.named_children if bases is not None else [])
            ]
            body = node.child_by_field_name("body")
            members = list(body.children) if body is not None else []
            fqn = f"{namespace}.{qualified}" if namespace else qualified
            classes.append(self._class(path, name, fqn, parents, members, text))
            for member in members:
                if member.type in self._DECLARATIONS:
                    declare(member, namespace, aliases, opened, qualified)

        visit(root.children, "", {}, [], "")
        return classes


def _bare_arguments(signature: str) -> str:
    """A signature without its type arguments (``Map<K, V>`` -> ``Map``), whose commas are no list's."""
    while "<" in signature:
        stripped = _TYPE_ARGUMENTS.sub("", signature)
        if stripped == signature:
            break
        signature = stripped
    return signature


def _types(clause: Node) -> list[Node]:
    """The types of a Java ``extends``/``implements`` clause (a type, or a type list)."""
    found: list[Node] = []
    for child in clause.named_children:
        found.extend(child.named_children if child.type == "type_list" else [child])
    return found


_READERS: dict[str, _Reader] = {r.language: r for r in (_PhpReader(), _JavaReader(), _CSharpReader())}


class _Outlines:
    """The classes of one language's files read from disk, each file parsed once."""

    def __init__(self, root: Path, limits: ParseLimits, reader: _Reader) -> None:
        self.root = root
        self.limits = limits
        self.reader = reader
        self.files: dict[str, list[_Class]] = {}

    def of(self, path: str) -> list[_Class]:
        found = self.files.get(path)
        if found is None:
            found = self.files[path] = self._read(path)
        return found

    def may_inherit(self, path: str) -> bool:
        """Whether a file may hold an inheriting method (files that do not are not parsed)."""
        if path in self.files:
            return any(c.inheriting for c in self.files[path])
        try:
            return self.reader.marker.search((self.root / path).read_bytes()) is not None
        except OSError:
            return False

    def _read(self, path: str) -> list[_Class]:
        """The classes of one file: a tree-sitter parse of its text (secret values redacted, as the index
        has it), without the chunker's work (3x the parse)."""
        from indexing.languages import get_parser
        from indexing.parsing import indexed_text
        from indexing.walker import SourceFile, decode_source

        try:
            data = (self.root / path).read_bytes()
        except OSError:
            return []
        source = decode_source(path, data, 0, self.limits)
        parser = get_parser(self.reader.language)
        if not isinstance(source, SourceFile) or parser is None:
            return []
        src = indexed_text(source, self.limits).encode("utf-8", "surrogatepass")

        def node_text(node: Node) -> str:
            return src[node.start_byte : node.end_byte].decode("utf-8", "replace")

        return self.reader.classes(parser.parse(src).root_node, node_text, path)


class _Resolver:
    def __init__(self, outlines: _Outlines, declared: dict[str, set[str]]) -> None:
        self.outlines = outlines
        self.declared = declared  # short name (lower case) -> paths of indexed files declaring it

    def find(self, candidates: list[str]) -> _Class | None:
        """The indexed class a parent name stands for: the first of its possible full names declared,
        else the one class of its short name."""
        short = self.outlines.reader.short(candidates[-1]) if candidates else ""
        named = [
            c
            for p in sorted(self.declared.get(short, ()))
            for c in self.outlines.of(p)
            if c.name.lower() == short
        ]
        for fqn in candidates:
            exact = [c for c in named if c.fqn.lower() == fqn.lower()]
            if exact:
                return exact[0]
        return named[0] if len(named) == 1 else None

    def doc(self, cls: _Class, method: str, seen: set[str]) -> str:
        """The doc ``method`` (lower case) inherits from ``cls``'s parents ("" when none)."""
        for candidates in cls.parents:
            parent = self.find(candidates)
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


Wanted = dict[str, dict[tuple[str, str, int, int], str]]
"""path -> (class, method, first line, last line) -> the doc it inherits."""


def refresh(
    store: IndexStore, root: Path, changed: Iterable[str], limits: ParseLimits, embed: Embed | None = None
) -> int:
    """Resolve the inheriting methods of the PHP, Java and C# files among ``changed`` (written or removed
    by this run) and of the files whose classes descend from theirs, and rewrite the chunk rows whose
    inherited doc changed (their vectors with ``embed``, else dropped). The number of rows rewritten."""
    by_language: dict[str, list[str]] = {}
    for path in changed:
        language = detect_language(path)
        if language in _READERS:
            by_language.setdefault(language, []).append(path)
    if not by_language:
        return 0
    chunks = store.table("chunks")
    if chunks is None:
        return 0
    wanted: Wanted = {}
    for language, written in by_language.items():
        wanted.update(_resolved(chunks, root, limits, _READERS[language], sorted(set(written))))
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


def _resolved(chunks: Any, root: Path, limits: ParseLimits, reader: _Reader, written: list[str]) -> Wanted:
    """The docs the inheriting methods of one language's written files and their descendants' get."""
    kinds = ", ".join(f"'{k}'" for k in _CLASS_KINDS)
    heads = chunks.search().where(f"language = '{reader.language}' AND kind IN ({kinds})")
    heads = heads.select(["path", "name", "signature"]).to_arrow().to_pylist()
    declared: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}  # parent short name (lower case) -> paths of classes naming it
    names_of: dict[str, set[str]] = {}  # path -> short names (lower case) it declares
    for row in heads:
        short = row["name"].lower()
        declared.setdefault(short, set()).add(row["path"])
        names_of.setdefault(row["path"], set()).add(short)
        for parent in reader.signature_parents(row["signature"]):
            children.setdefault(reader.short(parent), set()).add(row["path"])
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
    outlines = _Outlines(root, limits, reader)
    resolver = _Resolver(outlines, declared)
    wanted: Wanted = {}
    for path in sorted(files):
        if path not in names_of:  # removed, or no class in it
            continue
        for cls in outlines.of(path) if outlines.may_inherit(path) else ():
            for method, first, last in cls.inheriting:
                doc = resolver.doc(cls, method.lower(), {cls.fqn.lower()})
                wanted.setdefault(path, {})[(cls.name, method, first, last)] = doc
    return wanted


def _rewritten(chunks: Any, wanted: Wanted) -> pa.Table | None:
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
        for (cls, method, first, last), doc in docs.items():
            # The method's rows (its windows too; not an overload's), else its class's chunk that holds it.
            over = [n for n, r in enumerate(rows) if r["start_line"] <= last and r["end_line"] >= first]
            own = [
                n
                for n in over
                if rows[n]["kind"] == "method"
                and rows[n]["name"] == method
                and str(rows[n]["symbol"]).split(".")[-2:] == [cls, method]
            ]
            if not own:  # a member of a class chunk
                own = [n for n in over if rows[n]["kind"] in _CLASS_KINDS and rows[n]["name"] == cls]
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
