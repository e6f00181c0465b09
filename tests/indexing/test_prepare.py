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
