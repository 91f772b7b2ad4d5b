"""The recorder of one stream: it calls the stream's hooks at the engine's few observation points.

`recorder_for` builds one per stream when any hooks are set (the streamer's ``hooks=``, the
defaults, an instrumentation), else returns None and nothing here runs. The engine calls it at:
the start and end of the stream (`Recorder.dispatch` around the callbacks of ``stream_chat``,
`Recorder.events` around the iterator of ``stream``/``chat``), each HTTP request and response,
each retry, the body (`Recorder.decode`: the decode loop with wire events and byte counts,
chosen once per round) and, for WebSocket providers, each event and frame (and its bytes).

A hook never breaks a stream: an exception is logged once and that hook is dropped for the rest
of the stream. Every value given to a hook is redacted of the API key. A hooks object may also
have a private ``_scope(stream_id)`` returning a context manager that is entered around the
callbacks of ``stream_chat`` (``llmstreamer.otel`` makes its span current with it).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable, Iterator, Mapping

from ._wire_errors import request_id_of
from .errors import LLMStreamError, StreamCancelled, StreamError
from .hooks import (
    HOOK_NAMES,
    EndSummary,
    Hooks,
    RequestInfo,
    ResponseInfo,
    RetryInfo,
    StartInfo,
    WireEvent,
    active_hooks,
)
from .models import Event, Response

if TYPE_CHECKING:
    from ._http import Request

Run = Any  # an _engine.Run (not imported: the engine imports this module)

__all__ = ["Recorder", "current", "recorder_for", "sent"]

log = logging.getLogger("llmstreamer.hooks")

_ids = itertools.count(1)
_local = threading.local()  # .recorder: the stream whose round runs on this thread (for sends)
# Headers whose values a hook sees as "***" whatever they hold (the key is redacted anywhere).
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"})

_Fn = Callable[[Any], Any]


def recorder_for(run: Run) -> Recorder | None:
    """The recorder of ``run``, or None when no hooks are set (the usual, free case)."""
    found = active_hooks()
    own = getattr(run.streamer, "hooks", ())
    if not found and not own:
        return None
    return Recorder(run, found + own)


def sent(text: str) -> None:
    """A WebSocket frame was sent on this thread: tell the hooks of the round running here."""
    rec: Recorder | None = getattr(_local, "recorder", None)
    if rec is not None:
        rec.send(text)


def current() -> Recorder | None:
    """The recorder of the stream whose round runs on this thread (its WebSocket commands are counted)."""
    return getattr(_local, "recorder", None)


def _bound(hooks: tuple[Any, ...], name: str) -> list[_Fn]:
    """Each hooks object's ``name`` method, skipping `Hooks`' inherited no-ops."""
    found: list[_Fn] = []
    base = getattr(Hooks, name)
    for obj in hooks:
        fn = getattr(obj, name, None)
        if fn is None or not callable(fn) or getattr(type(obj), name, None) is base:
            continue
        found.append(fn)
    return found


class Recorder:
    """The hooks of one stream, its counters, and the context it was started in."""

    def __init__(self, run: Run, hooks: tuple[Any, ...]) -> None:
        # No reference to ``run``: the run holds the recorder (on its token), and a cycle would
        # keep the streamer and its pooled connections alive until the cyclic collector runs.
        streamer = run.streamer
        self.stream_id = next(_ids)
        self.provider = streamer.spec.name
        self.model = streamer.model
        self.base_url = getattr(streamer, "base_url", "")
        self.messages = run.messages
        self.options = run.options
        self.started = time.monotonic()
        self.redact = streamer.redact
        # the caller's context (its current span): the worker runs the stream inside a copy
        self.context = contextvars.copy_context()
        self.fns = {name: _bound(hooks, name) for name in HOOK_NAMES}
        self.on_event = self.fns["on_event"]
        self.on_send = self.fns["on_send"]
        self.marks = bool(self.on_send) or getattr(streamer, "transport", None) is None  # not HTTP: `round`
        self.scopes = [s for s in (getattr(h, "_scope", None) for h in hooks) if callable(s)]
        self.retries = 0
        self.requests = 0
        self.bytes_in: int | None = None
        self.bytes_out: int | None = None
        self._attempt = 1
        self._next_attempt: int | None = None
        self._sent_at = 0.0

    # --- calling hooks --------------------------------------------------------------------------

    def _call(self, fns: list[_Fn], value: Any) -> None:
        broken: list[_Fn] = []
        for fn in fns:
            try:
                fn(value)
            except Exception as exc:
                self._broken(fn, exc)
                broken.append(fn)
        if broken:
            fns[:] = [fn for fn in fns if fn not in broken]

    def _broken(self, fn: Any, exc: BaseException) -> None:
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        text = self.redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        log.warning("hook %s raised; it is ignored for the rest of stream %d:\n%s", name, self.stream_id, text.rstrip())

    # --- the stream's start and end ----------------------------------------------------------------

    def start(self) -> None:
        """``on_start``: the stream is starting."""
        fns = self.fns["on_start"]
        if fns:
            options = self.options
            self._call(
                fns,
                StartInfo(
                    stream_id=self.stream_id,
                    provider=self.provider,
                    model=self.model,
                    base_url=self.redact(self.base_url),
                    messages=self.messages,
                    system=options.system,
                    temperature=options.temperature,
                    top_p=options.top_p,
                    top_k=options.top_k,
                    max_tokens=options.max_tokens,
                    seed=options.seed,
                    stop=options.stop,
                ),
            )

    def end(self, outcome: Response | LLMStreamError | None) -> None:
        """``on_end``: the stream ended with ``outcome`` (None: the engine itself failed)."""
        fns = self.fns["on_end"]
        if not fns:
            return
        if outcome is None:
            outcome = StreamError("the stream ended without an outcome", provider=self.provider)
        if isinstance(outcome, LLMStreamError):
            error: LLMStreamError | None = outcome
            response = outcome.partial if isinstance(outcome.partial, Response) else None
            kind = "cancelled" if isinstance(outcome, StreamCancelled) else "error"
        else:
            error, response, kind = None, outcome, "finished"
        self._call(
            fns,
            EndSummary(
                stream_id=self.stream_id,
                provider=self.provider,
                model=self.model,
                outcome=kind,
                finish_reason=response.finish_reason if response is not None else kind,
                response=response,
                error=error,
                error_type=None if error is None else type(error).__name__,
                usage=None if response is None else response.usage,
                response_model=(response.model if response is not None else "") or self.model,
                request_id=None if response is None else response.request_id,
                time_to_first_token=None if response is None else response.time_to_first_token,
                duration=response.duration if response is not None else time.monotonic() - self.started,
                attempts=1 + self.retries,
                requests=self.requests,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
            ),
        )

    def dispatch(self, dispatch: Callable[[Run, dict[str, Any]], Any], run: Run, callbacks: dict[str, Any]) -> Any:
        """Run ``dispatch(run, callbacks)`` (the worker of ``stream_chat``) between start and end,
        in the caller's context, with each instrumentation's scope (its span current) around it."""
        return self.context.run(self._dispatch, dispatch, run, callbacks)

    def _dispatch(self, dispatch: Callable[[Run, dict[str, Any]], Any], run: Run, callbacks: dict[str, Any]) -> Any:
        self.start()
        entered = []
        for scope in self.scopes:
            try:
                manager = scope(self.stream_id)
                manager.__enter__()
                entered.append(manager)
            except Exception as exc:
                self._broken(scope, exc)
        outcome = None
        try:
            outcome = dispatch(run, callbacks)
            return outcome
        finally:
            self.end(outcome)
            for manager in reversed(entered):
                try:
                    manager.__exit__(None, None, None)
                except Exception as exc:
                    self._broken(manager, exc)

    def events(self, run: Run) -> Generator[Event, None, None]:
        """``run.events()`` between start and end (``stream`` and ``chat``); closing it is a cancel."""
        self.context.run(self.start)
        outcome: Response | LLMStreamError | None = None
        inner = run.events()
        try:
            for event in inner:
                if event.type == "finish":
                    outcome = event.data
                yield event
        except LLMStreamError as err:
            outcome = err
            raise
        finally:
            inner.close()
            if outcome is None:
                outcome = StreamCancelled("the iterator was closed", provider=self.provider)
                outcome.partial = run.partial(outcome)
            self.context.run(self.end, outcome)

    # --- HTTP ------------------------------------------------------------------------------------

    def request(self, req: Request) -> None:
        """``on_request``: an HTTP request is about to be sent."""
        self.requests += 1
        size = len(req.body or b"")
        self.bytes_out = (self.bytes_out or 0) + size
        self._attempt = self._next_attempt or 1
        self._next_attempt = None
        self._sent_at = time.monotonic()
        fns = self.fns["on_request"]
        if fns:
            self._call(
                fns,
                RequestInfo(
                    stream_id=self.stream_id,
                    provider=self.provider,
                    model=self.model,
                    method=req.method,
                    url=self.redact(req.url),
                    headers=self._shown(req.headers),
                    body_size=size,
                    attempt=self._attempt,
                ),
            )

    def _shown(self, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` as hooks see them: credential headers as ``***``, the key redacted from the rest."""
        redact = self.redact
        return {k: "***" if k.lower() in _SECRET_HEADERS else redact(v) for k, v in headers.items()}

    def response(self, resp: Any) -> None:
        """``on_response``: the status and headers of a ``requests`` response arrived."""
        fns = self.fns["on_response"]
        if fns:
            self._call(
                fns,
                ResponseInfo(
                    stream_id=self.stream_id,
                    provider=self.provider,
                    model=self.model,
                    status=resp.status_code,
                    request_id=request_id_of(resp.headers),
                    time_to_headers=time.monotonic() - self._sent_at,
                    headers=self._shown(resp.headers),
                    attempt=self._attempt,
                ),
            )

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The body's chunks, passed on unchanged and counted into ``bytes_in``."""
        if self.bytes_in is None:
            self.bytes_in = 0
        for chunk in chunks:
            self.bytes_in += len(chunk)
            yield chunk

    def observe(self, decode: Callable[[str, str], Iterable[Event]]) -> Callable[[str, str], Iterable[Event]]:
        """``decode`` with each wire event shown to ``on_event`` (redacted) before it is decoded."""
        fns, redact, sid = self.on_event, self.redact, self.stream_id
        if not fns:
            return decode

        def observed(name: str, data: str) -> Iterable[Event]:
            self._call(fns, WireEvent(stream_id=sid, type=name, data=redact(data)))
            return decode(name, data)

        return observed

    # --- retries -----------------------------------------------------------------------------------

    def retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
        """``on_retry``: retry number ``attempt`` follows in ``delay`` seconds."""
        self.retries += 1
        self._next_attempt = attempt + 1
        fns = self.fns["on_retry"]
        if fns:
            self._call(
                fns,
                RetryInfo(
                    stream_id=self.stream_id,
                    provider=self.provider,
                    model=self.model,
                    error=error,
                    error_type=type(error).__name__,
                    attempt=attempt,
                    delay=delay,
                ),
            )

    # --- WebSocket -------------------------------------------------------------------------------

    def received(self, event: dict[str, Any], redact: Callable[[str], str]) -> None:
        """``on_event`` for a WebSocket event (already parsed: shown re-encoded), redacted with the
        connection's ``redact`` too (a `Seq`'s streamer does not hold the key itself)."""
        fns = self.on_event
        if fns:
            text = redact(self.redact(json.dumps(event, separators=(",", ":"))))
            self._call(fns, WireEvent(stream_id=self.stream_id, type=str(event.get("event", "")), data=text))

    def counting(self) -> None:
        """A WebSocket command of this stream was registered: its frames are counted from now on."""
        if self.bytes_in is None:  # written only while None: the reader thread adds to it after
            self.bytes_in = 0
        self.bytes_out = self.bytes_out or 0

    def send(self, text: str) -> None:
        """A WebSocket frame of this stream is being sent: count it, then ``on_send``."""
        self.bytes_out = (self.bytes_out or 0) + len(text.encode("utf-8"))
        if not self.on_send:
            return
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        kind = ""
        if isinstance(frame, dict):
            data = frame.get("data")
            kind = str((data.get("command") if isinstance(data, dict) else None) or frame.get("request") or "")
        self._call(self.on_send, WireEvent(stream_id=self.stream_id, type=kind, data=self.redact(text)))

    def round(self, fn: Callable[..., Iterator[Event]]) -> Callable[..., Iterator[Event]]:
        """A provider's ``_round``, with this stream marked as the one sending on this thread
        while its generator runs (for ``on_send`` and the WebSocket byte counts); ``fn`` itself
        for an HTTP streamer without an ``on_send`` hook."""
        if not self.marks:
            return fn

        def marked(*args: Any) -> Iterator[Event]:
            return self._marked(fn(*args))

        return marked

    def _marked(self, events: Iterator[Event]) -> Generator[Event, None, None]:
        it = iter(events)
        try:
            while True:
                before, _local.recorder = getattr(_local, "recorder", None), self
                try:
                    event = next(it)
                except StopIteration:
                    return
                finally:
                    _local.recorder = before
                yield event
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                before, _local.recorder = getattr(_local, "recorder", None), self
                try:
                    close()
                finally:
                    _local.recorder = before
