"""The import graph of agent/, indexing/ and server/: no cycles, and the layers point one way.

Read from the source with `ast` (nothing is imported). For cycles, module-level imports only: imports inside
functions and under ``if TYPE_CHECKING:`` are left out, since they do not run when the module loads.
The imports that do run are checked where they cost: the commands that index and search import none of
the agent's modules, and the test run's controller process not the embeddings module.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "indexing", "server")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, in_functions: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module loads (`in_functions`: or when its functions run).

    Imports under ``if TYPE_CHECKING:`` never run and are left out.
    """
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not in_functions:
            continue
        elif isinstance(node, ast.stmt):
            pending.extend(ast.iter_child_nodes(node))
    return found


def import_graph(*, everywhere: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of the three packages it imports when it loads (`everywhere`: at all)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in _imports(tree, in_functions=everywhere):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join([*package, *([base] if base else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_module_level_imports_only() -> None:
    tree = ast.parse(
        "import agent.task\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import agent.context\n"
        "try:\n    from indexing import policy\nexcept ImportError:\n    pass\n"
        "def f():\n    import server.lsp\n"
    )
    names = sorted(
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in _imports(tree)
        for alias in node.names
    )
    assert names == ["agent.task", "indexing.policy", "typing.TYPE_CHECKING"]
    assert "server" in {
        alias.name.split(".")[0] for node in _imports(tree, in_functions=True) for alias in node.names
    }


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "modules that import each other when they load: " + "; ".join(
        " <-> ".join(component) for component in found
    )


def test_layers_point_one_way() -> None:
    """indexing imports neither agent nor server; agent does not import server (in functions neither)."""
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph(everywhere=True).items()
        for target in sorted(targets)
        if (module.split(".")[0], target.split(".")[0])
        in {("indexing", "agent"), ("indexing", "server"), ("agent", "server")}
    ]
    assert not wrong, "; ".join(wrong)


def _imported(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[set[str], str]:
    """The modules ``agentls ARGS`` imports (read from ``-X importtime``), and its stderr without them."""
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    timings = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:")]
    said = "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("import time:"))
    assert done.returncode == 0, said
    return {ln.rsplit("|", 1)[1].strip() for ln in timings[1:]}, said


def test_indexing_and_search_import_none_of_the_agents_modules(
    workspace: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """``agentls index``, ``search`` (the full path: no warm search process) and ``model list`` on a
    workspace never indexed import no ``agent`` module: the agent's settings classes took 0.1-0.3 s to
    import and build (`server.settings_files.load_indexing_settings`). The search process is in indexing/,
    which imports no agent module at all (`test_layers_point_one_way`). A workspace whose settings set an
    agent section still has it validated, with the same warning as before."""
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT), "CI": "1"}
    env["AGENTLS_SEARCH_PROCESS"] = "0"
    (workspace / "agentls.toml").write_text('[index]\nwindow_lines = 30\n[server]\nlog_level = "debug"\n')
    runs = {
        "index": ["index", "-q", "--json"],
        "search": ["search", "apply a discount", "--json"],
        "model list": ["model", "list", "--path", str(workspace)],
    }
    for name, args in runs.items():
        modules, said = _imported(args, workspace, env)
        assert "pydantic" in modules, name  # the settings were read, validated
        agents = sorted(m for m in modules if m == "agent" or m.startswith("agent."))
        assert not agents, f"agentls {name} imports {agents}"
        assert "warning" not in said, said
    (workspace / "agentls.toml").write_text("[agent]\nmax_steps = 0\n")
    modules, said = _imported(["index", "-q", "--json"], workspace, env)
    assert "agent.config" in modules
    assert "agentls.toml:2: ignoring `agent.max_steps`: Input should be greater than or equal to 1" in said


def test_the_test_runs_controller_names_the_test_model_without_the_embeddings_module() -> None:
    """tests/conftest.py's `pytest_sessionstart` imports `tests.fakes.models` in the controller process,
    for the test model's folder name only; `indexing.embeddings` (numpy, 0.5 s) stays out of it."""
    heavy = "{'indexing.embeddings', 'numpy'}"
    code = f"import sys, tests.fakes.models; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
