"""The bash tool: commands run in the sandbox on the materialized overlay, and their edits fold back.

The `ws` fixture checks at teardown that no file of the real workspace changed, whatever the commands did.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import sandbox as sandbox_module
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolAbort, ToolRegistry, ToolResult
from agent.tools.bash import BashTool
from agent.tools.editor import EditorTool
from tests.agent.test_overlay import disk_snapshot


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(
        "from pkg.calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    (root / ".env").write_text("API_KEY=sk-secret\n")
    (root / "logo.png").write_bytes(b"\x89PNG\x00\x00")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the user's files changed on disk"


@pytest.fixture
def tools(ws: Path) -> Iterator[tuple[Overlay, ToolRegistry, BashTool]]:
    overlay = Overlay(ws, {"pkg/__init__.py": ("VERSION = 'unsaved'\n", 3)})
    bash = BashTool(overlay, Sandbox(), timeout=20)
    registry = ToolRegistry([EditorTool(overlay), bash])
    yield overlay, registry, bash
    bash.close()


def run(registry: ToolRegistry, command: str) -> ToolResult:
    return registry.execute("bash", {"command": command})


def test_definition(ws: Path) -> None:
    assert BashTool(Overlay(ws), Sandbox()).definition() == {"type": "bash_20250124", "name": "bash"}


def test_commands_run_at_the_workspace_path_on_the_overlay(tools: Any, ws: Path) -> None:
    overlay, registry, _ = tools
    overlay.write("pkg/calc.py", "def add(a, b):\n    return a + b\n")
    result = run(registry, f"pwd; cat pkg/__init__.py; cat {ws}/pkg/calc.py")
    assert not result.is_error
    assert result.content.splitlines() == [
        str(ws),
        "VERSION = 'unsaved'",
        "def add(a, b):",
        "    return a + b",
    ]


def test_imports_see_the_agents_version_despite_bytecode_caches(tools: Any) -> None:
    overlay, registry, _ = tools
    probe = "python -c 'from pkg.calc import add; print(add(2, 3))'"
    assert run(registry, probe).content == "-1"
    # Same size as before: a .pyc written by the first run must not hide the edit (mtime must move).
    overlay.write("pkg/calc.py", "def add(a, b):\n    return a + b\n")
    assert run(registry, probe).content == "5"
    assert "calc.cpython" in run(registry, "ls pkg/__pycache__").content


def test_sed_edit_folds_back_into_the_overlay(tools: Any) -> None:
    overlay, registry, _ = tools
    result = run(registry, "sed -i 's/a - b/a + b/' pkg/calc.py && echo done")
    assert result.content == "done"
    assert overlay.read("pkg/calc.py") == "def add(a, b):\n    return a + b\n"
    (change,) = overlay.changes()
    assert (change.path, change.kind) == ("pkg/calc.py", "modified")
    assert "-    return a - b\n+    return a + b\n" in change.diff
    # The editor sees the command's edit, and the next command sees the editor's.
    registry.execute(
        "str_replace_based_edit_tool",
        {"command": "str_replace", "path": "pkg/calc.py", "old_str": "a + b", "new_str": "b + a"},
    )
    assert run(registry, "grep return pkg/calc.py").content == "    return b + a"


def test_created_deleted_and_binary_files(tools: Any) -> None:
    overlay, registry, _ = tools
    result = run(
        registry,
        "mkdir -p docs && echo '# Docs' > docs/index.md && rm tests/test_calc.py "
        "&& printf '\\x00\\x01' > data.bin && echo changed >> logo.png && echo ok",
    )
    assert result.content.splitlines()[0] == "ok"
    assert "[not kept (binary, non-UTF-8 or secret files): data.bin, logo.png]" in result.content
    kinds = {c.path: c.kind for c in overlay.changes()}
    assert kinds == {"docs/index.md": "created", "tests/test_calc.py": "deleted"}


def test_dependency_folders_a_command_creates_stay_out_of_the_proposal(tools: Any) -> None:
    """`npm install` in a project without node_modules (or `python -m venv .venv`) writes thousands of
    files into the copy: they serve the session's later commands, but never become proposed files."""
    overlay, registry, _ = tools
    result = run(
        registry,
        "mkdir -p node_modules/left-pad web/node_modules/dep .venv/lib && "
        "echo 'module.exports = 1' > node_modules/left-pad/index.js && "
        "echo 'x = 1' > web/node_modules/dep/index.js && echo 'home = /usr' > .venv/pyvenv.cfg && "
        "echo 'print(1)' > tool.py && echo ok",
    )
    assert result.content.splitlines()[0] == "ok"
    assert result.content.splitlines()[1] == (
        "[not part of your proposal: .venv/, node_modules/, web/node_modules/ (dependency and tool folders "
        "stay in this bash session's copy; the final checks and the user's project do not get them)]"
    )
    assert {c.path: c.kind for c in overlay.changes()} == {"tool.py": "created"}
    # The session's later commands still have them, and the note is not repeated.
    again = run(registry, "cat node_modules/left-pad/index.js")
    assert again.content == "module.exports = 1"
    assert {c.path for c in overlay.changes()} == {"tool.py"}


