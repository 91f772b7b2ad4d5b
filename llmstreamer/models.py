"""Value types that cross the API: messages and their parts, tool calls, usage, responses, events.

Everything here is an immutable ``attrs`` value. Build messages with the named constructors
(``Message.user("Hi")``); wire JSON never goes through ``Message(**json)``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Sequence

import attrs

from ._parts import (
    PART_TYPES,
    DocumentPart,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    brief,
    part_from_dict,
    part_to_dict,
)
from .errors import ConfigurationError

__all__ = [
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


def _to_parts(content: Any) -> tuple[Part, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    if isinstance(content, PART_TYPES):
        return (content,)
    parts = tuple(content)
    for part in parts:
        if not isinstance(part, PART_TYPES):
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
        return {"role": self.role, "content": [part_to_dict(p) for p in self.content]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Read a message from ``{"role", "content"}``, where content is text or a list of parts."""
        if not isinstance(data, Mapping) or "role" not in data:
            raise ConfigurationError(f"a message dict needs 'role' and 'content', got {brief(data)}")
        content = data.get("content")
        if isinstance(content, list):
            content = [part_from_dict(p) for p in content]
        elif content is not None and not isinstance(content, str):
            raise ConfigurationError(f"message content must be text or a list of parts, got {brief(content)}")
        return cls(data["role"], content)


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

    def to_dict(self) -> dict[str, int]:
        """The JSON form: the five counts by name."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Read back `to_dict` output (a missing count is 0; a missing total is the sum)."""
        counts = {k: int(data.get(k) or 0) for k in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")}
        total = data.get("total_tokens")
        return cls(**counts) if total is None else cls(**counts, total_tokens=int(total))

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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the CLI's ``--json`` finish event and the web bridges' ``done`` event).

        The text, thinking, tool calls, finish reason and usage, the provider, model and
        request id, the timing, and every message of the turn; `from_dict` reads it back.
        """
        return {
            "text": self.text,
            "thinking": self.thinking,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": None if self.usage is None else self.usage.to_dict(),
            "model": self.model,
            "provider": self.provider,
            "request_id": self.request_id,
            "time_to_first_token": self.time_to_first_token,
            "duration": self.duration,
            "messages": [m.to_dict() for m in self.messages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Response:
        """Read back `to_dict` output; ``message`` is the last assistant message of ``messages``."""
        messages = tuple(Message.from_dict(m) for m in data.get("messages") or ())
        usage = data.get("usage")
        return cls(
            text=data.get("text") or "",
            thinking=data.get("thinking") or "",
            tool_calls=tuple(ToolCall.from_dict(c) for c in data.get("tool_calls") or ()),
            finish_reason=data.get("finish_reason") or "stop",
            usage=None if usage is None else Usage.from_dict(usage),
            model=data.get("model") or "",
            provider=data.get("provider") or "",
            request_id=data.get("request_id"),
            time_to_first_token=data.get("time_to_first_token"),
            duration=data.get("duration") or 0.0,
            message=next((m for m in reversed(messages) if m.role == "assistant"), Message("assistant")),
            messages=messages,
        )

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
