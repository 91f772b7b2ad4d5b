"""A loopback HTTP/1.1 server that serves pre-rendered OpenAI and Anthropic streams fast.

Run it in its own process (``python benchmarks/server.py`` prints ``PORT <n>`` and serves until
its stdin closes), or in-process with `start`. One thread per connection, keep-alive.

Routes (everything else is 404):

- ``POST <prefix>/v1/chat/completions``: OpenAI Chat Completions chunks, then ``data: [DONE]``.
- ``POST <prefix>/v1/messages``: Anthropic Messages events, then ``message_stop``.
- ``GET /_sendlog?rid=<id>``: the JSON list of ``time.monotonic()`` send times of the content
  chunks of the request tagged ``rid`` (removed once read).

The stream parameters ride in the URL prefix, so every client (SDKs included) only needs a
base URL: ``/b/n=20000,d=0,te=chunked,rid=abc``. Keys: ``n`` content chunks (default 20),
``d`` milliseconds between content chunks (default 0), ``te`` ``chunked`` (default: one SSE
event per HTTP chunk, as a server flushing per token sends) or ``close`` (no framing, the
body ends when the connection closes), ``rid`` a request id whose send times are logged.

Bodies with ``d=0`` are rendered once, cached, and written in 1 MiB ``sendall`` slices. Paced
bodies follow an absolute schedule (chunk ``i`` is due at ``start + i*d``); chunks that are late
(the server thread woke up late) go out together in one write. The send time logged for a
chunk is ``time.monotonic()`` just before the write that carries it.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from wire import render_events

__all__ = ["Server", "parse_spec", "start"]

_SLICE = 1 << 20
_HEAD_LIMIT = 65536


def parse_spec(path: str) -> Tuple[Dict[str, str], str]:
    """Split ``/b/k=v,k=v/rest`` into ({k: v}, "/rest"); a path without the prefix has no spec."""
    if path.startswith("/b/"):
        spec, _, rest = path[3:].partition("/")
        params = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
        return params, "/" + rest
    return {}, path


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Server:
    """The server: a listening socket, a thread per connection, the send-time log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(512)
        self.port: int = self._listener.getsockname()[1]
        self._events: Dict[Tuple[str, int], Tuple[List[bytes], List[bytes], List[bytes]]] = {}
        self._bodies: Dict[Tuple[str, int, str], bytes] = {}
        self._cache_lock = threading.Lock()
        self._sendlog: Dict[str, List[float]] = {}
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="bench-accept", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass

    # --- rendering ---------------------------------------------------------------------------

    def events(self, wire: str, n: int) -> Tuple[List[bytes], List[bytes], List[bytes]]:
        key = (wire, n)
        with self._cache_lock:
            found = self._events.get(key)
            if found is None:
                found = self._events[key] = render_events(wire, n)
            return found

    def body(self, wire: str, n: int, te: str) -> bytes:
        key = (wire, n, te)
        with self._cache_lock:
            found = self._bodies.get(key)
        if found is None:
            pre, mid, post = self.events(wire, n)
            every = pre + mid + post
            found = b"".join(map(_chunk, every)) + b"0\r\n\r\n" if te == "chunked" else b"".join(every)
            with self._cache_lock:
                self._bodies[key] = found
        return found

    # --- connections -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), name="bench-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        try:
            while True:
                req = _read_request(reader)
                if req is None:
                    return
                if not self._respond(sock, *req):
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                reader.close()
                sock.close()
            except OSError:
                pass

    def _respond(self, sock: socket.socket, method: str, target: str) -> bool:
        url = urlsplit(target)
        if url.path == "/_sendlog":
            rid = parse_qs(url.query).get("rid", [""])[0]
            with self._log_lock:
                times = self._sendlog.pop(rid, [])
            payload = ("[" + ",".join(repr(t) for t in times) + "]").encode()
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(payload), payload)
            )
            return True
        params, rest = parse_spec(url.path)
        if method == "POST" and rest.endswith("/chat/completions"):
            wire = "openai"
        elif method == "POST" and rest.endswith("/messages"):
            wire = "anthropic"
        else:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found")
            return True
        n = int(params.get("n", "20"))
        delay = float(params.get("d", "0")) / 1000.0
        te = params.get("te", "chunked")
        rid = params.get("rid")
        head = [b"HTTP/1.1 200 OK", b"Content-Type: text/event-stream; charset=utf-8", b"Cache-Control: no-cache"]
        head.append(b"Transfer-Encoding: chunked" if te == "chunked" else b"Connection: close")
        head.append(b"x-request-id: req_bench_%s" % (rid or "x").encode())
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
        if delay <= 0 and rid is None:
            body = memoryview(self.body(wire, n, te))
            for i in range(0, len(body), _SLICE):
                sock.sendall(body[i : i + _SLICE])
        else:
            self._paced(sock, wire, n, te, delay, rid)
        if te != "chunked":
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False
        return True

    def _paced(self, sock: socket.socket, wire: str, n: int, te: str, delay: float, rid: Optional[str]) -> None:
        pre, mid, post = self.events(wire, n)
        frame = _chunk if te == "chunked" else (lambda b: b)
        sent: List[float] = [0.0] * n
        start = time.monotonic()
        i = 0
        while i < n:
            now = time.monotonic()
            due = start + i * delay
            if due > now:
                time.sleep(due - now)
                now = time.monotonic()
            # every chunk already due goes out now, in one write
            j = i + 1
            while j < n and start + j * delay <= now:
                j += 1
            parts = [frame(e) for e in mid[i:j]]
            if i == 0:
                parts[:0] = [frame(e) for e in pre]
            if j == n:
                parts += [frame(e) for e in post]
                if te == "chunked":
                    parts.append(b"0\r\n\r\n")
            stamp = time.monotonic()
            sock.sendall(b"".join(parts))
            for k in range(i, j):
                sent[k] = stamp
            i = j
        if n == 0:
            tail = [frame(e) for e in pre + post] + ([b"0\r\n\r\n"] if te == "chunked" else [])
            sock.sendall(b"".join(tail))
        if rid is not None:
            with self._log_lock:
                self._sendlog[rid] = sent


def _read_request(reader: Any) -> Optional[Tuple[str, str]]:
    line = reader.readline(_HEAD_LIMIT)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    length = 0
    chunked = False
    while True:
        line = reader.readline(_HEAD_LIMIT)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int(reader.readline(_HEAD_LIMIT).split(b";")[0], 16)
            if size == 0:
                while reader.readline(_HEAD_LIMIT) not in (b"\r\n", b"\n", b""):
                    pass
                break
            reader.read(size + 2)
    elif length:
        reader.read(length)
    return method, target


def start(port: int = 0) -> Server:
    """Start a server in this process (daemon threads) and return it."""
    return Server(port=port).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = start(args.port)
    # warm the cache of the bodies the benchmark uses most
    for wire in ("openai", "anthropic"):
        server.body(wire, 20000, "chunked")
    print(f"PORT {server.port}", flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    server.stop()


if __name__ == "__main__":
    main()
