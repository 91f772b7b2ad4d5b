"""The HTTP transport: a pooled ``requests`` adapter, redirects, timeouts, error mapping, abort.

Every call into ``requests``/``urllib3`` runs inside `_boundary.boundary`, where their exceptions
become llmstreamer errors (the WebSocket transport uses the same boundary). A
chunked body is de-chunked in bulk (``_chunked``); any other body is read with
``raw.read1(65536, decode_content=True)``. Both hand over whatever bytes have arrived without
waiting to fill a buffer (``iter_content`` and ``iter_lines`` hold small events back on
close-delimited bodies). Credential headers never follow a redirect to another origin, and the
API key never appears in a URL, a log record or an exception message. The connections
themselves, abortable by a stream's cancel token, are in ``_connection``; provider error
payloads are read in ``_wire_errors``.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator
from urllib.parse import urljoin

import attrs
import requests
import requests.adapters

from ._boundary import CONNECTING, READING, boundary, origin
from ._cancel import CancelToken
from ._chunked import READ_SIZE, chunked_reader, dechunk
from ._connection import Adapter, local
from ._secret import Secret
from ._wire_errors import error_from_body
from .errors import APIConnectionError, LLMStreamError
from .retry import Timeout

log = logging.getLogger(__name__)

__all__ = ["CREDENTIAL_HEADERS", "DRAIN_BYTES", "DRAIN_SECONDS", "REDIRECTS", "Request", "Transport", "is_json", "origin"]

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_ERROR_BODY_LIMIT = 65536
# After the terminal event: how long to wait for the body's end, and how much more to read,
# before the connection is closed instead of pooled. Servers send the body's end with their
# terminal event, so this is short: on_finish waits for it, and must fire at once.
DRAIN_SECONDS = 0.05
DRAIN_BYTES = 65536

@attrs.define
class Request:
    """One HTTP request, as a provider builds it (the body already JSON-encoded)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


# --- the transport ------------------------------------------------------------------------------


def is_json(content_type: str) -> bool:
    """True for a JSON media type (``application/json``, ``...+json``): an error body, not a stream."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


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
    ) -> None:
        self.provider = provider
        self.verify = verify
        self._secret = secret if secret is not None else Secret(None)
        self._proxy_cache: dict[tuple[str, str, int | None], dict[str, str]] = {}
        self._adapter = Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

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
            local.token = token
            local.abort = None
            try:
                with boundary(self.provider, url, CONNECTING, self.redact, timeout, token):
                    resp = self._adapter.send(
                        prep,
                        stream=True,
                        timeout=(timeout.connect, timeout.read),
                        verify=self.verify,
                        proxies=self._proxies_for(url),
                    )
            except BaseException:
                abort = local.abort
                if abort is not None:
                    token.detach(abort)
                raise
            finally:
                local.token = None
            resp._llmstreamer_abort = local.abort  # type: ignore[attr-defined]
            location = resp.headers.get("location")
            if resp.status_code not in REDIRECTS or not location:
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

    def drain(self, resp: requests.Response, body: Iterator[bytes]) -> bool:
        """Read what is left of a body after the terminal event, within a small bound.

        True when the body ended cleanly (the connection may go back to the pool). False when
        more than `DRAIN_BYTES` arrive, the server stays silent for `DRAIN_SECONDS`, the read
        fails, or the body has no length to end at: the caller then closes the connection,
        so it is never pooled half-read.
        """
        raw = resp.raw
        if raw is None or raw.closed:
            return True
        headers = resp.headers
        if "chunked" not in headers.get("transfer-encoding", "").lower() and not headers.get("content-length"):
            return False  # a close-delimited body ends only with the connection
        sock = getattr(getattr(raw, "_connection", None), "sock", None)
        if sock is None:
            return False
        try:
            before = sock.gettimeout()
            sock.settimeout(DRAIN_SECONDS)
        except OSError:
            return False
        deadline = time.monotonic() + DRAIN_SECONDS
        size = 0
        try:
            for data in body:
                size += len(data)
                if size > DRAIN_BYTES or time.monotonic() > deadline:
                    log.debug("%s: more data after the terminal event; the connection is closed", self.provider)
                    return False
        except LLMStreamError as exc:
            log.debug("%s: %s while draining after the terminal event; the connection is closed", self.provider, type(exc).__name__)
            return False
        finally:
            try:
                sock.settimeout(before)
            except OSError:
                pass
        return bool(raw.closed)

    def body(self, resp: requests.Response, token: CancelToken, timeout: Timeout) -> Iterator[bytes]:
        """Yield the body's bytes as they arrive; transport failures become llmstreamer errors."""
        raw = resp.raw
        fast = chunked_reader(raw)
        with boundary(self.provider, resp.url, READING, self.redact, timeout, token):
            if fast is not None:
                yield from dechunk(fast, raw)
            else:
                read1 = raw.read1
                while True:
                    data = read1(READ_SIZE, decode_content=True)
                    if not data:
                        break
                    yield data
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
