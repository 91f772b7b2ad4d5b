"""Reading WebSocket frames in bulk from a connected socket (RFC 6455, the client's side).

websocket-client reads each frame with several small ``recv`` calls and Python-level checks;
here everything that has arrived is read at once and cut into frames in one loop. Fragmented
messages are reassembled; control frames (ping, pong, close) are handed over as they come.
No extension is ever negotiated, so reserved bits are an error, as is a masked server frame.
"""

from __future__ import annotations

from typing import Callable, Iterator

__all__ = ["OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG", "OP_TEXT", "READ_SIZE", "FrameError", "messages"]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
READ_SIZE = 65536


class FrameError(ValueError):
    """The server broke the framing rules; the connection cannot go on."""


def messages(recv: Callable[[int], bytes]) -> Iterator[list[tuple[int, bytes]]]:
    """Per read of ``recv``, the complete messages it finished: ``(opcode, payload)`` in wire order.

    Ends when ``recv`` returns no data (the connection closed). A frame bigger than what has
    arrived is collected piece by piece and joined once, so large frames cost linear time.
    """
    buf = b""
    frag_op: int | None = None
    frag: list[bytes] = []
    while True:
        out: list[tuple[int, bytes]] = []
        pos, size = 0, len(buf)
        want = 0  # > 0: the frame at ``pos`` needs this many bytes in all
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            start = pos + 2
            if n == 126:
                start = pos + 4
                if start > size:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
            elif n == 127:
                start = pos + 10
                if start > size:
                    break
                n = int.from_bytes(buf[pos + 2 : start], "big")
            end = start + n
            if end > size:
                want = end - pos
                break
            if b0 & 0x70 or b1 & 0x80:
                raise FrameError("a masked frame, or reserved bits set, from the server")
            op = b0 & 0x0F
            payload = buf[start:end]
            pos = end
            if op >= OP_CLOSE:
                if not b0 & 0x80 or n > 125:
                    raise FrameError("a fragmented or oversized control frame")
                out.append((op, payload))
            elif op == OP_CONT:
                if frag_op is None:
                    raise FrameError("a continuation frame outside a fragmented message")
                frag.append(payload)
                if b0 & 0x80:
                    out.append((frag_op, b"".join(frag)))
                    frag_op, frag = None, []
            elif frag_op is not None:
                raise FrameError("a new message inside a fragmented one")
            elif b0 & 0x80:
                out.append((op, payload))
            else:
                frag_op, frag = op, [payload]
        buf = buf[pos:] if pos else buf
        if out:
            yield out
        if want > len(buf) + READ_SIZE:  # a big frame: gather it without re-joining the buffer per read
            pieces, have = [buf], len(buf)
            while have < want:
                more = recv(want - have)
                if not more:
                    return
                pieces.append(more)
                have += len(more)
            buf = b"".join(pieces)
            continue
        data = recv(READ_SIZE)
        if not data:
            return
        buf = buf + data if buf else data
