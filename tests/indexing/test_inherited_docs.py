"""PHP ``{@inheritDoc}`` resolved across files (`indexing.inherited_docs`), on real indexes of a small PHP
workspace: an interface in one file, the classes implementing it in others."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex

INTERFACE = """<?php

namespace Acme\\Contracts;

interface ArchiveInterface
{
    /**
     * Rolls the parchment scrolls into the vault beneath the monastery.
     *
     * @param string $shelf where the scrolls wait
     */
    public function store(string $shelf): void;

    /**
     * Counts the candles that are still burning.
     */
    public function tally(): int;
}
"""

# A class longer than the chunk limit below: its methods are chunks of their own.
LARGE = """<?php

namespace Acme;

use Acme\\Contracts\\ArchiveInterface as Archive;

/**
 * A big archive.
 */
class BigArchive implements Archive
{
    /**
     * {@inheritDoc}
     */
    public function store(string $shelf): void
    {
        $this->shelves[] = $shelf;
FILLER
    }

    /**
     * @inheritdoc
     */
    public function tally(): int
    {
        return count($this->shelves);
    }
}
""".replace("FILLER", "\n".join(f"        $this->note({n});" for n in range(30)))

# A small class is one chunk, its members included: the inherited doc goes to the class's chunk.
SMALL = """<?php

namespace Acme\\Small;

class TinyArchive extends \\Acme\\BigArchive
{
    /**
     * {@inheritdoc}
     */
    public function tally(): int
    {
        return 0;
    }
}
"""


def _workspace(root: Path) -> Path:
    (root / "src" / "Contracts").mkdir(parents=True)
    (root / "src" / "Contracts" / "ArchiveInterface.php").write_text(INTERFACE)
    (root / "src" / "BigArchive.php").write_text(LARGE)
    (root / "src" / "TinyArchive.php").write_text(SMALL)
    return root


def _lexical(root: Path, cache_dir: Path) -> WorkspaceIndex:
    settings = IndexSettings(chunk_max_lines=20, embedding=EmbeddingSettings(provider="none"))
    return WorkspaceIndex(root, settings, cache_dir=cache_dir, env={})


def _indexed(tmp_path: Path, cache_dir: Path) -> tuple[Path, WorkspaceIndex]:
    root = _workspace(tmp_path / "ws")
    index = _lexical(root, cache_dir)
    index.index()
    return root, index


def _edit_interface(root: Path, old: str, new: str) -> Path:
    interface = root / "src" / "Contracts" / "ArchiveInterface.php"
    interface.write_text(INTERFACE.replace(old, new))
    return interface


def _found(index: WorkspaceIndex, query: str) -> list[str]:
    return [hit.symbol for hit in index.search(query, limit=10)]


def _row(index: WorkspaceIndex, symbol: str) -> dict[str, object]:
    rows = index.store.table("chunks").search().where(f"symbol = '{symbol}'").to_arrow().to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_a_method_that_inherits_its_doc_is_found_by_the_interfaces_words(
    tmp_path: Path, cache_dir: Path
) -> None:
    _, index = _indexed(tmp_path, cache_dir)
    # The words are only in the interface's doc: before, only the interface was found by them.
    assert "BigArchive.store" in _found(index, "parchment vault monastery")
    assert (
        _row(index, "BigArchive.store")["doc"]
        == "Rolls the parchment scrolls into the vault beneath the monastery.\n\nwhere the scrolls wait"
    )
    assert "BigArchive.tally" in _found(index, "candles still burning")
    # Through the parent class, whose method inherits in turn; the small class's chunk holds the method.
    assert "TinyArchive" in _found(index, "candles still burning")


def test_an_edit_of_the_parents_doc_reaches_the_child_in_the_same_update(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, index = _indexed(tmp_path, cache_dir)
    assert "BigArchive.store" in _found(index, "parchment vault monastery")
    interface = _edit_interface(
        root,
        "Rolls the parchment scrolls into the vault beneath the monastery",
        "Presses copper coins into ledgers",
    )
    index.update_paths([interface])  # only the parent's file: the child's is unchanged
    assert "BigArchive.store" in _found(index, "copper coins ledgers")
    assert "BigArchive.store" not in _found(index, "parchment vault monastery")
    # The child's own edit keeps its borrowed doc.
    child = root / "src" / "BigArchive.php"
    child.write_text(LARGE.replace("A big archive.", "A very big archive."))
    index.update_paths([child])
    assert "BigArchive.store" in _found(index, "copper coins ledgers")


def test_a_full_run_after_the_parent_lost_its_doc_drops_what_the_child_borrowed(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, index = _indexed(tmp_path, cache_dir)
    _edit_interface(root, "Counts the candles that are still burning.", "Nothing here.")
    index.index()
    assert "BigArchive.tally" not in _found(index, "candles still burning")
    assert _row(index, "BigArchive.tally")["doc"] == "Nothing here."


def test_with_a_model_the_inherited_doc_is_embedded(tmp_path: Path, model_cache_dir: Path) -> None:
    root = _workspace(tmp_path / "ws")
    index = WorkspaceIndex(root, IndexSettings(chunk_max_lines=20), cache_dir=model_cache_dir, env={})
    index.index()
    chunks = index.store.table("chunks").search().where("symbol = 'BigArchive.store'").to_arrow()
    text = index._embedding_texts(chunks)[0]
    assert text.index("parchment scrolls") < text.index("public function store")
    vectors = index.store.table("vectors").search().where(f"id = '{chunks['id'][0]}'").to_arrow().to_pylist()
    assert len(vectors) == 1
    embedder = index.embedder
    assert embedder is not None
    np.testing.assert_allclose(
        vectors[0]["vector"], index._embed_texts(embedder, [text])[0], rtol=1e-5, atol=1e-6
    )


def test_names_resolve_as_php_does() -> None:
    from indexing.inherited_docs import _parents, _qualify, _uses

    uses = _uses(
        "use Acme\\Contracts\\ArchiveInterface as Archive;\nuse Acme\\{Foo, Bar as Baz};\nuse function f;"
    )
    assert uses == {"archive": "Acme\\Contracts\\ArchiveInterface", "foo": "Acme\\Foo", "baz": "Acme\\Bar"}
    assert _qualify("Archive", "Acme", uses) == "Acme\\Contracts\\ArchiveInterface"
    assert _qualify("\\Top\\Level", "Acme", uses) == "Top\\Level"
    assert _qualify("Sub\\Thing", "Acme", uses) == "Acme\\Sub\\Thing"
    assert _parents("abstract class A extends B implements \\C\\D, E") == ["B", "\\C\\D", "E"]
    assert _parents("interface I extends J, K") == ["J", "K"]


def test_java_and_csharp_signatures_name_their_parents() -> None:
    from indexing.inherited_docs import _CSharpReader, _JavaReader

    java = _JavaReader().signature_parents
    assert java("public class A<T extends X> extends Base<Map<K, V>> implements x.I, J<T>") == [
        "Base",
        "x.I",
        "J",
    ]
    assert java("interface I extends J, K") == ["J", "K"]
    csharp = _CSharpReader().signature_parents
    assert csharp("public class A<T> : global::Base<int>, IB, X.IC where T : class") == ["Base", "IB", "X.IC"]
    assert csharp("public record R(int X) : Base(X), IR") == ["Base", "IR"]


def test_a_secret_value_in_the_parents_doc_is_withheld_from_the_childs_rows(
    tmp_path: Path, cache_dir: Path
) -> None:
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    root = _workspace(tmp_path / "ws")
    _edit_interface(root, "Counts the candles that are still burning.", f"Counts the candles with {token}.")
    index = _lexical(root, cache_dir)
    index.index()
    doc = str(_row(index, "BigArchive.tally")["doc"])
    assert doc.startswith("Counts the candles with <secret:")
    assert token not in doc
    assert token not in str(_row(index, "BigArchive.tally")["search_text"])


# Java: an interface, and a decoy of the same simple name in another package; an abstract base in the
# implementing class's package (no import needed), whose method inherits in turn.
CODEC = """package org.acme.spi;

