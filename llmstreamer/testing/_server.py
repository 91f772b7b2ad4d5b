"""The loopback HTTP/1.1 server behind `FakeLLMServer`: sockets, framing, and a record of requests."""

from __future__ import annotations

import itertools
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
from typing import Any, Callable, Sequence, Union

from .._closing import Closing
from ._pixigpt_fake import PixiGPTFake
from ._reply import RecordedRequest, Reply
from ._wire import Rendered, flavor_of, render, status_line

__all__ = ["FakeLLMServer"]

_server_ids = itertools.count(1)
_MAX_HEADER = 65536


ReplySource = Union[Reply, Callable[[RecordedRequest], Reply]]


class _ClientGone(Exception):
    pass


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        owner = self.server.owner
        if owner.tls is not None:
            try:  # the handshake runs here, on the connection's thread, bounded
                sock.settimeout(5)
                sock = owner.tls.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
            except OSError:  # the client refused our certificate, or went away
                sock.close()
                return
        owner._opened(sock)
        reader = sock.makefile("rb")
        try:
            while not owner._stopping.is_set():
                req = _read_request(reader)
                if req is None:
                    return
                owner._record(req)
                if not self._respond(sock, req):
                    return
        except (OSError, _ClientGone, ValueError):
            return
        finally:
            reader.close()
            owner._closed(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _respond(self, sock: socket.socket, req: RecordedRequest) -> bool:
        owner = self.server.owner
        reply = owner._next_reply(req)
        rendered = owner.pixigpt.render(req, reply) or render(flavor_of(req.path), reply, req)
        return _send(sock, reply, rendered, owner._stopping)


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # socketserver's default backlog of 5 resets (or drops) connections when many clients
    # connect at once: a test of 200 concurrent streams would fail on the server, not the client.
    request_queue_size = 512
    owner: FakeLLMServer

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-llm-conn-{next(_server_ids)}",
            daemon=True,
        )
        threads = self.owner._threads
        if len(threads) > 64:
            threads[:] = [t for t in threads if t.is_alive()]
        threads.append(thread)
        thread.start()


def _read_request(reader: Any) -> RecordedRequest | None:
    line = reader.readline(_MAX_HEADER)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = reader.readline(_MAX_HEADER)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline(_MAX_HEADER).split(b";")[0], 16)
            if size == 0:
                reader.readline(_MAX_HEADER)
                break
            parts.append(reader.read(size))
            reader.readline(_MAX_HEADER)
        body = b"".join(parts)
    elif headers.get("content-length"):
        body = reader.read(int(headers["content-length"]))
    return RecordedRequest(method, path, headers, body)


def _send(sock: socket.socket, reply: Reply, rendered: Rendered, stopping: threading.Event) -> bool:
    """Write one response; return whether the connection may carry another request."""
    if reply.silent:
        _stall(sock, reply.stall_for, stopping)
        _close(sock, reset=reply.reset)
        return False
    if rendered.body is not None:
        events: Sequence[bytes] = [rendered.body]
    else:
        sep = reply.line_ending.encode()
        events = [e.encode("utf-8").replace(b"\n", sep) if sep != b"\n" else e.encode("utf-8") for e in rendered.events]
        if reply.comments and rendered.sse:
            events = [x for e in events for x in ((b": keep-alive" + sep + sep), e)]
        if reply.bom and events:
            events = [b"\xef\xbb\xbf" + events[0], *events[1:]]
    transfer = reply.transfer if rendered.body is None else ("close" if reply.transfer == "close" else "length")
    head = [status_line(rendered.status), f"Content-Type: {rendered.content_type}\r\n"]
    head += [f"{k}: {v}\r\n" for k, v in rendered.headers.items()]
    if transfer == "chunked":
        head.append("Transfer-Encoding: chunked\r\n")
    elif transfer == "length":
        head.append(f"Content-Length: {sum(map(len, events))}\r\n")
    if transfer == "close":
        head.append("Connection: close\r\n")
    sock.sendall("".join(head).encode("latin-1") + b"\r\n")
    if reply.stall_after is not None:
        events = events[: reply.stall_after]
    if reply.disconnect_after is not None:
        events = events[: reply.disconnect_after]
    sent = 0
    limit = reply.disconnect_at
    writes = _writes(events, reply.writes)
    if reply.trickle is not None:
        body = b"".join(writes)
        writes = [body[i : i + 1] for i in range(min(reply.trickle, len(body)))] + [body[reply.trickle :]]
    for number, data in enumerate(writes):
        if reply.delay and number and stopping.wait(reply.delay):
            return False
        if limit is not None and sent + len(data) > limit:
            _put(sock, data[: limit - sent], transfer)
            _close(sock, reset=reply.reset)
            return False
        _put(sock, data, transfer)
        sent += len(data)
    if reply.stall_after is not None:
        _stall(sock, reply.stall_for, stopping)
        _close(sock, reset=reply.reset)
        return False
    if limit is not None or reply.disconnect_after is not None or transfer == "close":
        _close(sock, reset=reply.reset)
        return False
    if transfer == "chunked":
        sock.sendall(b"0\r\n\r\n")
    return True


