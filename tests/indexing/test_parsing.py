"""What parser processes send back, and how they are set up."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from indexing import secrets
from indexing.config import IndexSettings
from indexing.models import SkippedFile
from indexing.parsing import Parsed, ParsedGroup, Unchanged, process_many
from indexing.rows import joined_rows
from indexing.walker import walk


def test_a_group_survives_the_process_boundary_with_every_row(workspace: Path) -> None:
    settings = IndexSettings()
    entries = [e for e in walk(workspace, settings) if not isinstance(e, SkippedFile)]
    first = process_many(entries, settings.parse_limits(), {})
    known = {o.record.path: o.record.hash for o in first if isinstance(o, Parsed)}
    some_known = dict(list(known.items())[:2])
    group = process_many(entries, settings.parse_limits(), some_known)
    assert isinstance(group, ParsedGroup)

    copy = pickle.loads(pickle.dumps(group))  # what a worker's result goes through
    before, after = list(group), list(copy)
    assert [type(o) for o in before] == [type(o) for o in after]
    assert sum(isinstance(o, Unchanged) for o in after) == 2
    parsed = [(a, b) for a, b in zip(before, after, strict=True) if isinstance(a, Parsed)]
    assert parsed and all(isinstance(b, Parsed) for _, b in parsed)
    for a, b in parsed:
        assert isinstance(b, Parsed)
        assert a.record == b.record
        assert a.chunks.equals(b.chunks) and a.symbols.equals(b.symbols)
        assert set(b.chunks.column("path").to_pylist()) <= {a.record.path}
        assert set(b.symbols.column("path").to_pylist()) <= {a.record.path}
    assert sum(b.chunks.num_rows for _, b in parsed) > len(parsed)  # real rows, not empty tables


def test_parser_process_setup_keeps_pandas_out_and_arrow_working() -> None:
    code = (
        "import gc, sys\n"
        "from indexing.parsing import init_parser_process\n"
        "init_parser_process()\n"
        "import pyarrow as pa\n"
        "assert pa.table({'x': ['a', 'b']}).num_rows == 2\n"
        "try:\n"
        "    import pandas\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('pandas imported')\n"
        "print('pandas' in sys.modules, gc.isenabled())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_parser_processes_fork_with_the_secret_scanner_already_imported() -> None:
    """Each parser process used to import detect-secrets (about 0.2 s) at its first candidate line."""
    code = (
        "import concurrent.futures as cf, os\n"
        "from indexing.parsing import init_parser_process\n"
        "from indexing.parsing import parser_context\n"
        "with cf.ProcessPoolExecutor(1, mp_context=parser_context(), initializer=init_parser_process,\n"
        "                            initargs=(os.getpid(),)) as pool:\n"
        "    print(pool.submit(eval, \"sorted(m for m in __import__('sys').modules\"\n"
        "                            \" if m.startswith('detect_secrets.'))\").result())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(ast.literal_eval(out.stdout))
    lazily_imported = {
        node.module
        for node in ast.walk(ast.parse(Path(secrets.__file__).read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("detect_secrets")
    }
    assert lazily_imported and lazily_imported <= loaded


def test_a_batch_joins_a_groups_files_as_one_slice_and_keeps_their_order(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = IndexSettings()
    entries = [e for e in walk(workspace, settings) if not isinstance(e, SkippedFile)]
    half = len(entries) // 2
    groups = [
        process_many(entries[:half], settings.parse_limits(), {}),
        process_many(entries[half:], settings.parse_limits(), {}),
    ]
    first, second = ([o for o in g if isinstance(o, Parsed) and o.chunks.num_rows] for g in groups)
    assert len(first) >= 3 and second
    # Two files of the first group, one of the second, one with tables of its own (a prepared file), then
    # the first group's third file: only the first two follow one another in one table.
    own = Parsed(first[2].record, first[2].chunks.combine_chunks(), first[2].symbols.combine_chunks())
    items = [first[0], first[1], second[0], own, first[2]]
    pieces: list[int] = []
    concat = pa.concat_tables

    def counted(tables: list[pa.Table]) -> pa.Table:
        pieces.append(len(tables))
        return concat(tables)

    monkeypatch.setattr(pa, "concat_tables", counted)
    chunks = joined_rows((o.chunks, o.rows) for o in items)
    symbols = joined_rows(((o.symbols, o.rows) for o in items), symbols=True)
    monkeypatch.undo()
    assert pieces[0] == 4  # five files' chunk rows, the first two files' cut as one slice
    assert chunks is not None and symbols is not None
    assert chunks.equals(pa.concat_tables([o.chunks for o in items]).combine_chunks())
    assert symbols.equals(pa.concat_tables([o.symbols for o in items if o.symbols.num_rows]).combine_chunks())
    assert joined_rows([]) is None
    assert joined_rows((o.chunks.slice(0, 0), o.rows) for o in items) is None
