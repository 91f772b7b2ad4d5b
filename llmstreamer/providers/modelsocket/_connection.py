"""The ModelSocket connection: one WebSocket, one reader thread, every event routed to its command.

Each request carries a client-made ``cid``; the server echoes it on the events it causes. After
websocket-client's handshake the reader thread reads the socket itself, whatever has arrived at
once, cuts it into frames (`_ws_frames`), answers pings, and puts the events of one read on the
queue (`Inbox`) of the command registered under their ``cid`` in one hand-off per command, with
no lock for the usual event; it never blocks: a consumer that stops reading stalls only itself.
With ``keepalive`` a silent connection is pinged, and given up when the ping is not answered. Events
without a ``cid`` are routed by ``seq_id`` (an ``error`` or a ``seq_closed`` concerns every
pending command of that sequence); ``seq_state`` is recorded; anything else is logged. A frame
that does not parse fails only the command whose ``cid`` it names; a dropped connection fails
every pending command once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import re
import socket
import threading
from typing import Any, Callable, Iterable, Mapping

from ..._cancel import CancelToken
from ..._json import parse_utf8
from ..._recorder import current, sent
from ..._secret import Secret
from ..._ws_frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, messages
from ...errors import APIConnectionError, APITimeoutError, LLMStreamError, StreamError
from ...retry import Timeout
from ._inbox import WAKE, Inbox, Stop
from ._wire import PROVIDER, boundary, closed_error, dial, event_error, where

__all__ = ["Connection", "Inbox", "open_connection"]

log = logging.getLogger("llmstreamer.providers.modelsocket")

_CLOSE_WAIT = 1.0  # seconds allowed for the server to answer our close frame
_CID = re.compile(r'"cid"\s*:\s*"([^"\\]{1,200})"')
_reader_ids = itertools.count(1)
_SLOW_KINDS = frozenset({"seq_state", "seq_closed", "error"})  # routed under the lock (`route`)


def open_connection(
    url: str,
    api_key: str | None,
    *,
    timeout: Timeout,
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    keepalive: float | None = None,
) -> Connection:
    """Dial ``url`` (see `dial`) and start routing its events."""
    ws = dial(url, api_key, timeout=timeout, headers=headers, verify=verify)
    return Connection(ws, url, Secret(api_key), timeout, keepalive)


class Connection:
    """One open ModelSocket WebSocket: send requests, route events, fail pending commands once."""

    def __init__(self, ws: Any, url: str, secret: Secret, timeout: Timeout, keepalive: float | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.keepalive = keepalive  # seconds of silence before a ping (None: never)
        self._pinged = False
        if keepalive is not None and ws.sock is not None:
            ws.sock.settimeout(keepalive)
        self.states: dict[str, str] = {}  # seq_id -> last seq_state ("closed" once seq_closed came)
        self._ws = ws
        self.redact: Callable[[str], str] = secret.redact  # keys never reach an error or a log
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._routes: dict[str, Inbox] = {}
        self._counted: dict[str, Any] = {}  # cid -> the hooks recorder counting its frames' bytes
        self._dead: str | None = None
        self._cids = itertools.count(1)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"llmstreamer-modelsocket-reader-{next(_reader_ids)}", daemon=True
        )
        self._reader.start()

    @property
    def alive(self) -> bool:
        """False once the connection dropped or was closed."""
        return self._dead is None

    # --- sending ------------------------------------------------------------------------------

    def _send(self, frame: Mapping[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        sent(text)
        with boundary(self.url, "sending to", self.redact), self._send_lock:
            self._ws.send(text)

    def command(self, data: Mapping[str, Any], *, seq_id: str | None = None) -> Inbox:
        """Send a request and register the queue its events go to (``seq_open`` when no ``seq_id``)."""
        inbox = Inbox(f"cid_{next(self._cids)}", seq_id)
        with self._lock:
            if self._dead is not None:
                raise APIConnectionError(self._dead, provider=PROVIDER)
            self._routes[inbox.cid] = inbox
        try:
            self.reply(inbox.cid, data, seq_id=seq_id)
        except LLMStreamError:
            self.forget(inbox)
            raise
        return inbox

    def reply(self, cid: str, data: Mapping[str, Any], *, seq_id: str | None) -> None:
        """Send a request under an existing ``cid`` (a ``tool_return`` continues its generation)."""
        frame: dict[str, Any] = {"request": "seq_command" if seq_id else "seq_open", "cid": cid}
        if seq_id:
            frame["seq_id"] = seq_id
        frame["data"] = dict(data)
        rec = current()  # the stream whose round sends this (None without hooks)
        if rec is not None:
            rec.counting()
            self._counted[cid] = rec
        elif self._counted:
            self._counted.pop(cid, None)  # a tool_return continuing a counted generation without hooks
        log.debug("modelsocket: send %s %s seq=%s", data.get("command", "seq_open"), cid, seq_id)
        self._send(frame)

    def fire(self, data: Mapping[str, Any], *, seq_id: str) -> None:
        """Send a command whose answer nobody waits for (a cleanup ``close``); failures are logged."""
        if self._dead is not None:
            return
        frame = {"request": "seq_command", "cid": f"cid_{next(self._cids)}", "seq_id": seq_id, "data": dict(data)}
        try:
            self._send(frame)
        except LLMStreamError as exc:
            log.debug("modelsocket: could not send %s for %s: %s", data.get("command"), seq_id, exc)

    def forget(self, inbox: Inbox) -> None:
        """Stop routing events to ``inbox`` (its command is over); later events are logged."""
        with self._lock:
            if self._routes.get(inbox.cid) is inbox:
                del self._routes[inbox.cid]
                self._counted.pop(inbox.cid, None)

    # --- waiting ------------------------------------------------------------------------------

    def next(self, inbox: Inbox, token: CancelToken, wait: float | None = None) -> dict[str, Any]:
        """The next event of ``inbox``; raises on cancel, idle timeout (``wait``, else the read
        timeout) or a lost connection."""
        wait = self.timeout.read if wait is None else wait
        while True:
            if token.reason is not None:
                raise token.error(PROVIDER)
            if inbox._ready:
                item = inbox._ready.popleft()
            else:
                try:
                    item = inbox._queue.get(timeout=wait)
                except queue.Empty:
                    raise APITimeoutError(
                        f"no event from {where(self.url)} for {wait:g} s", kind="read", provider=PROVIDER
                    ) from None
                if type(item) is list:
                    inbox._ready.extend(item)
                    item = inbox._ready.popleft()
            if item is WAKE:
                continue
            if isinstance(item, Stop):
                raise item.error()
            if token.recorder is not None:
                token.recorder.received(item, self.redact)
            return item  # type: ignore[no-any-return]

    def wait_for(self, inbox: Inbox, token: CancelToken, until: str, wait: float | None = None) -> dict[str, Any]:
        """Wait for ``inbox``'s event named ``until``; an ``error`` or ``seq_closed`` before it raises."""
        token.attach(inbox.wake)
        try:
            while True:
                event = self.next(inbox, token, wait)
                kind = event.get("event")
                if kind == until:
                    return event
                if kind == "error":
                    raise event_error(event)
                if kind == "seq_closed":
                    raise closed_error(event)
        finally:
            token.detach(inbox.wake)
            self.forget(inbox)

    # --- reading ------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        why = f"the connection to {where(self.url)} was closed by the server"
        try:
            batches = messages(self._recv)
            while True:
                with boundary(self.url, "reading from", self.redact):
                    batch = next(batches, None)
                if batch is None or not self._deliver(batch):
                    break
        except LLMStreamError as exc:
            cause = exc.__cause__
            detail = self.redact(str(cause) or type(cause).__name__) if cause is not None else exc.message
            why = f"the connection to {where(self.url)} dropped: {detail}"
        except Exception:  # a bug here must still fail every stream, not hang them
            log.exception("modelsocket: the reader failed")
            why = f"the reader of {where(self.url)} failed"
        self._fail_all(why)
        self._ws.shutdown()

    def _recv(self, size: int) -> bytes:
        """One read of the socket (the frames are cut by `messages`); with ``keepalive``, a
        silence of that many seconds sends a ping, and a second one ends the connection."""
        sock = self._ws.sock
        if sock is None:
            return b""
        while True:
            try:
                data: bytes = sock.recv(size)
            except socket.timeout:
                if self._pinged:
                    raise APITimeoutError(
                        f"{where(self.url)} did not answer a keep-alive ping within {self.keepalive:g} s",
                        kind="read",
                        provider=PROVIDER,
                    ) from None
                self._pinged = True
                self._control(OP_PING, b"keepalive")
                continue
            self._pinged = False
            return data

    def _control(self, opcode: int, payload: bytes) -> None:
        """Send a ping or a pong; a failure shows up on the next read."""
        try:
            with boundary(self.url, "sending to", self.redact), self._send_lock:
                if opcode == OP_PING:
                    self._ws.ping(payload)
                else:
                    self._ws.pong(payload)
        except LLMStreamError as exc:
            log.debug("modelsocket: could not send a %s: %s", "ping" if opcode == OP_PING else "pong", exc)

    def _deliver(self, batch: list[tuple[int, bytes]]) -> bool:
        """Route one read's messages; False at the server's close frame (answered in kind).

        The usual event (one with the ``cid`` of a pending command) is routed without a lock:
        the events of one read are gathered per command and handed over in one queue operation.
        Anything else goes through `route` under the lock, after what was gathered before it.
        """
        routes = self._routes
        parse = self._parse_counted if self._counted else self._parse  # chosen per read, not per frame
        gathered: dict[Inbox, list[dict[str, Any]]] = {}
        try:
            for opcode, payload in batch:
                if opcode != OP_TEXT:
                    if opcode == OP_PING:
                        self._control(OP_PONG, payload)
                    elif opcode == OP_CLOSE:
                        with contextlib.suppress(LLMStreamError), boundary(self.url, "closing", self.redact), self._send_lock:
                            self._ws.send_close()
                        return False
                    elif opcode == OP_BINARY:
                        log.warning("modelsocket: ignored a binary frame of %d bytes", len(payload))
                    continue
                try:
                    event = parse(payload)
                except StreamError as exc:
                    for inbox, events in gathered.items():
                        inbox.put_batch(events)
                    gathered = {}
                    self._malformed(payload, exc)
                    continue
                kind = event["event"]
                target = routes.get(event.get("cid"))  # type: ignore[arg-type]
                if target is not None and kind not in _SLOW_KINDS:
                    got = gathered.get(target)
                    if got is None:
                        gathered[target] = [event]
                    else:
                        got.append(event)
                    continue
                for inbox, events in gathered.items():  # keep the wire order for every command
                    inbox.put_batch(events)
                gathered = {}
                self.route(event)
        finally:
            for inbox, events in gathered.items():
                inbox.put_batch(events)
        return True

    def _parse(self, payload: bytes) -> dict[str, Any]:
        """One text frame's event; raises `StreamError` when it is not one."""
        try:
            event = parse_utf8(payload)
        except ValueError as exc:  # what `boundary` makes of it, without a context manager per frame
            raise StreamError(f"malformed frame from {where(self.url)} ({exc})", provider=PROVIDER) from exc
        if not isinstance(event, dict) or not isinstance(event.get("event"), str) or not isinstance(event.get("cid", ""), str):
            text = payload[:200].decode("utf-8", "replace")
            raise StreamError(f"a frame is not a ModelSocket event: {text[:120]!r}", provider=PROVIDER)
        return event

    def _parse_counted(self, payload: bytes) -> dict[str, Any]:
        """`_parse`, adding the payload's size to the byte count of the stream its ``cid`` belongs to."""
        event = self._parse(payload)
        cid = event.get("cid")
        rec = self._counted.get(cid) if type(cid) is str else None
        if rec is not None:
            rec.bytes_in += len(payload)
        return event

    def _malformed(self, payload: bytes, exc: StreamError) -> None:
        """Fail the command whose ``cid`` a malformed frame names, or log the frame."""
        text = payload[:4096].decode("utf-8", "replace")
        found = _CID.search(text)
        with self._lock:
            inbox = self._routes.pop(found.group(1), None) if found else None
            if inbox is not None:
                self._counted.pop(inbox.cid, None)
        if inbox is None:
            log.warning("modelsocket: dropped a malformed frame (%d bytes)", len(payload))
            log.debug("modelsocket: the malformed frame: %r", text[:500])
        else:
            inbox.put(Stop(exc.message, malformed=True))

    def route(self, event: dict[str, Any]) -> None:
        """Deliver one parsed event to the command(s) it concerns."""
        kind = event["event"]
        cid = event.get("cid")
        seq_id = event.get("seq_id")
        if kind == "seq_state":
            if isinstance(seq_id, str) and isinstance(event.get("state"), str):
                self.states[seq_id] = event["state"]
            return
        with self._lock:
            target = self._routes.get(cid) if isinstance(cid, str) else None
            if kind == "seq_closed" and isinstance(seq_id, str):
                # The close request's answer, and the end of every other command on the sequence.
                self.states[seq_id] = "closed"
                targets = [i for i in self._routes.values() if i.seq_id == seq_id or i is target]
            elif target is not None:
                targets = [target]
            elif kind == "error" and cid is None and isinstance(seq_id, str):
                targets = [i for i in self._routes.values() if i.seq_id == seq_id]
            else:
                targets = []
            terminal = kind in ("error", "seq_closed")
            for inbox in targets:
                if terminal:
                    del self._routes[inbox.cid]
                    self._counted.pop(inbox.cid, None)
                inbox.put(event)
        if not targets:
            if kind == "error":
                log.warning("modelsocket: server error for no pending command: %s", event.get("message"))
            else:
                log.debug("modelsocket: no pending command for %s cid=%s seq=%s", kind, cid, seq_id)

    # --- closing ------------------------------------------------------------------------------

    def _fail_all(self, why: str) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = why
            routes = list(self._routes.values())
            self._routes.clear()
            self._counted.clear()
        for inbox in routes:
            inbox.put(Stop(why))

    def close(self, seq_ids: Iterable[str] = ()) -> None:
        """Fail what is pending (once), close ``seq_ids`` on the server, say goodbye, and wait for
        the reader to end (bounded)."""
        self._fail_all(f"the client for {where(self.url)} was closed")
        try:
            for seq_id in seq_ids:
                self._send({"request": "seq_command", "cid": f"cid_{next(self._cids)}", "seq_id": seq_id, "data": {"command": "close"}})
            with boundary(self.url, "closing", self.redact), self._send_lock:
                self._ws.send_close()
        except LLMStreamError as exc:
            log.debug("modelsocket: closing %s: %s", where(self.url), exc)
        if self._reader is threading.current_thread():
            return
        self._reader.join(_CLOSE_WAIT)
        if self._reader.is_alive():
            sock = self._ws.sock
            if sock is not None:
                try:  # the plain socket's shutdown: SSLSocket's would pull the TLS state from under the reader
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
            self._reader.join(5.0)
        self._ws.shutdown()

