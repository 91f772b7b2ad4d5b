"""Folds a stream's normalized events into the final `Response`. No I/O, no threads, no callbacks.

Provider modules emit these event types (``Event.type``):

=====================  =====================================================================
``content``            ``text``: a fragment of the answer
``thinking``           ``text``: a fragment of visible reasoning
``signature``          ``text``: the signature of the thinking block just streamed
``redacted_thinking``  ``data``: opaque redacted reasoning, kept verbatim
``block_end``          the current text or thinking block is complete; with ``data`` set to a
                       tool call's key, that call's arguments are complete
``tool_call_delta``    ``data``: ``(key, id, name, arguments_fragment)``; fragments of one call
                       share a key (its index); id and name are taken from the first fragment
                       that has them; calls keyed by an int index keep the index's order,
                       whatever order their fragments arrive in
``tool_call``          ``data``: a whole `ToolCall` (providers that send calls whole)
``usage``              ``data``: the `Usage` of this round so far (the latest wins)
``stop``               ``text``: the normalized finish reason; ``length`` while a streamed call
                       is still open (the last one written, not ended by ``block_end``) marks
                       that call truncated: it carries an ``error`` and is never run
``tool_result``        ``data``: a `ToolResult` of a call made inside this round (providers
                       that run tools mid-stream, like ModelSocket): the assistant message so
                       far is closed and the result is recorded as a tool message
``meta``               ``data``: a dict with any of ``model``, ``request_id``
``done``               the provider's terminal event arrived: the round is complete
=====================  =====================================================================

Impossible orders raise `StreamError` naming the event.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import attrs

from .errors import StreamError
from .models import Event, Message, Part, Response, TextPart, ThinkingPart, ToolCall, ToolResult, Usage

__all__ = ["Accumulator", "parse_arguments"]


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """Decode a tool call's JSON arguments: (arguments, None), or ({}, why) when they are unusable."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return {}, f"the arguments are not valid JSON ({exc})"
    if not isinstance(value, dict):
        return {}, f"the arguments must be a JSON object, got {type(value).__name__}"
    return value, None


TRUNCATED = "the answer reached its token limit inside this call's arguments (finish_reason length): the call is incomplete"


@attrs.define
class _PendingCall:
    order: tuple[int, int]  # (0, wire index) or (1, arrival): calls are ordered by the wire's index
    id: str = ""
    name: str = ""
    fragments: list[str] = attrs.Factory(list)
    closed: bool = False  # the wire said the arguments are complete
    truncated: bool = False  # the token limit cut the arguments

    def finish(self, fallback_id: str) -> ToolCall:
        raw = "".join(self.fragments)
        arguments, error = parse_arguments(raw)
        if self.truncated:
            error = TRUNCATED
        return ToolCall(self.id or fallback_id, self.name, arguments, raw, error)


