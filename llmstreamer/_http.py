"""The HTTP transport: a pooled ``requests`` adapter, redirects, timeouts, error mapping, abort.

This is the one place where ``requests``/``urllib3`` exceptions become llmstreamer errors. The
body is read with ``raw.read1(65536, decode_content=True)``, which hands over whatever bytes
have arrived without waiting to fill a buffer (``iter_content`` and ``iter_lines`` hold small
events back on close-delimited bodies). Credential headers never follow a redirect to another
origin, and the API key never appears in a URL, a log record or an exception message.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

import attrs
import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util.connection

from ._cancel import CancelToken
from ._secret import Secret
from .errors import (
    APIConnectionError,
    APITimeoutError,
    LLMStreamError,
    StreamError,
    error_for_status,
    status_for_type,
)
from .retry import Timeout, parse_retry_after

log = logging.getLogger(__name__)

__all__ = ["Request", "Transport", "error_from_body", "error_from_event"]

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_ERROR_BODY_LIMIT = 65536
_EXCERPT = 500
_READ_SIZE = 65536
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "x-amzn-requestid")

_local = threading.local()


@attrs.define
class Request:
    """One HTTP request, as a provider builds it (the body already JSON-encoded)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


# --- cancellation hooks: connections register themselves with the stream's token ---------------


