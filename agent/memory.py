"""Short-term memory: keeping a long run's conversation inside the model's context window.

A run's conversation only grows (each step appends the model's turn and the tools' results), and tool
output is most of it. `Memory` watches its size and, before a request would not fit, shrinks it in two
stages:

1. **Masking.** Once the context passes `mask_at` of the window, every tool result except the newest
   `keep_tool_results` (as many of them as fit in `keep_share` of the window; the newest always) and
   the small ones is replaced by a one-line stub that names the call and says how to see the output
   again (view the file, run the command). Masking rewrites history, which costs
   one prompt-cache miss from the first masked block on; so it happens in batches (all old results at
   once, then nothing until the context passes `mask_at` again), and between batches every request's
   prefix is byte-identical to the previous one's and is read back from the cache. Each batch marks the
   user turn before the oldest result it kept as a `CACHE_ANCHOR` (the previous mark stays, for the next
   request to read): the next batch changes nothing before it, so the provider's breakpoint there is
   read back after that batch and only the turns since are written again.
2. **Condensing.** When masking is not enough (past `condense_at`), or the API refused the request as
   past the window (`prompt is too long`; OpenAI-compatible servers' `maximum context length`), one
   model call writes a structured handoff of the run so far (goal, spec, plan with done and remaining
   steps, files changed, open failures, decisions, next step) and the run goes
   on from [system, tools, first turn, the handoff, the newest turns]. The system prompt, the tools and
   the first turn (task and retrieved context) are untouched, so they stay cached; the turn after the
   handoff is the new `CACHE_ANCHOR`.

Images (an MCP tool's screenshots) go first, before any text is masked: the conversation keeps at most
`max_images` of them, none older than `image_turns` model turns; past either, the old ones are replaced
by their names in one batch (down to half of each, so the cached prefix changes rarely). A request holds
at most 20 (`agent.images.MANY_IMAGES`), the new ones included. When the context
must shrink (masking or condensing is due), every image the model has already answered is replaced so
first. An image the model has not seen yet (in the newest user turn) is always kept.

The size comes from what the API reported: the last response's `input + cache write + cache read +
output` tokens, plus an estimate of what was appended since, in characters per token learned from that
usage (3.5 until a response reports some, and when none does: scripted models); the estimate of the
whole conversation at that rate is the floor. An image counts as the API counts it, about width x height
/ 750 tokens (`agent.images.image_tokens`), not by the length of its base64 text. The window is
`agent.model.context_window`, else `context_window_for(model)` (200k for Claude, 1M for `[1m]` ids).

The loop (`agent.loop.Agent`) calls `Memory.plan` before each request and records every masking and
condensation in the transcript as a `decision`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.images import (
    MANY_IMAGES,
    MANY_MAX_SIDE,
    MAX_IMAGE_BYTES_IN_REQUEST,
    base64_bytes,
    image_positions,
    images_tokens,
    replace_images,
    sides,
)
from agent.usage import Usage

__all__ = [
    "CACHE_ANCHOR",
    "CONDENSE_PROMPT",
    "MASKED_PREFIX",
    "Memory",
    "MemorySettings",
    "condensed_history",
    "context_window_for",
    "estimate_tokens",
    "is_prompt_too_long",
    "max_output_tokens_for",
]

CACHE_ANCHOR = "agentls_cache_anchor"
"""A message marked `{CACHE_ANCHOR: True}` ends the part of the conversation the next masking or
condensation leaves as it is; the Anthropic provider puts a prompt-cache breakpoint there, and every
provider drops the key on the wire."""

IMAGE_REMOVED = "removed from the conversation to save context; call the tool again to see it"
"""What an image replaced by its name says (`Memory.drop_images`)."""

MASKED_PREFIX = "[output masked to save context:"
"""How a masked tool result starts (the loop and tests recognise stubs by it)."""

CONDENSE_PROMPT = """\
Your context window is nearly full. Stop working for a moment and write a handoff note for yourself: the \
conversation so far will be replaced by this note and the newest few turns, so put in it everything you \
need to finish the task. Do not call any tool. Use exactly these sections:

