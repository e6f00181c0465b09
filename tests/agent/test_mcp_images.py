"""Images from MCP tools reach a model that can see them: the tickets server
(tests/fakes/mcp_tickets_server.py, TICKETS_MEDIA) returns real PNGs, which a run sends to the fake
Anthropic server as `image` blocks in the tool result, within the API's limits (what it would refuse is
left out with a note, and the fake refuses it as the API does); the transcript keeps the file beside it,
never the base64; the context counts an image by its pixels, and old images go first when the context
must shrink; an OpenAI-compatible model gets a note, or the image in a user message when it sees."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import ModelSettings
from agent.images import image_tokens
from agent.mcp.config import McpSettings
from agent.mcp.trust import TRUST_FILE, McpTrust
from agent.memory import CONDENSE_PROMPT, Memory, MemorySettings
from agent.models.openai_compat import to_chat_messages
from agent.resume import load_state
from indexing.secrets import Redactor
from server.settings import load_settings
from tests.agent.agent_harness import FAST_MODEL, SECRET, Harness, copy_workspace, done, fast_settings
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, tool_use, turn
from tests.fakes.mcp_tickets_server import SCREENSHOT, png

SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_tickets_server.py"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace whose tickets server has its media tools, trusted (the harness keeps its transcripts in
    tmp_path/runs, so agentls' cache folder is tmp_path)."""
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(
        f'[mcp.servers.tickets]\ncommand = "{sys.executable}"\nargs = ["{SERVER}"]\n'
        'env = { TICKETS_MEDIA = "1" }\n'
    )
    McpTrust(tmp_path / TRUST_FILE).remember(root, "tickets", _mcp(root).servers["tickets"])
    return root