def _abort_connection(conn: urllib3.connection.HTTPConnection, connecting: Sequence[socket.socket] = ()) -> None:
    sock = conn.sock if conn.sock is not None else (connecting[0] if connecting else None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _connect(conn: Any, connecting: list[socket.socket], token: CancelToken) -> socket.socket:
    """Open ``conn``'s socket as urllib3's ``create_connection`` does, but show each socket to
    ``connecting`` before it connects, so a cancel (or the total timeout) can shut it down."""
    host = conn._dns_host.strip("[]")
    try:
        found = socket.getaddrinfo(host, conn.port, urllib3.util.connection.allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    error: OSError = OSError("getaddrinfo returned no address")
    for family, kind, proto, _, address in found:
        sock = socket.socket(family, kind, proto)
        connecting[:] = [sock]
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(conn.timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            if token.reason is not None:
                raise OSError("the stream was cancelled")
            sock.connect(address)
            sys.audit("http.client.connect", conn, conn.host, conn.port)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if token.reason is not None:
                break
    if isinstance(error, socket.timeout):
        message = f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        raise urllib3.exceptions.ConnectTimeoutError(conn, message) from error
    raise urllib3.exceptions.NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


class _Attach:
    """Mixin: hand the stream's token a way to abort this connection, from its connect on."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        token: CancelToken | None = getattr(_local, "token", None)
        if token is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        # Attached before connect(): a cancel or the total timeout shuts the socket down at once
        # instead of waiting out the connect timeout (urllib3 shows the socket to no one earlier).
        connecting: list[socket.socket] = []
        abort = functools.partial(_abort_connection, self, connecting)  # type: ignore[arg-type]
        token.attach(abort)
        try:
            sock = _connect(self, connecting, token)
        except BaseException:
            token.detach(abort)
            raise
        _local.abort = abort
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = super().request(*args, **kwargs)  # type: ignore[misc]
        token: CancelToken | None = getattr(_local, "token", None)
        if token is not None and getattr(_local, "abort", None) is None:  # a pooled connection
            # Attached once the request is sent: from here on the socket exists, and a cancel
            # that came earlier aborts it at once (attach runs the abort when already cancelled).
            abort = _local.abort = functools.partial(_abort_connection, self)  # type: ignore[arg-type]
            token.attach(abort)
        return result


class _HTTPConnection(_Attach, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Attach, urllib3.connection.HTTPSConnection):
    pass


class _QuietPoolMixin:
    """A pool that closes an extra connection silently when it is full, instead of warning.

    More concurrent streams than ``pool_size`` is normal for a server; keeping at most
    ``pool_size`` idle connections is the point, and the warning would only be noise.
    """

    pool: Any

    def _put_conn(self, conn: Any) -> None:
        if conn is not None and self.pool is not None and self.pool.full():
            conn.close()
            return
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_QuietPoolMixin, urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_QuietPoolMixin, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


# --- the transport ------------------------------------------------------------------------------


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in: what "same origin" compares."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class Transport:
    """A connection pool and the rules for using it: one per streamer, shared by its threads.

    ``requests.Session`` is not used: its cookie jar and redirect logic are not ours to share
    across threads. The adapter's urllib3 pool is thread-safe.
    """

    def __init__(
        self,
        *,
        provider: str,
        pool_size: int = 32,
        verify: bool | str = True,
        secret: Secret | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.verify = verify
        self._secret = secret if secret is not None else Secret(None)
        self._proxies = dict(proxies) if proxies is not None else None
        self._proxy_cache: dict[tuple[str, str, int | None], dict[str, str]] = {}
        self._adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def close(self) -> None:
        """Close every pooled connection now.

        ``HTTPAdapter.close`` only forgets the pools (urllib3 2 closes their connections when
        the pool is garbage-collected, which a lingering traceback can delay), so each pool is
        closed explicitly first.
        """
        managers = [self._adapter.poolmanager, *self._adapter.proxy_manager.values()]
        for manager in managers:
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        self._adapter.close()

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return self._secret.redact(text)

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self._proxies is not None:
            return self._proxies
        key = origin(url)
        found = self._proxy_cache.get(key)
        if found is None:
            found = self._proxy_cache[key] = requests.utils.get_environ_proxies(url)
        return found

    def send(self, req: Request, token: CancelToken, timeout: Timeout) -> requests.Response:
        """Send ``req``, following redirects; return the response whatever its status."""
        url, headers, method, body = req.url, dict(req.headers), req.method, req.body
        start = origin(url)
        for _ in range(_MAX_REDIRECTS + 1):
            prep = requests.PreparedRequest()
            prep.prepare(method=method, url=url, headers=headers, data=body)
            log.debug("%s %s", method, url)
            _local.token = token
            _local.abort = None
            try:
                resp = self._adapter.send(
                    prep,
                    stream=True,
                    timeout=(timeout.connect, timeout.read),
                    verify=self.verify,
                    proxies=self._proxies_for(url),
                )
            except Exception as exc:
                abort = _local.abort
                if abort is not None:
                    token.detach(abort)
                raise self.translate(exc, token, url, timeout, connecting=True) from None
            finally:
                _local.token = None
            resp._llmstreamer_abort = _local.abort  # type: ignore[attr-defined]
            location = resp.headers.get("location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            self.release(resp, token, reuse=False)
            url = urljoin(url, location)
            if origin(url) != start:
                log.debug("redirect to another origin: credential headers dropped")
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        raise APIConnectionError(f"more than {_MAX_REDIRECTS} redirects", provider=self.provider)

    def release(self, resp: requests.Response, token: CancelToken, *, reuse: bool) -> None:
        """Detach the response from the token; pool the connection when fully read, else close it."""
        abort = getattr(resp, "_llmstreamer_abort", None)
        if abort is not None:
            token.detach(abort)
        raw = resp.raw
        if reuse and raw is not None and raw.closed:
            raw.release_conn()
        else:
            resp.close()

    def body(self, resp: requests.Response, token: CancelToken, timeout: Timeout) -> Iterator[bytes]:
        """Yield the body's bytes as they arrive; transport failures become llmstreamer errors."""
        raw = resp.raw
        fast = _chunked_reader(raw)
        try:
            if fast is not None:
                yield from _dechunk(fast, raw)
            else:
                read1 = raw.read1
                while True:
                    data = read1(_READ_SIZE, decode_content=True)
                    if not data:
                        break
                    yield data
        except Exception as exc:
            raise self.translate(exc, token, resp.url, timeout, connecting=False) from None
        if token.reason is not None:
            raise token.error(self.provider)

    def read_error_body(self, resp: requests.Response) -> bytes:
        """Read at most 64 KiB of an error body."""
        chunks, size = [], 0
        try:
            while size < _ERROR_BODY_LIMIT:
                data = resp.raw.read1(_ERROR_BODY_LIMIT - size, decode_content=True)
                if not data:
                    break
                chunks.append(data)
                size += len(data)
        except Exception:  # a truncated error body still tells us the status
            pass
        return b"".join(chunks)

    def status_error(self, resp: requests.Response, token: CancelToken) -> LLMStreamError:
        """The error for a non-2xx response (or a 200 carrying a JSON error); the caller releases it."""
        raw = self.read_error_body(resp)
        return error_from_body(
            resp.status_code,
            raw.decode("utf-8", "replace"),
            resp.headers,
            provider=self.provider,
            redact=self.redact,
            reason=resp.reason or "",
        )

    def translate(
        self, exc: BaseException, token: CancelToken, url: str, timeout: Timeout, *, connecting: bool
    ) -> LLMStreamError:
        """Turn a requests/urllib3/socket exception into an llmstreamer error."""
        if isinstance(exc, LLMStreamError):
            return exc
        if token.reason is not None:
            return token.error(self.provider)
        scheme, host, port = origin(url)
        where = f"{scheme}://{host}:{port}"
        why = self.redact(_innermost(exc))
        if isinstance(exc, (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
            return APITimeoutError(
                f"timed out connecting to {where} after {timeout.connect:g} s", kind="connect", provider=self.provider
            )
        if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, socket.timeout)):
            waiting = "the response" if connecting else "more of the stream"
            return APITimeoutError(
                f"no data from {where} for {timeout.read:g} s while waiting for {waiting}",
                kind="read",
                provider=self.provider,
            )
        if isinstance(exc, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)) or "CERTIFICATE_VERIFY" in why:
            return APIConnectionError(
                f"TLS error with {where}: {why}. Certificates are verified by default; pass "
                "verify='/path/to/ca.pem' to trust a private CA",
                provider=self.provider,
            )
        if connecting:
            resolving = any(isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for e in _chain(exc))
            if resolving or "NameResolution" in why or "Name or service not known" in why or "getaddrinfo" in why:
                return APIConnectionError(f"cannot resolve host {host!r}: {why}", provider=self.provider)
            if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
                return APIConnectionError(f"invalid URL {url!r}: {why}", provider=self.provider)
            return APIConnectionError(f"cannot connect to {where}: {why}", provider=self.provider)
        return APIConnectionError(f"the connection to {where} dropped mid-stream: {why}", provider=self.provider)


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


def _chunked_reader(raw: Any) -> Callable[[int], bytes] | None:
    """The socket reader of a chunked, uncompressed body not yet read, else None.

    http.client's ``read1`` never returns more than the current HTTP chunk, and servers flush
    one event per chunk, so reading through urllib3 costs one trip through its whole stack per
    event. Reading the connection's buffered reader and undoing the chunk framing here hands the
    parser everything that has arrived in one piece. Anything unusual (compression, a body
    already started, another http.client) takes the ordinary path.
    """
    inner = getattr(raw, "_fp", None)
    fp = getattr(inner, "fp", None)
    if (
        not getattr(inner, "chunked", False)
        or getattr(inner, "chunk_left", 0) is not None
        or fp is None
        or not hasattr(fp, "read1")
        or raw.headers.get("content-encoding", "identity").lower() != "identity"
    ):
        return None
    return fp.read1  # type: ignore[no-any-return]


def _dechunk(read1: Callable[[int], bytes], raw: Any) -> Iterator[bytes]:
    """Yield the payload of a chunked body read with ``read1``, one piece per read.

    At the final zero-size chunk (and its trailer) the http.client response is finished the way
    it finishes itself, so urllib3 sees a complete body and pools the connection.
    """
    pending = b""
    left = 0  # > 0: payload bytes left in this chunk; < 0: bytes of its CRLF still to skip
    while True:
        data = read1(_READ_SIZE)
        if not data:
            raise urllib3.exceptions.ProtocolError("the connection closed before the end of the chunked body")
        if pending:
            data, pending = pending + data, b""
        pos, size, out = 0, len(data), []
        while pos < size:
            if left > 0:
                end = min(pos + left, size)
                out.append(data[pos:end])
                left -= end - pos
                pos = end
                if left == 0:
                    left = -2
            elif left < 0:
                skip = min(-left, size - pos)
                pos += skip
                left += skip
            else:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    pending = data[pos:]
                    break
                try:
                    left = int(data[pos:eol].split(b";", 1)[0], 16)
                except ValueError:
                    raise urllib3.exceptions.ProtocolError(f"bad chunk size line {data[pos:eol][:40]!r}") from None
                pos = eol + 1
                if left == 0:
                    if out:
                        yield b"".join(out)
                    _finish_chunked(read1, data[pos:], raw)
                    return
        if out:
            yield b"".join(out) if len(out) > 1 else out[0]


def _finish_chunked(read1: Callable[[int], bytes], rest: bytes, raw: Any) -> None:
    """Read the trailer after the last chunk (up to its blank line), then close the body."""
    while True:
        start = 0
        while True:
            eol = rest.find(b"\n", start)
            if eol < 0:
                break
            if rest[start:eol].strip() == b"":
                raw._fp._close_conn()  # as http.client does at the end of a chunked body
                return
            start = eol + 1
        more = read1(_READ_SIZE)
        if not more:
            raise urllib3.exceptions.ProtocolError("the connection closed inside the chunked trailer")
        rest = rest[start:] + more


def _innermost(exc: BaseException) -> str:
    """The most specific message in an exception chain."""
    best = _chain(exc)[-1]
    text = str(best) or type(best).__name__
    text = re.sub(r"<urllib3\.[^>]*>: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


# --- error bodies and in-band error events ------------------------------------------------------


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The provider's request id from the response headers, if any."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _duration(text: Any) -> float | None:
    """Gemini's ``retryDelay`` ("34.4s") in seconds."""
    if isinstance(text, str) and text.endswith("s"):
        try:
            return float(text[:-1])
        except ValueError:
            return None
    return None


def parse_error(payload: Any) -> tuple[str | None, str | None, int | None, float | None]:
    """Read (error type, message, numeric code, retry hint) from any provider's error JSON.

    Shapes: OpenAI ``{"error": {"message", "type", "code"}}``, Anthropic ``{"type": "error",
    "error": {"type", "message"}}``, Gemini ``{"error": {"code", "message", "status",
    "details"}}``, Ollama ``{"error": "text"}``, vLLM/Mistral ``{"object": "error", "message",
    "type", "code"}``.
    """
    if not isinstance(payload, dict):
        return None, None, None, None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return None, err, None, None
    if not isinstance(err, dict):
        return None, None, None, None
    message = err.get("message")
    if message is not None and not isinstance(message, str):
        message = json.dumps(message)
    code = err.get("code")
    numeric = code if isinstance(code, int) and not isinstance(code, bool) else None
    kind = err.get("type")
    if not isinstance(kind, str) or kind == "error":
        kind = None
    kind = kind or err.get("status") or (code if isinstance(code, str) else None)
    if not isinstance(kind, str):  # a malformed body: a list or object where a name belongs
        kind = None
    hint = None
    for detail in err.get("details") or ():
        if isinstance(detail, dict) and "retryDelay" in detail:
            hint = _duration(detail["retryDelay"])
    return kind, message, numeric, hint


def _equivalent_status(kind: str | None, numeric: int | None) -> int | None:
    """The HTTP status an error type (or a numeric code in the body) stands for, if any."""
    status = status_for_type(kind)
    if status is None and numeric is not None and numeric >= 400:
        status = numeric
    return status


def error_from_body(
    status: int,
    text: str,
    headers: Mapping[str, str],
    *,
    provider: str,
    redact: Any = None,
    reason: str = "",
) -> LLMStreamError:
    """The error for an HTTP error response (or a 200 whose body is a JSON error)."""
    try:
        payload = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
    kind, message, numeric, hint = parse_error(payload)
    excerpt = " ".join(text.split())
    if redact is not None:
        excerpt = redact(excerpt)
        message = redact(message) if message else message
    excerpt = excerpt[:_EXCERPT]
    if status < 400:
        equivalent = _equivalent_status(kind, numeric)
        if equivalent is None:
            return StreamError(
                f"expected a stream, got a {headers.get('content-type', 'non-stream')} body: {excerpt[:200]}",
                provider=provider,
            )
        status = equivalent
    cls = error_for_status(status)
    if not message:
        message = reason or (excerpt[:200] if payload is None and excerpt else f"HTTP {status}")
        if payload is None and excerpt and reason:
            message = f"{reason}: {excerpt[:200]}"
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = hint
    should = headers.get("x-should-retry", "").lower()
    return cls(
        message,
        status_code=status,
        error_type=kind,
        body=excerpt or None,
        request_id=request_id_of(headers) or (payload.get("request_id") if isinstance(payload, dict) else None),
        retry_after=retry_after,
        should_retry=True if should == "true" else False if should == "false" else None,
        provider=provider,
    )


def error_from_event(payload: Any, *, provider: str, request_id: str | None = None) -> LLMStreamError:
    """The error for an in-band error event, mapped to the class of the matching HTTP status."""
    kind, message, numeric, hint = parse_error(payload)
    status = _equivalent_status(kind, numeric)
    message = message or "the provider reported an error in the stream"
    if status is None:
        text = f"{kind}: {message}" if kind else message
        return StreamError(text, provider=provider)
    return error_for_status(status)(
        message,
        status_code=status,
        error_type=kind,
        body=json.dumps(payload)[:_EXCERPT],
        request_id=request_id,
        retry_after=hint,
        provider=provider,
    )
