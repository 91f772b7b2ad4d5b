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
import json
import socket
import threading
from http import HTTPStatus
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

import attrs
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from ._reply import words
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


@attrs.frozen
class Hidden:
    """Hidden text (a special token such as ``<|eot_id|>``): sent with ``hidden: true``."""

    text: str


@attrs.frozen
class ToolCalls:
    """A ``seq_tool_call``: the generation then waits for a ``tool_return`` on its own cid.

    Each call is ``{"name", "args" (JSON text), "id"?}``.
    """

    calls: tuple[Mapping[str, Any], ...] = attrs.field(converter=tuple)


@attrs.frozen
class Fail:
    """An ``error`` event. ``route``: ``"cid"`` (the generation's), ``"seq"`` (only the seq_id) or
    ``"none"`` (neither: the generation goes on). ``code``/``details`` as the real server sends them."""

    message: str = "the model failed"
    code: str | None = None
    details: Mapping[str, Any] | None = None
    route: str = attrs.field(default="cid", validator=attrs.validators.in_(("cid", "seq", "none")))


@attrs.frozen
class CloseSeq:
    """The server closes the sequence mid-generation: ``seq_closed`` without a cid, with ``error``."""

    error: str | None = "the sequence was evicted"


@attrs.frozen
class Drop:
    """Drop the connection abruptly (no close frame), as a network failure would."""


@attrs.frozen
class Hold:
    """Send nothing more for this generation until ``event`` is set."""

    event: threading.Event


@attrs.frozen
class Raw:
    """Send this text as one frame, verbatim (malformed JSON, unknown events...)."""

    text: str


Step = Union[str, Hidden, ToolCalls, Fail, CloseSeq, Drop, Hold, Raw]


def _steps(value: str | Iterable[Step]) -> tuple[Step, ...]:
    return words(value) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Generation:
    """What the model "generates" for one ``gen``: visible chunks and scripted events, in order.

    ``steps`` is a string (split into word chunks) or a list of steps: ``str`` chunks, `Hidden`,
    `ToolCalls`, `Fail`, `CloseSeq`, `Drop`, `Hold`, `Raw`. ``eos`` is the hidden text sent before
    ``seq_gen_finish`` (None: none). A ``max_tokens`` in the request cuts the chunks short.
    """

    steps: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    eos: str | None = "<|eot_id|>"


@attrs.frozen
class GenRequest:
    """A ``gen`` as a script function sees it: the sequence's context so far and the options."""

    seq_id: str
    cid: str
    model: str
    context: tuple[tuple[str, str], ...]
    options: Mapping[str, Any]


GenSource = Union[Generation, Callable[[GenRequest], Generation]]


def echo(request: GenRequest) -> Generation:
    """The default script: answer ``You said: <the last user text>``."""
    said = next((text for role, text in reversed(request.context) if role == "user"), "")
    return Generation(f"You said: {said}")


@attrs.define
class FakeSeq:
    """A sequence on the fake server: its model, context (``(role, text)`` pairs) and state."""

    id: str
    model: str
    context: list[tuple[str, str]] = attrs.Factory(list)
    state: str = "ready"
    tools_enabled: bool = False
    skip_prelude: bool = False
    parent: str | None = None
    owner: Any = attrs.field(default=None, repr=False)

    def tokens(self) -> int:
        """The context's size in "tokens" (words)."""
        return sum(len(text.split()) + 1 for _, text in self.context)


class _GenRun:
    """One generation in progress, advanced one event at a time so generations interleave."""

    def __init__(self, seq: FakeSeq, cid: str, options: Mapping[str, Any], script: Generation) -> None:
        self.seq = seq
        self.cid = cid
        self.options = dict(options)
        self.steps: Iterator[Step] = iter(script.steps)
        self.eos = script.eos
        self.output = 0
        self.text: list[str] = []
        self.waiting = False  # for a tool_return
        self.hold: threading.Event | None = None
        self.done = False

    def ready(self) -> bool:
        if self.hold is not None and self.hold.is_set():
            self.hold = None
        return not self.waiting and self.hold is None and not self.done


