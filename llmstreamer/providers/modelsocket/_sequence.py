"""`Seq`: one server-side ModelSocket sequence: append, generate, fork, close.

A sequence is a context the server keeps (its KV cache): each turn appends only new text. Its
commands run one at a time, as the server's state machine wants; different sequences run in
parallel on one connection. `Seq.generate` runs through the engine (a `_SeqSource` stands in for
a streamer), so handles, callbacks, cancel and partial responses work as everywhere.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Generator, Iterable, Iterator, Protocol

from ... import _engine
from ..._cancel import CancelToken
from ..._closing import Closing
from ..._engine import RoundContext, StreamHandle
from ..._options import Options, make_options
from ..._spec import ProviderSpec
from ...errors import APIConnectionError, ConfigurationError, LLMStreamError, StreamError
from ...models import Event, Message, Usage
from ...retry import RetryPolicy, Timeout
from ._generation import Outcome, Paused, check_options, render, stream, wire_results
from ._wire import PROVIDER

if TYPE_CHECKING:
    from ...tools import Toolbox
    from ._connection import Connection

__all__ = ["CLOSE_WAIT", "ROLES", "SEQ_OPTIONS", "Seq"]

log = logging.getLogger("llmstreamer.providers.modelsocket")

ROLES = ("user", "assistant", "system")
CLOSE_WAIT = 1.0  # seconds a finished bare stream waits for seq_closed and its token counts
# Options of Seq.generate (beyond max_iterations, confirm_tool, extra); repeat_penalty rides in extra.
SEQ_OPTIONS = frozenset({"temperature", "top_p", "top_k", "max_tokens", "stop", "seed"})


class _Owner(Protocol):
    """What a sequence needs of its client: the connection, and the table of open sequences."""

    _conn: Connection
    hooks: tuple[Any, ...]

    def _adopt(self, seq_id: str, model: str, box: Toolbox | None) -> Seq: ...

    def _forget(self, seq: Seq) -> None: ...


class Seq(Closing):
    """One server-side sequence: `append` text, `generate` a continuation, `fork`, `close`.

    Commands on one sequence run one at a time (the server's state machine); a second one while
    a generation runs raises `ConfigurationError`. Different sequences run in parallel.
    """

    def __init__(self, client: _Owner, seq_id: str, model: str, toolbox: Toolbox | None) -> None:
        self.id = seq_id
        self.model = model
        self.toolbox = toolbox
        self._client = client
        self._conn = client._conn
        self._lock = threading.Lock()
        self._busy = False
        self._closed = False
        self._paused: Paused | None = None  # a generation waiting for tool results (tool_return)
        self._resume: tuple[Paused, list[dict[str, Any]]] | None = None  # what the next round sends

    @property
    def state(self) -> str:
        """The last state the server reported (``ready``, ``generating``, ``tool_call``...), or ``closed``."""
        return "closed" if self.closed else self._conn.states.get(self.id, "ready")

    @property
    def closed(self) -> bool:
        """True once the sequence (or its connection) is closed."""
        return self._closed or not self._conn.alive or self._conn.states.get(self.id) == "closed"

    def _claim(self) -> None:
        with self._lock:
            if self.closed:
                raise ConfigurationError(f"sequence {self.id} is closed", provider=PROVIDER)
            if self._busy:
                raise ConfigurationError(f"sequence {self.id} is busy: wait for its generation to end", provider=PROVIDER)
            self._busy = True

    def _release(self) -> None:
        with self._lock:
            self._busy = False

    # --- the public commands -----------------------------------------------------------------

    def append(self, text: str, *, role: str = "user", hidden: bool = False) -> None:
        """Add text to the context; returns once the server has taken it in (``seq_append_finish``)."""
        if not isinstance(text, str):
            raise ConfigurationError(f"append takes text, got {type(text).__name__}", provider=PROVIDER)
        if role not in ROLES:
            raise ConfigurationError(f"role must be one of {', '.join(ROLES)}, got {role!r}", provider=PROVIDER)
        self._claim()
        try:
            self._append(text, role, hidden, CancelToken())
        finally:
            self._release()

    def generate(self, callbacks: Any = None, **options: Any) -> StreamHandle:
        """Stream a continuation of the context on a worker thread; see `Streamer.stream_chat`.

        Options: ``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``stop``, ``seed``,
        ``repeat_penalty``, ``max_iterations`` (tool rounds), ``confirm_tool``, ``extra``. Tool
        calls run with the sequence's toolbox; a call of a declaration-only tool (no function)
        ends the stream with ``finish_reason`` ``"tool_calls"`` and leaves the generation waiting
        for `tool_return`. A generation that does not end normally (cancelled, failed
        mid-stream) closes the sequence: the server cannot be stopped otherwise.
        """
        if self._paused is not None:
            raise ConfigurationError(
                f"sequence {self.id} waits for tool results: send them with tool_return(results)", provider=PROVIDER
            )
        for name in ("system", "tools", "tool_choice"):
            if options.get(name) is not None:
                raise ConfigurationError(
                    f"Seq.generate does not take {name!r}: append a system message, or give tools to client.open",
                    provider=PROVIDER,
                )
        penalty = options.pop("repeat_penalty", None)
        if penalty is not None:
            if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty <= 0:
                raise ConfigurationError(f"repeat_penalty must be a positive number, got {penalty!r}", provider=PROVIDER)
            options["extra"] = {**(options.get("extra") or {}), "repeat_penalty": float(penalty)}
        opts = make_options(PROVIDER, SEQ_OPTIONS, options)
        check_options(opts)
        self._claim()
        try:
            run = _engine.Run(_SeqSource(self), (), opts)
            return _engine.launch(run, callbacks, on_end=self._end_generation)
        except BaseException:
            self._release()
            raise

    def tool_return(self, results: Any, callbacks: Any = None) -> StreamHandle:
        """Send the results of the tool calls a generation stopped on, and stream its continuation.

        When `generate` ends with ``finish_reason == "tool_calls"`` (the model called a tool that
        is a declaration only, a `Tool` without ``fn``), the server keeps that generation
        waiting. Run the calls (``response.tool_calls``) yourself and pass their results here:
        `ToolResult`\\ s (matched to the calls by ``call_id``, else by position) or one string
        per call. They go back as ``tool_return`` on the generation's own cid with its options,
        and the same generation goes on, streamed like `generate` (same options, callbacks,
        handle; further tool rounds count towards its ``max_iterations``).

        Example::

            first = seq.generate().result()
            if first.finish_reason == "tool_calls":
                results = [ToolResult(c.id, c.name, run(c)) for c in first.tool_calls]
                rest = seq.tool_return(results, StreamCallbacks(on_content=print)).result()

        Raises:
            ConfigurationError: no generation waits for results, or they do not match its calls.
        """
        paused = self._paused
        if paused is None or self.closed:
            raise ConfigurationError(f"sequence {self.id} has no generation waiting for tool results", provider=PROVIDER)
        wire = wire_results(paused, results)
        self._claim()
        try:
            self._paused, self._resume = None, (paused, wire)
            run = _engine.Run(_SeqSource(self), (), paused.options)
            return _engine.launch(run, callbacks, on_end=self._end_generation)
        except BaseException:
            self._paused, self._resume = paused, None
            self._release()
            raise

    def fork(self) -> Seq:
        """A new sequence with a copy of this one's context (same model and tools), independent from now on."""
        self._claim()
        try:
            event = self._conn.wait_for(self._conn.command({"command": "fork"}, seq_id=self.id), CancelToken(), "seq_fork_finish")
        finally:
            self._release()
        child = event.get("child_seq_id")
        if not isinstance(child, str) or not child:
            raise StreamError("seq_fork_finish came without a child_seq_id", provider=PROVIDER)
        return self._client._adopt(child, self.model, self.toolbox)

    def close(self) -> None:
        """Close the sequence and wait until the server has released it (``seq_closed``)."""
        if not self._mark_closed():
            return
        try:
            self._conn.wait_for(self._conn.command({"command": "close"}, seq_id=self.id), CancelToken(), "seq_closed")
        except APIConnectionError:
            pass  # a sequence dies with its connection

    def __repr__(self) -> str:
        return f"<Seq {self.id} {self.model} {self.state}>"

    # --- what the streamer drives ------------------------------------------------------------

    def _mark_closed(self) -> bool:
        """Mark the sequence closed here; True if the server still has it open."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            paused, self._paused, self._resume = self._paused, None, None
        if paused is not None:
            self._conn.forget(paused.inbox)
        self._client._forget(self)
        return self._conn.states.get(self.id) != "closed"

    def _discard(self) -> None:
        """Close without waiting (cleanup after a failed or cancelled generation)."""
        if self._mark_closed():
            self._conn.fire({"command": "close"}, seq_id=self.id)

    def _append(self, text: str, role: str, hidden: bool, token: CancelToken) -> None:
        data: dict[str, Any] = {"command": "append", "text": text, "role": role}
        if hidden:
            data["hidden"] = True
        self._conn.wait_for(self._conn.command(data, seq_id=self.id), token, "seq_append_finish")

    def _append_messages(self, messages: Iterable[Message], token: CancelToken) -> None:
        for message in messages:
            role, text = render(message)
            if text:
                self._append(text, role, False, token)

    def _close_for_usage(self, token: CancelToken) -> Usage | None:
        """Close after a finished generation; the ``seq_closed`` token counts, if it brings them.

        The answer is already whole: the wait for ``seq_closed`` is bounded by `CLOSE_WAIT`
        seconds (then the counts from ``seq_text`` stand), so ``on_finish`` is never held for
        the read timeout by a server slow to close.
        """
        if not self._mark_closed():
            return None
        try:
            inbox = self._conn.command({"command": "close"}, seq_id=self.id)
            event = self._conn.wait_for(inbox, token, "seq_closed", CLOSE_WAIT)
        except LLMStreamError as exc:
            if token.reason is not None:
                raise
            log.debug("modelsocket: closing %s failed after the answer was complete: %s", self.id, exc)
            return None
        given, made, cached = (event.get(k) for k in ("input_tokens", "output_tokens", "cached_input_tokens"))
        if type(given) is not int or type(made) is not int:
            return None
        return Usage(input_tokens=given, output_tokens=made, cached_input_tokens=cached if type(cached) is int else 0)

    def _end_generation(self, outcome: object) -> None:
        """Free the sequence just before the terminal callback of `generate` fires."""
        self._release()

    def _generation(self, options: Options, token: CancelToken) -> Generator[Event, None, None]:
        """The round of `generate`: the stream, then ``done``; a broken sequence is closed."""
        if self.closed:
            raise APIConnectionError(f"sequence {self.id} is closed", provider=PROVIDER)
        resume, self._resume = self._resume, None
        outcome = Outcome()
        try:
            yield from self._stream(options, token, outcome, resume)
        finally:
            if outcome.paused is not None:
                self._paused = outcome.paused  # waits for tool_return
            elif not outcome.finished and not outcome.inband:
                self._discard()
        yield Event("done")

    def _stream(
        self, options: Options, token: CancelToken, outcome: Outcome, resume: tuple[Paused, list[dict[str, Any]]] | None = None
    ) -> Generator[Event, None, None]:
        """One generation on this sequence (see `stream`); ends with ``stop``, not ``done``."""
        return stream(self._conn, self.id, self.toolbox, options, token, outcome, resume)


class _SeqSource:
    """What the engine streams from for `Seq.generate`: the sequence, on its client's connection."""

    spec = ProviderSpec(name=PROVIDER, supported_options=SEQ_OPTIONS, terminal="seq_gen_finish")
    executor: Executor | None = None

    def __init__(self, seq: Seq) -> None:
        self._seq = seq
        self.model = seq.model
        self.base_url = seq._conn.url
        self.hooks = seq._client.hooks  # the client's ``hooks=`` (the defaults are added by the engine)
        self.timeout: Timeout = seq._conn.timeout
        self.retry = RetryPolicy()

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        check_options(options)

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        return self._seq._generation(options, context.token)

    def redact(self, text: str) -> str:
        return self._seq._conn.redact(text)
