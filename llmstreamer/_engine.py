"""The one engine: `Run` (rounds, retries, the tool loop), `dispatch` to callbacks, `StreamHandle`.

Every stream starts here: `prepare` checks the messages and options and makes a `Run`;
`launch` runs it on a worker thread and returns its `StreamHandle` (``stream_chat``,
``Conversation.send`` and ModelSocket's ``Seq.generate``); ``stream`` and ``chat`` iterate
`Run.events` in the calling thread. Control runs one way: the engine calls the provider's
public hooks (``stream_round``, ``validate``, ``redact``) and never the other way round.
Closing the event generator (a ``break``, a raising callback, ``cancel()``) closes the
connection, so no further tokens are paid for.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from typing import Any, Callable, Generator, Iterable, Iterator, Mapping, Protocol

import attrs

from ._accumulate import Accumulator
from ._cancel import CancelToken
from ._handle import StreamHandle, spawn
from ._inline import inline_documents
from ._options import Options, check_contents, coerce_messages, make_options
from ._recorder import recorder_for
from ._spec import ProviderSpec
from .callbacks import resolve
from .errors import (
    APIConnectionError,
    CallbackError,
    IncompleteStreamError,
    LLMStreamError,
    StreamCancelled,
    StreamError,
)
from .models import Event, Message, Response
from .retry import RetryPolicy, Timeout

log = logging.getLogger(__name__)

__all__ = ["RoundContext", "Run", "Source", "StreamHandle", "dispatch", "events", "launch", "prepare", "spawn"]


_TEXT_TYPES = frozenset({"content", "thinking"})
# provider events that are also public, passed on as they arrive
_IMMEDIATE = frozenset({"content", "thinking", "tool_call", "tool_result"})
# finish reasons after which the tool loop runs none of the round's calls
_NO_TOOL_ROUND = frozenset({"max_iterations", "length"})


class Source(Protocol):
    """What the engine needs of a streamer: its spec, model, timing and the public hooks (see ``provider``)."""

    spec: ProviderSpec
    model: str
    timeout: Timeout
    retry: RetryPolicy
    executor: Executor | None

    def validate(self, messages: tuple[Message, ...], options: Options) -> None: ...

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterable[Event]: ...

    def redact(self, text: str) -> str: ...


@attrs.frozen
class RoundContext:
    """What one round of a stream carries besides the messages and options.

    Attributes:
        token: The stream's `CancelToken`: check ``token.reason``, wait with ``token.wait``.
        state: What the provider keeps across the turns of a `Conversation` (from
            ``Streamer.open_state``), or None for a single stream.
    """

    token: CancelToken
    state: Any = None


class Run:
    """One stream: the streamer, the request, the cancel token and the accumulated answer."""

    def __init__(self, streamer: Source, messages: tuple[Message, ...], options: Options, state: Any = None) -> None:
        self.streamer = streamer
        self.messages = messages
        self.options = options
        self.token = CancelToken()
        self.context = RoundContext(self.token, state)
        self.token.recorder = recorder_for(self)
        self.acc = Accumulator(streamer.spec.name, streamer.model)
        self.started = time.monotonic()
        self.delivered = False

    def partial(self, error: LLMStreamError) -> Response:
        """The response built from what arrived before ``error``."""
        reason = "cancelled" if isinstance(error, StreamCancelled) else "error"
        return self.acc.response(finish_reason=reason, duration=time.monotonic() - self.started)

    def events(self) -> Generator[Event, None, None]:
        """The public events of the stream, ending with ``finish``; errors carry ``.partial``."""
        provider = self.streamer.spec.name
        token = self.token
        token.start_deadline(self.streamer.timeout.total, f"llmstreamer-{provider}")
        try:
            finish = yield from self._rounds(list(self.messages))
            response = self.acc.response(finish_reason=finish, duration=time.monotonic() - self.started)
            yield Event("finish", data=response)
        except LLMStreamError as err:
            self._complete(err, provider)
            raise
        finally:
            token.stop_deadline()

    def _complete(self, err: LLMStreamError, provider: str) -> None:
        self._redact(err)
        if err.provider is None:
            err.provider = provider
        if err.partial is None:
            err.partial = self.partial(err)

    def _redact(self, err: LLMStreamError) -> None:
        """Keys never appear in an error: an in-band error event can echo the key back."""
        redact = self.streamer.redact
        for name in ("message", "body"):
            value = getattr(err, name, None)
            if isinstance(value, str):
                setattr(err, name, redact(value))
        err.args = tuple(redact(a) if isinstance(a, str) else a for a in err.args)

    def _rounds(self, history: list[Message]) -> Generator[Event, None, str]:
        """The tool loop: stream a round; if the model called tools we can run, run them and go on.

        Ends when the model stops asking for tools, when a called tool has no function (the
        caller runs it: ``finish_reason`` is ``tool_calls``), when the token limit cut the round
        (``length``: a call cut mid-arguments carries its ``error`` and none is run), or after
        ``max_iterations`` rounds (``max_iterations``). Returns the finish reason.
        """
        options, acc = self.options, self.acc
        toolbox = options.tools
        for number in range(1, options.max_iterations + 1):
            yield from self._round(history)
            finish = acc.finish_reason or "stop"
            message = acc.end_round()
            history.append(message)
            calls = message.tool_calls
            if not calls or toolbox is None or self.streamer.spec.runs_tools or finish in _NO_TOOL_ROUND:
                return finish  # after a cut ("length") no call of the round is run
            if any(toolbox.get(c.name) is not None and toolbox.get(c.name).fn is None for c in calls):
                return "tool_calls"  # a declaration-only tool: the caller runs the calls
            if number == options.max_iterations:
                return "max_iterations"
            from ._tool_round import run_calls

            results = []
            parallel = options.parallel_tools is not False
            for result in run_calls(
                calls, toolbox, options.confirm_tool, self.token, provider=self.streamer.spec.name, parallel=parallel
            ):
                results.append(result)
                yield Event("tool_result", data=result)
            reply = Message.tool(results)
            acc.add_message(reply)
            history.append(reply)
        return "max_iterations"  # not reached: the loop returns on its last round

    def _round(self, history: list[Message]) -> Iterator[Event]:
        streamer, acc, token = self.streamer, self.acc, self.token
        policy = streamer.retry
        attempt = 0
        emitted: set[int] = set()  # tool calls already passed on (whole calls, as they came)
        while True:
            try:
                # never bound to a name: the round's generator must die with the loop (that closes its connection)
                round_ = streamer.stream_round if token.recorder is None else token.recorder.round(streamer.stream_round)
                for event in round_(tuple(history), self.options, self.context):
                    acc.handle(event)
                    if event.type in _IMMEDIATE:
                        if not self.delivered:
                            self.delivered = True
                        if acc.first_token_at is None and event.type in _TEXT_TYPES:
                            acc.first_token_at = time.monotonic() - self.started
                        if event.type == "tool_call":
                            emitted.add(id(event.data))
                        yield event
                if token.reason is not None:
                    raise token.error(streamer.spec.name)
                if not acc.done:
                    raise IncompleteStreamError(
                        f"the stream ended before {streamer.spec.terminal}: the answer is incomplete",
                        provider=streamer.spec.name,
                    )
                if acc.finish_reason is None:
                    # "Finished" is what the wire states: a terminal marker alone (llama.cpp sends
                    # just [DONE] for a stream it interrupts) does not make an answer whole.
                    raise IncompleteStreamError(
                        "the stream ended without saying how the answer finished (no finish reason): "
                        "the answer is incomplete",
                        provider=streamer.spec.name,
                    )
                break
            except LLMStreamError as err:
                self._redact(err)  # before on_retry sees it
                if acc.done and token.reason is None and isinstance(err, APIConnectionError):
                    # The terminal event had arrived: a drop, reset or stall while waiting for
                    # the end of the body does not make a whole answer an error.
                    log.debug("%s: %s after the terminal event; the answer is whole", streamer.spec.name, type(err).__name__)
                    break
                if self.delivered or token.reason is not None or not policy.should_retry(err, attempt):
                    raise
                delay = policy.delay(attempt, err)
                attempt += 1
                log.debug("%s: retry %d in %.2f s after %s", streamer.spec.name, attempt, delay, type(err).__name__)
                if token.recorder is not None:
                    token.recorder.retry(err, attempt, delay)
                yield Event("retry", data=(err, attempt, delay))
                if token.backoff(delay):
                    raise token.error(streamer.spec.name) from None
                acc.restart_round()
        self.delivered = True
        for call in acc.round_message().tool_calls:
            if id(call) not in emitted:
                yield Event("tool_call", data=call)
        usage = acc.total_usage()
        if usage is not None:
            yield Event("usage", data=usage)


def dispatch(
    run: Run, callbacks: Mapping[str, Callable[..., Any]], on_end: Callable[[Any], None] | None = None
) -> Response | LLMStreamError:
    """Drive ``run`` and fire ``callbacks``; return the response or the error, after the terminal callback.

    Exactly one of ``on_finish`` / ``on_error`` fires, last. A callback that raises stops the
    stream (the connection is closed) and ends in ``on_error(CallbackError)``; an ``on_error``
    or ``on_finish`` that raises is logged, never propagated. ``on_end(outcome)`` (the
    bookkeeping of a `Conversation` or a ``Seq``) runs just before the terminal callback.
    """
    on_content = callbacks.get("on_content")
    on_thinking = callbacks.get("on_thinking")
    others = {
        "tool_call": callbacks.get("on_tool_call"),
        "tool_result": callbacks.get("on_tool_result"),
        "usage": callbacks.get("on_usage"),
    }
    on_retry = callbacks.get("on_retry")
    events = run.events()
    outcome: Response | LLMStreamError | None = None
    try:
        for event in events:
            kind = event.type
            try:
                if kind == "content":
                    if on_content is not None:
                        on_content(event.text)
                elif kind == "thinking":
                    if on_thinking is not None:
                        on_thinking(event.text)
                elif kind == "finish":
                    outcome = event.data
                elif kind == "retry":
                    if on_retry is not None:
                        on_retry(*event.data)
                else:
                    fn = others.get(kind)
                    if fn is not None:
                        fn(event.data)
            except Exception as exc:
                run.token.cancel()
                events.close()
                error = CallbackError(f"on_{kind} raised {type(exc).__name__}: {exc}", provider=run.streamer.spec.name)
                error.__cause__ = exc
                error.partial = run.acc.response(finish_reason="error", duration=time.monotonic() - run.started)
                outcome = error
                break
    except LLMStreamError as err:
        outcome = err
    except Exception as exc:  # a bug in llmstreamer or a provider: still exactly one terminal callback
        log.exception("llmstreamer: the %s stream failed unexpectedly", run.streamer.spec.name)
        outcome = StreamError(f"llmstreamer failed ({type(exc).__name__}: {exc})", provider=run.streamer.spec.name)
        outcome.__cause__ = exc
        outcome.partial = run.partial(outcome)
    if outcome is None:  # the generator ended without finish: only possible after close()
        outcome = run.token.error(run.streamer.spec.name)
    if on_end is not None:
        _safe(on_end, outcome, "the stream's bookkeeping")
    if isinstance(outcome, LLMStreamError):
        _safe(callbacks.get("on_error"), outcome, "on_error")
    else:
        _safe(callbacks.get("on_finish"), outcome, "on_finish")
    return outcome


def _safe(fn: Callable[..., Any] | None, value: Any, name: str) -> None:
    if fn is None:
        return
    try:
        fn(value)
    except Exception:
        log.exception("llmstreamer: %s raised; the exception was dropped", name)


def events(run: Run) -> Iterator[Event]:
    """``run``'s events for ``stream`` and ``chat`` (through the hooks' recorder when there is one)."""
    rec = run.token.recorder
    return run.events() if rec is None else rec.events(run)


def prepare(streamer: Source, messages: Any, options: Mapping[str, Any], state: Any = None) -> Run:
    """Check ``messages`` and ``options`` for ``streamer`` (raising `ConfigurationError`) and make a `Run`."""
    msgs = inline_documents(coerce_messages(messages), streamer.spec.document_types, streamer.spec.name)
    opts = make_options(streamer.spec.name, streamer.spec.supported_options, options)
    check_contents(msgs)
    streamer.validate(msgs, opts)
    return Run(streamer, msgs, opts, state)


def launch(run: Run, callbacks: Any, on_end: Callable[[Any], None] | None = None) -> StreamHandle:
    """Run ``run`` on a worker thread (or the streamer's executor) firing ``callbacks``; its handle."""
    found = resolve(callbacks)
    streamer = run.streamer
    rec = run.token.recorder

    def work() -> Response | LLMStreamError:
        if rec is None:
            return dispatch(run, found, on_end)
        return rec.dispatch(lambda r, c: dispatch(r, c, on_end), run, found)  # type: ignore[no-any-return]

    handle = StreamHandle(work, run.token.cancel, f"{streamer.spec.name}:{streamer.model}")
    handle._stream = run
    spawn(handle, streamer.spec.name, streamer.executor)
    return handle
