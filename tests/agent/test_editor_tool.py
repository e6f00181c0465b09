"""The text editor tool (`str_replace_based_edit_tool`) on the overlay, called through the dispatcher.

Calls go through `ToolRegistry.execute` as the agent loop makes them, so validation and error shaping are
tested too. The `ws` fixture checks at teardown that no file on disk changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.tools import ToolRegistry, ToolResult
from agent.tools.editor import EditorTool
from tests.agent.test_overlay import disk_snapshot

NAME = "str_replace_based_edit_tool"

SOURCE = """import os


def add(a, b):
    return a + b


def sub(a, b):
\treturn a - b


def mul(a, b):
    return a * b
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ws"
    (root / "pkg" / "deep" / "deeper").mkdir(parents=True)
    (root / "pkg" / "calc.py").write_text(SOURCE)
    (root / "pkg" / "deep" / "mod.py").write_text("x = 1\n")
    (root / "pkg" / "deep" / "deeper" / "hidden_by_depth.py").write_text("y = 2\n")
    (root / "dup.py").write_text("value = 1\nother = 2\nvalue = 1\n")
    (root / "no_newline.txt").write_text("first\nlast")
    (root / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.py").write_text("h = 1\n")
    (root / "node_modules" / "lib").mkdir(parents=True)
    (root / "node_modules" / "lib" / "index.js").write_text("//\n")
    (root / ".env").write_text("TOKEN=secret\n")
    (root / "image.bin").write_bytes(b"\x00\x01\x02")
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the user's files changed on disk"


@pytest.fixture
def overlay(ws: Path) -> Overlay:
    return Overlay(ws, {"unsaved.py": ("from_buffer = True\n", 5)})


@pytest.fixture
def call(overlay: Overlay) -> Any:
    registry = ToolRegistry([EditorTool(overlay)])

    def run(**input: Any) -> ToolResult:
        return registry.execute(NAME, input)

    return run


def test_definition() -> None:
    overlay = Overlay(Path("/nonexistent-root"))
    assert EditorTool(overlay).definition() == {"type": "text_editor_20250728", "name": NAME}
    assert EditorTool(overlay, max_characters=500).definition()["max_characters"] == 500


# -- view ----------------------------------------------------------------------------------------


def test_view_file_is_cat_n(call: Any, ws: Path) -> None:
    result = call(command="view", path="pkg/calc.py")
    assert not result.is_error
    lines = result.content.splitlines()
    assert lines[0] == "Here's the result of running `cat -n` on pkg/calc.py:"
    assert lines[1] == "     1\timport os"
    assert lines[4] == "     4\tdef add(a, b):"
    assert lines[9] == "     9\t\treturn a - b"
    assert len(lines) == 1 + 13
    # Absolute paths inside the workspace work too and are echoed as given.
    absolute = call(command="view", path=str(ws / "pkg" / "calc.py"))
    assert absolute.content.splitlines()[1:] == lines[1:]


def test_view_shows_unsaved_buffers_and_overlay_edits(call: Any, overlay: Overlay) -> None:
    assert "from_buffer = True" in call(command="view", path="unsaved.py").content
    overlay.write("pkg/deep/mod.py", "x = 2\n")
    assert "     1\tx = 2" in call(command="view", path="pkg/deep/mod.py").content


@pytest.mark.parametrize(
    ("view_range", "first", "last"),
    [([4, 5], 4, 5), ([12, -1], 12, 13), ([1, 1], 1, 1), ([13, 13], 13, 13)],
)
def test_view_range(call: Any, view_range: list[int], first: int, last: int) -> None:
    result = call(command="view", path="pkg/calc.py", view_range=view_range)
    numbers = [int(line.split("\t")[0]) for line in result.content.splitlines()[1:]]
    assert numbers == list(range(first, last + 1))


@pytest.mark.parametrize(
    ("view_range", "message"),
    [
        ([0, 3], "Its first element `0` should be within the range of lines of the file: [1, 13]"),
        ([14, -1], "Its first element `14` should be within"),
        ([2, 20], "Its second element `20` should be smaller than the number of lines in the file: `13`"),
        ([5, 3], "Its second element `3` should be larger or equal than its first `5`"),
        ([1], "It should be a list of two integers"),
    ],
)
def test_view_range_errors(call: Any, view_range: list[int], message: str) -> None:
    result = call(command="view", path="pkg/calc.py", view_range=view_range)
    assert result.is_error
    assert message in result.content


def test_view_directory_two_levels_without_hidden_or_node_modules(call: Any) -> None:
    result = call(command="view", path=".")
    assert not result.is_error
    lines = result.content.splitlines()
    assert lines[0] == "Here's the files and directories up to 2 levels deep in ., excluding hidden items:"
    assert set(lines[1:]) == {
        ".",
        "./crlf.txt",
        "./dup.py",
        "./image.bin",
        "./no_newline.txt",
        "./pkg/",
        "./pkg/calc.py",
        "./pkg/deep/",
        "./unsaved.py",
    }
    with_range = call(command="view", path="pkg", view_range=[1, 2])
    assert with_range.is_error and "not allowed when `path` points to a directory" in with_range.content


def test_max_characters_clips_views(overlay: Overlay) -> None:
    registry = ToolRegistry([EditorTool(overlay, max_characters=30)])
    result = registry.execute(NAME, {"command": "view", "path": "pkg/calc.py"})
    assert "<response clipped>" in result.content
    assert "mul" not in result.content
    assert "     1\timport os" in result.content


def test_view_refuses_binary_and_missing(call: Any) -> None:
    binary = call(command="view", path="image.bin")
    assert binary.is_error and "binary" in binary.content
    missing = call(command="view", path="nope.py")
    assert (
        missing.is_error
        and missing.content == "The path nope.py does not exist. Please provide a valid path."
    )


# -- create --------------------------------------------------------------------------------------


def test_create(call: Any, overlay: Overlay) -> None:
    result = call(command="create", path="new/pkg/module.py", file_text="a = 1\n")
    assert result == ToolResult("File created successfully at: new/pkg/module.py")
    assert overlay.read("new/pkg/module.py") == "a = 1\n"
    (change,) = overlay.changes()
    assert change.kind == "created"


def test_create_refuses_to_overwrite(call: Any, overlay: Overlay) -> None:
    result = call(command="create", path="pkg/calc.py", file_text="replaced\n")
    assert result.is_error
    assert result.content == (
        "File already exists at: pkg/calc.py. Cannot overwrite files using command `create`."
    )
    assert overlay.read("pkg/calc.py") == SOURCE
    missing = call(command="create", path="x.py")
    assert missing.is_error and "Parameter `file_text` is required for command: create" in missing.content


# -- str_replace ---------------------------------------------------------------------------------


def test_str_replace_exactly_once(call: Any, overlay: Overlay) -> None:
    result = call(
        command="str_replace", path="pkg/calc.py", old_str="    return a * b", new_str="    return a * b * 1"
    )
    assert not result.is_error
    assert result.content.startswith("The file pkg/calc.py has been edited. ")
    assert "    13\t    return a * b * 1" in result.content
    assert "Review the changes" in result.content
    assert overlay.read("pkg/calc.py") == SOURCE.replace("return a * b", "return a * b * 1")
    # Tabs stay tabs.
    assert "\treturn a - b" in overlay.read("pkg/calc.py")


def test_str_replace_not_found_shows_similar_lines(call: Any, overlay: Overlay) -> None:
    result = call(
        command="str_replace", path="pkg/calc.py", old_str="def add(a,b):\n    return a+b", new_str=""
    )
    assert result.is_error
    assert result.content.startswith(
        "No replacement was performed, old_str `def add(a,b):\n    return a+b` did not appear verbatim in "
        "pkg/calc.py."
    )
    assert "start at line 4" in result.content
    assert "     4\tdef add(a, b):\n     5\t    return a + b" in result.content
    assert overlay.changes() == []


def test_str_replace_not_found_without_anything_similar(call: Any) -> None:
    result = call(command="str_replace", path="pkg/calc.py", old_str="zzzz qqqq wwww", new_str="")
    assert result.is_error
    assert "did not appear verbatim" in result.content
    assert "most similar" not in result.content


def test_str_replace_multiple_matches_lists_lines(call: Any, overlay: Overlay) -> None:
    result = call(command="str_replace", path="dup.py", old_str="value = 1", new_str="value = 2")
    assert result.is_error
    assert result.content == (
        "No replacement was performed. Multiple occurrences of old_str `value = 1` in lines [1, 3]. "
        "Please ensure it is unique"
    )
    assert overlay.changes() == []
    unique = call(command="str_replace", path="dup.py", old_str="other = 2\nvalue = 1", new_str="other = 3")
    assert not unique.is_error
    assert overlay.read("dup.py") == "value = 1\nother = 3\n"


def test_str_replace_without_new_str_deletes(call: Any, overlay: Overlay) -> None:
    result = call(command="str_replace", path="pkg/calc.py", old_str="import os\n")
    assert not result.is_error
    assert overlay.read("pkg/calc.py") == SOURCE.replace("import os\n", "")


def test_str_replace_empty_old_str(call: Any) -> None:
    result = call(command="str_replace", path="pkg/calc.py", old_str="", new_str="x")
    assert result.is_error and "`old_str` is empty" in result.content


# -- insert --------------------------------------------------------------------------------------


def test_insert_at_beginning_middle_and_end(call: Any, overlay: Overlay) -> None:
    assert not call(command="insert", path="pkg/deep/mod.py", insert_line=0, insert_text="# header").is_error
    assert overlay.read("pkg/deep/mod.py") == "# header\nx = 1\n"
    assert not call(command="insert", path="pkg/deep/mod.py", insert_line=2, insert_text="y = 2\n").is_error
    assert overlay.read("pkg/deep/mod.py") == "# header\nx = 1\ny = 2\n"
    result = call(command="insert", path="pkg/deep/mod.py", insert_line=1, new_str="# between\n")
    assert not result.is_error
    assert overlay.read("pkg/deep/mod.py") == "# header\n# between\nx = 1\ny = 2\n"
    assert "     2\t# between" in result.content


def test_insert_after_a_last_line_without_newline(call: Any, overlay: Overlay) -> None:
    assert not call(command="insert", path="no_newline.txt", insert_line=2, insert_text="more").is_error
    assert overlay.read("no_newline.txt") == "first\nlast\nmore\n"


def test_insert_keeps_crlf(call: Any, overlay: Overlay) -> None:
    assert not call(command="insert", path="crlf.txt", insert_line=1, insert_text="mid").is_error
    assert overlay.read("crlf.txt") == "one\r\nmid\r\ntwo\r\n"


def test_insert_out_of_range(call: Any) -> None:
    result = call(command="insert", path="pkg/deep/mod.py", insert_line=5, insert_text="x")
    assert result.is_error
    assert result.content == (
        "Invalid `insert_line` parameter: 5. It should be within the range of lines of the file: [0, 1]"
    )
    assert call(command="insert", path="pkg/deep/mod.py", insert_line=-1, insert_text="x").is_error
    missing = call(command="insert", path="pkg/deep/mod.py", insert_line=0)
    assert missing.is_error and "insert_text" in missing.content


# -- refusals and bad calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../outside.py", "outside the workspace"),
        ("/etc/passwd", "outside the workspace"),
        (".env", "secret file"),
        ("escape/secret.txt", "symbolic link"),
    ],
)
def test_paths_outside_or_secret_are_refused(
    ws: Path, tmp_path: Path, call: Any, path: str, fragment: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (ws / "escape").symlink_to(outside)
    try:
        for command in (
            {"command": "view", "path": path},
            {"command": "create", "path": path, "file_text": "x"},
            {"command": "str_replace", "path": path, "old_str": "x", "new_str": "y"},
        ):
            result = call(**command)
            assert result.is_error, command
            assert fragment in result.content
        assert (outside / "secret.txt").read_text() == "outside\n"
    finally:
        (ws / "escape").unlink()


def test_undo_edit_and_unknown_commands(call: Any) -> None:
    undo = call(command="undo_edit", path="pkg/calc.py")
    assert undo.is_error and "not available in this version" in undo.content
    unknown = call(command="delete", path="pkg/calc.py")
    assert unknown.is_error
    assert unknown.content == (
        "Unrecognized command delete. The allowed commands for the str_replace_based_edit_tool tool are: "
        "view, create, str_replace, insert"
    )


def test_bad_input_comes_back_as_an_error_result(overlay: Overlay) -> None:
    registry = ToolRegistry([EditorTool(overlay)])
    missing = registry.execute(NAME, {"command": "view"})
    assert missing.is_error
    assert missing.content == (
        "ToolInputError('Invalid input for tool str_replace_based_edit_tool: the required field `path` is "
        "missing')"
    )
    wrong_type = registry.execute(NAME, {"command": "view", "path": "pkg/calc.py", "view_range": "1-3"})
    assert wrong_type.is_error and "`view_range`: expected array, got string" in wrong_type.content
    wrong_item = registry.execute(NAME, {"command": "view", "path": "pkg/calc.py", "view_range": [1, True]})
    assert wrong_item.is_error and "`view_range`[1]: expected integer, got boolean" in wrong_item.content
    not_object = registry.execute(NAME, ["view"])
    assert not_object.is_error and "expected an object, got array" in not_object.content
    unknown = registry.execute("no_such_tool", {})
    assert unknown == ToolResult(
        f"Error: Tool 'no_such_tool' not found. Available tools: {NAME}", is_error=True
    )