class _Connection:
    """The server side of one client connection: a loop over requests and generation steps."""

    def __init__(self, server: FakeModelSocketServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.runs: list[_GenRun] = []

    def send(self, event: dict[str, Any]) -> None:
        try:
            self.ws.send(json.dumps(event))
        except ConnectionClosed:
            pass  # the client is gone; keep reading what it sent before (it is recorded)

    def state(self, seq: FakeSeq, state: str) -> None:
        seq.state = state
        self.send({"event": "seq_state", "seq_id": seq.id, "state": state})

    def drop(self) -> None:
        try:
            self.ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        server = self.server
        while not server._stopping.is_set():
            busy = not server._paused.is_set() and any(r.ready() for r in self.runs)
            try:
                raw = self.ws.recv(timeout=0 if busy else 0.01)
            except TimeoutError:
                raw = None
            except ConnectionClosed:
                return
            if raw is not None:
                self.request(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
            if busy:
                for r in list(self.runs):
                    if r.ready():
                        self.step(r)

    # --- requests -----------------------------------------------------------------------------

    def error(self, message: str, cid: Any = None, seq_id: Any = None, **more: Any) -> None:
        event: dict[str, Any] = {"event": "error", "message": message}
        if cid is not None:
            event["cid"] = cid
        if seq_id is not None:
            event["seq_id"] = seq_id
        self.send({**event, **more})

    def request(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            self.error("the request is not JSON")
            return
        self.server._record(frame)
        cid, data = frame.get("cid"), frame.get("data") or {}
        if frame.get("request") == "seq_open":
            self.open(cid, data)
            return
        seq_id = frame.get("seq_id")
        seq = self.server.sequences.get(seq_id) if isinstance(seq_id, str) else None
        if seq is None or seq.owner is not self or seq.state == "closed":
            self.error(f"unknown sequence {seq_id}", cid, seq_id, code="not_found")
            return
        command = data.get("command")
        handler = getattr(self, f"cmd_{command}", None) if isinstance(command, str) else None
        if handler is None:
            self.error(f"unknown command {command!r}", cid, seq_id, code="bad_request")
            return
        handler(seq, cid, data)

    def open(self, cid: Any, data: Mapping[str, Any]) -> None:
        model = data.get("model")
        models = self.server.models
        if not isinstance(model, str) or (models is not None and model not in models):
            self.error(f"unknown model {model!r}", cid, code="model_not_found")
            return
        seq = self.server._new_seq(model, self)
        seq.tools_enabled = bool(data.get("tools_enabled"))
        seq.skip_prelude = bool(data.get("skip_prelude"))
        self.send({"event": "seq_opened", "cid": cid, "seq_id": seq.id})
        self.state(seq, "ready")

    def busy(self, seq: FakeSeq, cid: Any) -> bool:
        if seq.state != "ready":
            self.error(f"sequence {seq.id} is {seq.state}", cid, seq.id, code="invalid_state")
            return True
        return False

    def cmd_append(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        self.state(seq, "appending")
        text = str(data.get("text") or "")
        if not seq.context:
            self.text(seq, cid, self.server.bos, hidden=True, output=0)
        if data.get("echo"):
            self.text(seq, cid, text, hidden=False, output=0)
        seq.context.append((str(data.get("role") or "user"), text))
        self.send({"event": "seq_append_finish", "cid": cid, "seq_id": seq.id})
        self.state(seq, "ready")

    def cmd_gen(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        options = {k: v for k, v in data.items() if k != "command"}
        request = GenRequest(seq.id, str(cid), seq.model, tuple(seq.context), options)
        source = self.server._next_script()
        script = source(request) if callable(source) else source
        self.runs.append(_GenRun(seq, str(cid), options, script))
        self.state(seq, "generating")

    def cmd_tool_return(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        run = next((r for r in self.runs if r.seq is seq and r.waiting), None)
        if run is None:
            self.error("no tool call is pending", cid, seq.id, code="invalid_state")
            return
        if cid != run.cid:
            self.error("tool_return must use the cid of its generation", cid, seq.id, code="bad_request")
            return
        for result in data.get("results") or ():
            seq.context.append(("tool", f"{result.get('name')}: {result.get('result')}"))
        run.waiting = False
        self.state(seq, "generating")

    def cmd_fork(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        self.state(seq, "forking")
        child = self.server._new_seq(seq.model, self)
        child.context = list(seq.context)
        child.tools_enabled, child.skip_prelude, child.parent = seq.tools_enabled, seq.skip_prelude, seq.id
        self.send({"event": "seq_fork_finish", "cid": cid, "seq_id": seq.id, "child_seq_id": child.id})
        self.state(seq, "ready")

    def cmd_close(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.server.ignore_close:
            return
        self.runs = [r for r in self.runs if r.seq is not seq]
        self.closed(seq, None if self.server.close_without_cid else cid, None)

    def closed(self, seq: FakeSeq, cid: Any, error: str | None) -> None:
        seq.state = "closed"
        event = {
            "event": "seq_closed",
            "seq_id": seq.id,
            "input_tokens": seq.tokens(),
            "cached_input_tokens": 0,
            "output_tokens": sum(len(t.split()) for r, t in seq.context if r == "assistant"),
            "duration_ms": 1,
            "error": error,
        }
        if cid is not None:
            event["cid"] = cid
        self.send(event)

    # --- generation ---------------------------------------------------------------------------

    def text(self, seq: FakeSeq, cid: Any, text: str, *, hidden: bool, output: int) -> None:
        self.send(
            {
                "event": "seq_text",
                "seq_id": seq.id,
                "cid": cid,
                "text": text,
                "hidden": hidden,
                "num_input_tokens": seq.tokens(),
                "num_output_tokens": output,
                "tokens": None,
            }
        )

    def finish(self, run: _GenRun, *, eos: bool) -> None:
        run.done = True
        self.runs.remove(run)
        seq = run.seq
        if eos and run.eos:
            run.output += 1
            self.text(seq, run.cid, run.eos, hidden=True, output=run.output)
        seq.context.append(("assistant", "".join(run.text)))
        self.send({"event": "seq_gen_finish", "seq_id": seq.id, "cid": run.cid})
        self.state(seq, "ready")

    def step(self, run: _GenRun) -> None:
        seq = run.seq
        limit = run.options.get("max_tokens")
        step = next(run.steps, None)
        if step is None:
            self.finish(run, eos=True)
        elif isinstance(step, str):
            if isinstance(limit, int) and run.output >= limit:
                self.finish(run, eos=False)
                return
            run.output += 1
            run.text.append(step)
            self.text(seq, run.cid, step, hidden=False, output=run.output)
        elif isinstance(step, Hidden):
            self.text(seq, run.cid, step.text, hidden=True, output=run.output)
        elif isinstance(step, ToolCalls):
            seq.context.append(("assistant", "".join(run.text)))
            run.text = []
            run.waiting = True
            self.send({"event": "seq_tool_call", "seq_id": seq.id, "cid": run.cid, "tool_calls": [dict(c) for c in step.calls]})
            self.state(seq, "tool_call")
        elif isinstance(step, Fail):
            extra = {k: v for k, v in (("code", step.code), ("details", step.details)) if v is not None}
            if step.route == "none":
                self.error(step.message, **extra)
                return
            self.error(step.message, run.cid if step.route == "cid" else None, seq.id, **extra)
            run.done = True
            self.runs.remove(run)
            self.state(seq, "ready")
        elif isinstance(step, CloseSeq):
            run.done = True
            self.runs.remove(run)
            self.closed(seq, None, step.error)
        elif isinstance(step, Drop):
            self.drop()
        elif isinstance(step, Hold):
            run.hold = step.event
        elif isinstance(step, Raw):
            try:
                self.ws.send(step.text)
            except ConnectionClosed:
                pass


class FakeModelSocketServer:
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

    def __enter__(self) -> FakeModelSocketServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeModelSocketServer {self.url}>"