## Goal
The task in one or two sentences, as the user asked it.
## Spec
The acceptance criteria you stated, and any you learned since.
## Plan
Each step, marked [done] or [remaining].
## Files changed
Each file you changed or created, with what changed in it.
## Open failures
Failing tests, errors or checks still open, with the exact message.
## Decisions
What you decided and why (approaches tried and dropped, too).
## Next step
What you were about to do."""

_CHARS_PER_TOKEN = 3.5
_MIN_CHARS_PER_TOKEN = 2.0
_MAX_CHARS_PER_TOKEN = 5.0


class MemorySettings(BaseModel):
    """How a run keeps its conversation inside the context window (`agent.memory` in the settings)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Mask old tool results and condense the conversation before the window fills."""
    keep_tool_results: int = Field(default=3, ge=0)
    """The newest tool results always sent whole (within `keep_share`)."""
    keep_share: float = Field(default=0.05, gt=0, le=1)
    """The whole results kept by a masking batch take at most this share of the window (the newest one
    is always kept): each batch sends the kept results again uncached, so three huge outputs cost three
    cache writes a batch, for what the model has read and reasoned about already."""
    mask_at: float = Field(default=0.8, gt=0, le=1)
    """Share of the window past which old tool results are masked (in one batch)."""
    mask_target: float = Field(default=0.6, gt=0, le=1)
    """Masking must bring the context under this share of the window, else the run condenses at once:
    so a batch of masking lasts several steps and the cached prefix changes rarely."""
    condense_at: float = Field(default=0.9, gt=0, le=1)
    """Share of the window past which the conversation is condensed into a handoff summary."""
    min_mask_chars: int = Field(default=600, ge=0)
    """Tool results shorter than this are never masked (the stub would save nothing)."""
    keep_turns: int = Field(default=3, ge=0)
    """Newest model turns (each with its tool results) kept after a condensation."""
    max_images: int = Field(default=10, ge=0, le=MANY_IMAGES)
    """Images (from MCP tools) the conversation holds at most; past it the old ones are replaced by their
    names. At most 20: past 20 images in a request the API refuses any larger than 2,000 pixels."""
    image_turns: int = Field(default=8, ge=1)
    """An image older than this many model turns is replaced by its name (each costs ~1.5k tokens in
    every request)."""


def context_window_for(model: str) -> int:
    """The context window in tokens of `model`: 1M for `[1m]` ids, 200k for Claude, 128k otherwise."""
    name = model.lower()
    if "[1m]" in name:
        return 1_000_000
    if "claude" in name or name == "scripted":
        return 200_000
    return 128_000


def max_output_tokens_for(model: str) -> int | None:
    """The most output tokens `model` allows per call, when known (None: unknown, do not raise)."""
    name = model.lower()
    if "claude" not in name:
        return None
    if "claude-3-5-haiku" in name:
        return 8_192
    if "claude-opus-4-1" in name or name.endswith("claude-opus-4") or "claude-opus-4-2" in name:
        return 32_000
    return 64_000


_PAST_THE_WINDOW = re.compile(r"too long|context[ _](?:length|limit|size|window)", re.IGNORECASE)
"""How servers refuse a request past the model's window: Anthropic's "prompt is too long" and "input length
and `max_tokens` exceed context limit", OpenAI's, vLLM's and OpenRouter's "maximum context length is N
tokens", llama.cpp's "exceeds the available context size", LM Studio's "greater than the context length"."""


def is_prompt_too_long(message: str, status_code: int | None) -> bool:
    """Whether an API error is the refusal of a request past the model's context window (any provider)."""
    return status_code in (400, 413) and _PAST_THE_WINDOW.search(message) is not None


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        if value.get("type") in ("image", "image_url"):  # counted by pixels (`images_tokens`), not base64
            return 8
        total = 0
        for key, item in value.items():
            if key in ("cache_control", "signature"):
                continue
            total += (
                _chars(item)
                if not isinstance(item, dict | list) or key != "input"
                else len(json.dumps(item, ensure_ascii=False))
            )
        return total + 8
    if isinstance(value, list | tuple):
        return sum(_chars(item) for item in value)
    return len(str(value)) if value is not None else 0


