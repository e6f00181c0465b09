"""Images in the conversation: what the Messages API takes, what one costs, and their names when left out.

An MCP tool's result may hold images (a browser's screenshot, a chart). `accept_image` checks one
against the Messages API's limits before it is sent, so that no request is refused for it: PNG, JPEG,
GIF or WebP (its real type is read from its first bytes, since the API refuses data that is not of the
type it is said to be), at most `MAX_BASE64_BYTES` of base64 data (5 MiB) and `MAX_SIDE` pixels (8,000)
a side; what it refuses comes back as the reason, for the note the model reads instead. An accepted
image is a `ToolImage`, whose `block()` is the canonical `image` block that goes into a `tool_result`'s
content beside its text.

A request may hold at most 100 images, each at most 2,000 pixels a side once there are more than
`MANY_IMAGES` (20), and at most 32 MB in all: the conversation keeps fewer (`agent.memory`,
`MemorySettings.max_images`, at most 20, and `MAX_IMAGE_BYTES_IN_REQUEST`); older ones are replaced
by their name (`name`, `replace_images`).

`image_tokens` is the API's rule for what an image costs: about width x height / 750 tokens, after the
API scales an image down to 1,568 pixels on its long edge (about 1,600 tokens at most), so the context
accounting counts an image by its pixels, not by the length of its base64 text. `without_images` turns
every image of a conversation into a note, for a model that cannot see (`agent.model.vision`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MANY_IMAGES",
    "MANY_MAX_SIDE",
    "MAX_BASE64_BYTES",
    "MAX_IMAGE_BYTES_IN_REQUEST",
    "MAX_SIDE",
    "MEDIA_TYPES",
    "NOT_SEEN",
    "ImageAt",
    "ToolImage",
    "accept_image",
    "base64_bytes",
    "image_positions",
    "image_tokens",
    "images_tokens",
    "is_image",
    "metadata_text",
    "name",
    "replace_images",
    "sides",
    "size_text",
    "without_images",
]

MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The image types the Messages API takes."""
MAX_BASE64_BYTES = 5 * 1024 * 1024
"""The API refuses an image whose base64 data is longer ("image exceeds 5 MB maximum")."""
MAX_SIDE = 8_000
"""The API refuses an image wider or taller than this many pixels."""
MANY_IMAGES = 20
"""Past this many images in one request the API refuses any wider or taller than `MANY_MAX_SIDE`: a
conversation keeps at most this many (`MemorySettings.max_images`)."""
MANY_MAX_SIDE = 2_000
MAX_IMAGE_BYTES_IN_REQUEST = 20 * 1024 * 1024
"""The base64 data of the images a conversation keeps, at most: a request may be 32 MB in all."""
NOT_SEEN = "left out: this model cannot see images (agent.model.vision)"
"""The note that stands for an image sent to a model that cannot see (`without_images`)."""
_LONG_EDGE = 1_568
"""The API scales an image down to this many pixels on its long edge before the model sees it."""
_MAX_IMAGE_TOKENS = 1_600
"""... and to about this many tokens."""


@dataclass(frozen=True)
class ToolImage:
    """An image of a tool's result that the API takes (`accept_image`)."""

    media_type: str
    data: str
    """The image file, base64."""
    width: int
    height: int

    def block(self) -> dict[str, Any]:
        """The canonical (and Messages API) `image` block."""
        source = {"type": "base64", "media_type": self.media_type, "data": self.data}
        return {"type": "image", "source": source}


def metadata_text(data: str) -> str:
    """The text an image file carries besides its pixels, one piece a line, for the secret detectors: runs
    of 8 or more printable characters (PNG ``tEXt`` and ``iTXt``, JPEG comments, EXIF and XMP, GIF
    comments, WebP's EXIF and XMP all hold their text as it is) and the text of PNG's compressed ``zTXt``
    and ``iTXt`` chunks. Pixels are not read, nor XMP's digests and ids (`_XMP_DIGEST`)."""
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return ""
    pieces = [_XMP_DIGEST.sub("", match.decode("latin-1")) for match in _PRINTABLE.findall(raw)]
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        pieces += _png_compressed_text(raw)
    return "\n".join(pieces)


