"""Resumable streams: generations that outlive their HTTP connection, replayed from a log by any worker.

`ResumableStreams.start` runs a stream with `Streamer.stream_chat` on its worker thread, as
every bridge in `llmstreamer.web` does, but hands each event to a *log* instead of to one
client: the worker turns it into the same JSON payload `sse_stream` sends and appends it, which
never waits for a reader. Any number of readers, in this process or (with Redis) in any other,
replay the stored events after an id and then follow new ones. So a reload, a dropped phone
connection or a reconnect that lands on another worker loses nothing, and the model is paid
for once. The logs live in `llmstreamer._resumable_log` (memory) and
`llmstreamer._resumable_redis` (Redis Streams).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import attrs

from ._closing import Closing
from ._payloads import dumps, payload, redactor
from ._resumable_log import END, Log, MemoryLog, Producing, Reader
from .callbacks import StreamCallbacks, resolve
from .errors import ConfigurationError, LLMStreamError, StreamCancelled, StreamLogError, UnknownStreamError

if TYPE_CHECKING:
    import flask

    from .base import Streamer
    from .models import Message

__all__ = ["ResumableSSE", "ResumableStreams", "StreamEvent", "flask_resume"]

log = logging.getLogger(__name__)

_POLL = 1.0  # seconds a reader waits per read when nothing else bounds it
_RETRY_MS = 1000  # the SSE ``retry:`` a browser waits before reconnecting
_KEEPALIVE = b": keep-alive\n\n"
_KINDS = ("content", "thinking", "tool_call", "tool_result", "usage")


@attrs.frozen
class StreamEvent:
    """One stored event of a resumable stream.

    Attributes:
        id: The event's id in the log (pass it as ``after`` to resume after this event).
        type: ``content``, ``thinking``, ``tool_call``, ``tool_result``, ``usage``, ``done`` or
            ``error`` (the events of `llmstreamer.web.sse_stream`).
        data: The event's JSON payload, decoded (the fields are listed in `llmstreamer.web`).
    """

    id: str
    type: str
    data: dict[str, Any]


def _final(kind: str, value: Any) -> str:
    if kind == "done":
        return "done"
    return "cancelled" if isinstance(value, StreamCancelled) else "error"


def _check_ttl(ttl: Any) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


class ResumableStreams(Closing):
    """Answers that keep generating when their client leaves, and that any worker can resume.

    Args:
        url: Where the log lives. None (or ``""``, or ``"memory://"``): in this process (one
            worker; logs vanish with it). ``"redis://host:port/db"`` (or ``rediss://``,
            ``unix://``): Redis Streams, shared by every process and machine that uses the same
            Redis (``pip install llmstreamer[redis]``).
        ttl: Seconds a log is kept after its stream ended (a running stream's log is kept while
            it runs); then its id is unknown.
        prefix: The prefix of every Redis key (``<prefix>:stream:<id>`` and friends).

    Errors: an unknown or expired id raises `UnknownStreamError` (a `KeyError`); a Redis that
    cannot be reached raises `StreamLogError` (an `APIConnectionError`), never a ``redis``
    exception.

    Example::

        streams = ResumableStreams("redis://localhost:6379/0")
        stream_id = streams.start(streamer, [{"role": "user", "content": "Hello"}])
        for event in streams.events(stream_id):          # from any process
            print(event.id, event.type, event.data)
    """

    def __init__(self, url: str | None = None, *, ttl: float = 3600, prefix: str = "llmstreamer") -> None:
        self.ttl = _check_ttl(ttl)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"prefix must be a non-empty string, got {prefix!r}")
        self.url = url
        self._log: Log
        if url is None or url in ("", "memory://"):  # "": an empty REDIS_URL variable
            self._log = MemoryLog(self.ttl)
        elif isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
            from ._resumable_redis import RedisLog

            self._log = RedisLog(url, ttl=self.ttl, prefix=prefix)
        else:
            raise ConfigurationError(f"ResumableStreams needs None, 'memory://' or a redis:// URL, got {url!r}")

    def __repr__(self) -> str:
        where = "memory" if self.url in (None, "", "memory://") else "redis"
        return f"<ResumableStreams {where} ttl={self.ttl:g}>"

    def start(
        self,
        streamer: Streamer,
        messages: Iterable[Message | Mapping[str, Any]],
        callbacks: Any = None,
        **options: Any,
    ) -> str:
        """Start a generation that runs whatever its readers do; return its stream id.

        Every event is appended to the log with a growing id, the terminal ``done`` or
        ``error`` last. ``callbacks`` also fire, in this process, on the stream's worker thread
        (after the event was handed to the log).

        Raises:
            ConfigurationError: bad messages or options; nothing was sent upstream.
            StreamLogError: the log (Redis) cannot be reached; nothing was sent upstream.
        """
        stream_id = uuid.uuid4().hex
        producing = self._log.open(stream_id)
        feed = _feed(self._log, producing, redactor(streamer), resolve(callbacks))
        try:
            handle = streamer.stream_chat(messages, feed, **options)
        except BaseException:
            self._log.abandon(producing)
            raise
        producing.attach(handle)
        return stream_id

    def events(self, stream_id: str, after: str | None = None, timeout: float | None = None) -> Iterator[StreamEvent]:
        """The stream's events strictly after the id ``after``: those stored, then live ones.

        The iterator ends after the ``done`` or ``error`` event, or early when ``timeout``
        seconds pass without a new event (``timeout=0``: only what is stored now).

        Raises:
            UnknownStreamError: no such stream, or its log expired (raised at once).
            ConfigurationError: ``after`` is not an id of this log (raised at once).
            StreamLogError: the log became unreachable (at once, or while iterating).
        """
        if timeout is not None:
            timeout = max(0.0, float(timeout))
        return _follow(self._log.reader(stream_id, after), timeout)

    def sse(self, stream_id: str, last_event_id: str | None = None, *, keepalive: float | None = 15.0) -> ResumableSSE:
        """The events after ``last_event_id`` as a WSGI body of server-sent events.

        Each event carries an ``id:`` line, so a browser's ``EventSource`` resumes by itself
        with ``Last-Event-ID`` after a dropped connection. The body starts with ``retry: 1000``
        and sends a ``: keep-alive`` comment every ``keepalive`` seconds of silence. Closing
        it stops following; the generation goes on. If the log fails mid-body, the body ends
        without a terminal event, so the client reconnects.

        Raises:
            UnknownStreamError, ConfigurationError, StreamLogError: as `events`, at once.
        """
        if keepalive is not None and (isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)) or keepalive <= 0):
            raise ConfigurationError(f"keepalive must be a positive number of seconds or None, got {keepalive!r}")
        return ResumableSSE(self._log.reader(stream_id, last_event_id), keepalive)

    def cancel(self, stream_id: str) -> bool:
        """Stop the generation, from any process: the log then ends with an ``error`` event (`StreamCancelled`).

        The producing process notices within a second (at once if it is this one) and shuts
        the upstream request down.

        Returns:
            True if the stream was running, False if it had already ended.

        Raises:
            UnknownStreamError: no such stream, or its log expired.
            StreamLogError: the log cannot be reached.
        """
        return self._log.cancel(stream_id)

    def status(self, stream_id: str) -> str | None:
        """``"running"``, ``"done"``, ``"error"``, ``"cancelled"``, or None for an unknown or expired id.

        Raises:
            StreamLogError: the log cannot be reached.
        """
        return self._log.status(stream_id)

    def close(self) -> None:
        """Release the log's connections, after waiting up to 5 s for this process's streams to be written."""
        self._log.close()


def _feed(log_: Log, producing: Producing, secret: Any, extra: Mapping[str, Callable[..., Any]]) -> StreamCallbacks:
    """Callbacks that append each event to the log first, then call the user's callback."""
    emit = log_.emit

    def make(kind: str) -> Callable[[Any], None]:
        also = extra.get(f"on_{'finish' if kind == 'done' else kind}")
        terminal = kind in END

        def on_event(value: Any) -> None:
            emit(producing, kind, dumps(payload(kind, value, secret)), _final(kind, value) if terminal else None)
            if also is not None:
                also(value)

        return on_event

    return StreamCallbacks(
        **{f"on_{kind}": make(kind) for kind in _KINDS},
        on_retry=extra.get("on_retry"),
        on_finish=make("done"),
        on_error=make("error"),
    )


def _follow(reader: Reader, timeout: float | None) -> Iterator[StreamEvent]:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
        batch = reader.read(max(wait, 0.0))
        if not batch:
            if reader.ended or (deadline is not None and time.monotonic() >= deadline):
                return
            continue
        for event_id, kind, data in batch:
            yield StreamEvent(event_id, kind, json.loads(data))
            if kind in END:
                return
        if timeout is not None:
            deadline = time.monotonic() + timeout


class ResumableSSE:
    """The body of a resumable ``text/event-stream`` response: an iterator of bytes with ``close()``.

    Made by `ResumableStreams.sse`. Closing it (WSGI servers do when the client goes away)
    stops following; it never cancels the generation.
    """

    def __init__(self, reader: Reader, keepalive: float | None) -> None:
        self._reader = reader
        self._keepalive = keepalive
        self._started = False
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ended:
            raise StopIteration
        if not self._started:  # at once, so headers go out and EventSource opens
            self._started = True
            return f"retry: {_RETRY_MS}\n\n".encode()
        keepalive = self._keepalive
        due = None if keepalive is None else time.monotonic() + keepalive
        while True:
            wait = _POLL if due is None else min(_POLL, due - time.monotonic())
            try:
                batch = self._reader.read(max(wait, 0.0))
            except (StreamLogError, UnknownStreamError) as exc:
                log.warning("resumable stream: the log failed while following (%s); ending the body", exc)
                self._ended = True
                return b": the log is unavailable; reconnect\n\n"
            if batch:
                break
            if self._reader.ended:
                self._ended = True
                raise StopIteration
            if due is not None and time.monotonic() >= due:
                return _KEEPALIVE
        out = []
        for event_id, kind, data in batch:
            out.append(f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode())
            if kind in END:
                self._ended = True
                break
        return b"".join(out)

    def close(self) -> None:
        """Stop following (idempotent); the generation goes on."""
        self._ended = True


def _json_response(status: int, message: str) -> flask.Response:
    import flask

    return flask.Response(json.dumps({"error": message}), status=status, mimetype="application/json")


def _ended_before(streams: ResumableStreams, stream_id: str, last_event_id: str) -> bool:
    """True if the stream has ended and nothing is stored after ``last_event_id``."""
    if streams.status(stream_id) in (None, "running"):
        return False
    return next(streams.events(stream_id, after=last_event_id, timeout=0), None) is None


def flask_resume(
    streams: ResumableStreams,
    stream_id: str,
    *,
    keepalive: float | None = 15.0,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    """A Flask response that follows a resumable stream from the request's ``Last-Event-ID``.

    ``200`` with the SSE body of `ResumableStreams.sse`; ``404`` for an unknown or expired id;
    ``204`` when the stream has ended and the client already has every event (``EventSource``
    then stops reconnecting); ``400`` for a malformed ``Last-Event-ID``; ``503`` when the log
    (Redis) cannot be reached. Error bodies are JSON ``{"error": "..."}``.

    Example::

        @app.get("/chat/<stream_id>/events")
        def follow(stream_id):
            return flask_resume(streams, stream_id)
    """
    import flask

    last = flask.request.headers.get("Last-Event-ID") or None
    try:
        if last is not None and _ended_before(streams, stream_id, last):
            return flask.Response(status=204)
        body = streams.sse(stream_id, last, keepalive=keepalive)
    except UnknownStreamError as exc:
        return _json_response(404, exc.message)
    except ConfigurationError as exc:
        return _json_response(400, exc.message)
    except LLMStreamError as exc:  # StreamLogError
        return _json_response(503, exc.message)
    merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    return flask.Response(body, mimetype="text/event-stream", headers=merged)