public interface Codec {
    /**
     * Squeezes the bytes through a copper funnel.
     *
     * @param in the bytes
     */
    byte[] encode(byte[] in);

    /** Measures the lantern glow in cubits. */
    int width();
}
"""

DECOY_CODEC = """package org.other;

public interface Codec {
    /** Paints the barn doors purple. */
    byte[] encode(byte[] in);

    /** Paints the barn doors purple. */
    int width();
}
"""

BASE_CODEC = """package org.acme.impl;

import org.acme.spi.Codec;

public abstract class BaseCodec implements Codec {
    /** {@inheritDoc} */
    @Override
    public int width() {
        return 8;
    }
}
"""

ZIP_CODEC = """package org.acme.impl;

import org.other.*;
import org.acme.spi.*;

public class ZipCodec extends BaseCodec {
    /**
     * {@inheritDoc}
     */
    @Override
    public byte[] encode(byte[] in) {
        byte[] out = in.clone();
FILLER
        return out;
    }

    /** Turns the text into runes for the harbour master. */
    public byte[] encode(String text) {
        return encode(text.getBytes());
    }

    /** {@inheritDoc} */
    @Override
    public int width() {
        return 16;
    }
}
""".replace("FILLER", "\n".join(f"        out[{n}] ^= 1;" for n in range(30)))


JAVA_FILES = {
    "src/org/acme/spi/Codec.java": CODEC,
    "src/org/other/Codec.java": DECOY_CODEC,
    "src/org/acme/impl/BaseCodec.java": BASE_CODEC,
    "src/org/acme/impl/ZipCodec.java": ZIP_CODEC,
}


def _indexed_files(tmp_path: Path, cache_dir: Path, files: dict[str, str]) -> tuple[Path, WorkspaceIndex]:
    """A lexical index of a workspace of these files (path -> text)."""
    root = tmp_path / "ws"
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    index = _lexical(root, cache_dir)
    index.index()
    return root, index


def _docs(index: WorkspaceIndex, symbol: str) -> list[str]:
    """The docs of a symbol's chunk rows (an overloaded method has one row per overload), by line."""
    rows = index.store.table("chunks").search().where(f"symbol = '{symbol}'").to_arrow().to_pylist()
    return [str(r["doc"]) for r in sorted(rows, key=lambda r: r["start_line"])]


