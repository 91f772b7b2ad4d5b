"""The chunked-body reader: extensions, trailers, any split, truncation, and connection reuse."""

from __future__ import annotations

import io
import socket
import threading
from typing import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmstreamer import APIConnectionError, Message, OpenAIStreamer

EVENTS = [b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}],"model":"m"}\n\n' % w for w in (b"one", b" two", b" three")]
DONE = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


def chunk(data: bytes, extension: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


class RawServer:
    """A one-purpose HTTP/1.1 server that writes a given body, cut into given pieces, per request."""

    def __init__(self, pieces: list[bytes], *, close: bool = False) -> None:
        self.pieces = pieces
        self.close_after = close
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, name="raw-chunked-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            with conn, conn.makefile("rb") as reader:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while self._answer(conn, reader):
                    pass
                conn.shutdown(socket.SHUT_RDWR)

    def _answer(self, conn: socket.socket, reader: object) -> bool:
        length = 0
        while True:
            line = reader.readline()  # type: ignore[attr-defined]
            if not line:
                return False
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line == b"\r\n":
                break
        reader.read(length)  # type: ignore[attr-defined]
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in self.pieces:
                conn.sendall(piece)
        except OSError:
            return False
        return not self.close_after

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[RawServer] = []

    def start(pieces: list[bytes], close: bool = False) -> tuple[OpenAIStreamer, RawServer]:
        server = RawServer(pieces, close=close)
        servers.append(server)
        return OpenAIStreamer(api_key="k", base_url=f"http://127.0.0.1:{server.port}/v1", retry=0), server

    yield start
    for server in servers:
        server.close()


BODY = b"".join([chunk(EVENTS[0], b";name=value"), chunk(EVENTS[1] + EVENTS[2]), chunk(DONE), b"0;last\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"])


def test_extensions_and_trailers(serve: object) -> None:
    """Chunk extensions are ignored and trailer fields are consumed; the text is exact."""
    s, _ = serve([BODY])  # type: ignore[operator]
    assert s.chat([Message.user("Hi")]).text == "one two three"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_split_of_the_framing(serve: object, size: int) -> None:
    """Size lines, CRLFs, payloads and the trailer split anywhere across writes still give the exact text."""
    s, _ = serve([BODY[i : i + size] for i in range(0, len(BODY), size)])  # type: ignore[operator]
    assert s.chat([Message.user("Hi")]).text == "one two three"


def test_connection_is_reused_after_a_chunked_body(serve: object) -> None:
    """After the last chunk and its trailer, the connection goes back to the pool and is reused."""
    s, server = serve([BODY])  # type: ignore[operator]
    for _ in range(5):
        assert s.chat([Message.user("Hi")]).text == "one two three"
    assert server.accepted == 1


def test_eof_inside_the_framing_is_a_dropped_connection(serve: object) -> None:
    """A body that ends inside the chunk framing is a dropped connection, with the text so far kept."""
    s, _ = serve([chunk(EVENTS[0]), b"5"], close=True)  # type: ignore[operator]
    with pytest.raises(APIConnectionError, match="dropped mid-stream") as info:
        s.chat([Message.user("Hi")])
    assert info.value.partial is not None and info.value.partial.text == "one"


def test_bad_size_line_is_a_dropped_connection(serve: object) -> None:
    """A chunk size that is not hexadecimal ends the stream as a broken connection, not a crash."""
    s, _ = serve([chunk(EVENTS[0]), b"zz\r\nxx\r\n"], close=True)  # type: ignore[operator]
    with pytest.raises(APIConnectionError, match="bad chunk size"):
        s.chat([Message.user("Hi")])


class _Trickle(io.RawIOBase):
    """A raw stream handing out its data in the pieces given, as a socket delivers them."""

    def __init__(self, pieces: list[bytes]) -> None:
        super().__init__()
        self.pieces = pieces

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if not self.pieces:
            return 0
        piece = self.pieces.pop(0)
        n = min(len(b), len(piece))
        b[:n] = piece[:n]
        if n < len(piece):
            self.pieces.insert(0, piece[n:])
        return n


def test_sized_reads_return_what_arrived_and_grow_for_bulk() -> None:
    """Each read returns exactly the bytes that arrived, from a reused buffer that grows while reads fill it."""
    from llmstreamer._chunked import READ_SIZE, sized_reads

    bulk = bytes(range(256)) * 1024  # 256 KiB arriving at once
    read1 = sized_reads(io.BufferedReader(_Trickle([b"a", b"bc", bulk, b"tail"]), buffer_size=1024))
    got = [read1(READ_SIZE) for _ in range(8)]
    assert got[:2] == [b"a", b"bc"]
    assert [len(g) for g in got[2:7]] == [8192, 16384, 32768, 65536, 65536]
    assert b"".join(got[2:]) + b"".join(iter(lambda: read1(READ_SIZE), b"")) == bulk + b"tail"


class _Finished:
    """Stands in for urllib3's response: records that http.client's way of finishing was called."""

    def __init__(self) -> None:
        self.closed = 0
        self._fp = self

    def _close_conn(self) -> None:
        self.closed += 1


@settings(max_examples=300, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=40), max_size=12),
    extensions=st.lists(st.sampled_from([b"", b";a=b", b";x"]), min_size=12, max_size=12),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_dechunk_gives_the_payload_under_any_split_of_the_reads(
    payloads: list[bytes], extensions: list[bytes], cuts: list[int]
) -> None:
    """Chunks whole in one read (the quick case) or cut anywhere, with or without extensions, give
    exactly the payload, and the body is finished once at the last chunk."""
    from llmstreamer._chunked import dechunk

    body = b"".join(chunk(p, e) for p, e in zip(payloads, extensions)) + b"0\r\n\r\n"
    positions = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    reads = [body[a:b] for a, b in zip(positions, positions[1:]) if b > a]
    raw = _Finished()
    got = b"".join(dechunk(lambda _size: reads.pop(0) if reads else b"", raw))
    assert got == b"".join(payloads)
    assert raw.closed == 1 and reads == []