_PRINTABLE = re.compile(rb"[\x20-\x7e]{8,}")
_XMP_DIGEST = re.compile(r"""\b[\w:]*(?:Digest|ID)=(["'])[^"']*\1""")
"""XMP's digests and document ids (``crs:CameraProfileDigest="D6AF..."``, ``xmpMM:InstanceID=...``): hex
that the entropy detector would take for a key, in every photo an editor saved."""
_MAX_TEXT_CHUNK = 1 << 20
"""Bytes of text at most taken from one compressed PNG chunk."""


def _png_compressed_text(raw: bytes) -> list[str]:
    """The texts of a PNG's ``zTXt`` chunks and compressed ``iTXt`` chunks, decompressed (bounded)."""
    texts: list[str] = []
    at = 8
    while at + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[at : at + 8])
        body = raw[at + 8 : at + 8 + length]
        at += 12 + length
        packed: bytes | None = None
        if kind == b"zTXt":
            keyword, _, rest = body.partition(b"\x00")
            packed = rest[1:]  # after the compression method
        elif kind == b"iTXt":
            keyword, _, rest = body.partition(b"\x00")
            if rest[:1] == b"\x01":  # compressed
                # method, then the language tag and the translated keyword, each ended by a zero byte
                packed = rest[2:].split(b"\x00", 2)[-1]
        if packed is None:
            continue
        try:
            text = zlib.decompressobj().decompress(packed, _MAX_TEXT_CHUNK)
        except zlib.error:
            continue
        texts.append(keyword.decode("latin-1") + "\n" + text.decode("utf-8", "replace"))
    return texts


def size_text(count: int) -> str:
    """A byte count for people: "68 bytes", "34 KiB", "5.2 MiB"."""
    if count < 1024:
        return f"{count:,} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def _sniff(raw: bytes) -> str | None:
    """The image type of a file from its first bytes (None: not one the API takes)."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 <= len(raw):
        if raw[index] != 0xFF:
            return None
        marker = raw[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            index += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            height, width = struct.unpack(">HH", raw[index + 5 : index + 9])
            return width, height
        index += 2 + struct.unpack(">H", raw[index + 2 : index + 4])[0]
    return None


def _webp_size(raw: bytes) -> tuple[int, int] | None:
    chunk = raw[12:16]
    if chunk == b"VP8X" and len(raw) >= 30:
        return int.from_bytes(raw[24:27], "little") + 1, int.from_bytes(raw[27:30], "little") + 1
    if chunk == b"VP8L" and len(raw) >= 25 and raw[20] == 0x2F:
        bits = int.from_bytes(raw[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(raw) >= 30 and raw[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", raw[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _dimensions(raw: bytes, media_type: str) -> tuple[int, int] | None:
    """(width, height) in pixels read from the file's header, or None when it cannot be read."""
    try:
        if media_type == "image/png" and raw[12:16] == b"IHDR":
            width, height = struct.unpack(">II", raw[16:24])
            return width, height
        if media_type == "image/gif":
            width, height = struct.unpack("<HH", raw[6:10])
            return width, height
        if media_type == "image/jpeg":
            return _jpeg_size(raw)
        if media_type == "image/webp":
            return _webp_size(raw)
    except struct.error:
        return None
    return None


def accept_image(data: str, declared: str | None) -> ToolImage | str:
    """The image whose base64 file is `data` (said to be of type `declared`) as the API takes it, or why
    it cannot be sent (a reason the model reads: "over the API's 5 MiB limit ...")."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "its data is not valid base64"
    kind = _sniff(raw)
    if kind is None:
        if declared not in MEDIA_TYPES:
            return "the model takes only PNG, JPEG, GIF and WebP images"
        return f"its data is not a {declared.removeprefix('image/').upper()} image"
    if len(data) > MAX_BASE64_BYTES:
        return (
            f"{size_text(len(data))} of base64 data, over the API's limit of "
            f"{size_text(MAX_BASE64_BYTES)} an image"
        )
    size = _dimensions(raw, kind)
    if size is None or min(size) < 1:
        return "its width and height cannot be read"
    if max(size) > MAX_SIDE:
        return f"{size[0]}x{size[1]} px, over the API's limit of {MAX_SIDE:,} px a side"
    return ToolImage(kind, data, size[0], size[1])


def image_tokens(width: int, height: int) -> int:
    """What an image costs in the API's rule: width x height / 750 tokens, once scaled down to 1,568
    pixels on its long edge and about 1,600 tokens."""
    scale = min(1.0, _LONG_EDGE / max(width, height, 1))
    return max(1, min(_MAX_IMAGE_TOKENS, math.ceil(width * scale * height * scale / 750)))


def is_image(block: object) -> bool:
    """Whether `block` is an `image` block."""
    return isinstance(block, Mapping) and block.get("type") == "image"


@dataclass(frozen=True)
class _Info:
    media_type: str
    width: int
    height: int
    bytes: int
    base64_bytes: int


@functools.lru_cache(maxsize=64)
def _info_of(data: str, media_type: str) -> _Info:
    """An image's size, read once per image (the context is measured before every request)."""
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError):
        raw = b""
    width, height = _dimensions(raw, _sniff(raw) or media_type) or (0, 0)
    return _Info(media_type, width, height, len(raw), len(data))


