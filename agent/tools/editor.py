"""Anthropic's text editor tool (`text_editor_20250728`, name `str_replace_based_edit_tool`) on the overlay.

Claude is trained on this tool's schema and messages, so the commands and the wording of results follow
Anthropic's documentation and reference implementation:

- `view`: a file as `cat -n` shows it (line number, tab, line), optionally `view_range: [start, end]`
  (1-based, `end` -1 for the end of the file); a directory as the files and folders up to 2 levels deep,
  hidden items and `indexing.policy.SKIPPED_DIRS` (`node_modules`, `venv`, caches) left out.
  `max_characters` (a tool setting) cuts long files.
- `create`: a new file with `file_text`, written as given. Like the reference implementation, and as the
  model is told, it refuses to overwrite an existing file (`str_replace` or `insert` change existing
  files); a file that existed when the run began and was deleted since (`rm` in bash) is created again in
  that file's form (line endings, byte order mark; see below), so the proposal shows only what changed.
- `str_replace`: `old_str` must occur exactly once. When it does not occur, the error shows the most
  similar lines of the file (as Aider does), so the next try can copy them verbatim; when it occurs more
  than once, the error lists the line numbers. `new_str` may be omitted (deletes `old_str`).
- `insert`: the text after line `insert_line` (0 inserts at the beginning). The model sends the text as
  `insert_text` with this tool version, while the documentation names it `new_str`; both are accepted.
- There is no `undo_edit` in this version.

With `view_only=True` (tasks and roles that may not edit) every command but `view` is refused and the
tool counts as read-only. For the `anthropic` provider the tool is sent as Anthropic's built-in type; for
other providers as a plain function whose description and schema say the same as Anthropic's
documentation, so the calls and results are identical.

Paths are relative to the workspace root or absolute inside it; everything else is refused (see
`agent.paths`). Edits land in the overlay, never on disk. Tabs are kept as they are. A workspace file
agentls cannot read (mode 000 of another owner, an I/O error) is refused by every command with the reason
(`agent.overlay`); a folder it cannot list is an error to view, and marked "(agentls cannot list it)" in the
view of a folder above it.

Line endings: the model sees every file with ``\n`` line breaks and without a byte order mark, and its
`old_str`, `new_str` and `insert_text` are read the same way (a ``\r\n`` or lone ``\r`` in them is a
``\n``), so an edit of a ``\r\n`` file matches as in a ``\n`` file. What is written keeps the file's form
(`agent.line_endings`): the byte order mark stays, lines the edit does not touch keep their bytes, and
every line the edit adds or changes ends as the file's lines mostly do (``\r\n`` in a Windows file, the
dominant ending in a mixed one). Line numbers count ``\r\n``, ``\r`` and ``\n`` as line breaks, as LSP
does. A view of a file with a byte order mark (from its first line) says so in a note after the lines,
with the bash command that removes it (what bash writes is folded back as it is, so the proposal then
drops the mark).
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from typing import Any

from agent.line_endings import BOM, for_model, from_model
from agent.overlay import Overlay, OverlayError
from agent.paths import PathRefused, is_secret_path
from agent.tools import ANTHROPIC, ToolError, ToolResult, function_definition
from indexing.policy import SKIPPED_DIRS

__all__ = ["EditorTool"]

_COMMANDS = ("view", "create", "str_replace", "insert")
SNIPPET_LINES = 4
# A view is cut to this many characters when the tool has no max_characters, to protect the context.
_DEFAULT_VIEW_LIMIT = 100_000
_DIRECTORY_VIEW_LIMIT = 1_000
# Files longer than this get no "most similar lines" hint (the search is quadratic in the worst case).
_HINT_MAX_LINES = 20_000


def _lines(text: str) -> list[str]:
    """Lines of a text as `for_model` gives it, split on "\\n", ends kept (str.splitlines also splits on
    form feeds and the like)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _numbered(text: str, start: int) -> str:
    """`cat -n` style: right-aligned numbers, a tab, the line."""
    return "\n".join(
        f"{number:6}\t{line.removesuffix(chr(10))}" for number, line in enumerate(_lines(text), start=start)
    )


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


