"""Bridges from a stream to web servers: an SSE body for any WSGI app, a Flask response, a WebSocket relay.

All three run the stream with `Streamer.stream_chat` on its worker thread and hand its events,
through a queue, to the thread that serves the client. Pulling with `Streamer.stream` in the
server's thread would be simpler, but a read blocked on a silent model would block that thread
too: it could neither send keep-alives nor notice that the client left, and a WSGI server can
only call ``close()`` between two chunks. With the queue, the serving thread wakes at least every
``keepalive`` seconds, writes a comment (a write to a departed client fails, and the server then
calls ``close()``), and ``close()`` cancels the stream: `StreamHandle.cancel` shuts the upstream
socket down at once, even in the middle of a blocked read, so no more tokens are paid for.

`ResumableStreams` (with `flask_resume`) instead runs a generation apart from any connection and
keeps its events (the ones below) in a log, in this process or in Redis, that any worker replays
from ``Last-Event-ID``; see `llmstreamer._resumable`.

Events (SSE ``event:`` names, or the ``"type"`` of a WebSocket frame), each with a JSON object:

================  ===========================================================================
``content``       ``{"text"}``: a fragment of the answer
``thinking``      ``{"text"}``: a fragment of visible reasoning
``tool_call``     ``{"id", "name", "arguments"}`` (and ``"error"`` when the arguments were unusable)
``tool_result``   ``{"call_id", "name", "content", "is_error"}``
``usage``         ``{"input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
                  "total_tokens"}``
``done``          the final `Response`: ``text``, ``thinking``, ``tool_calls``, ``finish_reason``,
                  ``usage``, ``model``, ``provider``, ``request_id``, ``time_to_first_token``,
                  ``duration`` and ``messages`` (the turn's messages as `Message.to_dict` dicts,
                  to append to a client-side history); always the last event
``error``         ``{"error", "message", "provider"}`` (the error's class name; ``status_code``
                  too for `APIStatusError`); always the last event. Never holds an API key.
================  ===========================================================================
"""

from __future__ import annotations

import logging
import queue
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from ._payloads import dumps, payload, redactor
from ._resumable import ResumableSSE, ResumableStreams, StreamEvent, flask_resume
from .callbacks import StreamCallbacks, resolve
from .errors import CallbackError, ConfigurationError, LLMStreamError, StreamLogError, UnknownStreamError
from .models import Message, Response

if TYPE_CHECKING:
    import flask

    from ._engine import StreamHandle
    from .provider import Streamer

__all__ = [
    "ResumableSSE",
    "ResumableStreams",
    "SSEStream",
    "StreamEvent",
    "StreamLogError",
    "UnknownStreamError",
    "flask_response",
    "flask_resume",
    "relay",
    "sse_stream",
]

log = logging.getLogger(__name__)

_KEEPALIVE = b": keep-alive\n\n"
_POLL = 1.0  # seconds between checks when keep-alives are off
_BATCH = 256  # events joined into one write at most
_JOIN = 5.0  # seconds to wait for a finished stream's worker thread
_END = frozenset({"done", "error"})

Messages = Iterable["Message | Mapping[str, Any]"]


# --- the pump: a stream on its worker thread, its events handed over through a queue ------------


def _feeder(put: Callable[[Any], None], kind: str, also: Callable[..., Any] | None) -> Callable[[Any], None]:
    if also is None:
        return lambda value: put((kind, value))

    def both(value: Any) -> None:
        put((kind, value))  # first, so the client always gets the terminal event
        also(value)

    return both


class _Pump:
    """One stream running on its worker thread; the serving thread takes its events from a queue."""

    def __init__(self, streamer: Streamer, messages: Messages, callbacks: Any, options: Mapping[str, Any]) -> None:
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        extra = resolve(callbacks)
        put = self._queue.put
        feed = StreamCallbacks(
            on_content=_feeder(put, "content", extra.get("on_content")),
            on_thinking=_feeder(put, "thinking", extra.get("on_thinking")),
            on_tool_call=_feeder(put, "tool_call", extra.get("on_tool_call")),
            on_tool_result=_feeder(put, "tool_result", extra.get("on_tool_result")),
            on_usage=_feeder(put, "usage", extra.get("on_usage")),
            on_retry=extra.get("on_retry"),
            on_finish=_feeder(put, "done", extra.get("on_finish")),
            on_error=_feeder(put, "error", extra.get("on_error")),
        )
        self.provider = streamer.provider
        self.handle: StreamHandle = streamer.stream_chat(messages, feed, **options)

    def take(self, timeout: float) -> list[tuple[str, Any]]:
        """The events that are ready (waiting up to ``timeout`` for the first); [] if none came."""
        get = self._queue.get
        try:
            item = get(timeout=timeout)
        except queue.Empty:
            return []
        items = [item]
        while item[0] not in _END and len(items) < _BATCH:
            try:
                item = get(block=False)
            except queue.Empty:
                break
            items.append(item)
        return items

    def cancel(self) -> None:
        log.debug("web: the client went away; cancelling the %s stream", self.provider)
        self.handle.cancel()


