"""What parser processes send back, and how they are set up."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

from indexing import secrets
from indexing.config import IndexSettings
from indexing.models import SkippedFile
from indexing.parsing import Parsed, ParsedGroup, Unchanged, process_many
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
