"""The `agentls index` / `agentls search` commands, through the installed console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def agentls(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(["agentls", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_index_prints_a_summary_with_skip_reasons(workspace: Path, cache_dir: Path) -> None:
    out = agentls("index", str(workspace), cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    assert re.search(
        r"9 files \(7 new or changed, 0 unchanged, 0 removed\); wrote \d+ chunks, \d+ symbols", out.stderr
    )
    assert "Skipped: 1 binary, 1 secret" in out.stderr
    # No model offline: said once, with what to do.
    assert out.stderr.count("agentls model distill") == 1
    again = agentls("index", "--json", ".", cwd=workspace, cache=cache_dir)
    summary = json.loads(again.stdout)
    assert (summary["files_indexed"], summary["files_unchanged"]) == (0, 7)
    # Nothing to write: said so, not "0 chunks, 0 symbols" (an index that looks empty).
    unchanged = agentls("index", ".", cwd=workspace, cache=cache_dir)
    assert "(0 new or changed, 7 unchanged, 0 removed); already up to date in" in unchanged.stderr


def test_search_prints_ranked_hits_and_json(workspace: Path, cache_dir: Path) -> None:
    out = agentls("search", "reduce a price by a percentage", "-k", "2", cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert re.fullmatch(r"shop/pricing\.py:27  apply_discount  \d+\.\d{3}", first)
    assert "    def apply_discount(price: Money, percent: float) -> Money:" in out.stdout
    assert len([ln for ln in out.stdout.splitlines() if not ln.startswith(" ")]) == 2

    data = json.loads(agentls("search", "Cart", "--json", "-k", "3", cwd=workspace, cache=cache_dir).stdout)
    assert data[0]["symbol"] == "Cart" and data[0]["path"] == "shop/cart.py"
    assert {"path", "start_line", "end_line", "symbol", "kind", "score", "text"} <= set(data[0])


def test_search_for_files_lists_each_file_once(workspace: Path, cache_dir: Path) -> None:
    out = agentls("search", "price", "--files", "--json", cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    paths = [hit["path"] for hit in json.loads(out.stdout)]
    chunks = json.loads(agentls("search", "price", "--json", cwd=workspace, cache=cache_dir).stdout)
    assert len(set(paths)) == len(paths) > len({hit["path"] for hit in chunks})


def test_search_scoped_to_a_folder_of_an_indexed_workspace(workspace: Path, cache_dir: Path) -> None:
    agentls("index", ".", cwd=workspace, cache=cache_dir)
    out = agentls("search", "price", "--path", "tests", "--json", cwd=workspace, cache=cache_dir)
    paths = {hit["path"] for hit in json.loads(out.stdout)}
    assert paths == {"tests/test_cart.py"}


def test_search_reads_the_index_as_it_is_and_refreshes_on_request(workspace: Path, cache_dir: Path) -> None:
    agentls("index", ".", cwd=workspace, cache=cache_dir)
    (workspace / "shop" / "tax.py").write_text("def compute_zebra_levy(amount):\n    return amount\n")
    # No walk of the tree before searching (on the kernel that walk cost 20 s a query).
    out = agentls("search", "zebra levy", "--json", cwd=workspace, cache=cache_dir)
    assert all(hit["symbol"] != "compute_zebra_levy" for hit in json.loads(out.stdout))
    assert "updated the index" not in out.stderr
    out = agentls("search", "zebra levy", "--json", "--refresh", cwd=workspace, cache=cache_dir)
    assert json.loads(out.stdout)[0]["symbol"] == "compute_zebra_levy"
    assert "updated the index: 1 files indexed" in out.stderr


def test_index_progress_is_plain_lines_without_a_terminal(workspace: Path, cache_dir: Path) -> None:
    out = agentls("index", ".", cwd=workspace, cache=cache_dir)
    lines = [line for line in out.stderr.splitlines() if line.startswith("agentls: ")]
    phases = [line.split()[1] for line in lines]
    assert phases[:1] == ["Scanning"] and "Indexing" in phases and phases[-1] == "Building", lines
    assert any(line.startswith("agentls: Building search indexes: full-text index (") for line in lines), (
        lines
    )
    assert "agentls: " not in agentls("index", ".", "-q", cwd=workspace, cache=cache_dir).stderr


def test_plain_progress_goes_on_while_a_phase_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import threading
    import time
    from typing import Any

    from rich.console import Console

    from server.cli import support

    class SlowFinish:
        """A run whose last phase (the search-index build of a large tree) reports nothing for a while."""

        def index(self, progress: Any, cancel: threading.Event) -> str:
            progress("indexing", 3, 3)
            progress("finishing", 0, 0)
            time.sleep(1.0)
            progress("finishing/full-text index", 1, 0)
            return "report"

    monkeypatch.setattr(support, "PLAIN_EVERY", 0.2)
    out = io.StringIO()
    assert support._run_index_plain(SlowFinish(), Console(file=out), threading.Event(), {}) == "report"
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["agentls: Indexing 3/3 files (0 s)", "agentls: Building search indexes (0 s)"]
    beats = [x for x in lines if x.startswith("agentls: Building search indexes (") and "still working" in x]
    assert len(beats) >= 3, lines
    assert lines[-1] == "agentls: Building search indexes: full-text index (1 s)"


def test_plain_progress_shows_the_latest_count_while_reports_keep_coming() -> None:
    """Reports faster than a line is printed (the kernel's vector pass: one every 0.6 s) must not leave
    the lines repeating an old count: that run printed "Embedding 147,456/1,361,110" for minutes."""
    import io
    import re
    import time

    from rich.console import Console

    from server.cli.quick import PlainProgress

    out = io.StringIO()
    with PlainProgress(Console(file=out), every=0.2) as on_progress:
        for done in range(1, 61):
            on_progress("embedding", done * 100, 6_000)
            time.sleep(0.02)
    counts = [int(m.group(1).replace(",", "")) for m in re.finditer(r"Embedding ([\d,]+)/", out.getvalue())]
    assert len(counts) >= 4 and counts == sorted(set(counts)), out.getvalue()
    assert counts[-1] >= 4_500 and "still working" not in out.getvalue(), out.getvalue()


def test_an_ignore_file_that_leaves_out_everything_is_explained(workspace: Path, cache_dir: Path) -> None:
    (workspace / ".gitignore").write_text("/*\n")
    out = agentls("index", ".", cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    assert "by the pattern '/*' in .gitignore" in out.stderr
    assert "add '!/*' to `exclude` in the [index] section of your own settings file" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "/does/not/exist"), "does not exist"),
        (("search", "x", "--path", "/does/not/exist"), "does not exist"),
        (("search", "   "), "the query is empty"),
        (("search", "x", "-k", "0"), "agentls search: -k/--limit must be a whole number from 1 to 1000"),
        (("model", "distill", "--from", "/does/not/exist"), "distillation failed"),
    ],
)
def test_bad_arguments_get_clear_errors(
    args: tuple[str, ...], message: str, workspace: Path, cache_dir: Path
) -> None:
    out = agentls(*args, cwd=workspace, cache=cache_dir)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("search", "x", "-k", "abc"),
            "agentls search: -k/--limit must be a whole number from 1 to 1000, not 'abc'",
        ),
        (
            ("search", "x", "--limit=0"),
            "agentls search: -k/--limit must be a whole number from 1 to 1000, not '0'",
        ),
        (
            ("search", "x", "-k", "²"),
            "agentls search: -k/--limit must be a whole number from 1 to 1000, not '²'",
        ),
        (("index", "--engine", "gpu"), "agentls index: --engine must be local or ray, not 'gpu'"),
        (
            ("serve", "--tcp", "70000"),
            "agentls serve: --tcp must be a whole number from 0 to 65535, not '70000'",
        ),
        (
            ("model", "tune", "--blend", "2"),
            "agentls model tune: --blend must be a number from 0 to 1, not '2'",
        ),
        (
            ("runs", "resume", "x", "--max-cost", "-1"),
            "agentls runs: --max-cost must be an amount of US dollars, 0 or more, not '-1'",
        ),
        (("batch", "missing.jsonl"), "agentls batch: TASKS.jsonl: file 'missing.jsonl' does not exist"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_the_option_the_value_and_what_it_takes(
    args: tuple[str, ...], line: str, workspace: Path, cache_dir: Path
) -> None:
    """Through the console script, whose quick search path leaves a bad ``-k`` to the group (a digit that
    is no decimal one, ``²``, used to crash it with a traceback)."""
    out = agentls(*args, cwd=workspace, cache=cache_dir)
    assert (out.returncode, out.stderr, out.stdout) == (2, line + "\n", "")


def _imported(stderr: str) -> set[str]:
    """The modules a process imported, from its ``PYTHONPROFILEIMPORTTIME`` lines on ``stderr``."""
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_no_settings_or_rich_and_search_none_of_the_agents_cli(
    workspace: Path, cache_dir: Path
) -> None:
    """``agentls --help`` imported the whole settings tree (pydantic, the agent's settings) and Rich before
    printing (1.1 s at load 5, most of the CPU of ``--help``); ``agentls search`` imported the agent's
    commands, MCP's and the others'. Now those load in the commands that need them, and the verbs with
    modules of their own are the group's lazy commands: what is imported is checked (not a timing), and
    the help still lists every command with its line."""
    env = {"PYTHONPROFILEIMPORTTIME": "1", "AGENTLS_SEARCH_PROCESS": "0"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        helped = agentls("--help", cwd=workspace, cache=cache_dir)
        searched = agentls("search", "apply a discount", "-k", "1", cwd=workspace, cache=cache_dir)
    assert helped.returncode == 0, helped.stderr
    heavy = {"pydantic", "rich", "server.settings", "indexing.config", "agent.config"}
    assert heavy & _imported(helped.stderr) == set(), sorted(heavy & _imported(helped.stderr))
    listed = {line.split()[0]: line for line in helped.stdout.split("Commands:")[1].splitlines() if line}
    names = "acp batch graph implement index mcp model run runs search serve settings"
    assert sorted(listed) == names.split()
    assert "Run the agent on INSTRUCTION" in listed["run"] and "Serve this workspace's" in listed["mcp"]

    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.startswith("shop/pricing.py:27  apply_discount"), searched.stdout
    agents = {"server.cli.agent", "server.cli.mcp", "server.cli.batch", "server.cli.acp", "server.cli.graph"}
    assert agents & _imported(searched.stderr) == set(), sorted(agents & _imported(searched.stderr))


def test_every_number_and_choice_option_refuses_in_agentls_words() -> None:
    """No option keeps Click's stock number or choice type, whose refusal is its own wording."""
    import click

    from server.cli import main
    from server.cli.support import Number, OneOf, WholeNumber

    def params(command: click.Command) -> list[tuple[str, click.Parameter]]:
        found = [(command.name or "", param) for param in command.params]
        if isinstance(command, click.Group):  # the lazy commands too (`support.Group.lazy_commands`)
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None, name
                found += params(sub)
        return found

    stock = (click.types.IntParamType, click.types.FloatParamType, click.Choice)
    leftover = [
        f"{name} {param.name}"
        for name, param in params(main)
        if isinstance(param.type, stock)
        and not isinstance(param.type, WholeNumber | Number | OneOf)
        and not getattr(param, "count", False)  # -v: counted, never given a value
    ]
    assert leftover == []


_FORK_SERVER_PROBE = """
import importlib, json, os, sys, time

cli = importlib.import_module("server.cli.main")  # the package's `main` attribute is the Click group

seen = {}
real_open = cli._open_index


def commands():
    pid = os.getpid()
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = fh.read().split()
    out = []
    for child in children:
        with open(f"/proc/{child}/cmdline", "rb") as fh:
            out.append(fh.read().replace(b"\\0", b" ").decode())
    return out


def probe(*args, **kwargs):
    # The parser processes' fork server is a child of this process whose command line names it. A child
    # still starting (under load) shows an empty command line for a moment: look again then.
    seen["lancedb_loaded"] = "lancedb" in sys.modules
    deadline = time.monotonic() + 10
    found = commands()
    while "" in found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = commands()
    seen["fork_server"] = any("forkserver" in c for c in found)
    return real_open(*args, **kwargs)


cli._open_index = probe
try:
    cli.main(["index", "-q", sys.argv[1]], standalone_mode=False)
finally:
    print(json.dumps(seen))
"""


def test_a_first_index_starts_its_parser_processes_before_loading_lancedb(tmp_path: Path) -> None:
    """The fork server's imports run beside LanceDB's (on another core) instead of after them."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for n in range(60):  # more than a run parses in-process
        (ws / f"m{n}.py").write_text(f"def f{n}(x):\n    return x + {n}\n")
    env = {
        **os.environ,
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "AGENTLS_SEARCH_PROCESS": "0",  # no warm search process left behind
    }
    out = subprocess.run(
        [sys.executable, "-c", _FORK_SERVER_PROBE, str(ws)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"fork_server": True, "lancedb_loaded": False}, out.stderr


def test_an_interrupted_index_exits_130_and_says_what_is_kept() -> None:
    import threading

    import click

    from server.cli.support import index_or_fail

    class Interrupted:
        def index(self, **_: object) -> None:
            raise KeyboardInterrupt

    cancel = threading.Event()
    with pytest.raises(click.ClickException) as raised:
        index_or_fail(Interrupted(), None, cancel, {})
    assert raised.value.exit_code == 130 and cancel.is_set()
    assert "the files indexed before it are saved" in raised.value.message


def test_index_lists_the_files_it_left_out_with_skipped(workspace: Path, cache_dir: Path) -> None:
    out = agentls("index", "--skipped", ".", cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    listed = [line for line in out.stderr.splitlines() if line.startswith(("binary: ", "secret: "))]
    assert len(listed) == 2 and {line.split(": ")[0] for line in listed} == {"binary", "secret"}
    again = agentls("index", "--skipped", ".", cwd=workspace, cache=cache_dir)  # unchanged: still listed
    assert [line for line in again.stderr.splitlines() if line.startswith(("binary: ", "secret: "))] == listed


def test_provider_none_silences_the_note_on_vectors(workspace: Path, cache_dir: Path) -> None:
    """README: `index` and `search` say how to get vectors, and `embedding.provider = "none"` silences it."""
    (workspace / "agentls.toml").write_text('[index.embedding]\nprovider = "none"\n')
    for args in (["index", "."], ["index", "."], ["search", "price"], ["index", "--json", "."]):
        out = agentls(*args, cwd=workspace, cache=cache_dir)
        assert out.returncode == 0, out.stderr
        assert "note:" not in out.stderr, (args, out.stderr)
    assert json.loads(out.stdout)["lexical_only"] is True


def test_index_skipped_lists_the_files_left_out_when_read_also_with_a_model(
    workspace: Path, model_cache_dir: Path
) -> None:
    """An index with vectors keeps no file state; the binary and generated files are listed all the same."""
    (workspace / "bundle.js").write_text("// @generated by a bundler\nvar x = 1;\n")
    for _ in range(2):  # the first run and an unchanged one
        out = agentls("index", "--skipped", ".", cwd=workspace, cache=model_cache_dir)
        assert out.returncode == 0, out.stderr
        assert "wrote" in out.stderr or "already up to date" in out.stderr
        listed = {line.split(": ")[0]: line for line in out.stderr.splitlines() if ": " in line}
        assert listed["binary"].startswith("binary: logo.png"), out.stderr
        assert listed["generated"].startswith("generated: bundle.js"), out.stderr
        assert listed["secret"] == "secret: .env"


def test_search_does_not_index_a_whole_home_folder_on_its_own(tmp_path: Path, cache_dir: Path) -> None:
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    (home / "proj" / "a.py").write_text("def alpha():\n    return 1\n")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1", "HOME": str(home)}
    run = subprocess.run(
        ["agentls", "search", "alpha", "--path", str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and f"agentls does not index {home}: it is your home folder" in run.stderr
    assert "server.index_home_or_root = true" in run.stderr and f"agentls index {home}" in run.stderr
    assert not (cache_dir / "index").exists() or not any((cache_dir / "index").iterdir())
    inside = subprocess.run(
        ["agentls", "search", "alpha", "--path", str(home / "proj")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inside.returncode == 0 and "a.py" in inside.stdout


def test_a_file_with_classic_mac_line_ends_is_indexed_at_the_lines_editors_show(
    workspace: Path, cache_dir: Path
) -> None:
    """Lines ending in a lone "\\r" are lines to LSP and the editors, so search hits point at them: the
    same line numbers as the file with "\\n" endings, and a snippet of the definition alone."""
    pricing = workspace / "shop" / "pricing.py"
    text = pricing.read_text()
    pricing.write_bytes(text.replace("\n", "\r").encode())
    line = text.splitlines().index("def apply_discount(price: Money, percent: float) -> Money:") + 1
    out = agentls("index", ".", cwd=workspace, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    found = agentls("search", "reduce a price by a percentage", "-k", "1", cwd=workspace, cache=cache_dir)
    assert found.stdout.splitlines()[0].startswith(f"shop/pricing.py:{line}  apply_discount  "), found.stdout
    hits = json.loads(agentls("search", "add_vat", "--json", cwd=workspace, cache=cache_dir).stdout)
    hit = next(h for h in hits if h["symbol"] == "add_vat")
    start = text.splitlines().index("def add_vat(price: Money, rate: float = VAT_RATE) -> Money:") + 1
    assert (hit["path"], hit["start_line"], hit["end_line"]) == ("shop/pricing.py", start, start + 2)
    assert hit["text"].splitlines()[0].startswith("def add_vat(") and "def parse_price" not in hit["text"]
