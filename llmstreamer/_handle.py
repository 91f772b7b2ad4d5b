"""`StreamHandle`: the running stream (or PixiGPT run) a caller waits on, cancels or asks for its result."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Executor
from typing import Any, Callable

from .errors import LLMStreamError
from .models import Response

__all__ = ["StreamHandle", "spawn"]

_thread_ids = itertools.count(1)


class StreamHandle:
    """The running stream of one `Streamer.stream_chat` call.

    Example::

        handle = streamer.stream_chat(messages, StreamCallbacks(on_content=print))
        handle.wait(timeout=60)
        response = handle.result()   # raises the stream's error, if it failed
    """

    def __init__(self, work: Callable[[], Any], cancel: Callable[[], None], label: str) -> None:
        """A handle on ``work`` (run by `spawn`; it returns the outcome after the terminal
        callback), stopped by ``cancel``, shown as ``label`` (``provider:model``)."""
        self._run_work = work
        self._cancel = cancel
        self._label = label
        self._done = threading.Event()
        self._outcome: Any = None
        self._thread: threading.Thread | None = None
        self._stream: Any = None  # the engine's Run, when the handle is a stream's

    def _work(self) -> None:
        try:
            self._outcome = self._run_work()
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the terminal callback has returned; False if ``timeout`` expired first."""
        if not self._done.wait(timeout):
            return False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return True

    def result(self, timeout: float | None = None) -> Response:
        """The final `Response`; raises the stream's `LLMStreamError` if it failed.

        Raises:
            TimeoutError: the stream did not end within ``timeout`` seconds.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"the stream did not end within {timeout} s")
        outcome = self._outcome
        if isinstance(outcome, LLMStreamError):
            raise outcome
        assert outcome is not None
        response: Response = outcome
        return response

    def cancel(self) -> None:
        """Stop the stream from any thread: the connection is shut down at once and the stream
        ends with ``on_error(StreamCancelled)`` (unless it had already ended)."""
        self._cancel()

    def done(self) -> bool:
        """True once the terminal callback has returned."""
        return self._done.is_set()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<StreamHandle {self._label} {state}>"


def spawn(handle: StreamHandle, provider: str, executor: Executor | None = None) -> None:
    """Run ``handle``'s work on ``executor``, else on a new thread ``llmstreamer-<provider>-<n>``."""
    if executor is not None:
        executor.submit(handle._work)
        return
    thread = threading.Thread(target=handle._work, name=f"llmstreamer-{provider}-{next(_thread_ids)}")
    handle._thread = thread
    thread.start()
