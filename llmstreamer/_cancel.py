"""Cancellation: a token that stops one stream from any thread, a blocked read included.

The transport attaches an abort function (shut the socket down) while a request is in flight;
`CancelToken.cancel` calls it, so a read blocked on a silent server returns at once. Sleeping
between retries and Eliza's pacing use `CancelToken.wait`, which wakes on cancel too.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable

from .errors import APITimeoutError, LLMStreamError, StreamCancelled

__all__ = ["CancelToken", "bound", "current", "set_retry_sleep"]

_timer_ids = itertools.count(1)
_retry_sleep = True  # False: retry delays pass at once (llmstreamer.testing.instant_retries)
_local = threading.local()  # .token: the stream whose tool runs on this thread


def set_retry_sleep(enabled: bool) -> bool:
    """Switch the waiting-out of retry delays on or off for the whole process; the previous setting."""
    global _retry_sleep
    previous, _retry_sleep = _retry_sleep, bool(enabled)
    return previous


class CancelToken:
    """The cancel state of one stream: why it stopped, and how to abort what is in flight."""

    __slots__ = ("_aborts", "_event", "_lock", "_timer", "_total", "reason", "recorder")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._aborts: list[Callable[[], None]] = []
        self._timer: threading.Timer | None = None
        self._total: float | None = None
        self.reason: str | None = None  # None, "cancelled" or "timeout"
        self.recorder: Any = None  # the stream's hooks recorder (``_recorder``), when hooks are set

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called (or the total timeout expired)."""
        return self.reason is not None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the stream: record why, wake any wait, abort what is in flight. Idempotent."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            aborts = list(self._aborts)
        self._event.set()
        for abort in aborts:
            abort()

    def attach(self, abort: Callable[[], None]) -> None:
        """Register an abort function for the request in flight (run now if already cancelled)."""
        with self._lock:
            if self.reason is None:
                self._aborts.append(abort)
                return
        abort()

    def detach(self, abort: Callable[[], None]) -> None:
        """Forget an abort function once its request is over."""
        with self._lock:
            try:
                self._aborts.remove(abort)
            except ValueError:
                pass

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True early if the stream is cancelled."""
        if seconds <= 0:
            return self.reason is not None
        return self._event.wait(seconds)

    def backoff(self, seconds: float) -> bool:
        """Wait out a retry delay like `wait` (not at all while retry sleeping is switched off)."""
        return self.wait(seconds if _retry_sleep else 0.0)

    def start_deadline(self, seconds: float | None, name: str) -> None:
        """Cancel with reason ``"timeout"`` after ``seconds`` (the total timeout); None: no deadline."""
        if seconds is None:
            return
        self._total = seconds
        timer = threading.Timer(seconds, self.cancel, args=("timeout",))
        timer.name = f"{name}-deadline-{next(_timer_ids)}"
        timer.daemon = True
        self._timer = timer
        timer.start()

    def stop_deadline(self) -> None:
        """Stop the deadline timer and wait for its thread to end."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()

    def error(self, provider: str | None = None) -> LLMStreamError:
        """The error that reports this cancellation."""
        if self.reason == "timeout":
            return APITimeoutError(
                f"the stream exceeded its total timeout of {self._total:g} s", kind="total", provider=provider
            )
        return StreamCancelled("the stream was cancelled", provider=provider)


def current() -> CancelToken | None:
    """The token of the stream whose tool call runs on this thread (None outside a tool call)."""
    token: CancelToken | None = getattr(_local, "token", None)
    return token


def bound(token: CancelToken, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with ``token`` as this thread's `current` token (a tool can then see a cancel)."""
    previous = current()
    _local.token = token
    try:
        return fn()
    finally:
        _local.token = previous