def _writes(events: Sequence[bytes], mode: str) -> list[bytes]:
    if mode == "whole":
        return [b"".join(events)] if events else []
    if mode == "byte":
        data = b"".join(events)
        return [data[i : i + 1] for i in range(len(data))]
    return [e for e in events if e]


def _put(sock: socket.socket, data: bytes, transfer: str) -> None:
    if not data:
        return
    if transfer == "chunked":
        data = b"%x\r\n%s\r\n" % (len(data), data)
    sock.sendall(data)


def _stall(sock: socket.socket, seconds: float, stopping: threading.Event) -> None:
    """Hold the connection silent until the client closes it, the server stops, or time is up."""
    deadline = time.monotonic() + seconds
    while not stopping.is_set() and time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.02)
        if readable:
            try:
                if not sock.recv(65536):
                    raise _ClientGone()
            except OSError:
                raise _ClientGone() from None


def _close(sock: socket.socket, *, reset: bool) -> None:
    """End the connection: a FIN now, or a TCP reset when the handler closes the socket."""
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def wait_on(changed: threading.Condition, predicate: Callable[[], bool], timeout: float) -> bool:
    """Wait until ``predicate()`` holds, re-checking whenever ``changed`` is notified (and every
    50 ms); False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    with changed:
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            changed.wait(min(left, 0.05))
    return True


class FakeLLMServer(Closing):
    """A real threaded HTTP/1.1 server on 127.0.0.1 that speaks the providers' wire formats.

    It answers each request with the next scripted `Reply` (or ``default`` when none is
    queued), rendered in the format of the provider that asked (chosen by the URL path), and
    records every request so tests can assert on what was sent.

    Args:
        default: The reply when none is queued.
        host: The address to listen on (loopback).
        port: The port (0: any free one).
        tls: Serve HTTPS with this server-side ``ssl.SSLContext`` (a test CA's certificate for
            127.0.0.1, say); ``url`` then starts with ``https://``.

    Example::

        with FakeLLMServer() as server:
            server.add(Reply(text="Hello there"))
            s = OpenAIStreamer(model="gpt-4o-mini", api_key="test", base_url=server.base_url("openai"))
            assert s.chat([Message.user("Hi")]).text == "Hello there"
            assert server.requests[0].json["model"] == "gpt-4o-mini"
    """

    def __init__(
        self,
        *,
        default: ReplySource | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.default: ReplySource = default if default is not None else Reply(text="Hello from the fake server.")
        self.tls = tls
        self.requests: list[RecordedRequest] = []
        self.pixigpt = PixiGPTFake()  # PixiGPT's REST endpoints: state and scripted runs
        self._queue: list[ReplySource] = []
        self._lock = threading.RLock()  # re-entrant: wait_for predicates may read open_connections
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.connections_opened = 0
        self.connections_closed = 0
        self._server = _TCPServer((host, port), _Handler)
        self._server.owner = self
        address = self._server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-llm-server-{next(_server_ids)}",
            daemon=True,
        )
        self._thread.start()

    # --- scripting ----------------------------------------------------------------------------

    def add(self, *replies: ReplySource) -> FakeLLMServer:
        """Queue replies (or functions of the request returning one), answered in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            source = self._queue.pop(0) if self._queue else self.default
        return source(req) if callable(source) else source

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root URL (``https://`` when it serves TLS)."""
        return f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}"

    def base_url(self, flavor: str = "openai") -> str:
        """The ``base_url`` to give a streamer of this provider (its wire format is chosen by it)."""
        from ._wire import BASE_PATHS

        return self.url + BASE_PATHS.get(flavor, f"/{flavor}/v1")

    # --- what happened ------------------------------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._changed:
            self.requests.append(req)
            self._changed.notify_all()

    def _opened(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.add(sock)
            self.connections_opened += 1
            self._changed.notify_all()

    def _closed(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.discard(sock)
            self.connections_closed += 1
            self._changed.notify_all()

    @property
    def open_connections(self) -> int:
        """How many client connections are open right now."""
        with self._lock:
            return len(self._sockets)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` is true (checked on every request and connection change)."""
        return wait_on(self._changed, predicate, timeout)

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving and close every connection; bounded, idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)

    def __repr__(self) -> str:
        return f"<FakeLLMServer {self.url}>"
