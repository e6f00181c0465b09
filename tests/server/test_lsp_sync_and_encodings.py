"""Ranged ``didChange`` events and the position encodings, end to end through `agentls serve`.

A raw JSON-RPC client (`tests.server.test_lsp_bad_input.RawServer`: no LSP library between it and the
server, its stderr kept) plays an editor that syncs incrementally: it types on a line after an emoji (two
UTF-16 units, one UTF-32 unit), in the position encoding the server chose. Then a run of the fake model
edits that very line (its ``str_replace`` matches only the text the editor holds), and the accepted
proposal's ``workspace/applyEdit`` must place its edit at the right character of that line. A client
offering no encoding gets UTF-16 (VS Code), one offering only UTF-32 gets UTF-32 (LSP 3.17: the server
picks one of the encodings offered), and neither makes the server log an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_lsp_agent import EDITOR_TOOL, SETTINGS, STUB
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn
from tests.server.test_lsp_bad_input import RawServer

pytestmark = pytest.mark.timeout(120)

PRICING = '''"""Prices."""

LABEL = "\U0001f600 sale"  # shown on the price tag


def apply_discount(price: float, percent: float) -> float:
    """Reduce `price` by `percent` percent."""
    raise NotImplementedError
'''
LABEL_LINE = 2
TYPED = 'LABEL = "\U0001f600 deal\U0001f389!"  # shown on the price tag'
"""The label line once the editor typed on it (after the emoji): "sale" -> "deal", then a party popper and
"!" after it."""
PROPOSED = 'LABEL = "\U0001f600 deal\U0001f389!!"  # shown on the price tag'
BODY = "    return price * (1 - percent / 100)\n"


def units(line: str, column: int, encoding: str) -> int:
    """A code-point column of `line` as an LSP character offset in `encoding` (independent of the server's
    `server.positions`)."""
    head = line[:column]
    return len(head.encode("utf-16-le")) // 2 if encoding == "utf-16" else len(head)


def column(line: str, character: int, encoding: str) -> int:
    """An LSP character offset in `encoding` as a code-point column of `line`."""
    if encoding == "utf-32":
        return character
    return len(line.encode("utf-16-le")[: 2 * character].decode("utf-16-le"))


def apply_edits(text: str, edits: list[dict[str, Any]], encoding: str) -> str:
    """Apply LSP `TextEdit`s (non-overlapping, positions in `encoding`) as an editor does."""
    lines = text.split("\n")

    def offset(position: dict[str, int]) -> int:
        line = position["line"]
        return sum(len(ln) + 1 for ln in lines[:line]) + column(lines[line], position["character"], encoding)

    spans = sorted((offset(e["range"]["start"]), offset(e["range"]["end"]), e["newText"]) for e in edits)
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


def ranged(line: str, start: int, end: int, new: str, encoding: str) -> dict[str, Any]:
    """A ranged change of the label line, replacing code-point columns [start, end) with `new`."""
    return {
        "range": {
            "start": {"line": LABEL_LINE, "character": units(line, start, encoding)},
            "end": {"line": LABEL_LINE, "character": units(line, end, encoding)},
        },
        "text": new,
    }


@pytest.mark.parametrize(
    ("offered", "encoding"), [(None, "utf-16"), (["utf-32"], "utf-32")], ids=["no-encodings", "utf-32-only"]
)
def test_ranged_changes_after_an_emoji_and_the_proposals_edit_are_in_the_chosen_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offered: list[str] | None, encoding: str
) -> None:
    root = tmp_path / "ws"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "pricing.py").write_text(PRICING)
    uri = (root / "shop" / "pricing.py").as_uri()
    stderr = tmp_path / "stderr.log"
    edits: list[dict[str, Any]] = []

    def answer(request: dict[str, Any]) -> Any:
        if request["method"] == "workspace/applyEdit":
            edits.append(request["params"]["edit"])
            return {"applied": True}
        return None

    with FakeAnthropic() as fake:
        fake.enqueue(
            turn(
                text("Spec: implement the discount; the label gets a second '!'."),
                tool_use(
                    EDITOR_TOOL,
                    {
                        "command": "str_replace",
                        "path": "shop/pricing.py",
                        "old_str": TYPED,
                        "new_str": PROPOSED,
                    },
                ),
            ),
            tool_use(
                EDITOR_TOOL,
                {"command": "str_replace", "path": "shop/pricing.py", "old_str": STUB, "new_str": BODY},
            ),
            text("Implemented `apply_discount`."),
        )
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        with stderr.open("wb") as log:
            server = RawServer(tmp_path / "cache", stderr=log, answer=answer)
        try:
            capabilities: dict[str, Any] = {
                "textDocument": {"synchronization": {"dynamicRegistration": False}},
                "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}},
            }
            if offered is not None:
                capabilities["general"] = {"positionEncodings": offered}
            result = server.request(
                "initialize",
                {
                    "processId": None,
                    "rootUri": root.as_uri(),
                    "capabilities": capabilities,
                    "initializationOptions": {**SETTINGS, "agentlsClient": True},
                },
                timeout=60,
            )["result"]
            assert result["capabilities"]["positionEncoding"] == encoding
            assert result["capabilities"]["textDocumentSync"]["change"] == 2  # incremental
            server.notify("initialized", {})
            server.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": PRICING}},
            )
            # Typing after the emoji, in one didChange: each change applies to the text the one before left.
            line = PRICING.split("\n")[LABEL_LINE]
            sale = line.index("sale")
            step1 = line.replace("sale", "deal")
            step2 = step1[: sale + 4] + "\U0001f389" + step1[sale + 4 :]
            assert step2[: sale + 5] + "!" + step2[sale + 5 :] == TYPED
            changes = [
                ranged(line, sale, sale + 4, "deal", encoding),
                ranged(step1, sale + 4, sale + 4, "\U0001f389", encoding),
                ranged(step2, sale + 5, sale + 5, "!", encoding),
            ]
            server.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes},
            )
            typed = PRICING.replace(line, TYPED)

            stub = next(i for i, ln in enumerate(typed.split("\n")) if "def apply_discount" in ln)
            started = server.request(
                "workspace/executeCommand",
                {
                    "command": "agentls.implement",
                    "arguments": [{"uri": uri, "position": {"line": stub, "character": 4}}],
                },
            )
            assert "result" in started, started
            ready = server.wait_for(
                lambda m: m.get("method") in ("agentls/proposalReady", "agentls/runFailed"), 90
            )
            assert ready["method"] == "agentls/proposalReady", ready
            accepted = server.request(
                "workspace/executeCommand",
                {"command": "agentls.accept", "arguments": [{"proposalId": ready["params"]["proposalId"]}]},
                timeout=60,
            )
            assert "result" in accepted, accepted
            logged = stderr.read_text(errors="replace")  # before the server ends
        finally:
            server.close()

    assert "ERROR" not in logged, logged
    assert len(edits) == 1, edits
    (document,) = [c for c in edits[0]["documentChanges"] if c["textDocument"]["uri"] == uri]
    assert document["textDocument"]["version"] == 2
    on_label = [e for e in document["edits"] if e["range"]["start"]["line"] == LABEL_LINE]
    # The one character added after "deal🎉!": at code-point column 17, which is 19 UTF-16 units.
    after = TYPED.index('!"') + 1
    assert on_label == [
        {
            "range": {
                "start": {"line": LABEL_LINE, "character": units(TYPED, after, encoding)},
                "end": {"line": LABEL_LINE, "character": units(TYPED, after, encoding)},
            },
            "newText": "!",
        }
    ], on_label
    assert units(TYPED, after, encoding) == {"utf-16": 19, "utf-32": 17}[encoding]
    expected = typed.replace(TYPED, PROPOSED).replace(STUB, BODY)
    assert apply_edits(typed, document["edits"], encoding) == expected
