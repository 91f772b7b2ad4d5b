"""ModelSocket's receive path: frames cut in bulk (`_ws_frames`), pings answered, the keep-alive option."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmstreamer import APIConnectionError, ConfigurationError, ModelSocketStreamer, StreamError
from llmstreamer._cancel import CancelToken
from llmstreamer._ws_frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, FrameError, messages
from llmstreamer.providers.modelsocket import ModelSocketClient

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op: int, payload: bytes, *, fin: bool = True, first: int = 0) -> bytes:
    """One server frame (unmasked); ``first`` ORs extra bits into the first byte."""
    b0 = (0x80 if fin else 0) | op | first
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", b0, n) + payload
    if n < 65536:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def feed(wire: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    """Everything `messages` yields when ``wire`` arrives cut at ``cuts``."""
    bounds = sorted(set(c for c in cuts if 0 < c < len(wire)))
    pieces = iter([wire[a:b] for a, b in zip([0, *bounds], [*bounds, len(wire)])])
    return [m for batch in messages(lambda size: next(pieces, b"")) for m in batch]


MESSAGES = [
    (OP_TEXT, frame(OP_TEXT, b'{"event":"seq_text"}'), [(OP_TEXT, b'{"event":"seq_text"}')]),
    (OP_PING, frame(OP_PING, b"hi"), [(OP_PING, b"hi")]),
    (OP_TEXT, frame(OP_TEXT, "é🙂".encode() * 20000), [(OP_TEXT, "é🙂".encode() * 20000)]),
    (OP_BINARY, frame(OP_BINARY, bytes(range(256)) * 300), [(OP_BINARY, bytes(range(256)) * 300)]),
    (
        OP_TEXT,
        frame(OP_TEXT, b"ab", fin=False) + frame(OP_PONG, b"") + frame(0, b"cd", fin=False) + frame(0, b"ef"),
        [(OP_PONG, b""), (OP_TEXT, b"abcdef")],
    ),
    (OP_TEXT, frame(OP_TEXT, b"x" * (1 << 20)), [(OP_TEXT, b"x" * (1 << 20))]),
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(range(len(MESSAGES))), min_size=1, max_size=8), st.lists(st.integers(0, 3_000_000), max_size=40))
def test_any_split_of_any_frames_gives_the_same_messages(picks: list[int], cuts: list[int]) -> None:
    """Frames cut anywhere (headers, lengths, payloads) come out whole, in order, fragments joined."""
    wire = b"".join(MESSAGES[i][1] for i in picks)
    expected = [m for i in picks for m in MESSAGES[i][2]]
    assert feed(wire, [c % (len(wire) + 1) for c in cuts]) == expected


@pytest.mark.parametrize(
    "wire",
    [
        frame(OP_TEXT, b"x", first=0x40),  # a reserved bit
        struct.pack("!BB", 0x81, 0x81) + b"\0\0\0\0x",  # a masked server frame
        frame(0, b"x"),  # a continuation with nothing to continue
        frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"),  # a new message inside a fragmented one
        frame(OP_PING, b"a", fin=False),  # a fragmented control frame
        frame(OP_PING, b"a" * 126),  # an oversized control frame
    ],
)
def test_framing_violations_raise(wire: bytes) -> None:
    """A server that breaks the framing rules raises FrameError (the connection is given up)."""
    with pytest.raises(FrameError):
        feed(wire, [])


def test_a_closed_connection_ends_the_messages() -> None:
    """The messages end when the socket is closed, even inside a frame."""
    assert feed(frame(OP_TEXT, b"whole") + frame(OP_TEXT, b"cut short")[:5], [3]) == [(OP_TEXT, b"whole")]


# --- a tiny ModelSocket server on a raw socket, to see pings and pongs ---------------------------


class RawServer:
    """Answers the handshake and ``seq_open``; records the opcodes and payloads the client sends."""

    def __init__(self, *, answer_pings: bool = True, ping_first: bytes | None = None) -> None:
        self.answer_pings = answer_pings
        self.ping_first = ping_first
        self.received: list[tuple[int, bytes]] = []
        self.got = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/ws"
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, name="test-raw-ws", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        self.conns.append(sock)
        f = sock.makefile("rb")
        try:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = f.readline()
                if not line:
                    return
                head += line
            key = next(h.split(b":", 1)[1].strip() for h in head.split(b"\r\n") if h.lower().startswith(b"sec-websocket-key"))
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            if self.ping_first is not None:
                sock.sendall(frame(OP_PING, self.ping_first))
            while True:
                b0, b1 = f.read(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", f.read(2))[0]
                mask = f.read(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
                op = b0 & 0x0F
                with self.got:
                    self.received.append((op, payload))
                    self.got.notify_all()
                if op == OP_PING and self.answer_pings:
                    sock.sendall(frame(OP_PONG, payload))
                elif op == OP_TEXT:
                    req = json.loads(payload)
                    if req.get("request") == "seq_open":
                        sock.sendall(frame(OP_TEXT, json.dumps({"event": "seq_opened", "cid": req["cid"], "seq_id": "s1"}).encode()))
                elif op == OP_CLOSE:
                    sock.sendall(frame(OP_CLOSE, payload[:2]))
                    return
        except (OSError, ValueError):
            return
        finally:
            sock.close()

    def wait_for(self, op: int, count: int = 1, timeout: float = 5.0) -> list[bytes]:
        """The payloads of the first ``count`` frames of opcode ``op`` (waits, bounded)."""
        with self.got:
            self.got.wait_for(lambda: len([p for o, p in self.received if o == op]) >= count, timeout)
            return [p for o, p in self.received if o == op]

    def close(self) -> None:
        self.listener.close()
        for sock in self.conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)


@pytest.fixture
def raw_server() -> Iterator[Any]:
    """Start raw servers; all are closed after the test."""
    started: list[RawServer] = []

    def start(**kwargs: Any) -> RawServer:
        started.append(RawServer(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_a_server_ping_is_answered_with_its_payload(raw_server: Any) -> None:
    """A ping from the server gets a pong with the same payload, and the connection goes on."""
    server = raw_server(ping_first=b"are you there")
    client = ModelSocketClient.connect(server.url, timeout=5)
    try:
        assert server.wait_for(OP_PONG) == [b"are you there"]
        assert client.open("m").id == "s1"
    finally:
        client.close()


def test_keepalive_pings_an_idle_connection(raw_server: Any) -> None:
    """With keepalive, a silent connection is pinged; answered pings keep it open."""
    server = raw_server()
    client = ModelSocketClient.connect(server.url, timeout=5, keepalive=0.1)
    try:
        assert len(server.wait_for(OP_PING, 3)) >= 3
        assert not client.closed
        assert client.open("m").id == "s1"
    finally:
        client.close()


def test_keepalive_gives_up_a_connection_that_stops_answering(raw_server: Any) -> None:
    """A ping left unanswered for the keepalive interval fails the pending command and closes the client."""
    server = raw_server(answer_pings=False)
    client = ModelSocketClient.connect(server.url, timeout=30, keepalive=0.1)
    try:
        inbox = client._conn.command({"model": "m"}, seq_id=None)
        assert client._conn.next(inbox, CancelToken(), 5)["event"] == "seq_opened"
        with pytest.raises(APIConnectionError, match="did not answer a keep-alive ping within 0.1 s"):
            client._conn.next(inbox, CancelToken(), 5)
        assert client.closed
    finally:
        client.close()


def test_no_pings_without_keepalive(raw_server: Any) -> None:
    """Without keepalive nothing but requests is sent (the default, as before)."""
    server = raw_server()
    client = ModelSocketClient.connect(server.url, timeout=5)
    try:
        assert client.open("m").id == "s1"
        assert [op for op, _ in server.received] == [OP_TEXT]
    finally:
        client.close()


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
def test_keepalive_must_be_positive_seconds(bad: Any) -> None:
    """A keepalive that is not a positive number is refused before connecting."""
    with pytest.raises(ConfigurationError, match="keepalive must be a positive number"):
        ModelSocketStreamer(model="m", api_key="k", base_url="ws://127.0.0.1:9/ws", keepalive=bad)
    with pytest.raises(ConfigurationError, match="keepalive must be a positive number"):
        ModelSocketClient.connect("ws://127.0.0.1:9/ws", keepalive=bad)


def test_one_reads_events_keep_their_order_around_the_slow_kinds(raw_server: Any) -> None:
    """Events gathered per command from one read keep wire order around those routed under the lock."""
    server = raw_server()
    client = ModelSocketClient.connect(server.url, timeout=5)
    try:
        conn = client._conn
        a = conn.command({"command": "gen"}, seq_id="s1")  # the raw server does not answer these
        b = conn.command({"command": "gen"}, seq_id="s2")

        def text(inbox: Any, t: str) -> tuple[int, bytes]:
            event = {"event": "seq_text", "cid": inbox.cid, "seq_id": inbox.seq_id, "text": t}
            return (OP_TEXT, json.dumps(event).encode())

        conn._deliver(
            [
                text(a, "a1"),
                text(b, "b1"),
                (OP_TEXT, b'{"event": "seq_state", "seq_id": "s1", "state": "generating"}'),
                text(a, "a2"),
                (OP_TEXT, b'{"event": "error", "seq_id": "s2", "message": "overloaded"}'),
                text(b, "b-late"),
                (OP_TEXT, json.dumps({"event": "seq_text", "cid": a.cid, "text": "x"}).encode()[:-3]),  # malformed
                text(a, "a3"),
            ]
        )
        got_a = [conn.next(a, CancelToken(), 1).get("text") for _ in range(2)]
        with pytest.raises(StreamError, match="malformed frame"):
            conn.next(a, CancelToken(), 1)
        got_b = [conn.next(b, CancelToken(), 1) for _ in range(2)]
        assert (got_a, conn.states) == (["a1", "a2"], {"s1": "generating"})
        assert [e.get("text") or e["message"] for e in got_b] == ["b1", "overloaded"]
    finally:
        client.close()
