"""The floor: a raw-socket client doing the least a correct Python client must do.

One socket, HTTP/1.1 keep-alive, 64 KiB ``recv``; a chunked-transfer decoder (or read to EOF
for close-delimited bodies), ``split(b"\\n\\n")`` into events, ``json.loads`` per event, text
out of the JSON. No SSE field parsing beyond ``data:`` (the server's events are regular), no
error handling beyond the status line: it is a yardstick, not a client.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit

_RECV = 65536


class _State:
    __slots__ = ("host", "owed", "path_prefix", "port", "sock")

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path_prefix = url.path.rstrip("/")
        self.sock: Optional[socket.socket] = None
        self.owed = 0  # bytes of the last chunked body still in flight (its final CRLF)


def prepare(base: str) -> _State:
    return _State(base)


def _request(st: _State, path: str, body: bytes) -> tuple[socket.socket, bytes, bool]:
    sock = st.sock
    if sock is None:
        sock = st.sock = socket.create_connection((st.host, st.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"POST {st.path_prefix}{path} HTTP/1.1\r\nHost: {st.host}:{st.port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    buf = b""
    while True:
        data = sock.recv(_RECV)
        if not data:
            raise ConnectionError("closed before the headers")
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
    head_text = buf[:end].decode("latin-1")
    if not head_text.startswith("HTTP/1.1 200"):
        raise ConnectionError(head_text.split("\r\n", 1)[0])
    chunked = "transfer-encoding: chunked" in head_text.lower()
    return sock, buf[end + 4 :], chunked


def _events(st: _State, path: str, body: bytes) -> Any:
    """Yield the raw event blocks (bytes, without the blank line) of one response."""
    sock, buf, chunked = _request(st, path, body)
    recv = sock.recv
    pending = b""
    if not chunked:
        try:
            while True:
                parts = (pending + buf).split(b"\n\n")
                pending = parts.pop()
                yield from parts
                buf = recv(_RECV)
                if not buf:
                    break
        finally:
            sock.close()
            st.sock = None
        return
    pos = 0
    while True:
        out: List[bytes] = []
        done = False
        n = len(buf)
        while True:
            i = buf.find(b"\r\n", pos)
            if i < 0:
                break
            size = int(buf[pos:i], 16)
            if size == 0:
                done = True
                break
            end = i + 2 + size
            if end + 2 > n:
                break
            out.append(buf[i + 2 : end])
            pos = end + 2
        if out:
            parts = (pending + b"".join(out)).split(b"\n\n")
            pending = parts.pop()
            yield from parts
        if done:
            st.owed = max(0, i + 4 - n)  # "0\r\n" then "\r\n": the part not received yet
            return
        data = recv(_RECV)
        if not data:
            raise ConnectionError("the body ended early")
        buf = buf[pos:] + data
        pos = 0


_OPENAI_BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something"}], "stream": True}
).encode()
_ANTH_BODY = json.dumps(
    {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say something"}]}],
        "stream": True,
    }
).encode()


def run_openai(st: _State, sink: Callable[[str], Any]) -> None:
    loads = json.loads
    for ev in _events(st, "/v1/chat/completions", _OPENAI_BODY):
        data = ev[6:]
        if data == b"[DONE]":
            continue
        choices = loads(data)["choices"]
        if choices:
            text = choices[0]["delta"].get("content")
            if text:
                sink(text)
    _drain(st)


def run_anthropic(st: _State, sink: Callable[[str], Any]) -> None:
    loads = json.loads
    for ev in _events(st, "/v1/messages", _ANTH_BODY):
        obj = loads(ev[ev.index(b"\ndata: ") + 7 :])
        if obj["type"] == "content_block_delta":
            delta = obj["delta"]
            if delta["type"] == "text_delta":
                sink(delta["text"])
    _drain(st)


def _drain(st: _State) -> None:
    """Read the CRLF that ends a chunked body, so the next request starts clean."""
    sock = st.sock
    if sock is None:
        return
    left, st.owed = st.owed, 0
    while left:
        got = sock.recv(left)
        if not got:
            sock.close()
            st.sock = None
            return
        left -= len(got)


CLIENTS: Dict[str, Dict[str, Any]] = {
    "raw": {"prepare": prepare, "run": run_openai, "shared": False},
    "raw_anth": {"prepare": prepare, "run": run_anthropic, "shared": False},
}
