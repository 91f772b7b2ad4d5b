"""Running one stream from the command line: build the streamer, wait (Ctrl-C cancels), report.

Shared by ``cli.py``, ``_cli_sessions`` and ``_cli_agents``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from ._cli_printer import PROG, Printer, stats_line
from .errors import CallbackError, ConfigurationError, StreamCancelled

if TYPE_CHECKING:
    from ._engine import StreamHandle
    from ._turn import TurnHandle
    from .provider import Streamer

__all__ = ["ELIZA_PACE", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build", "outcome", "say", "wait"]

ELIZA_PACE = 0.05  # seconds between Eliza's words when a person is watching

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def say(line: str) -> None:
    """One line on stderr, after the program's name."""
    sys.stderr.write(f"{PROG}: {line}\n")
    sys.stderr.flush()


def build(spec: str, pace: float | None) -> Streamer:
    """The streamer for ``provider[:model]``; Eliza gets its pace."""
    from .registry import resolve, streamer

    cls, _ = resolve(spec.partition(":")[0].strip().lower())
    kwargs: dict[str, Any] = {}
    if cls.spec.name == "eliza":
        kwargs["pace"] = pace if pace is not None else (ELIZA_PACE if sys.stdout.isatty() else 0.0)
    elif pace is not None:
        raise ConfigurationError("--pace only applies to eliza")
    return streamer(spec, **kwargs)


def wait(start: Callable[[], StreamHandle | TurnHandle]) -> None:
    """Start a stream and wait for it; Ctrl-C cancels it cleanly, then raises KeyboardInterrupt.

    A SIGINT handler is installed *before* the stream starts, so an interrupt that comes while
    the worker thread is being started (before there is a handle to cancel) is not lost: it is
    remembered and the stream cancelled as soon as the handle exists. Without it, the worker
    (a non-daemon thread) could keep the process alive after the interrupt.
    """
    interrupted = threading.Event()
    handles: list[StreamHandle | TurnHandle] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        for handle in handles:
            handle.cancel()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
    try:
        handle = start()
        handles.append(handle)
        if interrupted.is_set():
            handle.cancel()
        while not handle.wait(0.5):  # a bounded wait, so the handler runs promptly everywhere
            pass
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt


def outcome(printer: Printer, stats: bool) -> int:
    """Report how one answer ended; returns the exit code it deserves."""
    error = printer.error
    if error is None:
        if stats and printer.response is not None:
            say(stats_line(printer.response))
        return EXIT_OK
    if isinstance(error, StreamCancelled):
        return EXIT_INTERRUPTED
    if isinstance(error, CallbackError) and isinstance(error.__cause__, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)  # stdout was closed by the reader: stop quietly
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    if not printer.as_json:
        say(f"error: {error}")
    return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED
