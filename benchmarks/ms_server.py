"""A loopback ModelSocket server for the benchmark: raw sockets, pre-rendered ``seq_text`` frames.

``python ms_server.py`` prints ``PORT <n>`` and serves until its stdin closes. The model name
says how many frames a ``gen`` streams: ``bench/20000``. A generation's frames are rendered
once per (count, cid length, seq_id length) with placeholder ids (runs of `~` and `^`), then the ids are put in with
two ``bytes.replace`` calls, so the server spends almost nothing per run; each ``gen`` is
written by its own thread in 64 KiB slices (concurrent generations interleave on the wire).
Also answers ``seq_open``, ``append``, ``close`` and pings. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import sys
import threading
from typing import Dict, List, Tuple

from wire import token

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SLICE = 65536
_templates: Dict[Tuple[int, int, int], Tuple[bytes, List[int]]] = {}
_templates_lock = threading.Lock()


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _event(obj: dict) -> bytes:
    return frame(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def gen_body(n: int, cid: str, seq_id: str) -> Tuple[bytes, List[int]]:
    """The ``seq_text`` frames of an ``n``-token generation and its ``seq_gen_finish``, and the
    offsets of the frame boundaries that cut it into ~64 KiB slices."""
    key = (n, len(cid), len(seq_id))
    with _templates_lock:
        found = _templates.get(key)
        if found is None:
            c, s = "~" * len(cid), "^" * len(seq_id)  # characters no frame otherwise holds
            parts = [
                _event({"event": "seq_text", "cid": c, "seq_id": s, "text": token(i), "hidden": False,
                        "num_input_tokens": 12, "num_output_tokens": i + 1, "tokens": None})
                for i in range(n)
            ]
            parts.append(_event({"event": "seq_gen_finish", "cid": c, "seq_id": s}))
            cuts, size = [], 0
            for part in parts:
                size += len(part)
                if not cuts or size - cuts[-1] >= _SLICE:
                    cuts.append(size)
            cuts[-1] = size
            found = _templates[key] = (b"".join(parts), cuts)
    body, cuts = found
    return body.replace(b"~" * len(cid), cid.encode()).replace(b"^" * len(seq_id), seq_id.encode()), cuts


class Conn:
    """One client connection: read its frames, answer its requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.seqs: Dict[str, int] = {}
        self.next_seq = 0

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def send_slices(self, data: bytes, cuts: List[int]) -> None:
        """Write whole frames in ~64 KiB slices, so concurrent generations interleave frame-wise."""
        view, start = memoryview(data), 0
        try:
            for end in cuts:
                self.send(view[start:end])
                start = end
        except OSError:
            pass  # the client went away

    def handshake(self, f) -> bool:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline(65536)
            if not line:
                return False
            head += line
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + _GUID).digest()).decode()
        proto = "Sec-WebSocket-Protocol: modelsocket.v0\r\n" if "modelsocket.v0" in headers.get("sec-websocket-protocol", "") else ""
        self.send(
            f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{proto}\r\n".encode()
        )
        return True

    def serve(self) -> None:
        f = self.sock.makefile("rb")
        try:
            if not self.handshake(f):
                return
            while True:
                head = f.read(2)
                if len(head) < 2:
                    return
                opcode, n = head[0] & 0x0F, head[1] & 0x7F
                if n == 126:
                    n = struct.unpack("!H", f.read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", f.read(8))[0]
                mask = f.read(4) if head[1] & 0x80 else b"\0\0\0\0"
                raw = f.read(n)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(raw))
                if opcode == 0x8:
                    self.send(frame(payload[:2], 0x8))
                    return
                if opcode == 0x9:
                    self.send(frame(payload, 0xA))
                elif opcode == 0x1:
                    self.request(json.loads(payload))
        except OSError:
            return
        finally:
            self.sock.close()

    def request(self, req: dict) -> None:
        cid, data = req.get("cid"), req.get("data") or {}
        if req.get("request") == "seq_open":
            self.next_seq += 1
            seq_id = f"seq_{self.next_seq}"
            self.seqs[seq_id] = int(str(data.get("model", "bench/1")).rsplit("/", 1)[-1])
            self.send(_event({"event": "seq_opened", "cid": cid, "seq_id": seq_id}))
            return
        seq_id, command = req.get("seq_id"), data.get("command")
        if command == "append":
            self.send(_event({"event": "seq_append_finish", "cid": cid, "seq_id": seq_id}))
        elif command == "gen":
            body, cuts = gen_body(self.seqs.get(seq_id, 1), cid, seq_id)
            threading.Thread(target=self.send_slices, args=(body, cuts), daemon=True).start()
        elif command == "close":
            self.seqs.pop(seq_id, None)
            self.send(_event({"event": "seq_closed", "cid": cid, "seq_id": seq_id, "input_tokens": 12,
                              "cached_input_tokens": 0, "output_tokens": 0, "duration_ms": 1, "error": None}))


def main() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {srv.getsockname()[1]}", flush=True)

    def accept() -> None:
        while True:
            try:
                sock, _ = srv.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Conn(sock).serve, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # until the driver closes our stdin
    srv.close()


if __name__ == "__main__":
    main()
