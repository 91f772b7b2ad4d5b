"""One JSON request and its answer over a streamer's transport, for the REST-style endpoints.

Chat streams have their engine; embeddings, PixiGPT's assistants, threads and runs, reranking
and the rest are plain request/response calls. `call` sends one, retries it under the
streamer's `RetryPolicy` when that is safe, and returns the decoded JSON; failures are the same
`LLMStreamError` classes a stream reports.

When is a retry safe? A request that changes nothing (a GET, a DELETE, an embedding) may be
sent again after any retryable failure. A *create* may not be, unless the failure proves the
server did not process it: no connection was made, or the server answered 429, or 503 with a
``retry-after``. A connection that dropped after the request went out is ambiguous: such a
create is sent again only when it carries an ``Idempotency-Key`` (the same key, so a server that
did process it answers with the first result). A read timeout is never retried for a create:
the server may still be working on it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping

import attrs

from ._cancel import CancelToken
from ._http import Request, Transport
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LLMStreamError,
    RateLimitError,
    StreamError,
)
from .retry import RetryPolicy, Timeout

log = logging.getLogger(__name__)

__all__ = ["Answer", "call", "create_may_retry"]

SAFE = "safe"  # repeating the request changes nothing
CREATE = "create"  # repeating it may create a second object


@attrs.frozen
class Answer:
    """A decoded JSON answer: the value (None for an empty body), the status and the headers."""

    value: Any
    status: int
    headers: Mapping[str, str]


def create_may_retry(error: LLMStreamError, *, keyed: bool) -> bool:
    """Whether a failed create may be sent again: the failure proves it was not processed, or
    it dropped ambiguously and the request carries an idempotency key (``keyed``)."""
    if isinstance(error, APITimeoutError):
        return error.kind == "connect"
    if isinstance(error, APIConnectionError):
        return bool(getattr(error, "_unsent", False)) or keyed
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, APIStatusError):
        return error.status_code == 503 and error.retry_after is not None
    return False


def call(
    transport: Transport,
    request: Request,
    *,
    timeout: Timeout,
    retry: RetryPolicy,
    kind: str = SAFE,
    token: CancelToken | None = None,
    on_retry: Callable[[LLMStreamError, int, float], None] | None = None,
) -> Answer:
    """Send ``request``, retrying as ``kind`` allows, and decode the JSON answer.

    ``timeout.total`` caps the whole call, retries included (unless ``token`` is given: its
    owner keeps the deadline).

    Raises:
        LLMStreamError: the last failure (an `APIStatusError` for a non-2xx answer, a
            `StreamError` for a body that is not JSON, `APITimeoutError` for the total timeout).
    """
    own = token is None
    token = token if token is not None else CancelToken()
    if own:  # a caller's token brings its own deadline (a followed run's)
        token.start_deadline(timeout.total, f"llmstreamer-{transport.provider}")
    try:
        return _attempts(transport, request, timeout, retry, kind, token, on_retry)
    finally:
        if own:
            token.stop_deadline()


def _attempts(
    transport: Transport,
    request: Request,
    timeout: Timeout,
    retry: RetryPolicy,
    kind: str,
    token: CancelToken,
    on_retry: Callable[[LLMStreamError, int, float], None] | None,
) -> Answer:
    keyed = any(name.lower() == "idempotency-key" for name in request.headers)
    attempt = 0
    while True:
        try:
            return _once(transport, request, timeout, token)
        except LLMStreamError as err:
            err.message = transport.redact(err.message)
            if token.reason is not None or not retry.should_retry(err, attempt):
                raise
            if kind == CREATE and not create_may_retry(err, keyed=keyed):
                raise
            delay = retry.delay(attempt, err)
            attempt += 1
            log.debug("%s: retry %d of %s in %.2f s after %s", transport.provider, attempt, request.method, delay, type(err).__name__)
            if on_retry is not None:
                on_retry(err, attempt, delay)
            if token.backoff(delay):
                raise token.error(transport.provider) from None


def _once(transport: Transport, request: Request, timeout: Timeout, token: CancelToken) -> Answer:
    resp = transport.send(request, token, timeout)
    whole = False
    try:
        if resp.status_code >= 300:
            raise transport.status_error(resp, token)
        raw = b"".join(transport.body(resp, token, timeout))
        whole = True
    finally:
        transport.release(resp, token, reuse=whole)
    headers = {k.lower(): v for k, v in resp.headers.items()}
    if not raw.strip():
        return Answer(None, resp.status_code, headers)
    try:
        value = json.loads(raw)
    except ValueError:
        raise StreamError(
            f"{request.method} {_path(request.url)} did not answer JSON: {raw[:120]!r}", provider=transport.provider
        ) from None
    return Answer(value, resp.status_code, headers)


def _path(url: str) -> str:
    """The path of ``url``, for messages (never the query: it may hold a key)."""
    from urllib.parse import urlsplit

    return urlsplit(url).path
