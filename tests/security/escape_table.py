"""Attempted escapes from the workspace root, tried against the real tools and entry points; prints what each
did. Run it on two versions of the tree and join them into BENCHMARKS.md's table:

    PYTHONPATH=/tmp/wt-old python -m tests.security.escape_table --json before.json
    python -m tests.security.escape_table --json after.json
    python -m tests.security.escape_table --table before.json after.json

Each attempt builds its own workspace under a temporary folder (with a file outside it holding
``OUTSIDE-SECRET`` and a marker program that notes when it runs) and reports ``refused`` (an error or an
answer without anything from outside), ``read outside`` / ``wrote outside`` / ``ran a host program``.
The regression tests for each hole are tests/security/test_git_host_config.py and test_workspace_escapes.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SECRET = "OUTSIDE-SECRET"


class _Box:
    """A workspace `root` (a git repository) beside a folder `outside` and a marker program."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.outside = base / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_text(f"{SECRET}\n")
        (self.outside / "package.json").write_text(json.dumps({"name": "x", "description": SECRET}))
        self.ran = base / "ran.txt"
        self.program = base / "evil.sh"
        self.program.write_text(f'#!/bin/sh\necho "$*" >> {self.ran}\ncat\n')
        self.program.chmod(self.program.stat().st_mode | stat.S_IXUSR)
        self.root = base / "ws"
        self.root.mkdir()
        self.git("init", "-q", "-b", "main")
        (self.root / "app.py").write_text("x = 1\n")
        self.git("add", "app.py")
        self.git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "first")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
        done = subprocess.run(
            ["git", "-C", str(cwd or self.root), "-c", "protocol.file.allow=always", *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return done.stdout

    def touch(self, rel: str) -> None:
        later = time.time() + 100
        os.utime(self.root / rel, (later, later))

    def verdict(self, answer: str) -> str:
        if self.ran.exists():
            return "ran a host program"
        if SECRET in answer:
            return "read outside"
        return "refused"


def _tool(tool: object, name: str, args: dict[str, object]) -> str:
    from agent.tools import ToolRegistry

    result = ToolRegistry([tool]).execute(name, args)  # type: ignore[list-item]
    return str(result.content)


def _editor(box: _Box, args: dict[str, object]) -> str:
    from agent.overlay import Overlay
    from agent.tools.editor import EditorTool

    return _tool(EditorTool(Overlay(box.root)), "str_replace_based_edit_tool", args)


def _git_tool(cls_name: str, box: _Box, args: dict[str, object]) -> str:
    import agent.tools.git as git_tools

    tool = getattr(git_tools, cls_name)(box.root)
    return _tool(tool, tool.name, args)


def _filters(box: _Box) -> None:
    box.git("config", "filter.ev.clean", f"{box.program} clean")
    box.git("config", "filter.ev.smudge", f"{box.program} smudge")
    box.git("config", "diff.ev.textconv", f"{box.program} textconv")
    (box.root / ".git" / "info" / "attributes").write_text("* filter=ev diff=ev\n")
    (box.root / "app.py").write_text("x = 2\n")
    box.touch("app.py")


def _signed(box: _Box) -> None:
    (box.root / "app.py").write_text("x = 2\n")
    box.git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-am", "signed")
    head, _, message = box.git("cat-file", "commit", "HEAD").partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n AAAA\n -----END PGP SIGNATURE-----"
    done = subprocess.run(
        ["git", "-C", str(box.root), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=f"{head}\n{signature}\n\n{message}",
        capture_output=True,
        text=True,
        check=True,
    )
    box.git("update-ref", "refs/heads/main", done.stdout.strip())
    box.git("config", "log.showSignature", "true")
    box.git("config", "gpg.program", str(box.program))


def _monorepo(box: _Box) -> Path:
    """The workspace becomes `ws/pkg`; `ws/other.txt` (committed, outside it) holds the secret."""
    (box.root / "pkg").mkdir()
    (box.root / "pkg" / "a.py").write_text("a = 1\n")
    (box.root / "other.txt").write_text(f"{SECRET}\n")
    box.git("add", ".")
    box.git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "mono")
    (box.root / "other.txt").write_text(f"{SECRET} 2\n")
    return box.root / "pkg"


def _submodule(box: _Box) -> None:
    inner = box.base / "inner"
    inner.mkdir()
    box.git("init", "-q", "-b", "main", cwd=inner)
    (inner / "f.txt").write_text("f\n")
    box.git("add", "f.txt", cwd=inner)
    box.git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "f", cwd=inner)
    box.git("submodule", "-q", "add", str(inner), "sm")
    module = box.root / ".git" / "modules" / "sm"
    box.git("config", "filter.ev.clean", f"{box.program} clean", cwd=module)
    (module / "info").mkdir(exist_ok=True)
    (module / "info" / "attributes").write_text("* filter=ev\n")
    box.touch("sm/f.txt")


def _build_task(box: _Box, uri: str) -> str:
    from server.features import commands
    from server.features.runs.commands import build_task

    read: list[str] = []

    def text_of(path: Path) -> str | None:
        text = path.read_text() if path.is_file() else None
        read.append(text or "")
        return text

    try:
        build_task("agentls.implement", commands.ImplementArgs(uri=uri, position={"line": 0, "character": 0}),
                   [box.root], text_of)  # fmt: skip
    except Exception as error:  # the refusal
        return "".join(read) + str(error)
    return "".join(read)


def _acp_write(box: _Box) -> str:
    from agent.overlay import FileChange
    from agent.proposal import Proposal
    from agent.usage import Usage
    from server.acp import AgentlsAcpAgent, _Session

    (box.root / "src").symlink_to(box.outside)
    change = FileChange("src/new.py", "created", None, "", f"{SECRET}\n", None, "")
    acp = AgentlsAcpAgent({"AGENTLS_CACHE_DIR": str(box.base / "cache"), "HOME": str(box.base)})
    try:
        proposal = Proposal("prop", "run", "s", (change,), "", Usage(), 0.0, True, "ok")
        asyncio.run(acp._write(_Session("s", box.root), proposal))
    except Exception as error:
        return str(error)
    return "wrote outside" if (box.outside / "new.py").exists() else "refused"


def _resume(box: _Box) -> str:
    from agent.resume import load_state

    runs = box.base / "cache" / "runs"
    runs.mkdir(parents=True)
    (box.outside / "planted.state.json").write_text(json.dumps({"run_id": SECRET}))
    try:
        load_state(runs, "../../outside/planted")
    except KeyError:  # the planted file was read (it lacks the rest of a state)
        return SECRET
    except Exception as error:
        return str(error)
    return SECRET


def _lookup_npm(box: _Box) -> str:
    from agent.tools.docs import LookupDocsTool

    (box.root / "package.json").write_text("{}")
    (box.root / "node_modules").mkdir()
    (box.root / "node_modules" / "pkg").symlink_to(box.outside)
    return _tool(LookupDocsTool(box.root, None), "lookup_docs", {"name": "pkg"})


def _install(box: _Box, requirement: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    # install_package's own check (agent.installs.InstallPackageTool.run), before anything runs
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return "refused"
    return "refused" if parsed.url or requirement.startswith("-") else "accepted"


ATTEMPTS: list[tuple[str, str, Callable[[_Box], str]]] = [
    (
        "editor view",
        "`../outside/secret.txt`",
        lambda b: _editor(b, {"command": "view", "path": "../outside/secret.txt"}),
    ),
    (
        "editor view",
        "absolute `/…/outside/secret.txt`",
        lambda b: _editor(b, {"command": "view", "path": str(b.outside / "secret.txt")}),
    ),
    (
        "editor view",
        "through a link `link -> ../outside`",
        lambda b: (
            b.root.joinpath("link").symlink_to(b.outside),
            _editor(b, {"command": "view", "path": "link/secret.txt"}),
        )[1],
    ),
    (
        "editor create",
        "`a/../../outside/new.txt`",
        lambda b: (
            _editor(b, {"command": "create", "path": "a/../../outside/new.txt", "file_text": SECRET}),
            "wrote outside" if (b.outside / "new.txt").exists() else "refused",
        )[1],
    ),
    (
        "editor view",
        "`.GIT/config`, `.git./config`",
        lambda b: (
            _editor(b, {"command": "view", "path": ".GIT/config"})
            + _editor(b, {"command": "view", "path": ".git./config"})
        ),
    ),
    (
        "editor view",
        "NUL byte, 5,000-character name",
        lambda b: (
            _editor(b, {"command": "view", "path": "app.py\x00x"})
            + _editor(b, {"command": "view", "path": "a" * 5000})
        ),
    ),
    (
        "editor view",
        "hard link `hl.txt` to the outside file (made by the user)",
        lambda b: (
            os.link(b.outside / "secret.txt", b.root / "hl.txt"),
            _editor(b, {"command": "view", "path": "hl.txt"}),
        )[1],
    ),
    (
        "git_show",
        "`rev: HEAD:../outside/secret.txt`",
        lambda b: _git_tool("GitShowTool", b, {"rev": "HEAD:../outside/secret.txt"}),
    ),
    (
        "git_diff",
        "`base: --output=/tmp/x`",
        lambda b: _git_tool("GitDiffTool", b, {"mode": "refs", "base": "--output=/tmp/x"}),
    ),
    (
        "git_log",
        "`rev: -c core.pager=sh` / `--git-dir=/`",
        lambda b: _git_tool("GitLogTool", b, {"rev": "--git-dir=/"}),
    ),
    (
        "git_status",
        "repository's `core.fsmonitor` = program",
        lambda b: (b.git("config", "core.fsmonitor", str(b.program)), _git_tool("GitStatusTool", b, {}))[1],
    ),
    (
        "git_status / git_diff",
        "repository's clean filter (`.git/info/attributes`)",
        lambda b: (_filters(b), _git_tool("GitStatusTool", b, {}) + _git_tool("GitDiffTool", b, {}))[1],
    ),
    (
        "git_blame",
        "repository's textconv and smudge filter",
        lambda b: (_filters(b), _git_tool("GitBlameTool", b, {"path": "app.py", "rev": "HEAD"}))[1],
    ),
    (
        "git_log / git_show",
        "`log.showSignature` + `gpg.program` on a signed commit",
        lambda b: (_signed(b), _git_tool("GitLogTool", b, {}))[1],
    ),
    (
        "git_status",
        "a submodule's own clean filter",
        lambda b: (_submodule(b), _git_tool("GitStatusTool", b, {}))[1],
    ),
    (
        "shared index (`git status`)",
        "repository's `core.fsmonitor` = program",
        lambda b: (
            b.git("config", "core.fsmonitor", str(b.program)),
            __import__("indexing.shared", fromlist=["x"]).is_dirty(b.root),
        )[1].__str__(),
    ),
    (
        "git_diff in `ws/pkg` of a monorepo",
        "`path: :(top)`, `:(glob)../**`",
        lambda b: (
            lambda r: (
                _tool(
                    __import__("agent.tools.git", fromlist=["x"]).GitDiffTool(r),
                    "git_diff",
                    {"path": ":(top)"},
                )
                + _tool(
                    __import__("agent.tools.git", fromlist=["x"]).GitDiffTool(r),
                    "git_diff",
                    {"path": ":(glob)../**"},
                )
            )
        )(_monorepo(b)),
    ),
    (
        "git_show in `ws/pkg` of a monorepo",
        "no `path`: the commit's files outside the folder",
        lambda b: (
            lambda r: _tool(
                __import__("agent.tools.git", fromlist=["x"]).GitShowTool(r), "git_show", {"rev": "HEAD"}
            )
        )(_monorepo(b)),
    ),
    ("lookup_docs (npm)", "`node_modules/pkg -> ../outside` committed", _lookup_npm),
    (
        "install_package",
        "`-e /`, `file:///etc`, `--index-url=…`, `x @ git+ssh://…`",
        lambda b: (
            " ".join(
                _install(b, r) for r in ("-e /", "file:///etc", "--index-url=http://x", "x @ git+ssh://h/r")
            )
            .replace("refused", "")
            .strip()
            or "refused"
        ),
    ),
    (
        "LSP agentls.implement",
        "URI `file:///ws/../outside/secret.txt`",
        lambda b: _build_task(b, b.root.as_uri() + "/../outside/secret.txt"),
    ),
    (
        "LSP agentls.implement",
        "URI through a link `ws/link -> ../outside`",
        lambda b: (
            b.root.joinpath("link").symlink_to(b.outside),
            _build_task(b, (b.root / "link" / "secret.txt").as_uri()),
        )[1],
    ),
    ("ACP write of an allowed proposal", "`src` became a link out after the proposal", _acp_write),
    ("agentls.resume / `agentls runs resume`", "run id `../../outside/planted`", _resume),
]


def run() -> dict[str, str]:
    results: dict[str, str] = {}
    for entry, attempt, probe in ATTEMPTS:
        with tempfile.TemporaryDirectory() as folder:
            box = _Box(Path(folder))
            try:
                answer = probe(box)
            except Exception as error:  # a refusal raised instead of returned
                answer = f"error: {error}"
            if answer in ("wrote outside", "accepted"):
                verdict = answer
            else:
                verdict = box.verdict(answer)
                if "hard link" in attempt and verdict == "read outside":
                    verdict = "read (same file)"
        results[f"{entry} | {attempt}"] = verdict
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--table", nargs=2)
    args = parser.parse_args()
    if args.table:
        before, after = (json.loads(Path(p).read_text()) for p in args.table)
        print("| Entry point | Attempt | Before | After |\n|---|---|---|---|")
        for key, value in after.items():
            print(f"| {key} | {before.get(key, '?')} | {value} |")
        return
    results = run()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for key, value in results.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