def test_tools_write_their_caches_in_a_read_only_node_modules(tmp_path: Path) -> None:
    """The project's node_modules is read-only in the sandbox, but the caches test runners write there as
    they run are not: Vitest writes `node_modules/.vite/vitest/results.json` on every run and fails the
    run when it cannot (fresh, or over the one a run on the host left). Packages, pnpm's links between
    them and the user's copy are left as they are."""
    ws = tmp_path / "web"
    modules = ws / "node_modules"
    (modules / ".pnpm" / "dep@1.0.0" / "node_modules" / "dep").mkdir(parents=True)
    (modules / ".pnpm" / "dep@1.0.0" / "node_modules" / "dep" / "index.js").write_text("module.exports = 1\n")
    (modules / "dep").symlink_to(".pnpm/dep@1.0.0/node_modules/dep")
    (modules / "vitest").mkdir()
    (modules / "vitest" / "package.json").write_text('{"name": "vitest"}\n')
    (modules / ".vite" / "vitest").mkdir(parents=True)
    (modules / ".vite" / "vitest" / "results.json").write_text('{"host": true}\n')
    (ws / "package.json").write_text('{"name": "web", "scripts": {"test": "vitest run"}}\n')
    before = disk_snapshot(ws)
    overlay = Overlay(ws)
    with BashTool(overlay, Sandbox(), timeout=20) as bash:
        cache = "node_modules/.vite/vitest"
        result = bash.run(
            {
                "command": f"mkdir -p {cache} && echo '{{}}' > {cache}/results.json && echo cache written; "
                "mkdir -p node_modules/.cache/babel && echo babel ok; readlink node_modules/dep; "
                "cat node_modules/dep/index.js; cat node_modules/vitest/package.json; "
                "echo x > node_modules/vitest/package.json"
            }
        )
    lines = result.content.splitlines()
    assert lines[:5] == [
        "cache written",
        "babel ok",
        ".pnpm/dep@1.0.0/node_modules/dep",
        "module.exports = 1",
        '{"name": "vitest"}',
    ], result.content
    assert "node_modules/vitest/package.json: Read-only file system" in lines[5]
    assert disk_snapshot(ws) == before
    assert overlay.changes() == []


def test_a_runaway_log_is_not_read_into_the_proposal(tools: Any) -> None:
    """A test stuck in a loop writes a 30 MiB log (under the file-size limit): agentls does not read it
    into memory or propose it, and says so; a small file the same command wrote is kept."""
    overlay, registry, _ = tools
    result = run(registry, "yes 'retrying...' | head -c 30M > run.log; echo ok > notes.txt; echo done")
    assert result.content.splitlines() == ["done", "[not kept (over 10 MiB): run.log]"]
    assert {c.path for c in overlay.changes()} == {"notes.txt"}


def test_a_command_filling_the_copy_or_tmp_is_stopped_and_the_run_goes_on(ws: Path) -> None:
    """Past `workspace_mb` (the copy) or `tmp_mb` (the session's /tmp, a host folder) the command is
    stopped and told why; the changes made before it are all there, the copy is remade from them (what
    filled it is neither read into the proposal nor left in memory) and /tmp is emptied."""
    overlay = Overlay(ws)
    settings = SandboxSettings(tmp_mb=3, workspace_mb=4, max_file_mb=1)
    bash = BashTool(overlay, Sandbox(settings), timeout=20)
    registry = ToolRegistry([EditorTool(overlay), bash])
    try:
        run(registry, "sed -i 's/a - b/a + b/' pkg/calc.py; export KEPT=yes")
        fill = "echo note > notes.txt; for i in $(seq 1 200); do head -c 1000000 /dev/zero > junk$i; done"
        result = run(registry, fill)
        assert result.is_error
        assert result.content.splitlines()[-2:] == [
            "[the sandbox's workspace copy is full: 4 MiB limit on what commands add, setting "
            "agent.sandbox.workspace_mb; the command was stopped]",
            "[the command's changes to the workspace were not kept: the copy it ran on was reset to your "
            "changes as they were before it]",
        ]
        assert [c.path for c in overlay.changes()] == ["pkg/calc.py"]
        after = run(registry, "ls; grep return pkg/calc.py; echo $KEPT")
        assert after.content.split() == ["logo.png", "pkg", "tests", "return", "a", "+", "b", "yes"]

        fill_tmp = "for i in $(seq 1 200); do head -c 1000000 /dev/zero > /tmp/t$i; done; echo finished"
        result = run(registry, fill_tmp)
        assert result.is_error and "finished" not in result.content
        assert result.content.splitlines()[-2:] == [
            "[the sandbox's /tmp is full: 3 MiB limit, setting agent.sandbox.tmp_mb; "
            "the command was stopped]",
            "[this session's /tmp was emptied]",
        ]
        assert run(registry, "ls /tmp | grep -c '^t[0-9]'; echo $KEPT").content.split() == ["0", "yes"]
        assert [c.path for c in overlay.changes()] == ["pkg/calc.py"]
    finally:
        bash.close()


