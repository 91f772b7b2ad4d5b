"""Reading a chunked HTTP body in bulk: the chunk framing undone here, not per chunk in http.client."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import urllib3.exceptions

__all__ = ["READ_SIZE", "chunked_reader", "dechunk", "sized_reads"]

READ_SIZE = 65536
_FIRST_BUFFER = 8192  # a stream's read buffer starts here and doubles (up to READ_SIZE) when a read fills it


def chunked_reader(raw: Any) -> Callable[[int], bytes] | None:
    """The socket reader of a chunked, uncompressed body not yet read, else None.

    http.client's ``read1`` never returns more than the current HTTP chunk, and servers flush
    one event per chunk, so reading through urllib3 costs one trip through its whole stack per
    event. Reading the connection's buffered reader and undoing the chunk framing here hands the
    parser everything that has arrived in one piece. Anything unusual (compression, a body
    already started, another http.client) takes the ordinary path.
    """
    inner = getattr(raw, "_fp", None)
    fp = getattr(inner, "fp", None)
    if (
        not getattr(inner, "chunked", False)
        or getattr(inner, "chunk_left", 0) is not None
        or fp is None
        or not hasattr(fp, "read1")
        or raw.headers.get("content-encoding", "identity").lower() != "identity"
    ):
        return None
    return sized_reads(fp) if hasattr(fp, "readinto1") else fp.read1  # type: ignore[no-any-return]


def sized_reads(fp: Any) -> Callable[[int], bytes]:
    """``read1`` for ``fp`` that reads into one reused buffer and returns exactly what arrived.

    ``BufferedReader.read1(65536)`` allocates 64 KiB per call and shrinks it to what the socket
    had (often one 300-byte event): with hundreds of streams on their own threads that churns
    the allocator's per-thread arenas. Here each stream reads into its own buffer (8 KiB, doubled
    up to ``READ_SIZE`` while reads fill it, so bulk bodies still come in big pieces) and copies
    out only the bytes read. ``size`` is ignored beyond the buffer's size.
    """
    readinto1 = fp.readinto1
    view = memoryview(bytearray(_FIRST_BUFFER))

    def read1(size: int = READ_SIZE) -> bytes:
        nonlocal view
        n: int = readinto1(view)
        data = view[:n].tobytes()
        if n == len(view) and n < READ_SIZE:
            view = memoryview(bytearray(n * 2))
        return data

    return read1


def dechunk(read1: Callable[[int], bytes], raw: Any) -> Iterator[bytes]:
    """Yield the payload of a chunked body read with ``read1``, one piece per read.

    At the final zero-size chunk (and its trailer) the http.client response is finished the way
    it finishes itself, so urllib3 sees a complete body and pools the connection.
    """
    pending = b""
    left = 0  # > 0: payload bytes left in this chunk; < 0: bytes of its CRLF still to skip
    while True:
        data = read1(READ_SIZE)
        if not data:
            raise urllib3.exceptions.ProtocolError("the connection closed before the end of the chunked body")
        if pending:
            data, pending = pending + data, b""
        pos, size, out = 0, len(data), []
        while pos < size:
            if left > 0:
                end = min(pos + left, size)
                out.append(data[pos:end])
                left -= end - pos
                pos = end
                if left == 0:
                    left = -2
            elif left < 0:
                skip = min(-left, size - pos)
                pos += skip
                left += skip
            else:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    pending = data[pos:]
                    break
                left = _size(data[pos:eol])
                pos = eol + 1
                if left == 0:
                    if out:
                        yield b"".join(out)
                    _finish_chunked(read1, data[pos:], raw)
                    return
                end = pos + left
                if left > 0 and end + 2 <= size:  # the usual case: the chunk and its CRLF are all here
                    out.append(data[pos:end])
                    pos = end + 2
                    left = 0
        if out:
            yield b"".join(out) if len(out) > 1 else out[0]


def _size(line: bytes) -> int:
    """The size on a chunk's size line (hexadecimal, then maybe ``;`` and extensions)."""
    try:
        return int(line, 16)  # no extension: int() alone (it ignores the CR)
    except ValueError:
        pass
    try:
        return int(line.split(b";", 1)[0], 16)
    except ValueError:
        raise urllib3.exceptions.ProtocolError(f"bad chunk size line {line[:40]!r}") from None


def _finish_chunked(read1: Callable[[int], bytes], rest: bytes, raw: Any) -> None:
    """Read the trailer after the last chunk (up to its blank line), then close the body."""
    while True:
        start = 0
        while True:
            eol = rest.find(b"\n", start)
            if eol < 0:
                break
            if rest[start:eol].strip() == b"":
                raw._fp._close_conn()  # as http.client does at the end of a chunked body
                return
            start = eol + 1
        more = read1(READ_SIZE)
        if not more:
            raise urllib3.exceptions.ProtocolError("the connection closed inside the chunked trailer")
        rest = rest[start:] + more
