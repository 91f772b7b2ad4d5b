"""ModelSocket clients for ``modelsocket.py``: the floor, a plain websocket-client loop, llmstreamer.

Each keeps one connection across runs (as a ModelSocket client does) and streams ``k``
sequences on it at once: open each (``bench/<n>`` asks the server for ``n`` frames), append a
prompt, generate, close. ``run(state, n, k)`` returns the texts of the ``k`` sequences.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any, Dict, List

_PROMPT = "Say something"


def _masked(text: str) -> bytes:
    """One masked client text frame (a zero mask: the XOR is the identity, allowed by RFC 6455)."""
    payload = text.encode()
    n = len(payload)
    head = struct.pack("!BB", 129, 128 | n) if n < 126 else struct.pack("!BBH", 129, 128 | 126, n)
    return head + b"\0\0\0\0" + payload


# --- the floor: a raw socket, frames parsed in bulk, json.loads per frame -----------------------


class RawWS:
    """A WebSocket on a raw socket: handshake, then bulk reads parsed frame by frame."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: modelsocket.v0\r\n\r\n".encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(4096)
        self.buf = buf.split(b"\r\n\r\n", 1)[1]
        self.cid = 0
        self.stream = self.events()  # one parser for the connection's life

    def send(self, obj: Dict[str, Any]) -> None:
        self.sock.sendall(_masked(json.dumps(obj, separators=(",", ":"))))

    def events(self) -> Any:
        """Every event, parsed, as frames arrive (whole 64 KiB reads parsed in one loop)."""
        buf, loads, recv = self.buf, json.loads, self.sock.recv
        while True:
            pos, size = 0, len(buf)
            while size - pos >= 2:
                b1 = buf[pos + 1] & 0x7F
                start = pos + 2
                if b1 == 126:
                    if size - pos < 4:
                        break
                    b1 = (buf[pos + 2] << 8) | buf[pos + 3]
                    start = pos + 4
                elif b1 == 127:
                    if size - pos < 10:
                        break
                    b1 = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    start = pos + 10
                end = start + b1
                if end > size:
                    break
                opcode = buf[pos] & 0x0F
                pos = end
                if opcode == 0x1:
                    yield loads(buf[start:end])
            buf = buf[pos:]
            data = recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            buf += data

    def wait(self, events: Any, kind: str) -> Dict[str, Any]:
        for event in events:
            if event["event"] == kind:
                return event  # type: ignore[no-any-return]
        raise ConnectionError(kind)


def _cid(ws: Any) -> str:
    ws.cid += 1
    return f"c{ws.cid}"


def _open(ws: Any, events: Any, n: int) -> str:
    ws.send({"request": "seq_open", "cid": _cid(ws), "data": {"model": f"bench/{n}"}})
    seq_id: str = ws.wait(events, "seq_opened")["seq_id"]
    ws.send({"request": "seq_command", "cid": _cid(ws), "seq_id": seq_id, "data": {"command": "append", "role": "user", "text": _PROMPT}})
    ws.wait(events, "seq_append_finish")
    return seq_id


def _run_frames(ws: Any, n: int, k: int) -> List[str]:
    """Open ``k`` sequences, generate on all of them at once, route text by cid, close them."""
    stream = ws.stream
    seqs = [_open(ws, stream, n) for _ in range(k)]
    texts: Dict[str, List[str]] = {}
    order = []
    for seq_id in seqs:
        cid = _cid(ws)
        texts[cid] = []
        order.append(cid)
        ws.send({"request": "seq_command", "cid": cid, "seq_id": seq_id, "data": {"command": "gen", "max_tokens": n}})
    left = k
    for event in stream:
        kind = event["event"]
        if kind == "seq_text":
            if not event["hidden"]:
                texts[event["cid"]].append(event["text"])
        elif kind == "seq_gen_finish":
            left -= 1
            if not left:
                break
    for seq_id in seqs:
        ws.send({"request": "seq_command", "cid": _cid(ws), "seq_id": seq_id, "data": {"command": "close"}})
        ws.wait(stream, "seq_closed")
    return ["".join(texts[c]) for c in order]


def prepare_raw(url: str) -> RawWS:
    return RawWS(url)


def run_raw(ws: RawWS, n: int, k: int) -> List[str]:
    return _run_frames(ws, n, k)


# --- a plain websocket-client recv() loop -------------------------------------------------------


class WSC:
    """websocket-client's ``create_connection`` and ``recv()``, json.loads per frame."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, subprotocols=["modelsocket.v0"])
        self.cid = 0
        self.stream = self.events()

    def send(self, obj: Dict[str, Any]) -> None:
        self.ws.send(json.dumps(obj, separators=(",", ":")))

    def events(self) -> Any:
        recv, loads = self.ws.recv, json.loads
        while True:
            yield loads(recv())

    wait = RawWS.wait


def prepare_wsc(url: str) -> WSC:
    return WSC(url)


def run_wsc(ws: WSC, n: int, k: int) -> List[str]:
    return _run_frames(ws, n, k)


# --- llmstreamer ---------------------------------------------------------------------------------


def prepare_lls(url: str) -> Any:
    return {"url": url, "streamers": {}}


def run_lls(state: Any, n: int, k: int) -> List[str]:
    from llmstreamer import Message, ModelSocketStreamer, StreamCallbacks

    streamer = state["streamers"].get(n)
    if streamer is None:  # one streamer (one connection) per model, kept across runs
        streamer = state["streamers"][n] = ModelSocketStreamer(model=f"bench/{n}", api_key="ms-bench", base_url=state["url"])
    pieces: List[List[str]] = [[] for _ in range(k)]
    handles = [
        streamer.stream_chat([Message.user(_PROMPT)], StreamCallbacks(on_content=p.append)) for p in pieces
    ]
    for h in handles:
        h.result(timeout=600)
    return ["".join(p) for p in pieces]


CLIENTS: Dict[str, Dict[str, Any]] = {
    "ms_raw": {"prepare": prepare_raw, "run": run_raw, "what": "raw socket, frames parsed in bulk + json.loads (floor)"},
    "ms_wsc": {"prepare": prepare_wsc, "run": run_wsc, "what": "websocket-client create_connection + recv() loop + json.loads"},
    "ms_lls": {"prepare": prepare_lls, "run": run_lls, "what": "llmstreamer ModelSocketStreamer.stream_chat + on_content"},
}
