"""The `todo` tool: the run's tracked plan, a short list of items the model adds, updates and completes.

The list (`TodoList`) belongs to the run, not to the conversation: the loop (`agent.loop.Agent`) owns
it, emits every change as the `AgentEvent` kind "todo" with data ``{"items": [{"id", "text", "status"}]}``
(the CLI prints it, the server forwards it as ``agentls/runEvent``), records it in the transcript, saves
it with the run state (so `agentls runs resume` keeps it) and puts it into the condensed context (so a
long run that condenses its conversation still knows its plan).

Commands: ``add`` (``items``: one or more texts; returns their ids), ``update`` (``id`` with a new
``text`` and/or ``status``), ``complete`` (``id``, or ``ids``), ``list``. Statuses are ``pending``,
``in_progress`` and ``done``. Every call answers with the whole list, so the newest result shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.tools import CustomTool, ToolError, one_line

__all__ = ["STATUSES", "TodoItem", "TodoList", "TodoTool"]

TodoStatus = Literal["pending", "in_progress", "done"]
STATUSES: tuple[TodoStatus, ...] = ("pending", "in_progress", "done")
_MARKS = {"pending": "[ ]", "in_progress": "[>]", "done": "[x]"}
_MAX_ITEMS = 50
_MAX_TEXT = 300


@dataclass(frozen=True)
class TodoItem:
    """One item of the plan."""

    id: str
    text: str
    status: TodoStatus = "pending"

    def as_dict(self) -> dict[str, str]:
        """The item as the "todo" event carries it."""
        return {"id": self.id, "text": self.text, "status": self.status}

    def line(self) -> str:
        """``[x] 2 Write the tests``."""
        return f"{_MARKS[self.status]} {self.id} {self.text}"


class TodoList:
    """The run's plan; `on_change` (set by the loop) is called with the items after every change."""

    def __init__(self, items: Iterable[TodoItem] = ()) -> None:
        self._items: list[TodoItem] = list(items)
        self._next = 1 + max((int(i.id) for i in self._items if i.id.isdigit()), default=0)
        self.on_change: Callable[[list[TodoItem]], None] | None = None

    @property
    def items(self) -> list[TodoItem]:
        """The items in the order they were added."""
        return list(self._items)

    def snapshot(self) -> list[dict[str, str]]:
        """The items as plain data (event, transcript, run state)."""
        return [item.as_dict() for item in self._items]

    def restore(self, data: Iterable[Mapping[str, Any]]) -> None:
        """Replace the items by saved ones (a resumed run); unreadable entries are skipped."""
        items = []
        for entry in data:
            status = entry.get("status")
            if isinstance(entry, Mapping) and entry.get("id") and status in STATUSES:
                items.append(TodoItem(str(entry["id"]), str(entry.get("text", "")), status))
        self._items = items
        self._next = 1 + max((int(i.id) for i in items if i.id.isdigit()), default=0)
        self._changed()

    def add(self, texts: Iterable[str]) -> list[TodoItem]:
        """Append new pending items; returns them."""
        added: list[TodoItem] = []
        for text in texts:
            clean = one_line(text, _MAX_TEXT)
            if not clean:
                continue
            if len(self._items) >= _MAX_ITEMS:
                raise ToolError(
                    f"the plan has {_MAX_ITEMS} items, the most it may have; complete or merge some"
                )
            item = TodoItem(str(self._next), clean)
            self._next += 1
            self._items.append(item)
            added.append(item)
        if not added:
            raise ToolError("`add` needs `items`: a list of one or more item texts")
        self._changed()
        return added

    def update(self, id: str, *, text: str | None = None, status: str | None = None) -> TodoItem:
        """Change an item's text and/or status."""
        if status is not None and status not in STATUSES:
            raise ToolError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        index = self._index(id)
        old = self._items[index]
        new = TodoItem(
            old.id,
            one_line(text, _MAX_TEXT) if text else old.text,
            status if status is not None else old.status,
        )
        self._items[index] = new
        if new != old:
            self._changed()
        return new

    def note(self) -> str:
        """The plan as a few lines for the condensed context ("" when there is none)."""
        if not self._items:
            return ""
        return "Your todo list (the `todo` tool) as it stands:\n" + self.render()

    def render(self) -> str:
        """Every item on its own line, with a count of the done ones."""
        if not self._items:
            return "The todo list is empty."
        done = sum(1 for item in self._items if item.status == "done")
        lines = [f"Todo list ({done} of {len(self._items)} done):"]
        lines.extend(item.line() for item in self._items)
        return "\n".join(lines)

    def _index(self, id: str) -> int:
        for index, item in enumerate(self._items):
            if item.id == str(id):
                return index
        known = ", ".join(item.id for item in self._items) or "none"
        raise ToolError(f"there is no todo item {id!r}; the ids are: {known}")

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.items)


class TodoTool(CustomTool):
    """Adds, updates, completes and lists the items of the run's `TodoList`."""

    name = "todo"
    description = (
        "Track your plan as a todo list the user sees live. `add` items (a few words each) when you plan; "
        "mark the one you work on `in_progress` with `update`; `complete` it when it is done. Every call "
        "returns the whole list. Keep it short (3-10 items) and current."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": ["add", "update", "complete", "list"]},
            "items": {
                "type": "array",
                "items": {"type": "string"},
                "description": "add: the new items' texts",
            },
            "id": {"type": "string", "description": "update, complete: the item's id"},
            "ids": {"type": "array", "items": {"type": "string"}, "description": "complete: several ids"},
            "text": {"type": "string", "description": "update: the item's new text"},
            "status": {"type": "string", "enum": list(STATUSES), "description": "update: the new status"},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    read_only = True  # it changes the plan, never the overlay

    def __init__(self, todos: TodoList) -> None:
        self.todos = todos

    @classmethod
    def describe(cls, input: Mapping[str, Any]) -> str:
        """``todo add: Write the tests``, ``todo complete 2``."""
        command = str(input.get("command", ""))
        if command == "add":
            return f"todo add: {one_line('; '.join(str(t) for t in input.get('items') or ()), 80)}"
        target = input.get("id") or ", ".join(str(i) for i in input.get("ids") or ())
        status = f" -> {input['status']}" if input.get("status") else ""
        return f"todo {command} {target}{status}".rstrip()

    def run(self, input: Mapping[str, Any]) -> str:
        """Apply the command and return the whole list."""
        command = input["command"]
        if command == "add":
            added = self.todos.add(str(text) for text in input.get("items") or ())
            head = f"Added {', '.join(item.id for item in added)}."
        elif command == "update":
            if not input.get("id"):
                raise ToolError("`update` needs `id`, and `text` and/or `status`")
            if input.get("text") is None and input.get("status") is None:
                raise ToolError("`update` needs `text` and/or `status`")
            item = self.todos.update(str(input["id"]), text=input.get("text"), status=input.get("status"))
            head = f"Updated {item.id}."
        elif command == "complete":
            ids = [str(i) for i in input.get("ids") or ()] or ([str(input["id"])] if input.get("id") else [])
            if not ids:
                raise ToolError("`complete` needs `id` (or `ids`)")
            for id in ids:  # every id is checked before any item changes
                self.todos.update(id)
            for id in ids:
                self.todos.update(id, status="done")
            head = f"Completed {', '.join(ids)}."
        else:
            head = ""
        return f"{head}\n{self.todos.render()}".strip()
