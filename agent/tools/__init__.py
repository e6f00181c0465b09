"""The tools the model calls: the protocol they share and the dispatcher that runs a call.

A tool has:

- `name` and `description`;
- `input_schema`: the JSON Schema of its input, used here to validate calls and sent to providers that
  take plain function tools;
- `read_only`: True when a call cannot change the run's overlay (roles that may not edit get only these);
- `definition(provider)`: its entry in a request's `tools` list. For the `anthropic` provider the text
  editor and bash are Anthropic-defined tools (only `type` and `name`: Claude is trained on them); every
  other tool, and every tool for other providers, is a plain function definition
  `{name, description, input_schema}` (`function_definition`), which a provider renders in its own wire
  format;
- `describe(input)`: one line showing a call to people (`bash: pytest -q`, `str_replace mathx/stats.py`);
- `run(input)`.

Which tools a run gets is decided by `agent.tools.toolset` from the role; `describe_call` there describes
a call by tool name alone (for transcripts read back later).

`ToolRegistry.execute(name, input)` never raises for a bad call; as the Anthropic SDK's tool runner does,
failures come back as data, a `ToolResult` with `is_error=True`:

- an unknown tool: `Error: Tool 'NAME' not found` and the names that exist;
- input that is not an object, lacks a required field or has a field of the wrong type: the `repr` of a
  `ToolInputError` saying which field and why (an optional field sent as null counts as not sent);
- a `ToolError` raised by the tool: its message as is (these messages are written for the model);
- any other exception: its `repr` (which keeps the exception type), logged with the traceback.

The one exception that does propagate is `ToolAbort`: a failure only the user can fix (for example, no
sandbox can be created), which should end the run with its message rather than go back to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agent.images import ToolImage

__all__ = [
    "ANTHROPIC",
    "CustomTool",
    "Tool",
    "ToolAbort",
    "ToolError",
    "ToolInputError",
    "ToolRegistry",
    "ToolResult",
    "ToolTimeUp",
    "function_definition",
    "one_line",
    "validate_input",
]

log = logging.getLogger(__name__)

ANTHROPIC = "anthropic"
"""The provider whose API knows the Anthropic-defined tools (`text_editor_*`, `bash_*`)."""


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model in a `tool_result` block: its text, and the images that follow it
    (an MCP tool's screenshot; each already checked against the API's limits, `agent.images`)."""

    content: str
    is_error: bool = False
    images: tuple[ToolImage, ...] = ()


class ToolError(Exception):
    """A tool failure whose message is written for the model and returned as is."""


class ToolInputError(ValueError):
    """The input of a tool call does not match the tool's schema."""


class ToolAbort(Exception):
    """A failure the model cannot work around; it ends the run and its message goes to the user."""


class ToolTimeUp(ToolAbort):
    """A tool call cut by the run's time bound (`agent.max_minutes`) or its cancel while it waited (an MCP
    call, a question to the user): the loop records it and stops the run as the bound (or the cancel)
    does, not as a failure. The message says what was cut."""


def one_line(value: Any, limit: int = 100) -> str:
    """`value` as one line of at most `limit` characters (whitespace folded, "..." when cut)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def function_definition(name: str, description: str, input_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as a plain function definition: its name, description and the JSON Schema of its input."""
    return {"name": name, "description": description, "input_schema": dict(input_schema)}


@runtime_checkable
class Tool(Protocol):
    """What the dispatcher and the tool-set factory need from a tool."""

    name: str
    description: str
    input_schema: Mapping[str, Any]

    @property
    def read_only(self) -> bool:
        """True when no call can change the run's overlay."""
        ...

    def definition(self, provider: str = ANTHROPIC) -> dict[str, Any]:
        """The entry for the `tools` parameter of a request to `provider`."""
        ...

    def describe(self, input: Mapping[str, Any]) -> str:
        """One line showing a call with `input` to people."""
        ...

    def run(self, input: Mapping[str, Any]) -> ToolResult | str:
        """Run one validated call. Raise `ToolError` for failures the model should read."""
        ...