_BOM_NOTE = (
    "<NOTE>{path} starts with a UTF-8 byte order mark, which this view leaves out and this tool's edits "
    "keep. To remove it, run `sed -i '1s/^\\xEF\\xBB\\xBF//' {quoted}` through the bash tool.</NOTE>\n"
)
_CLIPPED_NOTE = (
    "<response clipped><NOTE>To save on context only part of this file has been shown to you. Use "
    "`view_range` to see the rest, or search the file with `grep -n` through the bash tool to find the "
    "line numbers you are looking for.</NOTE>"
)


def _similar_lines(content: str, old_str: str) -> tuple[int, str] | None:
    """The run of lines of `content` most like `old_str`: (first line number, text), when close enough."""
    old_lines = old_str.strip("\n").split("\n")
    lines = content.split("\n")
    if not old_str.strip() or len(lines) > _HINT_MAX_LINES:
        return None
    size = min(len(old_lines), len(lines))
    target = "\n".join(old_lines)
    best_ratio, best_start = 0.0, -1
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for start in range(0, len(lines) - size + 1):
        matcher.set_seq1("\n".join(lines[start : start + size]))
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_start = ratio, start
    if best_start < 0 or best_ratio < 0.6:
        return None
    return best_start + 1, "\n".join(lines[best_start : best_start + size])


def _line_of(content: str, index: int) -> int:
    return content.count("\n", 0, index) + 1


_VIEW_ONLY = (
    "This task is a question: files may not be changed. Use `view` to read, and answer in your reply."
)


