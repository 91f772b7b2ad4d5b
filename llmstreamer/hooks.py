"""Observability hooks: what a stream tells an observer, and `set_default_hooks`.

A hooks object is any object with some of these methods (all optional); `Hooks` is a base whose
methods do nothing. Give one (or a list) to a streamer with ``hooks=``, or to every streamer of
the process with `set_default_hooks`. Every hook runs on the stream's worker thread (the calling
thread for `Streamer.chat` and `Streamer.stream`), in this order::

    on_start(StartInfo)                      once, before anything is sent
    on_send(WireEvent)                       each frame sent (WebSocket providers)
    on_request(RequestInfo)                  each HTTP request, retries and tool rounds included
    on_response(ResponseInfo)                its status line and headers arrived
    on_event(WireEvent)                      each wire event received, before it is decoded
    on_retry(RetryInfo)                      the request failed before any output; it will be retried
    on_end(EndSummary)                       once, after the terminal callback has returned

A hook never breaks a stream: an exception in one is logged once (per stream and hook) and that
hook is skipped for the rest of the stream; callbacks and outcome stay the same. No value given
to a hook holds the API key: URLs, headers and wire events are redacted.

Example::

    class Timing(llmstreamer.hooks.Hooks):
        def on_end(self, summary):
            print(summary.provider, summary.outcome, summary.time_to_first_token, summary.duration)

    s = llmstreamer.OpenAIStreamer(model="gpt-4o-mini", hooks=Timing())
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import attrs

if TYPE_CHECKING:
    from .errors import LLMStreamError
    from .models import Message, Response, Usage

__all__ = [
    "HOOK_NAMES",
    "EndSummary",
    "Hooks",
    "LogHooks",
    "RequestInfo",
    "ResponseInfo",
    "RetryInfo",
    "StartInfo",
    "WireEvent",
    "set_default_hooks",
]

log = logging.getLogger(__name__)

HOOK_NAMES = ("on_start", "on_send", "on_request", "on_response", "on_event", "on_retry", "on_end")


@attrs.frozen(kw_only=True)
class StartInfo:
    """A stream is starting (`Hooks.on_start`).

    Attributes:
        stream_id: A number unique to this stream in this process; every value of the stream has it.
        provider: The provider's name (``openai``, ``anthropic``...).
        model: The requested model.
        base_url: Where the API lives (never holding the key).
        messages: The conversation sent.
        system: The ``system`` option, if given.
        temperature, top_p, top_k, max_tokens, seed, stop: The sampling options, if given.
    """

    stream_id: int
    provider: str
    model: str
    base_url: str
    messages: tuple[Message, ...] = ()
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class RequestInfo:
    """An HTTP request is about to be sent (`Hooks.on_request`).

    Attributes:
        stream_id, provider, model: As in `StartInfo`.
        method: ``POST`` (or ``GET``).
        url: The URL, the key (if any) replaced by ``***``.
        headers: The request headers; credential headers show ``***``.
        body_size: The body's size in bytes.
        attempt: 1 for the first try of a round, 2 for its first retry, and so on.
    """

    stream_id: int
    provider: str
    model: str
    method: str
    url: str
    headers: Mapping[str, str]
    body_size: int
    attempt: int


@attrs.frozen(kw_only=True)
class ResponseInfo:
    """The response's status and headers arrived (`Hooks.on_response`).

    Attributes:
        stream_id, provider, model: As in `StartInfo`.
        status: The HTTP status code.
        request_id: The provider's request id header, if any.
        time_to_headers: Seconds from sending the request to its response headers.
        headers: The response headers.
        attempt: As in `RequestInfo`.
    """

    stream_id: int
    provider: str
    model: str
    status: int
    request_id: str | None
    time_to_headers: float
    headers: Mapping[str, str]
    attempt: int


@attrs.frozen(kw_only=True)
class RetryInfo:
    """The request failed before any output and will be tried again (`Hooks.on_retry`).

    Attributes:
        stream_id, provider, model: As in `StartInfo`.
        error: Why (an `LLMStreamError`, the key redacted).
        error_type: The error's class name.
        attempt: The retry's number (1 for the first retry).
        delay: Seconds waited before it.
    """

    stream_id: int
    provider: str
    model: str
    error: LLMStreamError
    error_type: str
    attempt: int
    delay: float


@attrs.frozen(kw_only=True)
class WireEvent:
    """One wire event received (`Hooks.on_event`) or frame sent (`Hooks.on_send`), before decoding.

    Attributes:
        stream_id: As in `StartInfo`.
        type: The SSE event name (``message`` when the event names none, and for an NDJSON
            line), or the WebSocket event or command name (``seq_text``, ``gen``...).
        data: The event's data as text, the key (if echoed) replaced by ``***``.
    """

    stream_id: int
    type: str
    data: str


@attrs.frozen(kw_only=True)
class EndSummary:
    """The stream ended (`Hooks.on_end`), after its terminal callback returned.

    Attributes:
        stream_id, provider, model: As in `StartInfo`.
        outcome: ``"finished"``, ``"error"`` or ``"cancelled"`` (`StreamCancelled`; a total
            timeout is an ``"error"``).
        finish_reason: The response's finish reason (``error`` or ``cancelled`` when it failed).
        response: The `Response`, or the error's partial response.
        error: The `LLMStreamError`, or None when it finished.
        error_type: The error's class name, or None.
        usage: Token counts, or None if the provider reported none.
        response_model: The model that answered, as the provider names it.
        request_id: The provider's request (or response) id of the last round.
        time_to_first_token: Seconds to the first content or thinking text, or None.
        duration: Seconds from the call to the end of the stream (as `Response.duration`).
        attempts: How many times the request was tried: 1 plus the retries.
        requests: HTTP requests sent (tool rounds and retries included; 0 for other transports).
        bytes_in: Body bytes received over HTTP; for ModelSocket, the payload bytes of the text
            frames received with the ``cid`` of one of the stream's commands. None if no body or
            frame could be counted (no request sent).
        bytes_out: Request body bytes sent over HTTP; for ModelSocket, the payload bytes (UTF-8)
            of the text frames the stream sent. None when no request was sent.
    """

    stream_id: int
    provider: str
    model: str
    outcome: str
    finish_reason: str
    response: Response | None
    error: LLMStreamError | None
    error_type: str | None
    usage: Usage | None
    response_model: str
    request_id: str | None
    time_to_first_token: float | None
    duration: float
    attempts: int
    requests: int
    bytes_in: int | None
    bytes_out: int | None


class Hooks:
    """A base class whose hooks do nothing: override the ones you need.

    Any object with some of the hook methods works; this base only saves typing (and its
    inherited no-ops are skipped, so they cost nothing).
    """

    def on_start(self, info: StartInfo) -> None:
        """A stream is starting."""

    def on_send(self, frame: WireEvent) -> None:
        """A WebSocket frame is being sent (WebSocket providers only)."""

    def on_request(self, info: RequestInfo) -> None:
        """An HTTP request is about to be sent."""

    def on_response(self, info: ResponseInfo) -> None:
        """The status line and headers of a response arrived."""

    def on_event(self, event: WireEvent) -> None:
        """A wire event arrived (before decoding)."""

    def on_retry(self, info: RetryInfo) -> None:
        """A failed request will be retried."""

    def on_end(self, summary: EndSummary) -> None:
        """The stream ended; the last hook."""


class LogHooks(Hooks):
    """One log line per finished stream: provider, model, outcome, timings and tokens.

    Off until installed; the line goes to the ``llmstreamer.hooks`` logger at ``level``::

        logging.basicConfig(level=logging.INFO)
        llmstreamer.set_default_hooks(llmstreamer.hooks.LogHooks())

    Args:
        level: The logging level of the line (INFO by default).
        content: Also log the answer's text (truncated to 200 characters). Off by default.
    """

    def __init__(self, level: int = logging.INFO, *, content: bool = False) -> None:
        self.level = level
        self.content = content

    def on_end(self, summary: EndSummary) -> None:
        """Log the summary line."""
        if not log.isEnabledFor(self.level):
            return
        usage = summary.usage
        ttft = summary.time_to_first_token
        parts = [
            f"{summary.provider} {summary.response_model or summary.model} {summary.outcome}",
            f"finish={summary.finish_reason}",
            f"ttft={'-' if ttft is None else f'{ttft:.3f}s'}",
            f"duration={summary.duration:.3f}s",
            f"tokens={'-' if usage is None else f'{usage.input_tokens}/{usage.output_tokens}'}",
            f"attempts={summary.attempts}",
        ]
        if summary.error_type is not None:
            parts.append(f"error={summary.error_type}")
        if summary.request_id:
            parts.append(f"request_id={summary.request_id}")
        if self.content and summary.response is not None:
            parts.append(f"text={summary.response.text[:200]!r}")
        log.log(self.level, "stream %d: %s", summary.stream_id, " ".join(parts))


class _Registry:
    """The hooks every stream of the process gets: instrumentations first, then the defaults."""

    installed: tuple[Any, ...] = ()
    defaults: tuple[Any, ...] = ()
    active: tuple[Any, ...] = ()

    @classmethod
    def update(cls) -> None:
        cls.active = cls.installed + cls.defaults


def set_default_hooks(*hooks: Any) -> None:
    """Give these hooks objects to every stream of every streamer, besides their own ``hooks=``.

    Replaces the previous defaults; ``set_default_hooks()`` removes them. Instrumentations
    (`llmstreamer.otel.instrument`) are kept apart and are not affected.

    Example::

        llmstreamer.set_default_hooks(llmstreamer.hooks.LogHooks())
    """
    _Registry.defaults = check_hooks(hooks)
    _Registry.update()


def install_hooks(hooks: Any) -> None:
    """Add an instrumentation's hooks object (for `llmstreamer.otel`); idempotent."""
    if hooks not in _Registry.installed:
        _Registry.installed = (*_Registry.installed, *check_hooks((hooks,)))
        _Registry.update()


def uninstall_hooks(hooks: Any) -> None:
    """Remove an instrumentation's hooks object."""
    _Registry.installed = tuple(h for h in _Registry.installed if h is not hooks)
    _Registry.update()


def check_hooks(hooks: Any) -> tuple[Any, ...]:
    """``hooks`` (None, one object, or a list of objects) as a tuple; each must have a hook method."""
    if hooks is None:
        return ()
    found = tuple(hooks) if isinstance(hooks, (list, tuple)) else (hooks,)
    for item in found:
        if not any(callable(getattr(item, name, None)) for name in HOOK_NAMES):
            from .errors import ConfigurationError

            raise ConfigurationError(f"a hooks object needs one of {', '.join(HOOK_NAMES)}; got {type(item).__name__}")
    return found


def active_hooks() -> tuple[Any, ...]:
    """The hooks every stream gets now (instrumentations, then defaults)."""
    return _Registry.active
