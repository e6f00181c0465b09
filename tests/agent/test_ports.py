"""The agent depends on its ports, not on LanceDB: importing the loop must not load the index's store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.ports import CodeIndex
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex

REPO = Path(__file__).resolve().parents[2]


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_agent_loop_does_not_load_lancedb() -> None:
    modules = _loaded_after("import agent.loop, agent.runner, agent.context, agent.tools.search")
    assert "agent.loop" in modules  # the import really happened
    assert not [name for name in modules if name == "lancedb" or name.startswith("lancedb.")]


def test_the_workspace_index_is_a_code_index(tmp_path: Path) -> None:
    index: CodeIndex = WorkspaceIndex(tmp_path, IndexSettings(), cache_dir=tmp_path / "cache", env={})
    assert index.search("anything") == []
    assert index.find_symbols("anything") == []
    assert isinstance(index.settings, IndexSettings)
