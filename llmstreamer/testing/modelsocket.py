"""`FakeModelSocketServer`: a real ModelSocket WebSocket server on 127.0.0.1, for tests.

It follows the protocol's state machine per sequence (ready, appending, generating, tool_call,
forking, closed), answers ``gen`` with scripted `Generation`\\ s, and records every request.
Needs the ``websockets`` package (``pip install llmstreamer[test]``).

Example::

    from llmstreamer import ModelSocketStreamer, Message
    from llmstreamer.testing.modelsocket import FakeModelSocketServer, Generation

    with FakeModelSocketServer(api_key="test") as server:
        server.add(Generation("Hello there"))
        s = ModelSocketStreamer(model="m", api_key="test", base_url=server.url)
        assert s.chat([Message.user("Hi")]).text == "Hello there"
        s.close()
"""

from __future__ import annotations

import itertools
import threading
from http import HTTPStatus
from typing import Any, Callable, Mapping, Sequence

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from .._closing import Closing
from ._ms_connection import _Connection
from ._ms_script import (
    CloseSeq,
    Drop,
    Fail,
    FakeSeq,
    Generation,
    GenRequest,
    GenSource,
    Hidden,
    Hold,
    Raw,
    ToolCalls,
    echo,
)
from ._server import wait_on

__all__ = [
    "CloseSeq",
    "Drop",
    "Fail",
    "FakeModelSocketServer",
    "FakeSeq",
    "GenRequest",
    "Generation",
    "Hidden",
    "Hold",
    "Raw",
    "ToolCalls",
]

SUBPROTOCOL = "modelsocket.v0"
_ids = itertools.count(1)


class FakeModelSocketServer(Closing):
    """A threaded ModelSocket server on 127.0.0.1 (``websockets``' sync server) with scripted models.

    Args:
        api_key: The key the handshake must bear (``Authorization: Bearer <key>``); None: any.
        default: The `Generation` (or function of a `GenRequest`) for a ``gen`` with nothing queued;
            the default echoes the last user text.
        models: The model ids to accept (None: any); another gives an ``error`` with code
            ``model_not_found``.
        require_subprotocol: Refuse a handshake that does not offer ``modelsocket.v0`` (400).
        redirect_to: Answer every handshake with a 302 to this URL.
        handshake_status: Refuse every handshake with this HTTP status (and ``handshake_headers``).

    Attributes:
        requests: Every request received (parsed JSON), in order.
        handshakes: The headers of every handshake (lower-case names).
        sequences: Every sequence by id (`FakeSeq`), closed ones included.
        close_without_cid: Answer ``close`` with a ``seq_closed`` that has no cid.
        ignore_close: Never answer ``close`` (a server slow to release a sequence).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        default: GenSource = echo,
        models: Sequence[str] | None = None,
        require_subprotocol: bool = True,
        redirect_to: str | None = None,
        handshake_status: int | None = None,
        handshake_headers: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.default = default
        self.models = None if models is None else tuple(models)
        self.require_subprotocol = require_subprotocol
        self.redirect_to = redirect_to
        self.handshake_status = handshake_status
        self.handshake_headers = dict(handshake_headers or {})
        self.bos = "<|begin_of_text|>"
        self.close_without_cid = False
        self.ignore_close = False
        self.requests: list[dict[str, Any]] = []
        self.handshakes: list[dict[str, str]] = []
        self.sequences: dict[str, FakeSeq] = {}
        self._queue: list[GenSource] = []
        self._lock = threading.RLock()  # re-entrant: wait_for predicates may call commands()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._connections: set[_Connection] = set()
        self._seq_ids = itertools.count(1)
        number = next(_ids)
        self._conn_ids = itertools.count(1)
        self._server: Server = serve(
            self._handle,
            host,
            port,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            close_timeout=2,
            max_size=32 * 2**20,
        )
        self.host = host
        self.port = int(self._server.socket.getsockname()[1])
        self._number = number
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fake-modelsocket-server-{number}", daemon=True
        )
        self._thread.start()

    # --- scripting ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``ws://`` URL to connect to."""
        return f"ws://{self.host}:{self.port}/ws"

    def add(self, *sources: GenSource) -> FakeModelSocketServer:
        """Queue generations (or functions of a `GenRequest`), used by ``gen`` requests in order."""
        with self._lock:
            self._queue.extend(sources)
        return self

    def _next_script(self) -> GenSource:
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    def pause(self) -> None:
        """Hold every generation (requests are still answered) until `resume`."""
        self._paused.set()

    def resume(self) -> None:
        """Let generations go on, interleaved one event at a time."""
        self._paused.clear()

    def drop(self) -> None:
        """Drop every client connection now, without a close frame."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.drop()

    # --- what happened --------------------------------------------------------------------------

    def _record(self, frame: dict[str, Any]) -> None:
        with self._changed:
            self.requests.append(frame)
            self._changed.notify_all()

    def _new_seq(self, model: str, owner: _Connection) -> FakeSeq:
        seq = FakeSeq(f"seq_{next(self._seq_ids)}", model, owner=owner)
        with self._lock:
            self.sequences[seq.id] = seq
        return seq

    def commands(self, name: str) -> list[dict[str, Any]]:
        """The recorded requests of one kind: ``"seq_open"`` or a command (``"gen"``, ``"append"``...)."""
        with self._lock:
            frames = list(self.requests)
        if name == "seq_open":
            return [f for f in frames if f.get("request") == "seq_open"]
        return [f for f in frames if (f.get("data") or {}).get("command") == name]

    @property
    def open_connections(self) -> int:
        """How many client connections are open."""
        with self._lock:
            return len(self._connections)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds (checked on every request and connection change)."""
        return wait_on(self._changed, predicate, timeout)

    # --- connections ----------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        with self._changed:
            self.handshakes.append(headers)
            self._changed.notify_all()
        if self.redirect_to:
            response = connection.respond(HTTPStatus.FOUND, "moved\n")
            response.headers["Location"] = self.redirect_to
            return response
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, '{"error": {"message": "invalid API key"}}')
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        if self.require_subprotocol and SUBPROTOCOL not in offered:
            return connection.respond(HTTPStatus.BAD_REQUEST, f"offer the {SUBPROTOCOL} subprotocol\n")
        if self.handshake_status is not None:
            response = connection.respond(self.handshake_status, '{"error": {"message": "refused"}}')
            for name, value in self.handshake_headers.items():
                response.headers[name] = value
            return response
        return None

    def _handle(self, ws: ServerConnection) -> None:
        threading.current_thread().name = f"fake-modelsocket-conn-{self._number}-{next(self._conn_ids)}"
        conn = _Connection(self, ws)
        with self._changed:
            self._connections.add(conn)
            self._changed.notify_all()
        try:
            conn.run()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._connections.discard(conn)
                self._changed.notify_all()

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving and close every connection; bounded and idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._thread.join(5)

    def __repr__(self) -> str:
        return f"<FakeModelSocketServer {self.url}>"
