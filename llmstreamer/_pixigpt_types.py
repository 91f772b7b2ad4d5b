"""The values PixiGPT's REST API returns, as frozen attrs classes read from its JSON.

Every reader takes the answer's JSON object and keeps only what it knows; a missing optional
field becomes its default, so a server that adds fields breaks nothing. Shapes (OpenAI-like):
assistants ``{id, name, instructions, tools_config, created_at}``, threads ``{id, created_at,
metadata}``, thread messages ``{id, thread_id, role, content: [{type: "text", text: {value}}],
reasoning_content, sources, media, code}``, runs ``{id, thread_id, assistant_id, status, model,
message, last_error | error}``.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

import attrs

from .errors import StreamError

_T = TypeVar("_T")

__all__ = [
    "Assistant",
    "CodeOutput",
    "Media",
    "Moderation",
    "RerankResult",
    "Run",
    "Source",
    "Thread",
    "ThreadMessage",
    "VisionResult",
    "read",
    "run_error",
]


def read(cls: type[_T], data: Any) -> _T:
    """``cls.from_json(data)``; a malformed answer is a `StreamError` naming what was expected."""
    try:
        found: _T = cls.from_json(data)  # type: ignore[attr-defined]
        return found
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StreamError(f"malformed {cls.__name__} in the answer ({type(exc).__name__}: {exc})", provider="pixigpt") from exc


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@attrs.frozen
class Assistant:
    """An assistant: a name, instructions and a tools configuration, kept on the server."""

    id: str
    name: str = ""
    instructions: str = ""
    tools_config: str | None = None
    created_at: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assistant:
        """Read an assistant from its JSON object."""
        return cls(
            str(data["id"]),
            str(data.get("name") or ""),
            str(data.get("instructions") or ""),
            _opt_str(data.get("tools_config")),
            _opt_int(data.get("created_at")),
        )


@attrs.frozen
class Thread:
    """A conversation thread kept on the server."""

    id: str
    created_at: int | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thread:
        """Read a thread from its JSON object."""
        meta = data.get("metadata")
        return cls(str(data["id"]), _opt_int(data.get("created_at")), dict(meta) if isinstance(meta, Mapping) else {})


@attrs.frozen
class Source:
    """A source a tool used for the answer (web search, fetch)."""

    id: str
    tool_name: str = ""
    title: str | None = None
    url: str | None = None
    snippet: str | None = None


@attrs.frozen
class Media:
    """An image or audio a tool made; ``signed_url`` is temporary (about 24 hours)."""

    id: str
    source: str = ""
    type: str = ""
    signed_url: str = attrs.field(default="", repr=False)
    prompt: str | None = None
    description: str | None = None


@attrs.frozen
class CodeOutput:
    """Code the assistant ran, with what it printed."""

    id: str
    language: str = ""
    code: str = ""
    stdout: str | None = None
    stderr: str | None = None
    execution_time_ms: int | None = None


def _items(cls: type, values: Any) -> tuple[Any, ...]:
    names = [a.name for a in attrs.fields(cls)]
    out = []
    for value in values or ():
        if isinstance(value, Mapping) and "id" in value:
            out.append(cls(**{n: value[n] for n in names if value.get(n) is not None}))
    return tuple(out)


@attrs.frozen
class ThreadMessage:
    """A message of a thread: its text, and for answers the reasoning and what tools produced."""

    id: str
    thread_id: str = ""
    role: str = ""
    text: str = ""
    reasoning: str = ""
    sources: tuple[Source, ...] = ()
    media: tuple[Media, ...] = ()
    code: tuple[CodeOutput, ...] = ()
    created_at: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThreadMessage:
        """Read a message; ``content`` may be a string or a list of ``{type: "text", text: {value}}``."""
        content = data.get("content")
        if isinstance(content, str):
            text = content
        else:
            pieces = []
            for part in content or ():
                inner = part.get("text") if isinstance(part, Mapping) else None
                value = inner.get("value") if isinstance(inner, Mapping) else inner
                if isinstance(value, str):
                    pieces.append(value)
            text = "".join(pieces)
        return cls(
            str(data["id"]),
            str(data.get("thread_id") or ""),
            str(data.get("role") or ""),
            text,
            str(data.get("reasoning_content") or ""),
            _items(Source, data.get("sources")),
            _items(Media, data.get("media")),
            _items(CodeOutput, data.get("code")),
            _opt_int(data.get("created_at")),
        )


@attrs.frozen
class Run:
    """One run of an assistant on a thread.

    Attributes:
        status: ``queued``, ``in_progress``, ``completed``, ``failed``, ``cancelled``,
            ``expired``, ``requires_action``... as the server says.
        message: The answer, once completed.
        error: The server's error detail for a failed run (``last_error.message`` or ``error``).
        error_code: The server's error code, if it gave one.
    """

    id: str
    thread_id: str = ""
    assistant_id: str = ""
    status: str = ""
    model: str = ""
    created_at: int | None = None
    message: ThreadMessage | None = None
    error: str | None = None
    error_code: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        """Read a run; a completed one embeds its ``message``."""
        message = data.get("message")
        detail, code = run_error(data)
        return cls(
            str(data["id"]),
            str(data.get("thread_id") or ""),
            str(data.get("assistant_id") or ""),
            str(data.get("status") or ""),
            str(data.get("model") or ""),
            _opt_int(data.get("created_at")),
            ThreadMessage.from_json(message) if isinstance(message, Mapping) and "id" in message else None,
            detail,
            code,
        )


def run_error(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The error detail and code of a run: ``last_error: {code, message}`` or ``error`` (text or object)."""
    for name in ("last_error", "error"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value, None
        if isinstance(value, Mapping):
            message = value.get("message")
            code = value.get("code") or value.get("type")
            return (str(message) if message is not None else None), (str(code) if code is not None else None)
    return None, None


@attrs.frozen
class RerankResult:
    """One document of a rerank, by relevance."""

    index: int
    document: str
    relevance_score: float


@attrs.frozen
class Moderation:
    """A moderation verdict: the category (``SAFE``...) and its score."""

    category: str
    score: float
    total_tokens: int | None = None


@attrs.frozen
class VisionResult:
    """The text a vision endpoint returned (analysis, tags or OCR)."""

    result: str
    total_tokens: int | None = None