class Accumulator:
    """Builds the `Response` of a turn from normalized events, round by round.

    ``handle(event)`` folds one event; ``end_round()`` closes a round and returns its
    assistant `Message`; ``response(...)`` builds the `Response` of everything so far (also
    mid-stream, for an error's ``partial``).
    """

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.request_id: str | None = None
        self.messages: list[Message] = []
        self.round_usage: list[Usage] = []
        self.first_token_at: float | None = None
        self._calls_made = 0
        self._start_round()
        self._handlers: dict[str, Callable[[Event], None]] = {
            "content": self._text_run(TextPart),
            "thinking": self._text_run(ThinkingPart),
            "signature": self._signature,
            "redacted_thinking": self._redacted,
            "block_end": self._block_end,
            "tool_call_delta": self._tool_delta,
            "tool_call": self._tool_call,
            "tool_result": self._tool_result,
            "usage": self._usage,
            "stop": self._stop,
            "meta": self._meta,
            "done": self._done,
        }

    def _start_round(self) -> None:
        self._parts: list[Part | _PendingCall] = []
        self._run: list[str] = []
        self._run_kind: type | None = None
        self._pending: dict[Any, _PendingCall] = {}
        self._writing: _PendingCall | None = None  # the streamed call written last
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False

    def restart_round(self) -> None:
        """Forget the current round (a retry starts it again from nothing)."""
        self._start_round()

    # --- folding --------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Fold one event into the current round."""
        try:
            handler = self._handlers[event.type]
        except KeyError:
            raise StreamError(f"unknown event type {event.type!r}", provider=self.provider) from None
        handler(event)

    def _flush(self) -> None:
        if self._run_kind is TextPart:
            self._parts.append(TextPart("".join(self._run)))
        elif self._run_kind is ThinkingPart:
            self._parts.append(ThinkingPart("".join(self._run)))
        self._run = []
        self._run_kind = None

    def _bad(self, event: Event, what: str) -> StreamError:
        return StreamError(f"a {event.type} event must carry {what}, got {type(event.text if what == 'text' else event.data).__name__}", provider=self.provider)

    def _text_run(self, kind: type) -> Callable[[Event], None]:
        """The handler of one kind of text (content, thinking): consecutive pieces join into one part."""

        def handle(event: Event) -> None:
            if type(event.text) is not str:  # a malformed event must not reach on_content or the join
                raise self._bad(event, "text")
            if self._run_kind is not kind:
                self._flush()
                self._run_kind = kind
            self._run.append(event.text)

        return handle

    def _signature(self, event: Event) -> None:
        if type(event.text) is not str:
            raise self._bad(event, "text")
        if self._run_kind is ThinkingPart:
            self._flush()
        last = self._parts[-1] if self._parts else None
        if isinstance(last, ThinkingPart):
            self._parts[-1] = attrs.evolve(last, signature=(last.signature or "") + event.text)
        else:  # a signature with no visible thinking (Gemini can sign an empty part)
            self._parts.append(ThinkingPart("", signature=event.text))

    def _redacted(self, event: Event) -> None:
        self._flush()
        self._parts.append(ThinkingPart("", data=event.data))

    def _block_end(self, event: Event) -> None:
        if event.data is not None:
            call = self._pending.get(event.data)
            if call is not None:
                call.closed = True
        self._flush()

    def _tool_delta(self, event: Event) -> None:
        key, call_id, name, fragment = event.data
        if not all(v is None or type(v) is str for v in (call_id, name, fragment)):
            raise StreamError("a tool_call_delta event must carry strings (id, name, arguments)", provider=self.provider)
        call = self._pending.get(key)
        if call is None:
            self._flush()
            order = (0, key) if type(key) is int else (1, len(self._pending))
            call = self._pending[key] = _PendingCall(order)
            self._parts.append(call)
        self._writing = call
        if call_id and not call.id:
            call.id = call_id
        if name and not call.name:
            call.name = name
        if fragment:
            call.fragments.append(fragment)

    def _tool_call(self, event: Event) -> None:
        if not isinstance(event.data, ToolCall):
            raise StreamError("a tool_call event must carry a ToolCall", provider=self.provider)
        self._flush()
        self._parts.append(event.data)

    def _tool_result(self, event: Event) -> None:
        result = event.data
        if not isinstance(result, ToolResult):
            raise StreamError("a tool_result event must carry a ToolResult", provider=self.provider)
        parts = self._round_parts()
        if parts:
            self.messages.append(Message("assistant", parts))
            self._parts = []
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "tool":
            self.messages[-1] = Message("tool", (*last.content, result))
        else:
            self.messages.append(Message.tool([result]))

    def _usage(self, event: Event) -> None:
        usage = event.data
        if not isinstance(usage, Usage) or not all(type(n) is int for n in attrs.astuple(usage)):
            raise self._bad(event, "a Usage of ints")
        self.usage = usage

    def _stop(self, event: Event) -> None:
        if type(event.text) is not str:
            raise self._bad(event, "text")
        self.finish_reason = event.text
        writing = self._writing
        if event.text == "length" and writing is not None and not writing.closed:
            writing.truncated = True

    def _meta(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, dict) or not all(type(data.get(k) or "") is str for k in ("model", "request_id")):
            raise self._bad(event, "a dict of strings")
        self.model = data.get("model") or self.model
        self.request_id = data.get("request_id") or self.request_id

    def _done(self, event: Event) -> None:
        self.done = True

    # --- results --------------------------------------------------------------------------

    def _round_parts(self) -> list[Part]:
        self._flush()
        slots = [i for i, part in enumerate(self._parts) if isinstance(part, _PendingCall)]
        if len(slots) > 1:  # fragments may arrive out of order: the wire's index decides
            ordered = sorted((self._parts[i] for i in slots), key=lambda c: c.order)  # type: ignore[union-attr]
            for i, call in zip(slots, ordered):
                self._parts[i] = call
        parts: list[Part] = []
        for part in self._parts:
            if isinstance(part, _PendingCall):
                if not part.name:
                    raise StreamError("a tool call arrived without a name", provider=self.provider)
                self._calls_made += 1
                part = part.finish(f"call_{self._calls_made}")
            parts.append(part)
        self._parts = list(parts)
        self._pending = {}
        self._writing = None
        return parts

    def round_message(self) -> Message:
        """The assistant message of the current round (pending tool calls completed)."""
        return Message("assistant", self._round_parts())

    def end_round(self) -> Message:
        """Close the current round: record its message and usage, start a fresh round.

        Read ``finish_reason`` before calling this: the fresh round starts without one.
        """
        message = self.round_message()
        self.messages.append(message)
        if self.usage is not None:
            self.round_usage.append(self.usage)
        self._start_round()
        return message

    def add_message(self, message: Message) -> None:
        """Record a message the turn added that did not come from the stream (tool results)."""
        self.messages.append(message)

    def total_usage(self) -> Usage | None:
        """Usage summed over the closed rounds and the current one."""
        rounds = self.round_usage + ([self.usage] if self.usage is not None else [])
        if not rounds:
            return None
        total = rounds[0]
        for usage in rounds[1:]:
            total = total + usage
        return total

    def response(self, *, finish_reason: str, duration: float) -> Response:
        """The `Response` of everything so far, the current round included."""
        messages = list(self.messages)
        if self._parts or self._run:
            try:
                messages.append(self.round_message())
            except StreamError:
                messages.append(Message("assistant", [p for p in self._parts if not isinstance(p, _PendingCall)]))
        assistant = [m for m in messages if m.role == "assistant"]
        return Response(
            text="".join(m.text for m in assistant),
            thinking="".join(m.thinking for m in assistant),
            tool_calls=tuple(c for m in assistant for c in m.tool_calls),
            finish_reason=finish_reason,
            usage=self.total_usage(),
            model=self.model,
            provider=self.provider,
            request_id=self.request_id,
            time_to_first_token=self.first_token_at,
            duration=duration,
            message=assistant[-1] if assistant else Message("assistant"),
            messages=tuple(messages),
            round_usage=tuple(self.round_usage + ([self.usage] if self.usage is not None else [])),
        )
