"""The engine of one ``stream_chat`` call: rounds, retries, accumulation, timing, and dispatch.

`Run.events` is a generator of public `Event`\\ s ending with ``finish``; `Streamer.stream`
hands it to the caller, `Streamer.chat` drains it, and `dispatch` drives it on a worker thread
and turns each event into a callback. Closing the generator (a ``break``, a raising callback,
``cancel()``) closes the connection, so no further tokens are paid for.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

from ._accumulate import Accumulator
from ._cancel import CancelToken
from .errors import (
    APIConnectionError,
    CallbackError,
    IncompleteStreamError,
    LLMStreamError,
    StreamCancelled,
    StreamError,
)
from .models import Event, Message, Response

if TYPE_CHECKING:
    from ._options import Options
    from .base import Streamer

log = logging.getLogger(__name__)

__all__ = ["Run", "dispatch"]

_TEXT_TYPES = frozenset({"content", "thinking"})
# provider events that are also public, passed on as they arrive
_IMMEDIATE = frozenset({"content", "thinking", "tool_call", "tool_result"})
# finish reasons after which the tool loop runs none of the round's calls
_NO_TOOL_ROUND = frozenset({"max_iterations", "length"})


class Run:
    """One stream: the streamer, the request, the cancel token and the accumulated answer."""

    def __init__(self, streamer: Streamer, messages: tuple[Message, ...], options: Options) -> None:
        self.streamer = streamer
        self.messages = messages
        self.options = options
        self.token = CancelToken()
        self.acc = Accumulator(streamer.provider, streamer.model)
        self.started = time.monotonic()
        self.delivered = False

    def partial(self, error: LLMStreamError) -> Response:
        """The response built from what arrived before ``error``."""
        reason = "cancelled" if isinstance(error, StreamCancelled) else "error"
        return self.acc.response(finish_reason=reason, duration=time.monotonic() - self.started)

    def events(self) -> Generator[Event, None, None]:
        """The public events of the stream, ending with ``finish``; errors carry ``.partial``."""
        provider = self.streamer.provider
        token = self.token
        token.start_deadline(self.streamer.timeout.total, f"llmstreamer-{provider}")
        try:
            finish = yield from self._rounds(list(self.messages))
            response = self.acc.response(finish_reason=finish, duration=time.monotonic() - self.started)
            yield Event("finish", data=response)
        except LLMStreamError as err:
            self._complete(err, provider)
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, UnicodeError) as exc:
            wrapped = StreamError(f"malformed stream ({type(exc).__name__}: {exc})", provider=provider)
            self._complete(wrapped, provider)
            raise wrapped from exc
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
        secret = self.streamer._api_key
        for name in ("message", "body"):
            value = getattr(err, name, None)
            if isinstance(value, str):
                setattr(err, name, secret.redact(value))
        err.args = tuple(secret.redact(a) if isinstance(a, str) else a for a in err.args)

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
            if not calls or toolbox is None or self.streamer.runs_tools or finish in _NO_TOOL_ROUND:
                return finish  # after a cut ("length") no call of the round is run
            if any(toolbox.get(c.name) is not None and toolbox.get(c.name).fn is None for c in calls):
                return "tool_calls"  # a declaration-only tool: the caller runs the calls
            if number == options.max_iterations:
                return "max_iterations"
            from .tools import execute

            results = []
            for call in calls:
                result = execute(call, toolbox, options.confirm_tool)
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
                for event in streamer._round(tuple(history), self.options, token):
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
                    raise token.error(streamer.provider)
                if not acc.done:
                    raise IncompleteStreamError(
                        f"the stream ended before {streamer.terminal}: the answer is incomplete",
                        provider=streamer.provider,
                    )
                if acc.finish_reason is None:
                    # "Finished" is what the wire states: a terminal marker alone (llama.cpp sends
                    # just [DONE] for a stream it interrupts) does not make an answer whole.
                    raise IncompleteStreamError(
                        "the stream ended without saying how the answer finished (no finish reason): "
                        "the answer is incomplete",
                        provider=streamer.provider,
                    )
                break
            except LLMStreamError as err:
                self._redact(err)  # before on_retry sees it
                if acc.done and token.reason is None and isinstance(err, APIConnectionError):
                    # The terminal event had arrived: a drop, reset or stall while waiting for
                    # the end of the body does not make a whole answer an error.
                    log.debug("%s: %s after the terminal event; the answer is whole", streamer.provider, type(err).__name__)
                    break
                if self.delivered or token.reason is not None or not policy.should_retry(err, attempt):
                    raise
                delay = policy.delay(attempt, err)
                attempt += 1
                log.debug("%s: retry %d in %.2f s after %s", streamer.provider, attempt, delay, type(err).__name__)
                yield Event("retry", data=(err, attempt, delay))
                if token.wait(delay):
                    raise token.error(streamer.provider) from None
                acc.restart_round()
        self.delivered = True
        for call in acc.round_message().tool_calls:
            if id(call) not in emitted:
                yield Event("tool_call", data=call)
        usage = acc.total_usage()
        if usage is not None:
            yield Event("usage", data=usage)


def dispatch(run: Run, callbacks: dict[str, Callable[..., Any]]) -> Response | LLMStreamError:
    """Drive ``run`` and fire ``callbacks``; return the response or the error, after the terminal callback.

    Exactly one of ``on_finish`` / ``on_error`` fires, last. A callback that raises stops the
    stream (the connection is closed) and ends in ``on_error(CallbackError)``; an ``on_error``
    or ``on_finish`` that raises is logged, never propagated.
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
                error = CallbackError(f"on_{kind} raised {type(exc).__name__}: {exc}", provider=run.streamer.provider)
                error.__cause__ = exc
                error.partial = run.acc.response(finish_reason="error", duration=time.monotonic() - run.started)
                outcome = error
                break
    except LLMStreamError as err:
        outcome = err
    if outcome is None:  # the generator ended without finish: only possible after close()
        outcome = run.token.error(run.streamer.provider)
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