def test_the_first_command_does_not_walk_the_copy_for_its_size(
    ws: Path, tmp_path: Path, disk_walks: list[Path]
) -> None:
    """The copy's size at its first command (what `workspace_mb` is added to) comes from making it, not
    from a walk of it (0.6 s on a kernel-sized copy); it is the size a walk finds."""
    made = Overlay(ws, {"pkg/new/mod.py": ("n = 1\n" * 20_000, 1)}).materialize(tmp_path / "copy")
    assert made.allocated == sandbox_module._disk_usage(tmp_path / "copy") > 100_000
    disk_walks.clear()  # that walk was the test's own
    room = 65536 + _used_mb(sandbox_module.default_scratch_dir())  # more than its filesystem holds now
    with BashTool(Overlay(ws), Sandbox(SandboxSettings(workspace_mb=room, tmp_mb=room)), timeout=20) as bash:
        for _ in range(2):
            assert run(ToolRegistry([bash]), "echo x > out.txt").content == "(no output)"
    assert disk_walks == []


def _used_mb(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // (1024 * 1024)


def test_exit_codes_stderr_and_empty_output(tools: Any) -> None:
    _, registry, _ = tools
    failed = run(registry, "echo out; echo err >&2; exit 3")
    assert not failed.is_error
    assert failed.content == "out\nerr\n[exit code: 3]"
    assert run(registry, "true").content == "(no output)"


def test_output_is_what_a_terminal_shows(tools: Any) -> None:
    """Carriage returns reached the model as they were: every redraw of a progress bar (a thousand here),
    and a stray "\\r" at the end of each line of a CRLF file's `cat`."""
    overlay, registry, _ = tools
    overlay.write("notes.txt", "first\r\nsecond\r\n")
    bar = "for i in $(seq 1 1000); do printf '\\rfetching %d/1000' $i; done; echo"
    result = run(registry, f"cat notes.txt; {bar}; printf 'ab\\rX\\n' >&2")
    assert not result.is_error
    assert result.content == "first\nsecond\nfetching 1000/1000\nXb"


def test_timeout_kills_the_command_not_the_session(ws: Path) -> None:
    overlay = Overlay(ws)
    with BashTool(overlay, Sandbox(), timeout=1.5) as bash:
        registry = ToolRegistry([bash])
        assert not run(registry, "cd pkg && export KEPT=before").is_error
        result = run(registry, "cd /; export KEPT=lost; echo partial; sleep 30")
        assert result.is_error
        assert result.content == (
            "partial\n[timed out after 1.5 seconds: the command and every process it started were killed; "
            "the shell's working directory and variables are as they were before this command]"
        )
        # The session is usable and as it was before the command that hung.
        assert run(registry, 'pwd; echo "$KEPT"').content == f"{ws}/pkg\nbefore"


def test_the_session_keeps_cwd_variables_functions_and_tmp(tools: Any, ws: Path) -> None:
    _, registry, _ = tools
    assert run(registry, "mkdir -p sub/deeper && cd sub").content == "(no output)"
    assert run(registry, "pwd").content == f"{ws}/sub"
    run(registry, "export X=1; Y='two words'; arr=(a b); greet() { echo hi $1; }; alias ll='echo aliased'")
    run(registry, "echo tmp-kept > /tmp/note.txt; cd deeper")
    session = run(registry, 'echo "$X|$Y|${arr[1]}"; greet you; ll; cat /tmp/note.txt; pwd')
    assert session.content.splitlines() == [
        "1|two words|b",
        "hi you",
        "aliased",
        "tmp-kept",
        f"{ws}/sub/deeper",
    ]
    # `exit` still saves the state; the exit code is the command's.
    exited = run(registry, "cd .. && export Z=3; exit 4")
    assert exited.content == "[exit code: 4]"
    assert run(registry, 'pwd; echo "$Z"; bash -c \'echo "child sees $X"\'').content.splitlines() == [
        f"{ws}/sub",
        "3",
        "child sees 1",
    ]
    # A working directory that is gone: back at the workspace root, with a note.
    run(registry, "cd deeper && rm -rf ../deeper")
    gone = run(registry, "pwd")
    assert gone.content.splitlines()[0] == str(ws)
    assert "is gone" in gone.content


def test_restart_clears_the_session(tools: Any, ws: Path) -> None:
    _, registry, _ = tools
    run(registry, "cd pkg; export X=1; echo t > /tmp/t")
    assert run(registry, 'pwd; echo "[$X]"').content == f"{ws}/pkg\n[1]"
    registry.execute("bash", {"restart": True})
    fresh = run(registry, 'pwd; echo "[$X]"; ls /tmp/t 2>/dev/null || echo no-tmp')
    assert fresh.content.splitlines() == [str(ws), "[]", "no-tmp"]


def test_no_secrets_no_network_and_git_read_only(tools: Any) -> None:
    _, registry, _ = tools
    assert "sk-secret" not in run(registry, "cat .env; grep -r sk-secret . 2>/dev/null").content
    status = run(registry, "git status --short --untracked-files=all | sort; touch .git/x; echo rc=$?")
    assert "pkg/calc.py" in status.content
    assert "rc=1" in status.content and "Read-only file system" in status.content
    offline = run(registry, "getent hosts pypi.org || echo offline")
    assert offline.content.strip() == "offline"


def test_restart_starts_from_a_fresh_copy(tools: Any) -> None:
    overlay, registry, bash = tools
    run(registry, "echo scratch > /tmp/scratch.txt; echo kept > kept.txt")
    first_dest = bash.last_materialized.dest
    restarted = registry.execute("bash", {"restart": True})
    assert restarted == ToolResult("The bash tool has been restarted.")
    assert not first_dest.exists()
    result = run(registry, "cat kept.txt; cat /tmp/scratch.txt 2>/dev/null || echo no-scratch")
    assert result.content.splitlines() == ["kept", "no-scratch"]
    assert overlay.read("kept.txt") == "kept\n"
    missing = registry.execute("bash", {})
    assert missing.is_error and "`command` is required" in missing.content


def test_missing_sandbox_aborts_the_run(ws: Path, tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxSettings(bwrap_path=str(tmp_path / "missing-bwrap")))
    with BashTool(Overlay(ws), sandbox) as bash, pytest.raises(ToolAbort, match="apt-get install bubblewrap"):
        ToolRegistry([bash]).execute("bash", {"command": "true"})


def test_unsandboxed_when_allowed(ws: Path, tmp_path: Path) -> None:
    settings = SandboxSettings(bwrap_path=str(tmp_path / "missing-bwrap"), allow_unsandboxed=True)
    overlay = Overlay(ws)
    with BashTool(overlay, Sandbox(settings)) as bash:
        result = ToolRegistry([bash]).execute("bash", {"command": "sed -i 's/a - b/a * b/' pkg/calc.py; pwd"})
        assert not result.is_error
        assert result.content != str(ws)  # runs in the materialized copy, not in the workspace
        ToolRegistry([bash]).execute("bash", {"command": "cd pkg; export X=1"})
        session = ToolRegistry([bash]).execute("bash", {"command": 'basename "$PWD"; echo $X'})
        assert session.content == "pkg\n1"
    assert overlay.read("pkg/calc.py") == "def add(a, b):\n    return a * b\n"


def make_tree(root: Path, files: int) -> None:
    """A Django-sized tree: `files` Python files of about 10 KiB in nested packages."""
    body = "".join(f"def function_{i}(x):\n    return x + {i}\n\n\n" for i in range(300))
    for i in range(files):
        package = root / f"pkg{i % 40}" / f"sub{i % 7}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module_{i}.py").write_text(body)


@pytest.mark.benchmark
def test_benchmark_materialize_and_start_a_sandbox(tmp_path: Path) -> None:
    """Median of materializing a ~2,800-file tree plus running `true` in bwrap (see the report figures)."""
    root = tmp_path / "big"
    make_tree(root, 2800)
    sandbox = Sandbox()
    timings = []
    for _ in range(5):
        overlay = Overlay(root)
        with tempfile.TemporaryDirectory(dir=sandbox.settings.scratch_dir or "/dev/shm") as scratch:
            started = time.perf_counter()
            with BashTool(overlay, sandbox, scratch_dir=Path(scratch)) as bash:
                assert bash.execute("true").content == "(no output)"
                timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.6
