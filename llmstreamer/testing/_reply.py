"""`Reply`: what the fake server answers to one request, in provider-neutral terms."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

import attrs

from ..models import ToolCall, Usage

__all__ = ["RecordedRequest", "Reply", "words"]


def words(text: str) -> tuple[str, ...]:
    """Split text into word-sized chunks that join back exactly: ``"Hi there"`` → ``("Hi", " there")``."""
    return tuple(re.findall(r"\s*\S+|\s+$", text)) if text else ()


def _chunks(value: str | Sequence[str]) -> tuple[str, ...]:
    return words(value) if isinstance(value, str) else tuple(value)


_WRITES = ("whole", "event", "byte")
_TRANSFERS = ("chunked", "close", "length")


@attrs.frozen(kw_only=True)
class Reply:
    """A scripted answer, rendered in the wire format of whichever provider asked.

    The content fields say *what* the model answers; the framing fields say *how the bytes
    travel*, so one script exercises every transport edge.

    Content:
        text: The answer: a string (split into word chunks) or the exact chunks.
        thinking: Reasoning chunks, streamed before the text.
        signature: The thinking's signature (providers that sign thinking).
        tool_calls: Tool calls the model makes (streamed after the text).
        finish_reason: Normalized: ``stop``, ``length``, ``tool_calls``, ``content_filter``.
        usage: Token counts to report; None reports none.
        model: The model name to echo; None echoes the request's.
        error: An in-band error sent after the chunks, e.g.
            ``{"type": "overloaded_error", "message": "Overloaded"}``.
        status: The HTTP status. A non-200 status without ``body`` sends the provider's
            native error JSON built from ``error`` (or a default for the status).
        body: A raw body (bytes, text, or a dict sent as JSON) instead of a rendered stream.
        content_type: Overrides the Content-Type header.
        headers: Extra response headers.
        events: Raw wire events (one SSE event or NDJSON line each, without framing) that
            replace the rendered ones.
        truncate: Leave out the terminal event (``[DONE]``, ``message_stop``, ...).
        trailing: Raw wire events sent after the rendered ones (after the terminal event):
            junk a client must ignore. With ``stall_after`` past the last event, the
            connection then stays open and idle.

    Framing:
        transfer: ``chunked`` (default), ``close`` (close-delimited) or ``length``.
        line_ending: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.
        bom: Start the body with a UTF-8 BOM.
        writes: ``whole`` (one write), ``event`` (one write per event) or ``byte``.
        delay: Seconds to wait between writes.
        trickle: Write the first this many body bytes one byte at a time (``delay`` apart),
            then the rest in one write: a slow server without a slow test.
        comments: Send a keep-alive comment before every event.
        stall_after: Stop writing after this many events and hold the connection open until
            the client goes away (at most ``stall_for`` seconds).
        disconnect_at: Close the connection after this many body bytes.
        disconnect_after: Close the connection after this many events.
        reset: Close with a TCP reset instead of a FIN (with a disconnect or a stall).
        silent: Read the request, then send nothing at all (not even headers) until the client
            goes away (at most ``stall_for`` seconds).
    """

    text: tuple[str, ...] = attrs.field(default=(), converter=_chunks)
    thinking: tuple[str, ...] = attrs.field(default=(), converter=_chunks)
    signature: str | None = None
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=tuple)
    finish_reason: str = "stop"
    usage: Usage | None = attrs.field()
    model: str | None = None
    error: Mapping[str, Any] | None = None
    status: int = 200
    body: bytes | str | Mapping[str, Any] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    events: tuple[str, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))
    truncate: bool = False
    trailing: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    transfer: str = attrs.field(default="chunked", validator=attrs.validators.in_(_TRANSFERS))
    line_ending: str = attrs.field(default="\n", validator=attrs.validators.in_(("\n", "\r\n", "\r")))
    bom: bool = False
    writes: str = attrs.field(default="event", validator=attrs.validators.in_(_WRITES))
    delay: float = 0.0
    trickle: int | None = None
    comments: bool = False
    stall_after: int | None = None
    stall_for: float = 30.0
    disconnect_at: int | None = None
    disconnect_after: int | None = None
    reset: bool = False
    silent: bool = False

    @usage.default
    def _usage(self) -> Usage:
        return Usage(input_tokens=10, output_tokens=max(len(self.text), 1))

    def evolve(self, **changes: Any) -> Reply:
        """A copy with some fields changed."""
        return attrs.evolve(self, **changes)


@attrs.frozen
class RecordedRequest:
    """A request the fake server received: method, path, headers (lower-case names), body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body decoded as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None
