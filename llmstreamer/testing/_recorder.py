"""`CallbackRecorder` and `instant_retries`: what a test of your own callback code needs."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Iterator

from .._cancel import set_retry_sleep

if TYPE_CHECKING:
    from ..errors import LLMStreamError
    from ..models import Response

__all__ = ["CallbackRecorder", "instant_retries"]


class CallbackRecorder:
    """Callbacks that record every call, in order, so a test asserts the whole list at once.

    Each call is a tuple: ``("content", text)``, ``("thinking", text)``, ``("tool_call", name)``,
    ``("tool_result", name, content)``, ``("usage", input_tokens, output_tokens)``,
    ``("retry", error class name, attempt)``, ``("finish", response text)`` or
    ``("error", error class name)``. The final `Response` or error is kept as well.

    Example::

        rec = CallbackRecorder()
        streamer.stream_chat([Message.user("Hi")], rec).wait(10)
        assert rec.calls == [("content", "Hel"), ("content", "lo"), ("usage", 3, 2), ("finish", "Hello")]
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[str] = set()  # the names of the threads the callbacks ran on
        self.done = threading.Event()  # set by the terminal callback
        self.response: Response | None = None
        self.error: LLMStreamError | None = None

    def _note(self, *call: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append(call)

    def on_content(self, text: str) -> None:
        """Record ``("content", text)``."""
        self._note("content", text)

    def on_thinking(self, text: str) -> None:
        """Record ``("thinking", text)``."""
        self._note("thinking", text)

    def on_tool_call(self, call: Any) -> None:
        """Record ``("tool_call", name)``."""
        self._note("tool_call", call.name)

    def on_tool_result(self, result: Any) -> None:
        """Record ``("tool_result", name, content)``."""
        self._note("tool_result", result.name, result.content)

    def on_usage(self, usage: Any) -> None:
        """Record ``("usage", input_tokens, output_tokens)``."""
        self._note("usage", usage.input_tokens, usage.output_tokens)

    def on_retry(self, error: Any, attempt: int, delay: float) -> None:
        """Record ``("retry", error class name, attempt)``."""
        self._note("retry", type(error).__name__, attempt)

    def on_finish(self, response: Response) -> None:
        """Record ``("finish", text)`` and keep the response."""
        self.response = response
        self._note("finish", response.text)
        self.done.set()

    def on_error(self, error: LLMStreamError) -> None:
        """Record ``("error", class name)`` and keep the error."""
        self.error = error
        self._note("error", type(error).__name__)
        self.done.set()

    def kinds(self) -> list[str]:
        """The kind of each call, in order."""
        return [c[0] for c in self.calls]


@contextlib.contextmanager
def instant_retries() -> Iterator[None]:
    """Within the block retries happen at once: ``on_retry`` still reports the delay the policy
    chose, nothing sleeps it. For tests only; it applies to the whole process.

    Example::

        with instant_retries():
            streamer.stream_chat(messages, rec).wait(10)   # 429, 429, 200: no 1.5 s of sleeping
    """
    previous = set_retry_sleep(False)
    try:
        yield
    finally:
        set_retry_sleep(previous)