class CustomTool:
    """Base of the tools defined here rather than by Anthropic: their `tools` entry is their name,
    `description` and input schema for every provider."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool = True

    def definition(self, provider: str = ANTHROPIC) -> dict[str, Any]:
        """The `tools` entry of this custom tool (the same for every provider)."""
        return function_definition(self.name, self.description, self.input_schema)

    @classmethod
    def describe(cls, input: Mapping[str, Any]) -> str:
        """`name: input` on one line; tools override it to show what matters."""
        return f"{cls.name}: {one_line(dict(input), 80)}"


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict, Mapping),
    "null": (type(None),),
}


def _type_name(value: object) -> str:
    for name, types in _JSON_TYPES.items():
        if isinstance(value, bool) and name not in ("boolean",):
            continue
        if isinstance(value, types):
            return name
    return type(value).__name__


def _check(schema: Mapping[str, Any], value: object, where: str) -> None:
    """Validate `value` against the subset of JSON Schema tools use; raise `ToolInputError`.

    `where` names the value in messages ("" for the whole input).
    """
    at = f"{where}: " if where else ""
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        ok = False
        for name in names:
            types = _JSON_TYPES.get(name, ())
            # bool is an int in Python but not in JSON.
            if isinstance(value, bool) and name in ("integer", "number"):
                continue
            if isinstance(value, types):
                ok = True
                break
        if not ok:
            raise ToolInputError(f"{at}expected {' or '.join(names)}, got {_type_name(value)}")
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        raise ToolInputError(f"{at}{value!r} is not one of {allowed}")
    if isinstance(value, Mapping):
        for field in schema.get("required", ()):
            if field not in value:
                raise ToolInputError(f"{at}the required field `{field}` is missing")
        properties: Mapping[str, Any] = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _check(properties[key], item, f"{where}.{key}" if where else f"`{key}`")
            elif schema.get("additionalProperties") is False:
                raise ToolInputError(f"{at}unexpected field `{key}`")
    if isinstance(value, list | tuple):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise ToolInputError(f"{at}expected at least {schema['minItems']} items, got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ToolInputError(f"{at}expected at most {schema['maxItems']} items, got {len(value)}")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                _check(items, item, f"{where}[{index}]")


def _takes_null(schema: object) -> bool:
    """Whether a field's schema accepts null (or says nothing of its type)."""
    if not isinstance(schema, Mapping):
        return True
    expected = schema.get("type")
    return expected is None or expected == "null" or (isinstance(expected, list) and "null" in expected)


def validate_input(tool_name: str, schema: Mapping[str, Any], input: object) -> Mapping[str, Any]:
    """Check a call's input against the tool's schema; return it, or raise `ToolInputError`.

    An optional field sent as null is left out, as if it was not sent (models of OpenAI-compatible
    servers fill every field of a call, null for those they mean to leave out), unless its schema takes
    null; a required field that is null is still an error."""
    if not isinstance(input, Mapping):
        raise ToolInputError(
            f"Invalid input for tool {tool_name}: expected an object, got {_type_name(input)}"
        )
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if any(value is None for value in input.values()):
        input = {
            key: value
            for key, value in input.items()
            if value is not None or key in required or key not in properties or _takes_null(properties[key])
        }
    try:
        _check(schema, input, "")
    except ToolInputError as exc:
        raise ToolInputError(f"Invalid input for tool {tool_name}: {exc}") from None
    return input


class ToolRegistry:
    """The tools of one run, by name; turns calls into results."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        """Register a tool; names are unique."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        """The tool called `name`, if there is one."""
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Names of the registered tools, in registration order."""
        return list(self._tools)

    @property
    def tools(self) -> list[Tool]:
        """The registered tools, in registration order."""
        return list(self._tools.values())

    def definitions(self, provider: str = ANTHROPIC) -> list[dict[str, Any]]:
        """The `tools` parameter of a request to `provider`."""
        return [tool.definition(provider) for tool in self._tools.values()]

    def describe(self, name: str, input: Mapping[str, Any]) -> str:
        """One line showing a call (a tool that is not registered shows as `name: input`)."""
        tool = self._tools.get(name)
        if tool is None:
            return f"{name}: {one_line(dict(input), 80)}"
        return tool.describe(input)

    def close(self) -> None:
        """Release what the tools hold (the bash tool's materialized copy); errors are logged."""
        for tool in self._tools.values():
            close = getattr(tool, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing the tool %s failed", tool.name)

    def execute(self, name: str, input: object) -> ToolResult:
        """Run one tool call; failures come back as `is_error` results (only `ToolAbort` propagates)."""
        tool = self._tools.get(name)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return ToolResult(f"Error: Tool '{name}' not found. Available tools: {available}", is_error=True)
        try:
            checked = validate_input(name, tool.input_schema, input)
            result = tool.run(checked)
        except ToolAbort:
            raise
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except ToolInputError as exc:
            return ToolResult(repr(exc), is_error=True)
        except Exception as exc:
            log.exception("tool %s failed", name)
            return ToolResult(repr(exc), is_error=True)
        if isinstance(result, str):
            return ToolResult(result)
        return result