class EditorTool:
    """`str_replace_based_edit_tool` working on an `Overlay`."""

    name = "str_replace_based_edit_tool"
    type = "text_editor_20250728"
    description = (
        "View, create and edit files in the workspace. Commands: `view` shows a file with line numbers "
        "(optionally `view_range: [start, end]`, end -1 for the end of the file) or a directory two levels "
        "deep; `create` writes a new file with `file_text` (it does not overwrite existing files); "
        "`str_replace` replaces `old_str`, which must occur exactly once in the file, with `new_str`; "
        "`insert` adds `insert_text` after line `insert_line` (0 for the beginning). Paths are relative to "
        "the workspace root."
    )
    # Property descriptions are for providers that take plain function tools; validation ignores them.
    # `command` has no enum, so an unknown command gets the tool's own message listing the commands.
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "One of `view`, `create`, `str_replace`, `insert`.",
            },
            "path": {
                "type": "string",
                "description": "The file or directory, relative to the workspace root.",
            },
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "For `view` of a file: [start, end] lines, 1-based; end -1 for the end.",
            },
            "file_text": {"type": "string", "description": "For `create`: the content of the new file."},
            "old_str": {"type": "string", "description": "For `str_replace`: the exact text to replace."},
            "new_str": {"type": "string", "description": "For `str_replace`: the replacement text."},
            "insert_line": {"type": "integer", "description": "For `insert`: the line to insert after."},
            "insert_text": {"type": "string", "description": "For `insert`: the text to insert."},
        },
        "required": ["command", "path"],
    }

    def __init__(
        self, overlay: Overlay, *, max_characters: int | None = None, view_only: bool = False
    ) -> None:
        """`max_characters` cuts file views (and is sent to the API, which tells the model); `view_only`
        refuses every command but `view`."""
        self.overlay = overlay
        self.max_characters = max_characters
        self.view_only = view_only

    @property
    def read_only(self) -> bool:
        """True when the tool may only view."""
        return self.view_only

    def definition(self, provider: str = ANTHROPIC) -> dict[str, Any]:
        """The `tools` entry: for Anthropic the built-in type, name and the optional limit; for others a
        plain function definition."""
        if provider != ANTHROPIC:
            return function_definition(self.name, self.description, self.input_schema)
        definition: dict[str, Any] = {"type": self.type, "name": self.name}
        if self.max_characters is not None:
            definition["max_characters"] = self.max_characters
        return definition

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`view mathx/stats.py [1, 20]`, `str_replace mathx/stats.py`."""
        command = input.get("command", "?")
        where = input.get("path", "")
        if command == "view" and input.get("view_range"):
            where = f"{where} {input['view_range']}"
        return f"{command} {where}".strip()

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Run one command."""
        command = input["command"]
        path = input["path"]
        if self.view_only and command != "view":
            raise ToolError(_VIEW_ONLY)
        try:
            if command == "view":
                return ToolResult(self._view(path, input.get("view_range")))
            if command == "create":
                if "file_text" not in input:
                    raise ToolError("Parameter `file_text` is required for command: create")
                self._create(path, input["file_text"])
                return ToolResult(f"File created successfully at: {path}")
            if command == "str_replace":
                if "old_str" not in input:
                    raise ToolError("Parameter `old_str` is required for command: str_replace")
                return ToolResult(self._str_replace(path, input["old_str"], input.get("new_str") or ""))
            if command == "insert":
                if "insert_line" not in input:
                    raise ToolError("Parameter `insert_line` is required for command: insert")
                text = input.get("insert_text", input.get("new_str"))
                if text is None:
                    raise ToolError("Parameter `insert_text` is required for command: insert")
                return ToolResult(self._insert(path, input["insert_line"], text))
        except (PathRefused, OverlayError) as exc:
            raise ToolError(str(exc)) from None
        if command == "undo_edit":
            raise ToolError(
                "The `undo_edit` command is not available in this version of the tool. To revert a change, "
                "use `str_replace` with the old text."
            )
        raise ToolError(
            f"Unrecognized command {command}. The allowed commands for the {self.name} tool are: "
            + ", ".join(_COMMANDS)
        )

    # -- view --------------------------------------------------------------------------------------

    def _view(self, path: str, view_range: list[int] | None) -> str:
        rel = self.overlay.resolve(path)
        if self.overlay.is_dir(rel):
            if view_range:
                raise ToolError(
                    "The `view_range` parameter is not allowed when `path` points to a directory."
                )
            return self._view_directory(path, rel)
        original = self.overlay.read(path)
        content = for_model(original)
        start = 1
        if view_range is not None:
            content, start = self._slice(content, view_range)
        limit = self.max_characters if self.max_characters is not None else _DEFAULT_VIEW_LIMIT
        content, clipped = _clip(content, limit)
        out = f"Here's the result of running `cat -n` on {path}:\n{_numbered(content, start)}\n"
        if start == 1 and original.startswith(BOM):
            out += _BOM_NOTE.format(path=path, quoted=shlex.quote(path))
        return out + _CLIPPED_NOTE if clipped else out

    @staticmethod
    def _slice(content: str, view_range: list[int]) -> tuple[str, int]:
        if len(view_range) != 2:
            raise ToolError("Invalid `view_range`. It should be a list of two integers.")
        lines = _lines(content)
        count = len(lines)
        first, last = view_range
        if first < 1 or first > max(count, 1):
            raise ToolError(
                f"Invalid `view_range`: {view_range}. Its first element `{first}` should be within the range "
                f"of lines of the file: {[1, count]}"
            )
        if last != -1 and last > count:
            raise ToolError(
                f"Invalid `view_range`: {view_range}. Its second element `{last}` should be smaller than the "
                f"number of lines in the file: `{count}`"
            )
        if last != -1 and last < first:
            raise ToolError(
                f"Invalid `view_range`: {view_range}. Its second element `{last}` should be larger or equal "
                f"than its first `{first}`"
            )
        selected = lines[first - 1 :] if last == -1 else lines[first - 1 : last]
        return "".join(selected), first

    def _view_directory(self, path: str, rel: str) -> str:
        shown = path.rstrip("/") or "/"
        entries: list[str] = [shown]
        truncated = False

        def visit(dir_rel: str, dir_shown: str, depth: int) -> None:
            nonlocal truncated
            for name in self.overlay.listdir(dir_rel):
                is_dir = name.endswith("/")
                name = name.rstrip("/")
                if name.startswith(".") or name in SKIPPED_DIRS:
                    continue
                child_rel = name if dir_rel == "." else f"{dir_rel}/{name}"
                if is_secret_path(child_rel):
                    continue
                if len(entries) > _DIRECTORY_VIEW_LIMIT:
                    truncated = True
                    return
                child_shown = f"{dir_shown}/{name}"
                entries.append(child_shown + ("/" if is_dir else ""))
                if is_dir and depth < 2:
                    try:
                        visit(child_rel, child_shown, depth + 1)
                    except OverlayError:  # a folder agentls cannot read: the rest is still shown
                        entries[entries.index(child_shown + "/")] += " (agentls cannot list it)"

        visit(rel, shown if shown != "/" else "", 1)
        listing = "\n".join(entries)
        note = (
            f"\n[... listing cut at {_DIRECTORY_VIEW_LIMIT} entries; view a subdirectory to see more ...]"
            if truncated
            else ""
        )
        return (
            f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n"
            f"{listing}{note}\n"
        )

    # -- edits -------------------------------------------------------------------------------------

    def _snippet(self, text: str, first_line: int, last_line: int, label: str) -> str:
        lines = _lines(text)
        start = max(1, first_line - SNIPPET_LINES)
        end = min(len(lines), last_line + SNIPPET_LINES)
        snippet = "".join(lines[start - 1 : end])
        return f"Here's the result of running `cat -n` on {label}:\n{_numbered(snippet, start)}\n"

    def _create(self, path: str, file_text: str) -> None:
        base = self.overlay.base_text(path)
        if base is not None and not self.overlay.exists(path):
            file_text = from_model(base, file_text)  # the file the run began with, deleted and made again
        self.overlay.create(path, file_text)

    def _str_replace(self, path: str, old_str: str, new_str: str) -> str:
        original = self.overlay.read(path)
        content = for_model(original)
        old_str, new_str = for_model(old_str), for_model(new_str)
        if old_str == "":
            raise ToolError(
                "No replacement was performed: `old_str` is empty. Give the exact text to replace, or use "
                "`insert` to add text at a line."
            )
        if old_str == new_str:
            raise ToolError(
                "No replacement was performed: `old_str` and `new_str` are the same, so this edit would "
                "change nothing. Put the new text in `new_str`."
            )
        starts: list[int] = []
        index = content.find(old_str)
        while index != -1:
            starts.append(index)
            index = content.find(old_str, index + 1)
        if not starts:
            message = f"No replacement was performed, old_str `{old_str}` did not appear verbatim in {path}."
            similar = _similar_lines(content, old_str)
            if similar is not None:
                line, text = similar
                message += (
                    f"\nThe most similar lines of the file start at line {line}; old_str must match them "
                    f"exactly, including whitespace and indentation:\n{_numbered(text, line)}"
                )
            raise ToolError(message)
        if len(starts) > 1:
            lines = [_line_of(content, start) for start in starts]
            raise ToolError(
                f"No replacement was performed. Multiple occurrences of old_str `{old_str}` in lines "
                f"{lines}. Please ensure it is unique"
            )
        start = starts[0]
        new_content = content[:start] + new_str + content[start + len(old_str) :]
        self.overlay.write(path, from_model(original, new_content))
        first = _line_of(new_content, start)
        last = first + new_str.count("\n")
        return (
            f"The file {path} has been edited. "
            + self._snippet(new_content, first, last, f"a snippet of {path}")
            + "Review the changes and make sure they are as expected. Edit the file again if necessary."
        )

    def _insert(self, path: str, insert_line: int, text: str) -> str:
        original = self.overlay.read(path)
        lines = _lines(for_model(original))
        count = len(lines)
        if insert_line < 0 or insert_line > count:
            raise ToolError(
                f"Invalid `insert_line` parameter: {insert_line}. It should be within the range of lines of "
                f"the file: {[0, count]}"
            )
        text = for_model(text)
        if text and not text.endswith("\n"):
            text += "\n"
        if insert_line == count and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new_content = "".join(lines[:insert_line]) + text + "".join(lines[insert_line:])
        self.overlay.write(path, from_model(original, new_content))
        inserted = max(1, text.count("\n"))
        return (
            f"The file {path} has been edited. "
            + self._snippet(
                new_content, insert_line + 1, insert_line + inserted, "a snippet of the edited file"
            )
            + "Review the changes and make sure they are as expected (correct indentation, no duplicate "
            "lines, etc). Edit the file again if necessary."
        )
