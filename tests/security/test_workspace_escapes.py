"""Entry points that take a path or a name and read host files, driven as a hostile model or repository
would: nothing outside the workspace root is read or shown.

- `lookup_docs` for an npm package whose folder is a link out of the workspace (a repository can commit
  ``node_modules -> /`` or ``node_modules/pkg -> ~/other-project``): refused, nothing of the outside
  folder's package.json, declarations or README shown;
- an LSP run command (agentls.implement, agentls.edit, agentls.ask) whose URI leaves the folder with
  ``..`` (``file:///ws/../../etc/passwd``) or through a link in the folder: refused before the file's
  text is read (the server read the whole regular file into memory, then the task refused it);
- the ACP endpoint's write of an allowed proposal through a folder that became a link out of the workspace
  since the run: refused, nothing written outside.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.overlay import FileChange
from agent.proposal import Proposal
from agent.tools import ToolRegistry
from agent.tools.docs import LookupDocsTool
from agent.usage import Usage
from server.acp import AgentlsAcpAgent, _Session
from server.documents import locate
from server.features import commands
from server.features.runs.commands import CommandError, build_task

pytestmark = pytest.mark.timeout(60)


def _outside_project(tmp_path: Path) -> Path:
    other = tmp_path / "private-project"
    other.mkdir()
    (other / "package.json").write_text(
        json.dumps({"name": "private", "version": "9.9.9", "description": "PRIVATE-DESCRIPTION"})
    )
    (other / "index.d.ts").write_text("export declare const PRIVATE_DECLARATION: string;\n")
    (other / "README.md").write_text("PRIVATE-README\n")
    return other


@pytest.mark.parametrize("link", ["node_modules/pkg", "node_modules", "node_modules/@types/pkg"])
def test_lookup_docs_does_not_read_a_package_linked_from_outside_the_workspace(
    link: str, tmp_path: Path
) -> None:
    other = _outside_project(tmp_path)
    root = tmp_path / "web"
    root.mkdir()
    (root / "package.json").write_text("{}")
    if link == "node_modules":
        (root / "node_modules").symlink_to(tmp_path)
        name = "private-project"
    elif link == "node_modules/@types/pkg":
        # The package itself is inside; its @types folder is a link out.
        package = root / "node_modules" / "pkg"
        package.mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({"name": "pkg", "version": "1.0.0"}))
        (root / "node_modules" / "@types").mkdir()
        (root / "node_modules" / "@types" / "pkg").symlink_to(other)
        name = "pkg"
    else:
        (root / "node_modules").mkdir()
        (root / "node_modules" / "pkg").symlink_to(other)
        name = "pkg"
    result = ToolRegistry([LookupDocsTool(root, None)]).execute("lookup_docs", {"name": name})
    assert "PRIVATE" not in result.content and "9.9.9" not in result.content, result.content
    if link != "node_modules/@types/pkg":
        assert result.is_error and "outside the workspace" in result.content


@pytest.mark.parametrize("how", ["dotdot", "link"])
@pytest.mark.parametrize("command", ["implement", "edit", "ask"])
def test_a_run_command_on_a_uri_outside_the_folder_is_refused_before_reading_it(
    how: str, command: str, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "notes.py"
    secret.parent.mkdir()
    secret.write_text("def private():\n    pass\n")
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    if how == "dotdot":
        uri = (root / "src").as_uri() + "/../../outside/notes.py"
    else:
        (root / "linked").symlink_to(secret.parent)
        uri = (root / "linked" / "notes.py").as_uri()
    position = {"line": 0, "character": 0}
    span = {"start": position, "end": {"line": 1, "character": 0}}
    args: object = {
        "implement": commands.ImplementArgs(uri=uri, position=position),
        "edit": commands.EditArgs(uri=uri, range=span, instruction="rename it"),
        "ask": commands.AskArgs(question="what is in it?", uri=uri, range=span),
    }[command]
    read: list[Path] = []

    def text_of(path: Path) -> str | None:
        read.append(path)
        return path.read_text() if path.is_file() else None

    with pytest.raises(CommandError):
        build_task(f"agentls.{command}", args, [root], text_of)
    assert read == [], f"the server read {read} before refusing"


def test_locate_does_not_place_a_dotdot_path_in_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert locate(root / ".." / "etc" / "passwd", [root]) is None
    assert locate(root / "a" / ".." / "b.py", [root]) == (root, "b.py")


@pytest.mark.parametrize("kind", ["created", "modified", "deleted"])
def test_acp_does_not_write_through_a_folder_that_became_a_link_out(kind: str, tmp_path: Path) -> None:
    """Between the run's proposal and the user's allow, `src` became a link to a folder outside the
    workspace: the ACP endpoint writes nothing there (the CLI's --apply and the LSP accept refused it
    before)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "app.py").write_text("x = 1\n")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "src").symlink_to(outside)
    base = "" if kind == "created" else "x = 1\n"
    new = "" if kind == "deleted" else "x = 2\n"
    change = FileChange("src/app.py", kind, None, base, new, None, "")
    if kind == "created":
        (outside / "app.py").unlink()
    acp = AgentlsAcpAgent({"AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    with pytest.raises(ValueError, match="refuses"):
        proposal = Proposal("prop-link", "run-link", "s", (change,), "", Usage(), 0.0, True, "ok")
        asyncio.run(acp._write(_Session("s1", root), proposal))
    assert sorted(p.name for p in outside.iterdir()) == ([] if kind == "created" else ["app.py"])
    if kind != "created":
        assert (outside / "app.py").read_text() == "x = 1\n"


@pytest.mark.parametrize("path", ["a" * 5000, "/".join(["d" * 200] * 25)])
def test_a_path_too_long_for_the_system_is_refused_with_a_message(path: str, tmp_path: Path) -> None:
    """A name over 255 bytes or a path of 4096 is refused by the path check with a message for the model,
    not passed on until a file call fails (OSError 36 reached the model, with a traceback in the log)."""
    from agent.overlay import Overlay
    from agent.tools.editor import EditorTool

    registry = ToolRegistry([EditorTool(Overlay(tmp_path))])
    for command in ({"command": "view", "path": path}, {"command": "create", "path": path, "file_text": "x"}):
        result = registry.execute("str_replace_based_edit_tool", command)
        assert result.is_error and "a file name takes at most 255 bytes" in result.content, result.content


@pytest.mark.parametrize("run_id", ["../outside/planted", "..\\outside\\planted", "../outside/plan"])
def test_resume_does_not_load_a_state_file_from_outside_the_runs_folder(run_id: str, tmp_path: Path) -> None:
    """agentls.resume / `agentls runs resume` take a run id: one with a path in it (a state file a cloned
    repository planted, say) is not a run id (the backslash form is a guard: on Linux it names no file)."""
    from agent.resume import StateNotFound, load_state

    runs = tmp_path / "cache" / "runs"
    runs.mkdir(parents=True)
    (tmp_path / "cache" / "outside").mkdir()
    (tmp_path / "cache" / "outside" / "planted.state.json").write_text("{}")
    with pytest.raises(StateNotFound, match="is not a run id"):
        load_state(runs, run_id)
