"""Rows prepared from an open document's text before its save (`WorkspaceIndex.prepare`,
`indexing.parsing.prepare_text`): the save's update uses them only for the same content under the same
settings, and the secrets rules hold for them as for files read from disk."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.parsing import Parsed, Prepared, prepare_text, process_many, use_prepared
from indexing.secrets import load_key
from indexing.service import WorkspaceIndex
from indexing.walker import FileEntry, check_path

LEXICAL = IndexSettings(embedding=EmbeddingSettings(provider="none"))
REL = "shop/pricing.py"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def make_index(root: Path, cache_dir: Path, settings: IndexSettings = LEXICAL) -> WorkspaceIndex:
    return WorkspaceIndex(root, settings, cache_dir=cache_dir, env={})


def edited(workspace: Path, name: str) -> str:
    """pricing.py with one more function, ``name``."""
    return (workspace / REL).read_text() + f"\n\ndef {name}(weight):\n    return weight * 2\n"


def defined_in(index: WorkspaceIndex, name: str) -> list[str]:
    return [hit.path for hit in index.search(name, limit=5) if hit.symbol == name]


def test_prepared_rows_are_the_rows_of_the_saved_file(workspace: Path, cache_dir: Path) -> None:
    text = edited(workspace, "zebra_quote") + f'AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n'
    (workspace / REL).write_text(text)
    limits = dataclasses.replace(LEXICAL.parse_limits(), secret_key=load_key(cache_dir))
    entry = check_path(workspace, REL, LEXICAL)
    assert isinstance(entry, FileEntry)
    parsed = next(iter(process_many([entry], limits, {})))
    prepared = prepare_text(REL, text, limits)
    assert isinstance(parsed, Parsed) and isinstance(prepared, Prepared)
    assert prepared.chunks.equals(parsed.chunks) and prepared.symbols.equals(parsed.symbols)
    assert AWS_SECRET not in str(prepared.chunks.column("search_text").to_pylist())  # redacted
    used = use_prepared(entry, limits, None, prepared)
    assert isinstance(used, Parsed) and used.record == parsed.record and used.chunks is prepared.chunks
    # Any other content, or other limits (another placeholder key): not used.
    (workspace / REL).write_text(text + "# one more line\n")
    assert use_prepared(entry, limits, None, prepared) is None
    (workspace / REL).write_text(text)
    assert use_prepared(entry, dataclasses.replace(limits, secret_key=b"k" * 32), None, prepared) is None


def test_a_save_of_the_prepared_text_is_searchable_without_a_parse(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    text = edited(workspace, "zebra_quote_prepared")
    assert index.prepare(REL, text)
    (workspace / REL).write_text(text)
    report = index.update_paths([workspace / REL])
    assert (report.files_indexed, report.files_prepared) == (1, 1)
    assert defined_in(index, "zebra_quote_prepared") == [REL]
    assert defined_in(index, "apply_discount") == [REL]  # the rest of the file is still there
    # Used once: the next save of other text parses the file.
    text = edited(workspace, "zebra_quote_second")
    (workspace / REL).write_text(text)
    report = index.update_paths([REL])
    assert (report.files_indexed, report.files_prepared) == (1, 0)
    assert defined_in(index, "zebra_quote_second") == [REL]


def test_rows_prepared_from_other_text_are_never_written(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    assert index.prepare(REL, edited(workspace, "zebra_typed_not_saved"))
    (workspace / REL).write_text(edited(workspace, "zebra_saved_instead"))
    report = index.update_paths([REL])
    assert (report.files_indexed, report.files_prepared) == (1, 0)
    assert defined_in(index, "zebra_saved_instead") == [REL]
    assert defined_in(index, "zebra_typed_not_saved") == []


def test_rows_prepared_under_other_settings_are_never_written(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    text = edited(workspace, "zebra_before_settings")
    assert index.prepare(REL, text)
    index.settings = LEXICAL.model_copy(update={"chunk_max_lines": LEXICAL.chunk_max_lines + 7})
    (workspace / REL).write_text(text)
    report = index.update_paths([REL])
    assert (report.files_indexed, report.files_prepared) == (1, 0)
    assert defined_in(index, "zebra_before_settings") == [REL]


def test_secret_and_ignored_files_get_nothing_prepared(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    assert not index.prepare(".env", "SECRET_TOKEN=sk-live-typed-in-the-editor\n")
    assert not index.prepare("build/out.py", "def generated_output_typed():\n    return 2\n")
    assert not index.prepare("../outside.py", "def outside():\n    return 1\n")
    for path in (".env", "build/out.py"):
        (workspace / path).write_text((workspace / path).read_text() + "# saved\n")
    report = index.update_paths([".env", "build/out.py"])
    assert report.files_indexed == 0 and report.files_prepared == 0
    for query in ("sk-live-typed-in-the-editor", "generated_output_typed"):
        assert all(h.path not in (".env", "build/out.py") for h in index.search(query, limit=50))


def test_with_a_model_the_chunks_are_embedded_when_prepared(workspace: Path, model_cache_dir: Path) -> None:
    index = make_index(workspace, model_cache_dir, IndexSettings())  # the distilled model in the cache
    index.index()
    assert index.embedder is not None
    text = edited(workspace, "zebra_embedded_early")
    assert index.prepare(REL, text)
    (workspace / REL).write_text(text)
    report = index.update_paths([REL])
    assert (report.files_prepared, report.vectors) == (1, 0)  # nothing left to embed at the save
    hits = index.search_vector("zebra_embedded_early weight", limit=50)
    assert any(hit.symbol == "zebra_embedded_early" for hit in hits)
    # Vectors of another model are not written: the save embeds the chunks again.
    text = edited(workspace, "zebra_other_model")
    assert index.prepare(REL, text)
    index._prepared[REL] = dataclasses.replace(index._prepared[REL], embedder="another-model")
    (workspace / REL).write_text(text)
    report = index.update_paths([REL])
    assert report.files_prepared == 1 and report.vectors == report.chunks > 0


def full_text_parts(location: Path) -> tuple[int, int]:
    """(parts of the full-text index, chunk rows outside it), read from the index folder."""
    import lancedb

    stats = lancedb.connect(location / "lance").open_table("chunks").index_stats("search_text_idx")
    assert stats is not None
    return int(stats.num_indices or 0), int(stats.num_unindexed_rows)


def test_a_fold_puts_saved_rows_in_the_full_text_index(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    assert full_text_parts(index.location) == (1, 0)
    original = (workspace / REL).read_text()
    for name in ("zebra_fold_first", "zebra_fold_second", "zebra_fold_third"):
        (workspace / REL).write_text(original + f"\n\ndef {name}(weight):\n    return weight * 2\n")
        report = index.update_paths([REL])
        outside = full_text_parts(index.location)[1]
        assert outside == report.chunks > 0  # a save's rows: every search reads them one by one
        assert index.fold() == report.chunks
        # One small second part holds the saved rows; later folds merge into it, never into the first.
        assert full_text_parts(index.location) == (2, 0)
        assert defined_in(index, name) == [REL] and defined_in(index, "apply_discount") == [REL]
    assert index.fold() == 0
    assert defined_in(index, "zebra_fold_first") == []  # deleted rows leave the index too