def _check_keepalive(keepalive: float | None) -> None:
    if keepalive is not None and (isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)) or keepalive <= 0):
        raise ConfigurationError(f"keepalive must be a positive number of seconds or None, got {keepalive!r}")


# --- server-sent events -------------------------------------------------------------------------


class SSEStream:
    """The body of a ``text/event-stream`` response: an iterator of bytes with a ``close()``.

    Made by `sse_stream`. Each item is one or more complete SSE events (events that are ready
    together are joined into one write), or a keep-alive comment. ``close()`` cancels the stream
    if it is still running; WSGI servers call it when the response ends or the client goes away.

    Attributes:
        handle: The `StreamHandle` of the stream (``handle.cancel()`` works from any thread).
    """

    def __init__(
        self, streamer: Streamer, messages: Messages, *, keepalive: float | None, callbacks: Any, options: Mapping[str, Any]
    ) -> None:
        _check_keepalive(keepalive)
        self._keepalive = keepalive
        self._redact = redactor(streamer)
        self._pump = _Pump(streamer, messages, callbacks, options)
        self.handle = self._pump.handle
        self._ended = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ended or self._closed:
            raise StopIteration
        keepalive = self._keepalive
        while True:
            items = self._pump.take(_POLL if keepalive is None else keepalive)
            if items:
                break
            if keepalive is not None:
                return _KEEPALIVE
        out = []
        redact = self._redact
        for kind, value in items:
            data = dumps(payload(kind, value, redact))
            out.append(f"event: {kind}\ndata: {data}\n\n".encode())
            if kind in _END:
                self._ended = True
        return b"".join(out)

    def close(self) -> None:
        """Cancel the stream if it has not ended (the client went away); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._ended:
            self.handle.wait(_JOIN)  # the terminal callback has run; let its thread finish
        else:
            self._pump.cancel()


def sse_stream(
    streamer: Streamer,
    messages: Messages,
    *,
    keepalive: float | None = 15.0,
    callbacks: Any = None,
    **options: Any,
) -> SSEStream:
    """Stream an answer as server-sent events, for any WSGI framework (Flask, Django, Bottle, ...).

    The stream starts at once; iterate the result for the body. The events are ``content``,
    ``thinking``, ``tool_call``, ``tool_result``, ``usage`` and, last, ``done`` or ``error``,
    each with a JSON ``data`` line (see the module docstring). While the model is silent a
    ``: keep-alive`` comment is sent every ``keepalive`` seconds, which keeps proxies from
    timing out and lets the server notice a client that left. Closing the iterator (WSGI
    servers do, when the client disconnects) cancels the upstream stream.

    Args:
        streamer: The streamer to use (share one across requests: it pools connections).
        messages: The conversation: `Message`\\ s or ``{"role", "content"}`` dicts.
        keepalive: Seconds of silence before a keep-alive comment; None sends none (a client
            that left is then noticed only at the next event).
        callbacks: Server-side callbacks too (logging, metrics), run on the stream's worker
            thread after each event is queued for the client. One that raises ends the stream
            with an ``error`` event (`CallbackError`).
        **options: Options of `Streamer.stream_chat` (``system``, ``temperature``, ...).

    Returns:
        An `SSEStream`: an iterator of ``bytes`` with ``close()``.

    Raises:
        ConfigurationError: bad messages or options, before any request is sent.

    Example (Django)::

        def chat(request):
            body = sse_stream(streamer, json.loads(request.body)["messages"])
            return StreamingHttpResponse(body, content_type="text/event-stream")
    """
    return SSEStream(streamer, messages, keepalive=keepalive, callbacks=callbacks, options=options)


def flask_response(
    streamer: Streamer,
    messages: Messages,
    *,
    keepalive: float | None = 15.0,
    callbacks: Any = None,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> flask.Response:
    """`sse_stream` wrapped in a ``flask.Response`` (``pip install llmstreamer[flask]``).

    The response has ``Content-Type: text/event-stream``, ``Cache-Control: no-cache`` and
    ``X-Accel-Buffering: no`` (nginx passes each event on instead of buffering), plus
    ``headers``. Run Flask with a threaded server (``app.run(threaded=True)``, gunicorn
    ``-k gthread``): each open stream holds one server thread.

    Raises:
        ConfigurationError: bad messages or options, before any request is sent.

    Example::

        @app.post("/chat")
        def chat():
            return flask_response(streamer, request.get_json()["messages"])
    """
    import flask  # an optional dependency: imported only when used

    body = sse_stream(streamer, messages, keepalive=keepalive, callbacks=callbacks, **options)
    merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    return flask.Response(body, mimetype="text/event-stream", headers=merged)


# --- WebSocket ----------------------------------------------------------------------------------


def relay(
    send: Callable[[str], Any],
    streamer: Streamer,
    messages: Messages,
    *,
    keepalive: float | None = None,
    callbacks: Any = None,
    **options: Any,
) -> Response:
    """Stream an answer into a WebSocket as JSON text frames; block until it ends.

    Each event becomes one call ``send(json_text)`` of a frame ``{"type": <event>, ...}`` with
    the fields listed in the module docstring, e.g. ``{"type": "content", "text": "Hel"}``; the
    last frame is ``done`` or ``error``. ``send`` is called from the calling thread only, so any
    library's send works (flask-sock's ``ws.send``, simple-websocket, websocket-server via
    ``lambda text: server.send_message(client, text)``). If ``send`` raises (the client went
    away), the stream is cancelled at once.

    Args:
        send: Sends one text frame.
        streamer: The streamer to use.
        messages: The conversation: `Message`\\ s or ``{"role", "content"}`` dicts.
        keepalive: When set, a ``{"type": "keepalive"}`` frame after this many seconds of
            silence, so a client that left is noticed while the model is silent.
        callbacks: Server-side callbacks too, as in `sse_stream`.
        **options: Options of `Streamer.stream_chat`.

    Returns:
        The final `Response` (its ``done`` frame was sent).

    Raises:
        ConfigurationError: bad messages or options, before anything is sent.
        CallbackError: ``send`` raised; the stream was cancelled. ``__cause__`` is the
            exception ``send`` raised and ``partial`` what had arrived.
        LLMStreamError: the stream failed; its ``error`` frame was sent first (if ``send``
            still worked).

    Example (flask-sock)::

        @sock.route("/ws")
        def chat(ws):
            history = []
            while True:
                history.append({"role": "user", "content": ws.receive()})
                response = relay(ws.send, streamer, history)
                history.extend(m.to_dict() for m in response.messages)
    """
    _check_keepalive(keepalive)
    redact = redactor(streamer)
    pump = _Pump(streamer, messages, callbacks, options)
    wait = _POLL if keepalive is None else keepalive
    while True:
        items = pump.take(wait)
        if not items and keepalive is not None:
            items = [("keepalive", None)]
        for kind, value in items:
            frame = {"type": kind, **payload(kind, value, redact)} if kind != "keepalive" else {"type": kind}
            try:
                send(dumps(frame))
            except Exception as exc:
                if kind != "error":
                    return _send_failed(pump, exc)
                log.debug("web: could not send the error frame (%s)", type(exc).__name__)
            if kind in _END:
                pump.handle.wait(_JOIN)
                if kind == "error":
                    raise value
                return value  # type: ignore[no-any-return]


def _send_failed(pump: _Pump, exc: Exception) -> Response:
    pump.cancel()
    handle = pump.handle
    partial: Any
    try:
        partial = handle.result(_JOIN)  # the send of the ``done`` frame failed: the stream had ended
    except LLMStreamError as err:
        partial = err.partial
    except TimeoutError:
        partial = None
    error = CallbackError(f"send raised {type(exc).__name__}: {exc}", provider=pump.provider, partial=partial)
    raise error from exc
