"""Message parts: text, images, thinking, tool calls and results, and their JSON forms.

``llmstreamer.models`` re-exports every public name here; import them from there.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Mapping, Union

import attrs

from ._documents import DocumentPart
from .errors import ConfigurationError

__all__ = [
    "PART_TYPES",
    "DocumentPart",
    "ImagePart",
    "Part",
    "TextPart",
    "ThinkingPart",
    "ToolCall",
    "ToolResult",
    "brief",
    "part_from_dict",
    "part_to_dict",
]


@attrs.frozen
class TextPart:
    """Plain text inside a message."""

    text: str


@attrs.frozen
class ImagePart:
    """An image inside a user message: raw bytes or a URL, with its MIME type.

    Build one with `ImagePart.load`, which takes a path, bytes or a URL and detects the MIME
    type from the bytes.
    """

    data: bytes | None = attrs.field(default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None")
    url: str | None = None
    mime_type: str = "image/png"

    @classmethod
    def load(cls, source: str | bytes | os.PathLike[str], mime_type: str | None = None) -> ImagePart:
        """Make an image part from a file path, raw bytes, an ``http(s)://`` or ``data:`` URL."""
        if isinstance(source, bytes):
            return cls(data=source, mime_type=mime_type or _sniff_mime(source))
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            return cls(url=text, mime_type=mime_type or _mime_from_name(text))
        if text.startswith("data:"):
            header, _, payload = text.partition(",")
            data = base64.b64decode(payload)
            return cls(data=data, mime_type=mime_type or header[5:].split(";")[0] or _sniff_mime(data))
        try:
            with open(text, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read image {text!r}: {exc.strerror}") from exc
        return cls(data=data, mime_type=mime_type or _sniff_mime(data))

    @property
    def base64(self) -> str:
        """The image bytes as base64 text (empty for a URL image)."""
        return base64.b64encode(self.data).decode("ascii") if self.data else ""


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff_mime(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ConfigurationError("not an image llmstreamer recognises (PNG, JPEG, GIF or WebP)")


def _mime_from_name(url: str) -> str:
    ext = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}.get(
        ext, "image/png"
    )


@attrs.frozen
class ThinkingPart:
    """The model's reasoning, kept verbatim so it can be sent back on the next turn.

    Attributes:
        text: The thinking text (empty for redacted thinking).
        signature: The provider's signature over the thinking (Anthropic, Gemini), if any.
        data: Opaque provider data kept as received (Anthropic redacted thinking, OpenRouter
            ``reasoning_details``), or None.
    """

    text: str = ""
    signature: str | None = None
    data: Any = None


@attrs.frozen
class ToolCall:
    """A call the model asked for.

    Attributes:
        id: The provider's call id (generated when the provider gives none).
        name: The tool's name.
        arguments: The decoded arguments (an empty dict when they did not parse).
        raw_arguments: The arguments exactly as received, as JSON text.
        error: Why the arguments could not be used (invalid JSON), or None.
        signature: A provider signature riding on the call (Gemini ``thoughtSignature``).
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    raw_arguments: str = ""
    error: str | None = None
    signature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (also in saved messages, the CLI's ``--json`` and the web events).

        ``id``, ``name`` and ``arguments`` always; ``raw_arguments``, ``error`` and
        ``signature`` when they hold something.
        """
        out: dict[str, Any] = {"id": self.id, "name": self.name, "arguments": dict(self.arguments)}
        if self.raw_arguments:
            out["raw_arguments"] = self.raw_arguments
        if self.error is not None:
            out["error"] = self.error
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Read back `to_dict` output (raises ``KeyError``/``TypeError`` on a malformed dict)."""
        return cls(
            data["id"],
            data["name"],
            data.get("arguments") or {},
            data.get("raw_arguments") or "",
            data.get("error"),
            data.get("signature"),
        )


@attrs.frozen
class ToolResult:
    """The outcome of one tool call, sent back to the model."""

    call_id: str
    name: str
    content: str
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``call_id``, ``name``, ``content``, ``is_error``."""
        return {"call_id": self.call_id, "name": self.name, "content": self.content, "is_error": self.is_error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolResult:
        """Read back `to_dict` output."""
        return cls(data["call_id"], data["name"], data["content"], bool(data.get("is_error")))


Part = Union[TextPart, ImagePart, DocumentPart, ThinkingPart, ToolCall, ToolResult]
PART_TYPES = (TextPart, ImagePart, DocumentPart, ThinkingPart, ToolCall, ToolResult)


def brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def part_to_dict(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        out: dict[str, Any] = {"type": "image", "mime_type": part.mime_type}
        if part.url:
            out["url"] = part.url
        else:
            out["data"] = part.base64
        return out
    if isinstance(part, DocumentPart):
        return {"type": "document", "name": part.name, "mime_type": part.mime_type, "data": part.base64}
    if isinstance(part, ThinkingPart):
        return {"type": "thinking", "text": part.text, "signature": part.signature, "data": part.data}
    if isinstance(part, ToolCall):
        return {"type": "tool_call", **part.to_dict()}
    return {"type": "tool_result", **part.to_dict()}


def part_from_dict(data: Any) -> Part:
    kind = data.get("type") if isinstance(data, Mapping) else None
    try:
        if kind == "text":
            return TextPart(data["text"])
        if kind == "image":
            if data.get("url"):
                return ImagePart(url=data["url"], mime_type=data.get("mime_type", "image/png"))
            return ImagePart(data=base64.b64decode(data["data"]), mime_type=data.get("mime_type", "image/png"))
        if kind == "document":  # inline data only: a path or a URL from a client is never read
            return DocumentPart(base64.b64decode(data["data"], validate=True), data["mime_type"], data.get("name", "document"))
        if kind == "thinking":
            return ThinkingPart(data.get("text", ""), data.get("signature"), data.get("data"))
        if kind == "tool_call":
            return ToolCall.from_dict(data)
        if kind == "tool_result":
            return ToolResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"malformed {kind} part: {brief(data)}") from exc
    raise ConfigurationError(f"unknown message part {brief(data)}")
