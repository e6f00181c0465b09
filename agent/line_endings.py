"""A file's line endings and byte order mark, kept through the agent's edits.

The model reads files with ``\\n`` line breaks and writes its edits with them: that is what it is shown and
what models write. The files may hold ``\\r\\n`` (Windows), a lone ``\\r`` (classic Mac OS) or a mix, and
may start with a UTF-8 byte order mark. The overlay keeps a file's text exactly as its bytes decode, so the
agent's tools that write text (`agent.tools.editor`, `agent.installs`) go through here:

- `for_model(text)`: what the model sees and matches against: the byte order mark dropped, every
  ``\\r\\n`` and lone ``\\r`` turned into ``\\n`` (the line breaks of LSP and of Python's universal
  newlines; the view's line numbers count them).
- `from_model(original, edited)`: the model's `edited` version of `original` back in the file's form.
  The byte order mark stays as it was. Lines the edit leaves alone keep their bytes, endings included;
  every line break the edit writes is the file's ending (`newline_of`): its most common one, a tie going
  to the one found first, ``\\n`` for a file without any. So a ``\\r\\n`` file stays ``\\r\\n`` throughout,
  and a file with mixed endings keeps them where it is not edited and gets its dominant one where it is.

For a file with one kind of ending the way back is a replacement of ``\\n``; for a mixed one the lines
are matched with `agent.hunks.line_opcodes` (the proposal's line diff), so equal lines are copied from the
original. The proposal's diff and LSP edits then change only the lines the model changed. Pure.

The model's text cannot say "no byte order mark": `for_model` drops the mark and `from_model` keeps the
original's, whatever the model writes. Removing (or adding) one goes through the bash tool: a command in
the sandbox rewrites the file's bytes (``sed -i '1s/^\\xEF\\xBB\\xBF//' FILE``), and the overlay takes the
file back as its bytes decode (`agent.overlay.Overlay.sync_back_from`: UTF-8 with the mark as U+FEFF), so
the proposal drops the mark, its diff shows line 1 changed, and `agentls run --apply` writes the file
without it. The editor tool's view of a file with a mark says so and names that command. An editor holds
a file without its mark (as its encoding), so the language server cannot apply such a change as LSP
edits and says so instead (`server.edits`).
"""

from __future__ import annotations

import re

from agent.hunks import line_opcodes, split_lines

__all__ = ["BOM", "for_model", "from_model", "newline_of"]

BOM = "\ufeff"
"""The byte order mark as the overlay's text holds it (UTF-8 bytes ``EF BB BF`` decoded)."""

_BREAK = re.compile(r"\r\n?")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _breaks_to_lf(text: str) -> str:
    return _BREAK.sub("\n", text) if "\r" in text else text


def for_model(text: str) -> str:
    """`text` as the model sees it: no byte order mark, ``\\n`` for every line break."""
    return _breaks_to_lf(text.removeprefix(BOM))


def _counts(text: str) -> dict[str, int]:
    crlf = text.count("\r\n")
    return {"\r\n": crlf, "\n": text.count("\n") - crlf, "\r": text.count("\r") - crlf}


def newline_of(text: str) -> str:
    """The ending a line the agent writes into `text` gets: the most common one of `text`; of two as
    common, the one found first; ``\\n`` when `text` has no line break."""
    counts = _counts(text)
    most = max(counts.values())
    if most == 0:
        return "\n"
    match = re.search(r"\r\n|\r|\n", text)
    first = match[0] if match is not None else "\n"
    if counts[first] == most:
        return first
    return next(ending for ending, count in counts.items() if count == most)


def from_model(original: str, edited: str) -> str:
    """`edited` (the model's new version of `original`, as `for_model` shows files) in `original`'s form:
    its byte order mark, its unchanged lines byte for byte, the file's ending on every other line."""
    bom = BOM if original.startswith(BOM) else ""
    body = original.removeprefix(BOM)
    edited = for_model(edited)
    newline = newline_of(body)
    if sum(1 for count in _counts(body).values() if count) <= 1:
        return bom + (edited if newline == "\n" else edited.replace("\n", newline))
    old_lines = _LINE.findall(body)
    new_lines = split_lines(edited)
    out: list[str] = [bom]
    for tag, i1, i2, j1, j2 in line_opcodes([_breaks_to_lf(line) for line in old_lines], new_lines):
        if tag == "equal":
            out += old_lines[i1:i2]
        else:
            out += [line[:-1] + newline if line.endswith("\n") else line for line in new_lines[j1:j2]]
    return "".join(out)
