"""Incremental stream framing: a WHATWG server-sent-events parser and an NDJSON line splitter.

Both take bytes as they arrive (any split, one byte at a time included) and return complete
items as ``(event_type, data, last_event_id)`` tuples. Bytes are split into lines first and
decoded as UTF-8 afterwards, so a character split across reads is never broken, and an invalid
byte becomes U+FFFD instead of killing the stream. Time is linear in the input: an incomplete
line is kept as a list of pieces and joined once.
"""

from __future__ import annotations

import re

from .errors import StreamError

__all__ = ["NDJSONParser", "SSEParser"]

Item = tuple[str, str, str]  # (event_type, data, last_event_id)
_BLANK = [""]

# The two common shapes of a whole event: one ``data: `` line, after one ``event: `` line with a
# name (Anthropic) or alone (OpenAI). A run of them is found in one pass and taken apart in a
# second, both in C; a name of "" (no event line) stands for "message".
_SIMPLE_RUN = re.compile(r"(?:(?:event: [^\n]+\n)?data: [^\n]*\n\n)*")
_SIMPLE = re.compile(r"(?:event: ([^\n]+)\n)?data: ([^\n]*)\n\n")


class _LineBuffer:
    """The bytes after the last newline, held until the next one comes (bounded by max_event_bytes)."""

    __slots__ = ("_max", "_tail", "_tail_len")

    def __init__(self, max_event_bytes: int | None) -> None:
        self._tail: list[bytes] = []
        self._tail_len = 0
        self._max = max_event_bytes

    def _hold(self, chunk: bytes) -> bool:
        """Keep ``chunk`` (it has no newline) for later; True once what is held exceeds the limit."""
        if chunk:
            self._tail.append(chunk)
            self._tail_len += len(chunk)
        return self._max is not None and self._tail_len > self._max


class SSEParser(_LineBuffer):
    """The event-stream parser of the HTML Living Standard (§9.2.5-9.2.6), fed incrementally.

    Lines end at CRLF, LF or a lone CR (a CR at the end of a read ends the line at once and a
    following LF is swallowed); one leading BOM is stripped; comments are ignored; ``data``
    lines are joined with LF; an event with no ``data`` is not dispatched; the last event id
    persists; an unterminated event at EOF is discarded.

    Args:
        max_event_bytes: Raise `StreamError` when one event grows past this many bytes, instead
            of holding an unbounded amount of memory. None (the default) sets no limit.
    """

    __slots__ = ("_data", "_event", "_size", "_skip_lf", "_started", "last_id", "retry")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__(max_event_bytes)
        self._skip_lf = False
        self._data: str | list[str] | None = None
        self._size = 0  # characters of data in the event being read
        self._event = ""
        self._started = False
        self.last_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Item]:
        """Take the next bytes of the stream and return the events they complete."""
        if self._skip_lf and chunk:  # an empty read between a CR and its LF keeps the LF pending
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            if self._hold(chunk):
                self._too_big()
            return []
        if self._tail:
            self._tail.append(chunk[: end + 1])
            block = b"".join(self._tail)
            self._tail = []
            self._tail_len = 0
            if self._max is not None and len(block) > self._max and block.find(b"\n") == len(block) - 1:
                self._too_big()
        else:
            block = chunk if end + 1 == len(chunk) else chunk[: end + 1]
        if end + 1 < len(chunk):
            rest = chunk[end + 1 :]
            self._tail.append(rest)
            self._tail_len = len(rest)
        text = block.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            if text[:1] == "\ufeff":
                text = text[1:]
        return self._blocks(text)

    def _blocks(self, text: str) -> list[Item]:
        """Events from complete lines (``text`` ends with LF), taking the common shapes quickly.

        Whenever nothing is pending, a run of events that are each a single ``data: `` line
        (the OpenAI shape) or ``event: `` + ``data: `` (the Anthropic shape) is taken by two
        regular expressions. The event after such a run goes through the line-by-line rules
        (up to its blank line), then the next run is tried. The last piece has no blank line
        after it yet: its lines are read but not dispatched.
        """
        events: list[Item] = []
        lines = self._lines
        pos = 0
        while True:
            if self._data is None and not self._event:
                end = _SIMPLE_RUN.match(text, pos).end()  # type: ignore[union-attr]  # it matches "" at least
                if end > pos:
                    last_id = self.last_id
                    events += [(name or "message", data, last_id) for name, data in _SIMPLE.findall(text, pos, end)]
                    pos = end
            blank = text.find("\n\n", pos)
            if blank < 0:
                break
            lines(text[pos:blank].split("\n"), events)
            lines(_BLANK, events)
            pos = blank + 2
        if pos < len(text):
            lines(text[pos:-1].split("\n"), events)
        return events

    def _lines(self, lines: list[str], events: list[Item]) -> None:
        for line in lines:
            if not line:
                data = self._data
                if data is not None:
                    text = data if type(data) is str else "\n".join(data)
                    events.append((self._event or "message", text, self.last_id))
                    self._data = None
                self._event = ""
            elif line[0] == ":":
                continue
            elif line.startswith("data:"):
                self._add_data(line[6:] if line[5:6] == " " else line[5:])
            else:
                name, colon, value = line.partition(":")
                if colon and value[:1] == " ":
                    value = value[1:]
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._add_data(value)
                elif name == "id":
                    if "\0" not in value:
                        self.last_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    self.retry = int(value)

    def _add_data(self, value: str) -> None:
        data = self._data
        if data is None:
            self._data = value
            self._size = len(value)
            return
        if type(data) is list:
            data.append(value)
        else:
            self._data = [data, value]  # type: ignore[list-item]
        # a running total: summing the lines on each append went quadratic on many-line events
        self._size += len(value)
        if self._max is not None and self._size > self._max:
            self._too_big()

    def _too_big(self) -> None:
        self._tail = []
        self._tail_len = 0
        self._data = None
        raise StreamError(f"an event exceeded max_event_bytes ({self._max} bytes)")

    def close(self) -> list[Item]:
        """End of stream: an event without its blank line is discarded, per the standard."""
        self._tail = []
        self._tail_len = 0
        self._data = None
        self._event = ""
        return []


class NDJSONParser(_LineBuffer):
    """Splits a stream of newline-delimited JSON into lines (Ollama's native format).

    LF or CRLF end a line, blank lines are skipped, and a last line without a newline is
    returned by `close`. Each item is ``("message", line, "")``.
    """

    __slots__ = ()

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__(max_event_bytes)

    def feed(self, chunk: bytes) -> list[Item]:
        """Take the next bytes and return the complete lines."""
        end = chunk.rfind(b"\n")
        if end < 0:
            if self._hold(chunk):
                self._tail = []
                self._tail_len = 0
                raise StreamError(f"a line exceeded max_event_bytes ({self._max} bytes)")
            return []
        if self._tail:
            self._tail.append(chunk[:end])
            block = b"".join(self._tail)
            self._tail = []
        else:
            block = chunk[:end]
        rest = chunk[end + 1 :]
        self._tail_len = len(rest)
        if rest:
            self._tail.append(rest)
        return self._items(block)

    @staticmethod
    def _items(block: bytes) -> list[Item]:
        items: list[Item] = []
        for line in block.decode("utf-8", "replace").split("\n"):
            if line[-1:] == "\r":
                line = line[:-1]
            if line.strip():
                items.append(("message", line, ""))
        return items

    def close(self) -> list[Item]:
        """End of stream: return a last line that had no newline."""
        block = b"".join(self._tail)
        self._tail = []
        self._tail_len = 0
        return self._items(block) if block else []
