"""The one boundary where foreign exceptions become llmstreamer errors, for HTTP and WebSocket alike.

requests, urllib3, ``http.client``, socket, ssl and websocket-client each raise their own
exception types; `boundary` wraps every call into them (the HTTP transport's send and body
reads, the ModelSocket handshake, sends, reads and frame decoding) and `translate` classifies
what escapes, once: a timeout, a TLS failure, an unresolvable host, a refused or dropped
connection, a refused WebSocket handshake, a malformed frame. The original stays the new
error's ``__cause__`` (``raise ... from exc``), and the API key is redacted from every message.
Anything else (a bug in llmstreamer) passes through unchanged, unless the stream was cancelled,
when any failure is the cancellation.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import sys
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ._cancel import CancelToken
from ._wire_errors import error_from_body
from .errors import APIConnectionError, APITimeoutError, LLMStreamError, StreamError
from .retry import Timeout

__all__ = ["CLOSING", "CONNECTING", "DECODING", "READING", "SENDING", "boundary", "origin", "translate", "where"]

# What the wrapped call was doing; each completes "while ..." and names the phase.
CONNECTING = "connecting to"
READING = "reading from"
SENDING = "sending to"
CLOSING = "closing"
DECODING = "decoding a frame from"

_FOREIGN = (
    OSError,  # socket, ssl, and requests' exceptions (an IOError)
    ValueError,  # json, text that is not UTF-8, a URL that cannot be parsed
    http.client.HTTPException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)
_CONNECT_TIMEOUTS = (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)
_READ_TIMEOUTS = (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, socket.timeout)
_TLS = (requests.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError)
Redact = Callable[[str], str]


def _same(text: str) -> str:
    return text


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in: what "same origin" compares."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def where(url: str) -> str:
    """The origin of a URL (``https://host:443``), what errors and logs name: never a path or query."""
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _websocket_error(exc: BaseException) -> bool:
    """True for a websocket-client exception (if websocket-client was never imported, none was raised)."""
    websocket = sys.modules.get("websocket")
    return websocket is not None and isinstance(exc, websocket.WebSocketException)


def _timeout_error(exc: BaseException, provider: str, place: str, doing: str, timeout: Timeout) -> APITimeoutError | None:
    websocket = sys.modules.get("websocket")
    socket_timeout = isinstance(exc, socket.timeout) or (
        websocket is not None and isinstance(exc, websocket.WebSocketTimeoutException)
    )
    # websocket-client connects and shakes hands under one timeout: either way it is the connect timeout.
    if isinstance(exc, _CONNECT_TIMEOUTS) or (socket_timeout and doing == CONNECTING):
        return APITimeoutError(f"timed out connecting to {place} after {timeout.connect:g} s", kind="connect", provider=provider)
    if isinstance(exc, _READ_TIMEOUTS) or socket_timeout:
        waiting = "the response" if doing == CONNECTING else "more of the stream"
        return APITimeoutError(
            f"no data from {place} for {timeout.read:g} s while waiting for {waiting}", kind="read", provider=provider
        )
    return None


def translate(
    exc: BaseException, *, provider: str, url: str, doing: str, redact: Redact = _same,
    timeout: Timeout | None = None, token: CancelToken | None = None,
) -> LLMStreamError:
    """The llmstreamer error for a foreign exception raised while ``doing`` (`CONNECTING`...) ``url``."""
    if isinstance(exc, LLMStreamError):
        return exc
    if token is not None and token.reason is not None:
        return token.error(provider)
    websocket = sys.modules.get("websocket")
    if websocket is not None and isinstance(exc, websocket.WebSocketBadStatusException):
        headers = {str(k).lower(): str(v) for k, v in (exc.resp_headers or {}).items()}
        body = exc.resp_body.decode("utf-8", "replace") if isinstance(exc.resp_body, bytes) else ""
        reason = exc.status_message if isinstance(exc.status_message, str) else ""
        return error_from_body(exc.status_code, body, headers, provider=provider, redact=redact, reason=reason)
    place = where(url)
    timed_out = _timeout_error(exc, provider, place, doing, timeout or Timeout())
    if timed_out is not None:
        return timed_out
    why = redact(_innermost(exc))
    if isinstance(exc, _TLS) or "CERTIFICATE_VERIFY" in why:
        return APIConnectionError(
            f"TLS error with {place}: {why}. Certificates are verified by default; pass "
            "verify='/path/to/ca.pem' to trust a private CA",
            provider=provider,
        )
    if doing == DECODING and isinstance(exc, ValueError):
        return StreamError(f"malformed frame from {place} ({exc})", provider=provider)
    if doing == CONNECTING:
        chain = _chain(exc)
        resolving = any(isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for e in chain)
        if resolving or "NameResolution" in why or "Name or service not known" in why or "getaddrinfo" in why:
            error = APIConnectionError(f"cannot resolve host {origin(url)[1]!r}: {why}", provider=provider)
        elif isinstance(exc, ValueError):  # requests' InvalidURL and InvalidSchema are ValueErrors too
            error = APIConnectionError(f"invalid URL {redact(url)!r}: {why}", provider=provider)
        else:
            error = APIConnectionError(f"cannot connect to {place}: {why}", provider=provider)
        # No connection, so no request: a create may be sent again without risk (``_rest``).
        error._unsent = resolving or any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain)  # type: ignore[attr-defined]
        return error
    if doing == READING:
        return APIConnectionError(f"the connection to {place} dropped mid-stream: {why}", provider=provider)
    return APIConnectionError(f"the connection to {place} failed while {doing} it: {why}", provider=provider)


@contextlib.contextmanager
def boundary(
    provider: str, url: str, doing: str, redact: Redact = _same, timeout: Timeout | None = None,
    token: CancelToken | None = None,
) -> Iterator[None]:
    """Run the block; a foreign exception escaping it is raised as its llmstreamer error (`translate`)."""
    try:
        yield
    except LLMStreamError:
        raise
    except Exception as exc:
        cancelled = token is not None and token.reason is not None
        if not (cancelled or isinstance(exc, _FOREIGN) or _websocket_error(exc)):
            raise
        raise translate(exc, provider=provider, url=url, doing=doing, redact=redact, timeout=timeout, token=token) from exc


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps, the most specific last (urllib3 wraps errors several deep)."""
    seen: set[int] = set()
    found: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        found.append(cur)
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException):
                stack.append(arg)
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
        if cur.__cause__ is not None:
            stack.append(cur.__cause__)
    return found


def _innermost(exc: BaseException) -> str:
    """The most specific message in an exception chain."""
    best = _chain(exc)[-1]
    text = str(best) or type(best).__name__
    text = re.sub(r"<urllib3\.[^>]*>: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."
