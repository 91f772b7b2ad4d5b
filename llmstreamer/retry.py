"""Retry and timeout policies: frozen values, with delays computed apart from any sleeping."""

from __future__ import annotations

import random
import time
from typing import Callable, Mapping

import attrs

from .errors import APIConnectionError, APIStatusError, APITimeoutError, ConfigurationError, LLMStreamError

__all__ = ["RetryPolicy", "Timeout", "parse_retry_after"]

_RETRY_STATUSES = frozenset({408, 409, 429, *range(500, 600)})


def _non_negative(_inst: object, attr: attrs.Attribute, value: float | None) -> None:  # type: ignore[type-arg]
    if value is not None and value < 0:
        raise ConfigurationError(f"{attr.name} must not be negative, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    The defaults are the de-facto standard of the official OpenAI and Anthropic SDKs: two
    retries, exponential backoff from 0.5 s capped at 8 s with jitter, server hints honoured.
    A request is only retried before the stream has delivered anything, so no output is ever
    duplicated.

    Attributes:
        retries: How many times to retry after the first attempt.
        initial_delay: The first backoff delay, in seconds.
        max_delay: The cap on a backoff delay.
        jitter: How much of each delay is random: the delay is multiplied by a factor drawn
            from ``[1 - jitter, 1]``.
        max_retry_after: The longest server-requested delay (``retry-after``) honoured; a longer
            one falls back to the backoff.
        statuses: The HTTP statuses worth retrying (408, 409, 429 and 5xx, 529 included).

    Example::

        RetryPolicy(retries=5, max_delay=30)
        RetryPolicy.none()
    """

    retries: int = attrs.field(default=2, validator=_non_negative)
    initial_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.25, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    statuses: frozenset[int] = attrs.field(default=_RETRY_STATUSES, converter=frozenset)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(retries=0)

    def backoff(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """The backoff before retry number ``attempt`` (0 for the first retry), in seconds.

        ``min(initial_delay * 2**attempt, max_delay) * (1 - jitter * rand())``, so with the
        defaults: 0.375-0.5 s, 0.75-1 s, 1.5-2 s, 3-4 s, then 6-8 s.
        """
        base = min(self.initial_delay * 2.0 ** min(attempt, 64), self.max_delay)
        return base * (1.0 - self.jitter * rand())

    def delay(self, attempt: int, error: LLMStreamError, *, rand: Callable[[], float] = random.random) -> float:
        """The delay before retry ``attempt`` after ``error``: the server's hint, else the backoff."""
        hint = getattr(error, "retry_after", None)
        if hint is not None and 0 <= hint <= self.max_retry_after:
            return float(hint)
        return self.backoff(attempt, rand=rand)

    def should_retry(self, error: LLMStreamError, attempt: int) -> bool:
        """Whether ``error`` on retry number ``attempt`` (0-based) deserves another try."""
        if attempt >= self.retries:
            return False
        if isinstance(error, APIStatusError):
            if error.should_retry is not None:
                return error.should_retry
            return error.status_code in self.statuses
        if isinstance(error, APITimeoutError):
            return error.kind != "total"
        return isinstance(error, APIConnectionError)


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Read a server-requested delay from ``retry-after-ms``, then ``retry-after``.

    ``retry-after`` may be seconds (a float) or an HTTP date. Returns seconds, or None.
    """
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    import email.utils  # only for the rare HTTP-date form; it costs ~10 ms to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - now(), 0.0)


def _positive(_inst: object, attr: attrs.Attribute, value: float | None) -> None:  # type: ignore[type-arg]
    if value is not None and not value > 0:
        raise ConfigurationError(f"timeout {attr.name} must be a positive number of seconds, got {value!r}")


@attrs.frozen
class Timeout:
    """How long to wait: to connect, between two bytes of the stream, and in all.

    Attributes:
        connect: Seconds to establish the connection.
        read: The idle gap allowed between two reads of the stream (keep-alive comments and
            pings reset it), and the wait for the response headers.
        total: A cap on the whole stream, or None (the default) for no cap.

    There is never "no timeout": a number given to ``timeout=`` sets both connect and read.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=120.0, validator=_positive)
    total: float | None = attrs.field(default=None, validator=_positive)

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """Normalize a ``timeout=`` argument: None, seconds, or a `Timeout`."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(f"timeout must be seconds or a Timeout, got {value!r}")
        return cls(connect=float(value), read=float(value))