def _mcp(root: Path) -> McpSettings:
    loaded = load_settings(root)
    assert not loaded.messages, loaded.messages
    return loaded.settings.agent.mcp


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _results(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return (
        [block for block in content if block.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )


def _content(block: Any) -> list[dict[str, Any]]:
    content = block["content"]
    assert isinstance(content, list), content
    return [dict(item) for item in content]


def test_an_mcp_tools_image_reaches_claude_as_an_image_block(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake_anthropic.enqueue(
        tool_use("mcp__tickets__attachments", {"ticket_id": "T-1"}),
        done("The screenshot shows the failing build."),
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=fast_settings(mcp=_mcp(ws), verify=False))
    assert result.status in ("no_changes", "proposed"), result.error

    text, image = _content(harness.tool_results(1)[0])
    assert text["type"] == "text" and "T-1 has 3 attachments" in text["text"]
    assert "[image" not in text["text"]
    source = {"type": "base64", "media_type": "image/png", "data": _b64(SCREENSHOT)}
    assert image == {"type": "image", "source": source}
    assert [r.outcome for r in fake_anthropic.message_requests] == ["reply", "reply"]  # the API took it

    # The transcript keeps the file beside it, and its hash and size; the base64 is in no JSON line.
    lines = result.transcript_path.read_text() if result.transcript_path else ""
    assert _b64(SCREENSHOT) not in lines
    digest = hashlib.sha256(SCREENSHOT).hexdigest()
    records = harness.transcript_records(result)
    [recorded] = [r for r in records if r["type"] == "tool_result"]
    assert recorded["images"] == [
        {"media_type": "image/png", "width": 4, "height": 3, "bytes": len(SCREENSHOT), "sha256": digest}
    ]
    [answered] = [r["messages"][-1] for r in records if r["type"] == "request" and r["message_count"] == 3]
    [reference] = _content(_results(answered)[0])[1:]
    path = f"{result.run_id}.d/images/{digest}.png"
    assert reference["source"] == {
        "type": "file",
        "media_type": "image/png",
        "path": path,
        "sha256": digest,
        "bytes": len(SCREENSHOT),
    }
    assert (tmp_path / "runs" / path).read_bytes() == SCREENSHOT
    assert (tmp_path / "runs" / path).stat().st_mode & 0o077 == 0
    state = load_state(tmp_path / "runs", result.run_id)  # a resume calls the tool again
    assert _b64(SCREENSHOT) not in json.dumps(state.messages)


def test_an_image_the_api_would_refuse_is_left_out_with_a_note(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Wider than 8,000 px, over 5 MiB of base64, more than `mcp.max_images` in one result: each is named
    with why, the others are sent, and the API (the fake, which refuses the first two as the API does)
    takes every request."""
    fake_anthropic.enqueue(
        tool_use("mcp__tickets__screenshot", {"width": 9000, "height": 10}),
        tool_use("mcp__tickets__screenshot", {"width": 10, "height": 10, "pad_kib": 4200}),
        tool_use("mcp__tickets__screenshot", {"width": 2, "height": 2, "count": 7}),
        done("Seen."),
    )
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=fast_settings(mcp=_mcp(ws), verify=False))
    assert result.status in ("no_changes", "proposed"), result.error
    assert [r.outcome for r in fake_anthropic.message_requests] == ["reply"] * 4

    wide = harness.tool_results(1)[0]["content"]
    assert isinstance(wide, str) and wide.endswith(
        "[image (image/png, 372 bytes) left out: 9000x10 px, over the API's limit of 8,000 px a side]"
    ), wide
    heavy = harness.tool_results(2)[0]["content"]
    assert (
        isinstance(heavy, str)
        and "left out: 5.5 MiB of base64 data, over the API's limit of 5.0 MiB" in heavy
    )
    many = _content(harness.tool_results(3)[0])
    assert [block["type"] for block in many] == ["text"] + ["image"] * 5
    notes = [line for line in many[0]["text"].splitlines() if line.startswith("[image")]
    assert (
        notes
        == [
            "[image (image/png, 75 bytes) left out: a result sends the model at most 5 images "
            "(mcp.max_images)]"
        ]
        * 2
    )

    # Sent anyway, the API refuses the first two, and so does the fake.
    for picture, refusal in (
        (png(9000, 10), "At least one of the image dimensions exceed max allowed size: 8000 pixels"),
        (png(10, 10, 4200), "image exceeds 5 MB maximum: 5734528 bytes > 5242880 bytes"),
    ):
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": _b64(picture)},
        }
        body = {
            "model": FAST_MODEL.model,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}],
        }
        answer = httpx.post(
            f"{fake_anthropic.url}/v1/messages", json=body, headers={"x-api-key": FAKE_API_KEY}
        )
        assert answer.status_code == 400 and refusal in answer.json()["error"]["message"], answer.text


def test_an_image_whose_data_holds_a_secret_value_is_not_sent(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """A screenshot whose metadata holds the workspace's key (its base64 is redacted like any text): it
    is named, not sent, and the value reaches neither the model nor the transcript; a clean one is sent."""
    fake_anthropic.enqueue(
        turn(
            tool_use("mcp__tickets__screenshot", {"width": 4, "height": 3, "comment": f"API_TOKEN={SECRET}"}),
            tool_use("mcp__tickets__screenshot", {"width": 4, "height": 3}),
        ),
        done("Seen."),
    )
    secrets = Redactor(b"k" * 32)
    secrets.learn_values([SECRET])
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=fast_settings(mcp=_mcp(ws), verify=False), secrets=secrets)
    assert result.status in ("no_changes", "proposed"), result.error

    leaky, clean = harness.tool_results(1)
    assert isinstance(leaky["content"], str)
    assert leaky["content"].endswith("left out: its data holds a secret value]"), leaky["content"]
    assert [block["type"] for block in _content(clean)] == ["text", "image"]
    assert SECRET not in harness.bodies_text()
    assert _b64(png(4, 3, comment=f"API_TOKEN={SECRET}")) not in harness.bodies_text()


def test_the_context_counts_an_image_by_its_pixels() -> None:
    """A 1000x750 screenshot padded to 1.4 MB of base64 costs what the API bills for it, 1,000 tokens, not
    400,000 (its base64 text at 3.5 characters a token)."""
    picture = png(1000, 750, 1024)
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _b64(picture)}}
    memory = Memory(MemorySettings(), 200_000)
    turn = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "shot"}]}]
    with_image = [
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "shot"}, block],
                }
            ],
        }
    ]
    assert image_tokens(1000, 750) == 1000
    assert 1000 <= memory.estimate(with_image) - memory.estimate(turn) <= 1010


def _screenshot_turns(count: int) -> list[dict[str, Any]]:
    """A conversation of `count` screenshot calls answered, the newest not yet seen by the model."""
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": _b64(png(8, 8))},
    }
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look at the page."}]
    for number in range(count):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"t{number}", "name": "shot", "input": {}}],
            }
        )
        content = [{"type": "text", "text": f"shot {number}"}, image]
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{number}", "content": content}],
            }
        )
    return messages


def test_a_conversation_keeps_at_most_max_images_and_none_older_than_image_turns() -> None:
    """Past `max_images` images the model has seen, or one older than `image_turns` model turns, the old
    ones are replaced by their names in one batch, down to half of each; the newest, not seen yet, stays."""
    memory = Memory(MemorySettings(max_images=4, image_turns=20), 200_000)
    messages = _screenshot_turns(5)  # 4 seen: within the cap
    assert not memory.images_due(messages)
    messages = _screenshot_turns(6)
    assert memory.images_due(messages)
    assert memory.drop_images(messages) == (2, 3)
    assert _images_in(messages) == [8, 10, 12]
    assert messages[2]["content"][0]["content"][1] == {
        "type": "text",
        "text": (
            "[image (image/png, 8x8 px, 74 bytes) removed from the conversation to save context; call the "
            "tool again to see it]"
        ),
    }
    assert not memory.images_due(messages)

    aged = Memory(MemorySettings(max_images=10, image_turns=4), 200_000)
    messages = _screenshot_turns(5)
    assert not aged.images_due(messages)  # the oldest is 4 model turns old
    messages = _screenshot_turns(6)
    assert aged.images_due(messages) and aged.drop_images(messages) == (2, 3)
    assert _images_in(messages) == [8, 10, 12]


def _with_new_images(messages: list[dict[str, Any]], picture: bytes, count: int) -> list[dict[str, Any]]:
    """`messages` whose newest result (not seen yet) holds `count` images of `picture`."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _b64(picture)}}
    [result] = messages[-1]["content"]
    messages[-1] = {"role": "user", "content": [{**result, "content": [{"type": "text", "text": "shots"}]}]}
    messages[-1]["content"][0]["content"] += [image] * count
    return messages


def test_a_request_holds_at_most_20_images_with_the_new_ones() -> None:
    """Past 20 images in a request the API refuses any over 2,000 px a side. One turn's calls returned 15
    new images beside 8 seen ones (within max_images): the seen ones go down to 5. 22 new ones of 2,500 px
    alone: two of them are named instead, and the request holds 20."""
    memory = Memory(MemorySettings(max_images=10, image_turns=20), 200_000)
    messages = _with_new_images(_screenshot_turns(9), png(8, 8), 15)
    assert memory.images_due(messages)
    assert memory.drop_images(messages) == (2, 3)
    assert str(messages).count("'image'") == 20 and not memory.images_due(messages)

    messages = _with_new_images(_screenshot_turns(1), png(2500, 10), 22)
    assert memory.images_due(messages)
    assert memory.drop_images(messages) == (2, 2)
    assert str(messages).count("'image'") == 20
    assert (
        "[image (image/png, 2500x10 px, 176 bytes) left out: over 2,000 px a side, which the API refuses in "
        "a request of more than 20 images]"
    ) in str(messages)


def _images_in(messages: list[dict[str, Any]]) -> list[int]:
    """The messages that still hold an image."""
    return [index for index, message in enumerate(messages) if "'image'" in str(message)]


def test_old_images_go_first_when_the_context_must_shrink(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Past `mask_at` of the window (three 1568x1568 screenshots, 1,600 tokens each, in a 12k window), the
    images the model has seen are replaced by their names before any text result is masked or the
    conversation condensed; the newest one, not seen yet, is sent."""
    shot = tool_use("mcp__tickets__screenshot", {"width": 1568, "height": 1568})
    fake_anthropic.enqueue(
        tool_use("mcp__tickets__big_output", {"size": 3000}), shot, shot, shot, done("Seen.")
    )
    model = FAST_MODEL.model_copy(update={"context_window": 12_000})
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=fast_settings(mcp=_mcp(ws), verify=False, model=model))
    assert result.status in ("no_changes", "proposed"), result.error

    before, last = (r.body["messages"] for r in fake_anthropic.message_requests[-2:])
    assert _images_in(list(before)) == [4, 6]  # the two seen screenshots were still there
    assert _images_in(list(last)) == [8]
    for index in (4, 6):
        assert _content(_results(last[index])[0])[1] == {
            "type": "text",
            "text": (
                "[image (image/png, 1568x1568 px, 9 KiB) removed from the conversation to save context; call "
                "the tool again to see it]"
            ),
        }
    assert "x" * 3000 in str(_results(last[2])[0]["content"])  # the text result is whole
    decisions = [r for r in harness.transcript_records(result) if r["type"] == "decision"]
    [dropped] = [r for r in decisions if r["kind"] == "images_dropped"]
    assert (dropped["images"], dropped["reason"]) == (2, "the context must shrink")
    assert 3000 < dropped["tokens_before"] - dropped["tokens_after"] <= 2 * 1600
    assert not [r for r in decisions if r["kind"] in ("masked", "condensed")]


def _asks_for_a_handoff(body: Any) -> bool:
    return CONDENSE_PROMPT.splitlines()[0] in json.dumps(dict(body))


def test_condensing_drops_the_images_first(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> None:
    """The API refuses a request as past the window (the fake's 8k): the conversation is condensed, and
    the handoff is written from a history whose seen images are names, not 1,600 tokens each."""
    fake_anthropic.context_window = 8_000
    shot = tool_use("mcp__tickets__screenshot", {"width": 1568, "height": 1568})
    fake_anthropic.enqueue(shot, shot, shot, done("## Goal\nLook at the page."), done("Seen."))
    harness = Harness(fake_anthropic, ws, tmp_path / "runs")
    result = harness.run(settings=fast_settings(mcp=_mcp(ws), verify=False))
    assert result.status in ("no_changes", "proposed"), result.error
    assert fake_anthropic.too_long == 1
    [summary] = [r.body for r in fake_anthropic.message_requests if _asks_for_a_handoff(r.body)]
    messages = list(summary["messages"])
    assert _images_in(messages) == [len(messages) - 1]  # the newest result's, which the model has not seen
    assert "removed from the conversation to save context" in json.dumps(messages[2])
    kinds = [r["kind"] for r in harness.transcript_records(result) if r["type"] == "decision"]
    assert kinds.index("images_dropped") < kinds.index("condensed")


def test_an_openai_compatible_model_gets_a_note_or_when_it_sees_the_image() -> None:
    """Most local models cannot see: the image is named. With `vision = true` it follows the tool message
    in a user message, as an `image_url` data URL (a tool message holds text only)."""
    data = _b64(SCREENSHOT)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    messages = [
        {"role": "user", "content": "Look."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "shot", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "c1",
                    "content": [{"type": "text", "text": "A page."}, image],
                }
            ],
        },
    ]
    blind = to_chat_messages("System.", messages)
    assert blind[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "A page.\n[image (image/png, 4x3 px, 73 bytes) left out: this model cannot see images "
        "(agent.model.vision)]",
    }
    seeing = to_chat_messages("System.", messages, vision=True)
    assert seeing[-2] == {"role": "tool", "tool_call_id": "c1", "content": "A page."}
    assert seeing[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "The image(s) of the result of the tool call c1:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        ],
    }
    assert ModelSettings(provider="openai").vision is None  # not set: no images
