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


# -- line endings and byte order marks ------------------------------------------------------------
# The model sees "\n" and writes "\n"; the file on disk keeps what it had (agent.line_endings).

CRLF_SOURCE = b"def add(a, b):\r\n    return a + b\r\n\r\n\r\ndef sub(a, b):\r\n    return a - b\r\n"


def _editor_on(tmp_path: Path, files: dict[str, bytes]) -> tuple[Overlay, Any]:
    """An overlay of a fresh workspace holding `files` (bytes as on disk), and a caller of its tool."""
    root = tmp_path / "endings"
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    overlay = Overlay(root)
    registry = ToolRegistry([EditorTool(overlay)])
    return overlay, lambda **input: registry.execute(NAME, input)


def _sandbox_bytes(overlay: Overlay, tmp_path: Path, name: str) -> bytes:
    """What commands in the sandbox read: the overlay materialized."""
    dest = tmp_path / "sandbox-copy"
    overlay.materialize(dest)
    return (dest / name).read_bytes()


def _only_crlf(data: bytes) -> bool:
    return (
        b"\r\n" in data
        and b"\n" not in data.replace(b"\r\n", b"")
        and b"\r" not in data.replace(b"\r\n", b"")
    )


def test_view_of_a_crlf_file_with_a_bom_shows_neither(tmp_path: Path) -> None:
    _, call = _editor_on(tmp_path, {"calc.py": b"\xef\xbb\xbf" + CRLF_SOURCE})
    shown = call(command="view", path="calc.py").content
    assert "\r" not in shown and "\ufeff" not in shown
    assert shown.splitlines()[1:3] == ["     1\tdef add(a, b):", "     2\t    return a + b"]
    assert call(command="view", path="calc.py", view_range=[5, -1]).content.splitlines()[1:] == [
        "     5\tdef sub(a, b):",
        "     6\t    return a - b",
    ]


def test_str_replace_in_a_crlf_file_with_lf_strings_keeps_crlf(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"calc.py": CRLF_SOURCE})
    result = call(
        command="str_replace",
        path="calc.py",
        old_str="def sub(a, b):\n    return a - b\n",
        new_str='def sub(a, b):\n    """a minus b"""\n    return a - b\n',
    )
    assert not result.is_error, result.content
    assert "\r" not in result.content and '     6\t    """a minus b"""' in result.content
    expected = CRLF_SOURCE.replace(b"    return a - b", b'    """a minus b"""\r\n    return a - b')
    assert overlay.read("calc.py").encode() == expected
    data = _sandbox_bytes(overlay, tmp_path, "calc.py")
    assert data == expected and _only_crlf(data)
    (change,) = overlay.changes()
    changed = [line for line in change.diff.splitlines(keepends=True)[4:] if line[0] in "+-"]
    assert changed == ['+    """a minus b"""\r\n']
    # A one-line old_str and a new_str with a line break; then an old_str the model copied with "\r\n".
    assert not call(
        command="str_replace",
        path="calc.py",
        old_str="    return a + b",
        new_str="    s = a + b\n    return s",
    ).is_error
    assert not call(
        command="str_replace",
        path="calc.py",
        old_str="def add(a, b):\r\n",
        new_str="def add(a: int, b: int):\n",
    ).is_error
    assert _only_crlf(overlay.read("calc.py").encode())
    assert overlay.read("calc.py").startswith(
        "def add(a: int, b: int):\r\n    s = a + b\r\n    return s\r\n\r\n"
    )


def test_str_replace_not_found_in_a_crlf_file_shows_the_lines_without_cr(tmp_path: Path) -> None:
    _, call = _editor_on(tmp_path, {"calc.py": CRLF_SOURCE})
    result = call(
        command="str_replace", path="calc.py", old_str="def sub(a, b):\n    return a + b\n", new_str="x"
    )
    assert result.is_error and "\r" not in result.content
    assert "start at line 5" in result.content and "     6\t    return a - b" in result.content


def test_insert_into_a_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"calc.py": CRLF_SOURCE})
    result = call(
        command="insert", path="calc.py", insert_line=2, insert_text="\n\ndef mul(a, b):\n    return a * b"
    )
    assert not result.is_error and "\r" not in result.content
    assert "     5\tdef mul(a, b):" in result.content
    assert overlay.read("calc.py").encode() == CRLF_SOURCE.replace(
        b"a + b\r\n", b"a + b\r\n\r\n\r\ndef mul(a, b):\r\n    return a * b\r\n"
    )
    assert not call(command="insert", path="calc.py", insert_line=10, insert_text="# end\n").is_error
    data = _sandbox_bytes(overlay, tmp_path, "calc.py")
    assert data.endswith(b"    return a - b\r\n# end\r\n") and _only_crlf(data)


def test_edits_keep_a_byte_order_mark(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"bom.py": b"\xef\xbb\xbfx = 1\ny = 2\n"})
    assert not call(command="str_replace", path="bom.py", old_str="x = 1\n", new_str="x = 0\n").is_error
    assert not call(command="insert", path="bom.py", insert_line=0, insert_text="# head").is_error
    assert overlay.read("bom.py") == "\ufeff# head\nx = 0\ny = 2\n"


def test_mixed_endings_stay_where_untouched_and_new_lines_take_the_dominant_one(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"mixed.txt": b"a\r\nb\r\nc\nd\r\n"})
    assert not call(command="str_replace", path="mixed.txt", old_str="b\nc\n", new_str="b\nc\nnew\n").is_error
    assert overlay.read("mixed.txt") == "a\r\nb\r\nc\nnew\r\nd\r\n"


def test_old_mac_line_endings(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"mac.txt": b"one\rtwo\rthree\r"})
    assert call(command="view", path="mac.txt").content.splitlines()[1:] == [
        "     1\tone",
        "     2\ttwo",
        "     3\tthree",
    ]
    assert not call(command="str_replace", path="mac.txt", old_str="two\n", new_str="2\n2.5\n").is_error
    assert not call(command="insert", path="mac.txt", insert_line=0, insert_text="zero").is_error
    assert overlay.read("mac.txt") == "zero\rone\r2\r2.5\rthree\r"


def test_a_crlf_file_deleted_then_created_again_keeps_crlf(tmp_path: Path) -> None:
    overlay, call = _editor_on(tmp_path, {"calc.py": CRLF_SOURCE})
    overlay.delete("calc.py")  # as `rm calc.py` in bash, folded back
    text = CRLF_SOURCE.decode().replace("\r\n", "\n").replace("a - b", "b - a")
    assert not call(command="create", path="calc.py", file_text=text).is_error
    (change,) = overlay.changes()
    assert change.kind == "modified" and change.new_text.encode() == CRLF_SOURCE.replace(b"a - b", b"b - a")
    # A new file is written as the model gave it.
    assert not call(command="create", path="new.txt", file_text="x\ny\n").is_error
    assert overlay.read("new.txt") == "x\ny\n"
