"""The exception tree: every failure a stream can report is one of these.

::

    LLMStreamError                     .partial (Response or None), .provider
    ├── ConfigurationError (ValueError)  bad arguments, missing key, unsupported option
    ├── SessionBusyError               a stored session stayed held by another turn past lock_timeout
    ├── APIConnectionError             cannot connect, connection dropped mid-stream
    │   ├── APITimeoutError            connect, idle (read) or total timeout
    │   └── StreamLogError             the resumable streams' shared log (Redis) is unreachable
    ├── APIStatusError                 the provider said no: .status_code .error_type .body .request_id
    │   ├── BadRequestError (400, 422)       ├── AuthenticationError (401)
    │   ├── PermissionDeniedError (403)      ├── NotFoundError (404)
    │   ├── RequestTooLargeError (413)       ├── RateLimitError (429; .retry_after)
    │   ├── ServerError (5xx)                └── OverloadedError (529, in-band overloaded_error)
    ├── StreamError                    malformed stream, unmapped in-band error
    │   └── IncompleteStreamError      body ended without the terminal event
    ├── StreamCancelled                cancel() or a closed iterator
    ├── UnknownStreamError (KeyError)  no resumable stream has this id (never made, or expired)
    ├── CallbackError                  a user callback raised
    └── ToolError                      unknown tool, tool raised, permission refused

In-band errors (an ``error`` event inside a 200 stream) map to the same classes as HTTP
statuses, by their error type, so ``except RateLimitError`` works whichever way it arrived.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ConfigurationError",
    "IncompleteStreamError",
    "LLMStreamError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServerError",
    "SessionBusyError",
    "StreamCancelled",
    "StreamError",
    "StreamLogError",
    "ToolError",
    "UnknownStreamError",
    "error_for_status",
    "status_for_type",
]


class _Partial(Protocol):
    """The `llmstreamer.Response` an error carries, described here by its fields.

    (``models`` raises these errors, so this module names the response by shape instead of
    importing it: the package has no import cycle.)
    """

    @property
    def text(self) -> str: ...
    @property
    def thinking(self) -> str: ...
    @property
    def tool_calls(self) -> tuple[Any, ...]: ...
    @property
    def finish_reason(self) -> str: ...
    @property
    def usage(self) -> Any: ...
    @property
    def model(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def time_to_first_token(self) -> float | None: ...
    @property
    def duration(self) -> float: ...
    @property
    def message(self) -> Any: ...
    @property
    def messages(self) -> tuple[Any, ...]: ...


class LLMStreamError(Exception):
    """The root of every error llmstreamer reports.

    Attributes:
        message: What went wrong, in one sentence.
        partial: The `Response` built from everything that arrived before the failure,
            or None when the error happened before a stream started.
        provider: The provider's name (``"openai"``), when known.
    """

    def __init__(
        self, message: str, *, partial: _Partial | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partial: _Partial | None = partial
        self.provider = provider

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


class ConfigurationError(LLMStreamError, ValueError):
    """Bad arguments, a missing API key or an option the provider cannot honour."""


class SessionBusyError(LLMStreamError):
    """Another turn (thread or process) held the stored session for longer than ``lock_timeout``.

    Also raised when a turn lost its hold on the session (its lease expired and another turn
    took it): the answer is then not stored, and it is on ``partial``.
    """


class APIConnectionError(LLMStreamError):
    """The connection could not be made, or it dropped while the stream was running."""


class APITimeoutError(APIConnectionError):
    """A connect, idle (read) or total timeout expired.

    Attributes:
        kind: ``"connect"``, ``"read"`` (no byte arrived for the idle timeout) or ``"total"``.
    """

    def __init__(self, message: str, *, kind: str = "read", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.kind = kind


class StreamLogError(APIConnectionError):
    """The shared log of `llmstreamer.web.ResumableStreams` (Redis) could not be reached, or a command on it failed."""


class APIStatusError(LLMStreamError):
    """The provider answered with an error: an HTTP status, or an in-band error event.

    Attributes:
        status_code: The HTTP status, or the equivalent status of an in-band error (529 for an
            in-band ``overloaded_error``).
        error_type: The provider's own error type or code (``"rate_limit_error"``), if given.
        body: A short excerpt of the error body (at most 500 characters).
        request_id: The provider's request id, for support tickets.
        retry_after: Seconds the provider asked us to wait (``retry-after-ms``, ``retry-after``
            or an in-band hint), or None.
        should_retry: The provider's ``x-should-retry`` verdict (True/False), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        body: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.status_code = status_code
        self.error_type = error_type
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        self.should_retry = should_retry

    def __str__(self) -> str:
        where = f"{self.provider} " if self.provider else ""
        kind = f" {self.error_type}" if self.error_type else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{self.status_code}{kind}: {self.message}{rid}"


class BadRequestError(APIStatusError):
    """400 or 422: the request was malformed or invalid."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or feature."""


class NotFoundError(APIStatusError):
    """404: no such model or endpoint."""


class RequestTooLargeError(APIStatusError):
    """413: the request body is too large."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; ``retry_after`` says how long to wait, if known."""


class ServerError(APIStatusError):
    """5xx: the provider failed."""


class OverloadedError(ServerError):
    """529 or an in-band ``overloaded_error``: the provider is overloaded, try again later."""


class StreamError(LLMStreamError):
    """The stream was malformed, or carried an in-band error of an unknown type."""


class IncompleteStreamError(StreamError):
    """The body ended before the provider's terminal event: the answer was cut off."""


class StreamCancelled(LLMStreamError):
    """The stream was cancelled: ``handle.cancel()``, or the iterator was closed."""


class UnknownStreamError(LLMStreamError, KeyError):
    """No resumable stream has this id: it never existed, or its log expired (a `KeyError` too)."""


class CallbackError(LLMStreamError):
    """A user callback raised; the original exception is the ``__cause__``."""


class ToolError(LLMStreamError):
    """A tool was unknown, raised, or was refused permission."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    422: BadRequestError,
    429: RateLimitError,
    529: OverloadedError,
}

# Provider error types (OpenAI, Anthropic, Gemini status names, ModelSocket codes) → status.
_STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "invalid_argument": 400,
    "failed_precondition": 400,
    "bad_request": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "unauthenticated": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "not_found": 404,
    "model_not_found": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "resource_exhausted": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "internal": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
    "unavailable": 503,
    "deadline_exceeded": 504,
    "timeout_error": 504,
    "overloaded_error": 529,
    "overloaded": 529,
}


def error_for_status(status: int) -> type[APIStatusError]:
    """Return the `APIStatusError` subclass for an HTTP status code."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return APIStatusError


def status_for_type(error_type: str | None) -> int | None:
    """The HTTP status equivalent to a provider's error type (``"overloaded_error"`` → 529), or None."""
    return _STATUS_BY_TYPE.get((error_type or "").lower())
