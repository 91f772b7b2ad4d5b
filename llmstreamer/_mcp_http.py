"""The MCP Streamable HTTP transport: each JSON-RPC message is a POST; answers come as JSON or SSE.

One endpoint URL. A POST carries one message with ``Accept: application/json,
text/event-stream``; the server answers a request with a JSON body or an event stream that may
carry its own requests and notifications before the response, and answers a notification or a
response with 202. The session id from ``initialize`` (``Mcp-Session-Id``) and the negotiated
``MCP-Protocol-Version`` go on every later message; ``DELETE`` ends the session. Requests go
through llmstreamer's transport (pool, abortable sockets, credential headers stripped on a
redirect to another origin) and each is bounded by a deadline.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any, Callable, Mapping

from . import _mcp_wire as wire
from ._cancel import CancelToken
from ._http import Request, Transport, origin
from ._secret import Secret
from ._sse import SSEParser
from .errors import APIConnectionError, APITimeoutError, LLMStreamError, StreamError
from .retry import Timeout

__all__ = ["HTTPChannel", "SessionGone"]

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024  # bytes of one JSON answer at most
CANCEL_WAIT = 2.0  # seconds at most to tell a server that a request was cancelled
_JSON = "application/json"
_SSE = "text/event-stream"


class SessionGone(Exception):
    """The server answered 404 to a message carrying a session id: the session must start again.

    Attributes:
        session_id: The session the message carried (another thread may have started a new one).
    """

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


def _secret_of(headers: Mapping[str, str]) -> Secret:
    """The bearer token (or other credential) in ``headers``, so messages can redact it."""
    for name, value in headers.items():
        if name.lower() in ("authorization", "x-api-key", "api-key"):
            return Secret(value.split(" ", 1)[-1])
    return Secret(None)


class HTTPChannel:
    """One MCP server over Streamable HTTP: send a request and get its response, or a notification."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: Timeout, verify: bool | str = True) -> None:
        self.url = url
        self.headers = dict(headers)
        self.timeout = timeout
        self.session_id: str | None = None
        self.version: str | None = None
        self.on_notification: Callable[[dict[str, Any]], None] | None = None
        scheme, host, port = origin(url)
        self.where = f"the MCP server at {scheme}://{host}:{port}"
        self._transport = Transport(provider="mcp", pool_size=8, verify=verify, secret=_secret_of(headers))

    def _headers(self, *, initializing: bool = False) -> dict[str, str]:
        headers = {"Content-Type": _JSON, "Accept": f"{_JSON}, {_SSE}", "Accept-Encoding": "identity", **self.headers}
        if self.session_id is not None and not initializing:  # initialize starts a session of its own
            headers["Mcp-Session-Id"] = self.session_id
        if self.version is not None and not initializing:
            headers["MCP-Protocol-Version"] = self.version
        return headers

    def request(self, message: dict[str, Any], timeout: float, cancel: CancelToken | None = None) -> dict[str, Any]:
        """POST a request and return its JSON-RPC response, answering server requests on the way.

        ``cancel`` (the stream's token, when a tool loop runs the call) aborts the POST at once.
        After a cancel or a timeout the server is told (``notifications/cancelled``).

        Raises:
            SessionGone: 404 for our session.
            APITimeoutError: no response within ``timeout`` seconds.
            StreamCancelled: ``cancel`` fired (its own error, whatever it is).
            LLMStreamError: the connection failed, the server said no, or it sent nonsense.
        """
        initializing = message.get("method") == "initialize"
        token = CancelToken()
        token.start_deadline(timeout, "llmstreamer-mcp")
        stop = functools.partial(token.cancel, "cancelled")
        if cancel is not None:
            cancel.attach(stop)
        try:
            found = self._post(message, token, initializing=initializing)
        except LLMStreamError as err:
            if cancel is not None and cancel.reason is not None and token.reason == "cancelled":
                # told on the side: the stream ends at once, as any cancel does, not after a POST
                notice = threading.Thread(
                    target=self._cancel_quietly, args=(message, wire.stop_reason(cancel)), name="mcp-cancel-notice", daemon=True
                )
                notice.start()
                raise cancel.error("mcp") from None
            # the deadline and the socket's idle timeout are the same wait: one message for both
            if token.reason == "timeout" or (isinstance(err, APITimeoutError) and err.kind != "connect"):
                self._cancel_quietly(message, "timed out")
                raise APITimeoutError(
                    f"{self.where} did not answer {message.get('method')} within {timeout:g} s", kind="total", provider="mcp"
                ) from None
            raise
        finally:
            if cancel is not None:
                cancel.detach(stop)
            token.stop_deadline()
        if found is None:
            raise StreamError(f"{self.where} accepted {message.get('method')} without answering it", provider="mcp")
        return found

    def _cancel_quietly(self, message: Mapping[str, Any], reason: str) -> None:
        """Tell the server we stopped waiting (never for ``initialize``); a failure to tell is only logged."""
        if message.get("method") == "initialize":
            return  # the spec forbids cancelling initialize
        try:
            self.notify(wire.cancelled(message["id"], reason), wait=CANCEL_WAIT)
        except (LLMStreamError, SessionGone) as exc:
            log.debug("%s was not told of the cancelled request %s: %s", self.where, message["id"], exc)

    def notify(self, message: dict[str, Any], wait: float | None = None) -> None:
        """POST a notification or a response (the server answers 202 Accepted) within ``wait`` s (default: the read timeout)."""
        token = CancelToken()
        token.start_deadline(self.timeout.read if wait is None else min(wait, self.timeout.read), "llmstreamer-mcp")
        try:
            self._post(message, token)
        finally:
            token.stop_deadline()

    def _post(self, message: dict[str, Any], token: CancelToken, *, initializing: bool = False) -> dict[str, Any] | None:
        body = json.dumps(message, separators=(",", ":")).encode()
        session = self.session_id
        req = Request("POST", self.url, self._headers(initializing=initializing), body)
        transport = self._transport
        resp = transport.send(req, token, self.timeout)
        reuse = False
        try:
            if resp.status_code == 404 and session is not None and not initializing:
                raise SessionGone(session)
            if resp.status_code >= 300:
                raise transport.status_error(resp, token)
            if initializing:  # a server without sessions sends none
                self.session_id = resp.headers.get("mcp-session-id") or None
            if resp.status_code == 202 or "id" not in message or "method" not in message:
                transport.read_error_body(resp)  # drain (nothing is expected) so the connection is reused
                reuse = True
                return None
            mime = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if mime == _SSE:
                return self._from_events(resp, message["id"], token)  # the stream may go on: not reused
            if mime == _JSON:
                data = b"".join(_capped(transport.body(resp, token, self.timeout)))
                reuse = True
                return self._from_json(wire.decode(data, self.where), message["id"])
            raise StreamError(f"{self.where} answered with Content-Type {mime or 'none'!r}", provider="mcp")
        finally:
            transport.release(resp, token, reuse=reuse)

    def _from_json(self, value: Any, ident: Any) -> dict[str, Any] | None:
        found = None
        for item in value if isinstance(value, list) else [value]:
            if self._handle(item, ident):
                found = item
        return found

    def _from_events(self, resp: Any, ident: Any, token: CancelToken) -> dict[str, Any] | None:
        parser = SSEParser(MAX_BODY)
        for chunk in self._transport.body(resp, token, self.timeout):
            for _, data, _ in parser.feed(chunk):
                if not data.strip():
                    continue
                item = wire.decode(data, self.where)
                if self._handle(item, ident):
                    return item  # type: ignore[no-any-return]
        raise APIConnectionError(f"{self.where} ended its event stream without answering", provider="mcp")

    def _handle(self, item: Any, ident: Any) -> bool:
        """True when ``item`` is the response to ``ident``; server requests are answered, notifications noted."""
        kind = wire.kind_of(item)
        if kind == "response":
            if item.get("id") == ident:
                return True
            log.debug("%s: a response to an unknown id %r was dropped", self.where, item.get("id"))
        elif kind == "request":
            self.notify(wire.answer(item))
        else:
            wire.notice(item, kind, self.where, self.on_notification)
        return False

    def close(self) -> None:
        """End the session with ``DELETE`` (a server may answer 405: sessions it cannot end) and drop the pool."""
        if self.session_id is not None:
            token = CancelToken()
            token.start_deadline(min(self.timeout.read, 5.0), "llmstreamer-mcp")
            try:
                resp = self._transport.send(Request("DELETE", self.url, self._headers()), token, self.timeout)
                self._transport.release(resp, token, reuse=False)
            except LLMStreamError as err:
                log.debug("%s: DELETE of the session failed: %s", self.where, err)
            finally:
                token.stop_deadline()
            self.session_id = None
        self._transport.close()


def _capped(chunks: Any) -> Any:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY:
            raise StreamError(f"an MCP answer grew past {MAX_BODY} bytes", provider="mcp")
        yield chunk
