"""Following a PixiGPT run to its end on a worker thread, with the callbacks of a stream.

`follow` creates the run (an idempotent create: see ``_rest``) and polls it until a terminal
status: ``on_status(run)`` fires on every change of status, then exactly one of ``on_finish(run)``
(``completed``: ``on_thinking`` and ``on_content`` first fire once with the answer's reasoning
and text) or ``on_error(error)``:

- ``failed``: the server's error detail and code, as the class of its code when it names one
  (``rate_limit_exceeded`` is a `RateLimitError`), else `StreamError`;
- ``cancelled`` (on the server): `StreamCancelled`;
- ``expired``, ``requires_action`` (tool outputs are not supported here), ``incomplete`` and any
  status this module does not know: `StreamError` naming it;
- the total timeout: `APITimeoutError` (``kind="total"``); ``cancel()``: `StreamCancelled`.

Every run error carries the last `Run` seen as ``error.run``. Polling starts at the client's
``poll_interval`` (0.5 s) and grows by half each time up to ``max_poll_interval``; a
``retry-after`` on a poll's answer sets the next wait, and a 429 or 5xx while polling is retried
after the server's ``retry-after`` (GETs change nothing). ``cancel()`` stops the polling at once;
the run itself goes on on the server (PixiGPT has no cancel endpoint).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, Mapping

from ._cancel import CancelToken
from ._engine import StreamHandle, spawn
from ._pixigpt_types import Run, read
from .callbacks import resolve
from .errors import CallbackError, LLMStreamError, StreamCancelled, StreamError, error_for_status, status_for_type
from .retry import parse_retry_after

log = logging.getLogger(__name__)

__all__ = ["RUNNING", "Follow", "RunHandle", "callbacks_of", "start", "status_error"]

PROVIDER = "pixigpt"
RUNNING = frozenset({"queued", "in_progress", "cancelling"})
_GROWTH = 1.5
_thread_ids = itertools.count(1)


def status_error(run: Run) -> LLMStreamError:
    """The error that ends a run in a status other than ``completed``."""
    error: LLMStreamError
    if run.status == "failed":
        detail = run.error or "no detail given"
        status = status_for_type(run.error_code)
        message = f"run {run.id} failed: {detail}"
        if status is not None:
            error = error_for_status(status)(message, status_code=status, error_type=run.error_code, provider=PROVIDER)
        else:
            error = StreamError(message, provider=PROVIDER)
    elif run.status == "cancelled":
        error = StreamCancelled(f"run {run.id} was cancelled on the server", provider=PROVIDER)
    elif run.status == "requires_action":
        error = StreamError(f"run {run.id} ended in status requires_action (tool outputs), which this client does not submit", provider=PROVIDER)
    else:
        error = StreamError(f"run {run.id} ended with status {run.status!r}", provider=PROVIDER)
    return with_run(error, run)


def _bug(exc: Exception) -> LLMStreamError:
    log.exception("llmstreamer: following a pixigpt run failed")
    error = StreamError(f"following the run failed ({type(exc).__name__}: {exc})", provider=PROVIDER)
    error.__cause__ = exc
    return error


def with_run(error: LLMStreamError, run: Run | None) -> LLMStreamError:
    """``error`` with ``error.run``: the last `Run` seen (None if none was created)."""
    error.run = run  # type: ignore[attr-defined]
    return error


class Follow:
    """One followed run: what to create, the callbacks, and the cancel token."""

    def __init__(
        self,
        client: Any,
        get_run: Callable[..., Any],
        thread_id: str,
        assistant_id: str,
        callbacks: dict[str, Callable[..., Any]],
        timeout: float | None,
        create: Mapping[str, Any],
    ) -> None:
        self.client = client  # a PixiGPTClient: create_run and poll_interval
        self.get_run = get_run  # get_run(run_id, token=, on_retry=) -> the GET's answer
        self.thread_id = thread_id
        self.assistant_id = assistant_id
        self.callbacks = callbacks
        self.timeout = timeout
        self.create = dict(create)
        self.token = CancelToken()
        self.last: Run | None = None

    def _fire(self, name: str, *args: Any) -> None:
        fn = self.callbacks.get(name)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.token.cancel()
            error = CallbackError(f"{name} raised {type(exc).__name__}: {exc}", provider=PROVIDER)
            error.__cause__ = exc
            raise error from exc

    def _on_retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
        self._fire("on_retry", error, attempt, delay)

    def _poll(self, run: Run) -> tuple[Run, float | None]:
        answer = self.get_run(run.id, token=self.token, on_retry=self._on_retry)
        return read(Run, answer.value), parse_retry_after(answer.headers)

    def _follow(self) -> Run:
        token, client = self.token, self.client
        run: Run = client.create_run(
            self.thread_id, self.assistant_id, _token=token, _on_retry=self._on_retry, **self.create
        )
        seen: str | None = None
        delay = client.poll_interval
        while True:
            self.last = run
            if run.status != seen:
                seen = run.status
                self._fire("on_status", run)
            if run.status == "completed":
                message = run.message
                if message is not None and message.reasoning:
                    self._fire("on_thinking", message.reasoning)
                if message is not None and message.text:
                    self._fire("on_content", message.text)
                return run
            if run.status not in RUNNING:
                raise status_error(run)
            if token.wait(delay):
                raise token.error(PROVIDER)
            run, hint = self._poll(run)
            delay = hint if hint is not None else min(delay * _GROWTH, client.max_poll_interval)

    def work(self) -> Run | LLMStreamError:
        """Create, follow, and fire the one terminal callback; return the outcome."""
        outcome: Run | LLMStreamError
        self.token.start_deadline(self.timeout, "llmstreamer-pixigpt")
        try:
            outcome = self._follow()
        except Exception as exc:
            err = exc if isinstance(exc, LLMStreamError) else _bug(exc)
            if not isinstance(err, CallbackError) and self.token.reason is not None:
                err = self.token.error(PROVIDER)
            if getattr(err, "run", None) is None:
                with_run(err, self.last)
            err.provider = err.provider or PROVIDER
            outcome = err
        finally:
            self.token.stop_deadline()
        name = "on_error" if isinstance(outcome, LLMStreamError) else "on_finish"
        fn = self.callbacks.get(name)
        if fn is not None:
            try:
                fn(outcome)
            except Exception:
                log.exception("llmstreamer: %s raised; the exception was dropped", name)
        return outcome


class RunHandle(StreamHandle):
    """The handle of a followed run: `wait`, `cancel`, `done` as for a stream; ``result()`` is the completed `Run`."""

    def __init__(self, follow: Follow) -> None:
        super().__init__(follow.work, follow.token.cancel, f"pixigpt run on thread {follow.thread_id!r}")

    def result(self, timeout: float | None = None) -> Run:  # type: ignore[override]
        """The completed `Run`; raises the run's `LLMStreamError` if it did not complete.

        Raises:
            TimeoutError: the run did not end within ``timeout`` seconds.
        """
        return super().result(timeout)  # type: ignore[return-value]



def start(follow: Follow) -> RunHandle:
    """Run ``follow`` on a new worker thread; return its handle."""
    handle = RunHandle(follow)
    spawn(handle, PROVIDER)
    return handle


def callbacks_of(callbacks: Any, on_status: Callable[[Run], Any] | None) -> dict[str, Callable[..., Any]]:
    """The callbacks of a run: the usual ones, plus ``on_status`` (an argument or a method)."""
    found = resolve(callbacks)
    status = on_status if on_status is not None else getattr(callbacks, "on_status", None)
    if status is not None:
        found["on_status"] = status
    return found