def estimate_tokens(value: Any) -> int:
    """A rough token count of messages, blocks or text (characters / 3.5, erring high; images by the API's
    rule)."""
    return int(_chars(value) / _CHARS_PER_TOKEN) + 1 + images_tokens(value)


@dataclass(frozen=True)
class MemoryPlan:
    """What to do before the next request: the estimated context, and whether to mask and condense."""

    tokens: int
    mask: bool
    condense: bool


class Memory:
    """The context accounting of one run (see the module docstring)."""

    def __init__(self, settings: MemorySettings, window: int) -> None:
        self.settings = settings
        self.window = window
        self._measured = 0
        """Tokens of the conversation as of the last response (prompt + output), from its usage."""
        self._measured_len = 0
        """len(messages) the measurement covers."""
        self._prefix_chars = 0
        self.chars_per_token = _CHARS_PER_TOKEN
        """Characters per token of this run's text, learned from the usage the API reports (3.5 until
        then): the thresholds are shares of the real window, not of a guess that errs high."""
        self.masked_batches = 0
        self.condensations = 0

    def set_prefix(self, system: Any, tools: Any) -> None:
        """The system prompt and tool definitions (estimated once; they never change)."""
        self._prefix_chars = _chars(system) + _chars(tools)

    def _tokens(self, chars: int) -> int:
        return int(chars / self.chars_per_token) + 1

    def observe(self, usage: Usage, messages: Sequence[Mapping[str, Any]] | int) -> None:
        """Record a response's usage; `messages`: the conversation including that response (or, without
        calibration, its length)."""
        measured = usage.total_input_tokens + usage.output_tokens
        self._measured = measured
        if isinstance(messages, int):
            self._measured_len = messages
            return
        self._measured_len = len(messages)
        text_tokens = measured - images_tokens(list(messages))
        if text_tokens > 0:
            chars = self._prefix_chars + _chars(list(messages))
            self.chars_per_token = min(_MAX_CHARS_PER_TOKEN, max(_MIN_CHARS_PER_TOKEN, chars / text_tokens))

    def forget_measurement(self) -> None:
        """History was rewritten: estimate from the text until the next response is measured."""
        self._measured = 0
        self._measured_len = 0

    def estimate(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens the next request's prompt will have (the larger of the measured and estimated sizes)."""
        by_text = self._tokens(self._prefix_chars + _chars(list(messages))) + images_tokens(list(messages))
        if self._measured and self._measured_len <= len(messages):
            new = list(messages[self._measured_len :])
            by_usage = self._measured + self._tokens(_chars(new)) + images_tokens(new)
            return max(by_usage, by_text)
        return by_text

    def plan(self, messages: Sequence[Mapping[str, Any]]) -> MemoryPlan:
        """Whether the conversation must be masked or condensed before the next request."""
        tokens = self.estimate(messages)
        if not self.settings.enabled:
            return MemoryPlan(tokens, False, False)
        return MemoryPlan(
            tokens,
            mask=tokens > self.settings.mask_at * self.window,
            condense=tokens > self.settings.condense_at * self.window,
        )

    def mask(self, messages: list[dict[str, Any]], keep: int | None = None) -> tuple[int | None, int]:
        """Mask old tool results in place; (index of the first changed message or None, blocks masked)."""
        keep = self.settings.keep_tool_results if keep is None else keep
        calls: dict[str, tuple[str, Any]] = {}
        positions: list[tuple[int, int]] = []
        for index, message in enumerate(messages):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for number, block in enumerate(content):
                if not isinstance(block, Mapping):
                    continue
                if block.get("type") == "tool_use":
                    calls[str(block.get("id", ""))] = (str(block.get("name", "")), block.get("input"))
                elif block.get("type") == "tool_result":
                    positions.append((index, number))
        keep = self._kept(messages, positions, keep)
        old = positions[: max(0, len(positions) - keep)]
        first: int | None = None
        count = 0
        for index, number in old:
            block = messages[index]["content"][number]
            text = _result_text(block)
            if text.startswith(MASKED_PREFIX) or len(text) < self.settings.min_mask_chars:
                continue
            name, input = calls.get(str(block.get("tool_use_id", "")), ("", None))
            stub = f"{MASKED_PREFIX} {len(text):,} characters of {_describe(name, input)}. {_reread(name)}]"
            new_block = {key: value for key, value in block.items() if key != "content"}
            new_block["content"] = stub
            content = list(messages[index]["content"])
            content[number] = new_block
            messages[index] = {**messages[index], "content": content}
            count += 1
            first = index if first is None else min(first, index)
        if count:
            self.masked_batches += 1
            self.forget_measurement()
            if keep and len(positions) >= keep:
                kept = positions[-keep][0]
                anchor = next((i for i in range(kept - 1, -1, -1) if messages[i].get("role") == "user"), None)
                _set_anchor(messages, anchor)
        return first, count

    def _kept(
        self, messages: Sequence[Mapping[str, Any]], positions: Sequence[tuple[int, int]], keep: int
    ) -> int:
        """How many of the newest `keep` results stay whole: while they fit `keep_share` of the window."""
        budget = self.settings.keep_share * self.window
        newest = positions[max(0, len(positions) - keep) :] if keep else []
        used = 0
        for count, (index, number) in enumerate(reversed(newest)):
            block = messages[index]["content"][number]
            used += self._tokens(len(_result_text(block))) + images_tokens(block)
            if count and used > budget:
                return count
        return min(keep, len(positions))

    def images_due(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        """Whether old images must go: more than `max_images`, more than `MANY_IMAGES` with the new ones
        (several calls of one turn), more base64 data than a request may carry
        (`MAX_IMAGE_BYTES_IN_REQUEST`), or one older than `image_turns` model turns."""
        ages = _ages(messages)
        every = list(image_positions(messages))
        found = [(at, block) for at, block in every if ages[at.message] > 0]
        if len(every) > MANY_IMAGES:
            return True
        if not found:
            return False
        return (
            len(found) > self.settings.max_images
            or sum(base64_bytes(block) for _, block in found) > MAX_IMAGE_BYTES_IN_REQUEST
            or ages[found[0][0].message] > self.settings.image_turns
        )

    def drop_images(self, messages: list[dict[str, Any]], keep: int | None = None) -> tuple[int | None, int]:
        """Replace old images by their names, in place; (index of the first changed message or None, images
        replaced). Kept: every image the model has not answered yet, and of the others the newest `keep`
        (None: half of `max_images`, within half of `image_turns` and of the bytes a request may carry,
        so that the next batch is some turns away), as far as a request keeps at most `MANY_IMAGES`. Past
        that with new images alone (one turn's calls returned more), enough of those over `MANY_MAX_SIDE`
        pixels a side go too, since the API refuses them in such a request."""
        ages = _ages(messages)
        every = list(image_positions(messages))
        found = [(at, block) for at, block in every if ages[at.message] > 0]
        new = [(at, block) for at, block in every if ages[at.message] == 0]
        if keep is None:
            turns, room, limit = (
                self.settings.image_turns // 2,
                MAX_IMAGE_BYTES_IN_REQUEST // 2,
                self.settings.max_images // 2,
            )
        else:
            turns, room, limit = len(messages), MAX_IMAGE_BYTES_IN_REQUEST, keep
        limit = min(limit, max(0, MANY_IMAGES - len(new)))
        left = 0
        dropped = []
        for at, block in reversed(found):  # newest first
            size = base64_bytes(block)
            if left < limit and ages[at.message] <= turns and size <= room:
                left += 1
                room -= size
            else:
                dropped.append(at)
        # More than MANY_IMAGES new ones: leave out enough of those over MANY_MAX_SIDE (which the API refuses
        # in such a request) to come down to MANY_IMAGES, or all of them.
        excess = len(new) - MANY_IMAGES
        wide = [at for at, block in new if max(sides(block)) > MANY_MAX_SIDE][: max(0, excess)]
        if not dropped and not wide:
            return None, 0
        replace_images(messages, dropped, IMAGE_REMOVED)
        replace_images(
            messages,
            wide,
            f"left out: over {MANY_MAX_SIDE:,} px a side, which the API refuses in a request of more than "
            f"{MANY_IMAGES} images",
        )
        self.forget_measurement()
        return min(at.message for at in [*dropped, *wide]), len(dropped) + len(wide)


def _ages(messages: Sequence[Mapping[str, Any]]) -> list[int]:
    """For each message, how many model (assistant) turns came after it."""
    ages = [0] * len(messages)
    later = 0
    for index in range(len(messages) - 1, -1, -1):
        ages[index] = later
        if messages[index].get("role") == "assistant":
            later += 1
    return ages


def _set_anchor(messages: list[dict[str, Any]], anchor: int | None) -> None:
    """Mark `messages[anchor]` `CACHE_ANCHOR`, keeping the newest earlier mark (the request right after a
    batch reads the prefix written there) and dropping older ones (copies, never edits in place)."""
    marked = [index for index, message in enumerate(messages) if message.get(CACHE_ANCHOR)]
    keep = {anchor, *[index for index in marked if anchor is None or index < anchor][-1:]}
    for index in marked:
        if index not in keep:
            messages[index] = {key: value for key, value in messages[index].items() if key != CACHE_ANCHOR}
    if anchor is not None:
        messages[anchor] = {**messages[anchor], CACHE_ANCHOR: True}


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _describe(name: str, input: Any) -> str:
    if not isinstance(input, Mapping):
        return f"the {name or 'tool'} output"
    if name == "bash" and input.get("command"):
        return f"the output of `{str(input['command'])[:120]}`"
    path = input.get("path")
    command = input.get("command")
    if path:
        return f"the {name} {command or 'call'} on {str(path)[:120]}"
    query = input.get("query") or input.get("pattern") or input.get("name")
    if query:
        return f"the {name} result for {str(query)[:120]!r}"
    return f"the {name or 'tool'} output"


def _reread(name: str) -> str:
    if name == "bash":
        return "Run the command again if you still need it"
    if name in ("str_replace_based_edit_tool", "str_replace_editor"):
        return "View the file again if you still need it"
    return "Call the tool again if you still need it"


def condensed_history(
    messages: Sequence[dict[str, Any]], summary: str, *, keep_turns: int, facts: str = ""
) -> list[dict[str, Any]]:
    """[first turn, the handoff summary, a user turn that resumes, the newest `keep_turns` exchanges].

    The kept tail starts at an assistant turn, so every tool result still follows its tool call.
    """
    first = messages[0]
    starts = [index for index in range(1, len(messages)) if messages[index].get("role") == "assistant"]
    tail_start = (
        starts[-keep_turns]
        if keep_turns and len(starts) >= keep_turns
        else (starts[0] if keep_turns and starts else len(messages))
    )
    tail = [dict(message) for message in messages[tail_start:]]
    note = (
        "The conversation before this point was condensed to save context; the note above is your own "
        "handoff summary of it. Continue the task from there."
    )
    if facts:
        note += f"\n\n{facts}"
    if tail:
        note += " The newest turns follow."
    history = [
        {key: value for key, value in first.items() if key != CACHE_ANCHOR},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": f"Handoff summary of the work so far:\n\n{summary}"}],
        },
        {"role": "user", "content": [{"type": "text", "text": note}]},
        *tail,
    ]
    # The first turn is read back by the next request; the note after the handoff by the ones after it
    # (the next masking changes only the kept turns that follow it).
    _set_anchor(history, 0)
    _set_anchor(history, 2)
    return history
