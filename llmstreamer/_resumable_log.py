"""The log behind resumable streams: what a log must do, and the in-process log (``memory://``).

A log keeps, per stream id, the events of one generation in order, each with an id that grows
monotonically, plus the stream's status. The producer (the stream's worker thread) only ever
*appends* with `emit`, which never waits for a reader; readers take what is stored after an id
and wait, bounded, for more. Cancellation is routed through the log too, because the process
that asks for it may not be the one generating.

Statuses: ``running``, then ``done``, ``error`` or ``cancelled`` once the terminal event is
stored. A stream is forgotten ``ttl`` seconds after it ended; its id is then unknown again.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Protocol

import attrs

from .errors import ConfigurationError, UnknownStreamError

if TYPE_CHECKING:
    from .base import StreamHandle

__all__ = ["END", "Entry", "Log", "MemoryLog", "Producing", "Reader", "unknown"]

END = frozenset({"done", "error"})
# One stored event: (id, type, data as JSON text).
Entry = tuple[str, str, str]
_BATCH = 512  # entries handed to a reader at most per read
_SWEEP = 1.0  # seconds between sweeps for expired streams
_MEMORY_ID = re.compile(r"[0-9]{1,18}")


def unknown(stream_id: str) -> UnknownStreamError:
    """The error for an id that names no stream (never started here, or expired)."""
    return UnknownStreamError(f"no resumable stream {stream_id!r} (never started, or its log expired)")


class Reader(Protocol):
    """Follows one stream from an id on."""

    ended: bool  # True once every entry up to the terminal one was returned: the next read is []

    def read(self, wait: float) -> list[Entry]:
        """The entries after the last one returned, waiting up to ``wait`` s for the first; [] if none came."""


class Log(Protocol):
    """Where the events of resumable streams are kept (see the module docstring)."""

    def open(self, stream_id: str) -> Producing:
        """Create the log of a new stream, status ``running``; raises if the log is unreachable."""

    def emit(self, producing: Producing, kind: str, data: str, end: str | None) -> None:
        """Append one event (from the stream's worker thread; never blocks on readers).

        ``end`` is the final status when this is the terminal event, else None.
        """

    def abandon(self, producing: Producing) -> None:
        """Forget a stream that could not start (its `stream_chat` raised)."""

    def reader(self, stream_id: str, after: str | None) -> Reader:
        """A reader of the entries after ``after``; raises `UnknownStreamError` or `ConfigurationError` at once."""

    def status(self, stream_id: str) -> str | None:
        """The stream's status, or None for an unknown or expired id."""

    def cancel(self, stream_id: str) -> bool:
        """Ask the producer to stop; False if the stream had already ended. Raises `UnknownStreamError`."""

    def close(self) -> None:
        """Release connections (running streams go on)."""


@attrs.define(eq=False)
class Producing:
    """A stream being generated in this process: its handle, once known, and a pending cancel."""

    stream_id: str
    handle: StreamHandle | None = None
    cancelled: bool = False
    sent: int = 0  # events emitted so far (only the stream's worker thread counts)
    origin: int = 0  # the Redis log's first part of entry ids: the start, in ms since the epoch

    def attach(self, handle: StreamHandle) -> None:
        """Record the stream's handle; honour a cancel that came first."""
        self.handle = handle
        if self.cancelled:
            handle.cancel()

    def cancel(self) -> None:
        """Stop the upstream request (now, or as soon as the handle is attached)."""
        self.cancelled = True
        handle = self.handle
        if handle is not None:
            handle.cancel()


@attrs.define(eq=False)
class _Stream:
    producing: Producing | None
    entries: list[Entry] = attrs.Factory(list)
    status: str = "running"
    ended: float | None = None
    cond: threading.Condition = attrs.Factory(threading.Condition)


class MemoryLog:
    """The log of one process: entries in lists, readers woken by a condition variable.

    Ids are decimal counters ``"1"``, ``"2"``, ... per stream. Expired streams are swept lazily,
    on the next call after their time is up.
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def _get(self, stream_id: str) -> _Stream:
        self._sweep()
        stream = self._streams.get(stream_id)
        if stream is None:
            raise unknown(stream_id)
        return stream

    def _sweep(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        with self._lock:
            self._next_sweep = now + min(_SWEEP, self._ttl)
            gone = [k for k, s in self._streams.items() if s.ended is not None and s.ended + self._ttl <= now]
            for key in gone:
                del self._streams[key]

    def open(self, stream_id: str) -> Producing:
        self._sweep()
        producing = Producing(stream_id)
        with self._lock:
            self._streams[stream_id] = _Stream(producing)
        return producing

    def emit(self, producing: Producing, kind: str, data: str, end: str | None) -> None:
        stream = self._streams[producing.stream_id]
        with stream.cond:
            entries = stream.entries
            entries.append((str(len(entries) + 1), kind, data))
            if end is not None:
                stream.status = end
                stream.ended = time.monotonic()
                stream.producing = None
            stream.cond.notify_all()

    def abandon(self, producing: Producing) -> None:
        with self._lock:
            self._streams.pop(producing.stream_id, None)

    def reader(self, stream_id: str, after: str | None) -> Reader:
        position = 0
        if after is not None:
            if not isinstance(after, str) or not _MEMORY_ID.fullmatch(after):
                raise ConfigurationError(f"not an event id of this log: {after!r} (expected a number)")
            position = int(after)
        return _MemoryReader(self._get(stream_id), position)

    def status(self, stream_id: str) -> str | None:
        try:
            return self._get(stream_id).status
        except UnknownStreamError:
            return None

    def cancel(self, stream_id: str) -> bool:
        stream = self._get(stream_id)
        with stream.cond:
            producing = stream.producing
        if producing is None:
            return False
        producing.cancel()
        return True

    def close(self) -> None:
        pass


class _MemoryReader:
    def __init__(self, stream: _Stream, position: int) -> None:
        self._stream = stream
        self._position = position
        self.ended = False

    def read(self, wait: float) -> list[Entry]:
        stream = self._stream
        position = self._position
        with stream.cond:
            if len(stream.entries) <= position and wait > 0 and stream.ended is None:
                stream.cond.wait(wait)
            entries = stream.entries
            batch = entries[position : position + _BATCH]
            position += len(batch)
            self.ended = stream.ended is not None and position >= len(entries)
        self._position = position
        return batch
