"""An editor's reading of an LSP 3.17 glob pattern, for tests of the file watchers the server registers.

The syntax is the specification's (``GlobPattern``): ``*`` any characters in a path segment, ``?`` one
character in a path segment, ``**`` any number of path segments, ``{a,b}`` either, ``[...]`` one character
of a set or range, ``[!...]`` one character not in it; there is no escape. A ``]`` just after ``[`` or
``[!`` is a member of the set, as VS Code reads it. Everything else is itself.
"""

from __future__ import annotations

import re

__all__ = ["glob_matches"]


def glob_matches(glob: str, path: str) -> bool:
    """Whether the absolute `path` (``/``-separated) is one the LSP glob `glob` names."""
    return re.fullmatch(_regex(glob), path) is not None


def _regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**", i):
            i += 2
            if glob.startswith("/", i):
                out.append("(?:.*/)?")  # any number of segments, none included
                i += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := _class_end(glob, i)) > 0:
            members = glob[i + 1 : end]
            negate = members.startswith("!")
            members = members[1:] if negate else members
            escaped = "".join("-" if c == "-" else re.escape(c) for c in members)
            out.append(f"[{'^' if negate else ''}{escaped}]")
            i = end
        elif char == "{" and (end := glob.find("}", i)) > 0:
            choices = glob[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_regex(choice) for choice in choices) + ")")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """The index of the ``]`` closing the set opened at `start`, or -1 when none does."""
    first = start + 1
    if glob.startswith("!", first):
        first += 1
    end = glob.find("]", first + 1)
    return end if end > 0 else -1
