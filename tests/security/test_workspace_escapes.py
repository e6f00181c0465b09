"""Entry points that take a path or a name and read host files, driven as a hostile model or repository
would: nothing outside the workspace root is read or shown.

- `lookup_docs` for an npm package whose folder is a link out of the workspace (a repository can commit
  ``node_modules -> /`` or ``node_modules/pkg -> ~/other-project``): refused, nothing of the outside
  folder's package.json, declarations or README shown;
- an LSP run command (agentls.implement, agentls.edit, agentls.ask) whose URI leaves the folder with
  ``..`` (``file:///ws/../../etc/passwd``) or through a link in the folder: refused before the file's
  text is read (the server read the whole regular file into memory, then the task refused it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.tools import ToolRegistry
from agent.tools.docs import LookupDocsTool
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
