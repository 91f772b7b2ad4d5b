"""The queue of one pending ModelSocket command, and what the reader queues when a command is over."""

from __future__ import annotations

import collections
import queue
from typing import Any

from ...errors import APIConnectionError, LLMStreamError, StreamError
from ._wire import PROVIDER

__all__ = ["WAKE", "Inbox", "Stop"]


class Stop:
    """What the reader queues for a command that will get no more events: why, as an error kind."""

    __slots__ = ("malformed", "message")

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        self.message = message
        self.malformed = malformed

    def error(self) -> LLMStreamError:
        """A fresh error for one consumer (each stream gets its own, to carry its own partial)."""
        cls = StreamError if self.malformed else APIConnectionError
        return cls(self.message, provider=PROVIDER)


WAKE = object()  # queued by a cancel: the waiting consumer looks at its token


class Inbox:
    """The queue of one pending command: the events of its ``cid``, in wire order."""

    __slots__ = ("_queue", "_ready", "cid", "seq_id")

    def __init__(self, cid: str, seq_id: str | None) -> None:
        self.cid = cid
        self.seq_id = seq_id
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: collections.deque[Any] = collections.deque()  # the consumer's side of a batch

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def put_batch(self, events: list[dict[str, Any]]) -> None:
        """Hand over several events at once (one queue operation for everything one read brought)."""
        self._queue.put(events)

    def wake(self) -> None:
        """Wake the consumer (a cancel): it finds the reason on its token."""
        self._queue.put(WAKE)
