"""Value types that cross the API: messages and their parts, tool calls, usage, responses, events.

Everything here is an immutable ``attrs`` value. Build messages with the named constructors
(``Message.user("Hi")``); wire JSON never goes through ``Message(**json)``.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Iterable, Mapping, Sequence, Union

import attrs

from ._documents import DocumentPart
from .errors import ConfigurationError

__all__ = [
    "FINISH_REASONS",
    "ROLES",
    "DocumentPart",
    "Event",
    "ImagePart",
    "Message",
    "Model",
    "Part",
    "Response",
    "TextPart",
    "ThinkingPart",
    "ToolCall",
    "ToolResult",
    "Usage",
]

ROLES = frozenset({"system", "user", "assistant", "tool"})

FINISH_REASONS = frozenset(
    {"stop", "length", "tool_calls", "content_filter", "max_iterations", "cancelled", "error"}
)


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


@attrs.frozen
class ToolResult:
    """The outcome of one tool call, sent back to the model."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


Part = Union[TextPart, ImagePart, DocumentPart, ThinkingPart, ToolCall, ToolResult]
_PART_TYPES = (TextPart, ImagePart, DocumentPart, ThinkingPart, ToolCall, ToolResult)


def _to_parts(content: Any) -> tuple[Part, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    if isinstance(content, _PART_TYPES):
        return (content,)
    parts = tuple(content)
    for part in parts:
        if not isinstance(part, _PART_TYPES):
            raise ConfigurationError(
                f"message content must be text or message parts, not {type(part).__name__}"
            )
    return parts


def _check_role(_inst: Any, _attr: Any, role: str) -> None:
    if role not in ROLES:
        raise ConfigurationError(f"unknown role {role!r} (expected one of {', '.join(sorted(ROLES))})")


@attrs.frozen
class Message:
    """One message of a conversation: a role and a tuple of parts.

    Example::

        Message.user("What is in this picture?", images=["cat.png"])
        Message.system("Answer in French.")
    """

    role: str = attrs.field(validator=_check_role)
    content: tuple[Part, ...] = attrs.field(converter=_to_parts, factory=tuple)

    @classmethod
    def user(
        cls,
        text: str = "",
        *,
        images: Iterable[str | bytes | ImagePart] = (),
        documents: Iterable[str | os.PathLike[str] | DocumentPart] = (),
    ) -> Message:
        """A user message, optionally with images (paths, bytes, URLs or `ImagePart`) and
        documents (local paths or `DocumentPart`: PDFs and text files)."""
        parts: list[Part] = [TextPart(text)] if text else []
        parts += [i if isinstance(i, ImagePart) else ImagePart.load(i) for i in images]
        parts += [d if isinstance(d, DocumentPart) else DocumentPart.load(d) for d in documents]
        return cls("user", parts)

    @classmethod
    def system(cls, text: str) -> Message:
        """A system message."""
        return cls("system", text)

    @classmethod
    def assistant(
        cls, text: str = "", *, thinking: Sequence[ThinkingPart] = (), tool_calls: Sequence[ToolCall] = ()
    ) -> Message:
        """An assistant message (thinking first, then text, then tool calls)."""
        return cls("assistant", [*thinking, *([TextPart(text)] if text else []), *tool_calls])

    @classmethod
    def tool(cls, results: Iterable[ToolResult]) -> Message:
        """The results of tool calls, sent back to the model."""
        return cls("tool", tuple(results))

    @property
    def text(self) -> str:
        """All text parts joined."""
        return "".join(p.text for p in self.content if type(p) is TextPart)

    @property
    def thinking(self) -> str:
        """All thinking parts joined."""
        return "".join(p.text for p in self.content if type(p) is ThinkingPart)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls in this message."""
        return tuple(p for p in self.content if type(p) is ToolCall)

    @property
    def tool_results(self) -> tuple[ToolResult, ...]:
        """The tool results in this message."""
        return tuple(p for p in self.content if type(p) is ToolResult)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The images in this message."""
        return tuple(p for p in self.content if type(p) is ImagePart)

    @property
    def documents(self) -> tuple[DocumentPart, ...]:
        """The documents in this message."""
        return tuple(p for p in self.content if type(p) is DocumentPart)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `Message.from_dict` reads it back."""
        if all(type(p) is TextPart for p in self.content) and len(self.content) <= 1:
            return {"role": self.role, "content": self.text}
        return {"role": self.role, "content": [_part_to_dict(p) for p in self.content]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Read a message from ``{"role", "content"}``, where content is text or a list of parts."""
        if not isinstance(data, Mapping) or "role" not in data:
            raise ConfigurationError(f"a message dict needs 'role' and 'content', got {_brief(data)}")
        content = data.get("content")
        if isinstance(content, list):
            content = [_part_from_dict(p) for p in content]
        elif content is not None and not isinstance(content, str):
            raise ConfigurationError(f"message content must be text or a list of parts, got {_brief(content)}")
        return cls(data["role"], content)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _part_to_dict(part: Part) -> dict[str, Any]:
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
        return {
            "type": "tool_call",
            "id": part.id,
            "name": part.name,
            "arguments": dict(part.arguments),
            "raw_arguments": part.raw_arguments,
            "error": part.error,
            "signature": part.signature,
        }
    return {
        "type": "tool_result",
        "call_id": part.call_id,
        "name": part.name,
        "content": part.content,
        "is_error": part.is_error,
    }


def _part_from_dict(data: Any) -> Part:
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
            return ToolCall(
                data["id"],
                data["name"],
                data.get("arguments") or {},
                data.get("raw_arguments", ""),
                data.get("error"),
                data.get("signature"),
            )
        if kind == "tool_result":
            return ToolResult(data["call_id"], data["name"], data["content"], bool(data.get("is_error")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"malformed {kind} part: {_brief(data)}") from exc
    raise ConfigurationError(f"unknown message part {_brief(data)}")


@attrs.frozen
class Usage:
    """Token counts for a response (summed over tool rounds)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = attrs.field()

    @total_tokens.default
    def _total(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )


@attrs.frozen
class Response:
    """The whole answer of one `stream_chat` call, built from the stream.

    Attributes:
        text: All answer text of the turn, as streamed to ``on_content``.
        thinking: All thinking text of the turn, as streamed to ``on_thinking``.
        tool_calls: Every tool call of the turn, in order.
        finish_reason: ``stop``, ``length``, ``tool_calls``, ``content_filter``,
            ``max_iterations``, ``cancelled`` or ``error``.
        usage: Token counts summed over rounds, or None if the provider reported none.
        model: The model that answered (as the provider names it).
        provider: The provider's name.
        request_id: The provider's request id of the last round.
        time_to_first_token: Seconds from the call to the first content or thinking text.
        duration: Seconds from the call to the end of the stream.
        message: The final assistant `Message`, to append to the history.
        messages: Every message the turn added (assistant and tool messages, in order).
        round_usage: The usage of each round, in order.
    """

    text: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Usage | None = None
    model: str = ""
    provider: str = ""
    request_id: str | None = None
    time_to_first_token: float | None = None
    duration: float = 0.0
    message: Message = attrs.field(factory=lambda: Message("assistant"))
    messages: tuple[Message, ...] = ()
    round_usage: tuple[Usage, ...] = ()

    @property
    def parsed(self) -> Any:
        """The text decoded as JSON (for ``response_format``).

        Raises:
            ValueError: the text is not valid JSON; the exception message quotes its start.
        """
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise ValueError(f"the response is not valid JSON ({exc}): {self.text[:80]!r}") from exc


@attrs.frozen
class Model:
    """A model a provider offers, as `Streamer.list_models` returns it."""

    id: str
    provider: str
    created: int | None = None
    owned_by: str | None = None


@attrs.define(slots=True, frozen=True)
class Event:
    """One normalized event of a stream, as `Streamer.stream` yields it.

    ``type`` is one of ``content`` and ``thinking`` (``text`` holds the fragment),
    ``tool_call`` (``data`` is a `ToolCall`), ``tool_result`` (a `ToolResult`), ``usage``
    (a `Usage`), ``retry`` (``data`` is ``(error, attempt, delay)``) and ``finish`` (the final
    `Response`). Provider modules also emit internal types that the engine folds away.
    """

    type: str
    text: str = ""
    data: Any = None