def _info(block: Mapping[str, Any]) -> _Info:
    source = block.get("source")
    source = source if isinstance(source, Mapping) else {}
    return _info_of(str(source.get("data", "")), str(source.get("media_type", "image")))


def _tokens(block: Mapping[str, Any]) -> int:
    info = _info(block)
    if not info.width or not info.height:  # unreadable: as the API's worst case
        return _MAX_IMAGE_TOKENS
    return image_tokens(info.width, info.height)


def sides(block: Mapping[str, Any]) -> tuple[int, int]:
    """An image block's width and height in pixels ((0, 0) when they cannot be read)."""
    info = _info(block)
    return info.width, info.height


def name(block: Mapping[str, Any]) -> str:
    """An image block's type, pixels and size: "image/png, 64x48 px, 2 KiB"."""
    info = _info(block)
    pixels = f", {info.width}x{info.height} px" if info.width and info.height else ""
    return f"{info.media_type}{pixels}, {size_text(info.bytes)}"


@dataclass(frozen=True)
class ImageAt:
    """Where an image block is: `messages[message]["content"][block]`, and inside that block's own
    content at `inner` (a `tool_result`'s) unless None."""

    message: int
    block: int
    inner: int | None


def image_positions(messages: Sequence[Mapping[str, Any]]) -> Iterator[tuple[ImageAt, Mapping[str, Any]]]:
    """Every image block of a conversation with where it is, oldest first."""
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for number, block in enumerate(content):
            if is_image(block):
                yield ImageAt(index, number, None), block
            elif isinstance(block, Mapping) and isinstance(block.get("content"), list):
                for inner, item in enumerate(block["content"]):
                    if is_image(item):
                        yield ImageAt(index, number, inner), item


def images_tokens(value: Any) -> int:
    """The tokens of every image block in `value` (messages, blocks; Chat Completions' `image_url` parts
    too), by the API's rule."""
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return _tokens(value)
        if value.get("type") == "image_url":  # Chat Completions: a data URL
            url = str((value.get("image_url") or {}).get("url", ""))
            media_type, _, data = url.removeprefix("data:").partition(";base64,")
            return _tokens({"source": {"media_type": media_type, "data": data}})
        return sum(images_tokens(item) for item in value.values() if isinstance(item, list | tuple))
    if isinstance(value, list | tuple):
        return sum(images_tokens(item) for item in value)
    return 0


def base64_bytes(block: Mapping[str, Any]) -> int:
    """The length of an image block's base64 data."""
    return _info(block).base64_bytes


def replace_images(
    messages: list[dict[str, Any]], where: Sequence[ImageAt], note: str
) -> list[dict[str, Any]]:
    """`messages` with the image blocks at `where` replaced by a text block "[image (NAME) NOTE]" (changed
    messages and blocks are copies; the list is changed in place and returned)."""
    for at in sorted(where, key=lambda at: (at.message, at.block, at.inner or 0), reverse=True):
        message = messages[at.message]
        content = list(message["content"])
        if at.inner is None:
            content[at.block] = {"type": "text", "text": f"[image ({name(content[at.block])}) {note}]"}
        else:
            holder = dict(content[at.block])
            inner = list(holder["content"])
            inner[at.inner] = {"type": "text", "text": f"[image ({name(inner[at.inner])}) {note}]"}
            holder["content"] = inner
            content[at.block] = holder
        messages[at.message] = {**message, "content": content}
    return messages


def without_images(messages: Sequence[Mapping[str, Any]], note: str) -> list[dict[str, Any]]:
    """Copies of `messages` with every image replaced by its name and `note` (a model that cannot see)."""
    copies = [dict(message) for message in messages]
    where = [at for at, _ in image_positions(copies)]
    return replace_images(copies, where, note) if where else copies
