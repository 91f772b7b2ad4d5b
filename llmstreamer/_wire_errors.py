"""Provider error payloads, as HTTP bodies or in-band events, turned into llmstreamer errors.

One reader for every provider's error JSON (OpenAI, Anthropic, Gemini, Ollama, vLLM/Mistral),
the request id from the response headers, and the mapping of error types to the classes of the
matching HTTP status.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator, Mapping

from ._fields import EXCERPT
from .errors import LLMStreamError, StreamError, error_for_status, status_for_type
from .retry import parse_retry_after

__all__ = ["decoding", "error_from_body", "error_from_event", "parse_error", "request_id_of"]

# LiteLLM's proxy names its request x-litellm-call-id (and sends no x-request-id of its own)
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "x-amzn-requestid", "x-litellm-call-id")


@contextlib.contextmanager
def decoding(provider: str) -> Iterator[None]:
    """Around a decoder: data it trips over (a missing key, a wrong type) is a malformed stream.

    The one place where builtin exceptions are caught: everywhere else they are bugs.
    """
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, UnicodeError) as exc:
        if isinstance(exc, LLMStreamError):  # ConfigurationError is a ValueError
            raise
        raise StreamError(f"malformed stream ({type(exc).__name__}: {exc})", provider=provider) from exc


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
    if isinstance(code, str) and code.strip().isdigit():  # "500": LiteLLM passes the upstream status on
        numeric, code = int(code.strip()), None
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
    excerpt = excerpt[:EXCERPT]
    if status < 400:
        equivalent = _equivalent_status(kind, numeric)
        if equivalent is None:
            ctype = headers.get("content-type", "non-stream")
            article = "an" if ctype[:1].lower() in "aeiou" else "a"
            return StreamError(
                f"expected a stream, got {article} {ctype} body: {excerpt[:200]}",
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
        body=json.dumps(payload)[:EXCERPT],
        request_id=request_id,
        retry_after=hint,
        provider=provider,
    )