def test_java_methods_inherit_through_packages_imports_and_a_superclass(
    tmp_path: Path, cache_dir: Path
) -> None:
    _, index = _indexed_files(tmp_path, cache_dir, JAVA_FILES)
    # org.acme.spi.* (not org.other.*) holds the Codec BaseCodec imports; ZipCodec's own encode overload
    # keeps its own doc.
    assert _docs(index, "ZipCodec.encode") == [
        "Squeezes the bytes through a copper funnel.\n\n@param in the bytes",  # Java's tags as written
        "Turns the text into runes for the harbour master.",
    ]
    assert "ZipCodec.encode" in _found(index, "copper funnel")
    assert "purple" not in " ".join(_docs(index, "ZipCodec.encode"))
    # ZipCodec.width -> BaseCodec (same package, no import), whose width inherits in turn -> Codec.
    assert _docs(index, "ZipCodec.width") == ["Measures the lantern glow in cubits."]
    # BaseCodec is one chunk (a small class): the inherited doc is in its search_text.
    assert "BaseCodec" in _found(index, "lantern glow cubits")


# C#: an interface in one namespace (and a decoy in another), classes in a file-scoped namespace (using
# directive) and in a block namespace (a using alias).
IARCHIVE = """namespace Acme.Contracts
{
    public interface IArchive
    {
        /// <summary>
        /// Rolls the parchment scrolls into the vault beneath the monastery.
        /// </summary>
        void Store(string shelf);
    }
}
"""

DECOY_IARCHIVE = """namespace Other.Contracts
{
    public interface IArchive
    {
        /// <summary>Paints the barn doors purple.</summary>
        void Store(string shelf);
    }
}
"""

BIG_ARCHIVE = """using System;
using Acme.Contracts;

namespace Acme.Storage;

public class BigArchive : Object, IArchive
{
    /// <inheritdoc/>
    public void Store(string shelf)
    {
        shelves.Add(shelf);
FILLER
    }
}
""".replace("FILLER", "\n".join(f"        Note({n});" for n in range(30)))

LEDGER = """using Ledger = Acme.Contracts.IArchive;

namespace Acme.Storage.Small
{
    public class TinyArchive : Ledger
    {
        /// <inheritdoc cref="Ledger.Store"/>
        public void Store(string shelf) { }
    }
}
"""


CSHARP_FILES = {
    "Contracts/IArchive.cs": IARCHIVE,
    "Other/IArchive.cs": DECOY_IARCHIVE,
    "Storage/BigArchive.cs": BIG_ARCHIVE,
    "Storage/TinyArchive.cs": LEDGER,
}


def test_csharp_methods_inherit_through_namespaces_usings_and_aliases(
    tmp_path: Path, cache_dir: Path
) -> None:
    _, index = _indexed_files(tmp_path, cache_dir, CSHARP_FILES)
    assert _docs(index, "BigArchive.Store") == [
        "Rolls the parchment scrolls into the vault beneath the monastery."
    ]
    found = _found(index, "parchment vault monastery")
    assert "BigArchive.Store" in found
    assert "Acme.Storage.Small.TinyArchive" in found  # through the alias; one chunk, the method in it
    assert "BigArchive.Store" not in _found(index, "barn doors purple")


def test_an_edit_of_a_csharp_interfaces_doc_reaches_the_class_in_the_same_update(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, index = _indexed_files(tmp_path, cache_dir, CSHARP_FILES)
    interface = root / "Contracts" / "IArchive.cs"
    interface.write_text(
        IARCHIVE.replace(
            "Rolls the parchment scrolls into the vault beneath the monastery", "Presses copper coins"
        )
    )
    index.update_paths([interface])
    assert _docs(index, "BigArchive.Store") == ["Presses copper coins."]
    assert "BigArchive.Store" in _found(index, "copper coins")
    assert "BigArchive.Store" not in _found(index, "parchment vault monastery")


def test_an_edit_of_a_java_interfaces_doc_reaches_the_grandchild_in_the_same_update(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, index = _indexed_files(tmp_path, cache_dir, JAVA_FILES)
    interface = root / "src" / "org" / "acme" / "spi" / "Codec.java"
    interface.write_text(CODEC.replace("Measures the lantern glow in cubits.", "Weighs the anchors."))
    index.update_paths([interface])  # ZipCodec -> BaseCodec -> Codec: neither class's file changed
    assert _docs(index, "ZipCodec.width") == ["Weighs the anchors."]
    assert "ZipCodec.width" not in _found(index, "lantern glow cubits")
