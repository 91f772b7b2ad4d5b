"""RetryPolicy and Timeout: pure computations, nothing sleeps."""

from __future__ import annotations

import email.utils

import pytest

from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamError,
    Timeout,
)
from llmstreamer.errors import APIStatusError, BadRequestError
from llmstreamer.retry import parse_retry_after


@pytest.mark.parametrize(("attempt", "low", "high"), [(0, 0.375, 0.5), (1, 0.75, 1.0), (2, 1.5, 2.0), (3, 3.0, 4.0), (4, 6.0, 8.0), (10, 6.0, 8.0)])
def test_default_backoff_bounds(attempt: int, low: float, high: float) -> None:
    """The default backoff is 0.5 * 2**n capped at 8, times a jitter factor in [0.75, 1]."""
    policy = RetryPolicy()
    assert policy.backoff(attempt, rand=lambda: 0.0) == pytest.approx(high)
    assert policy.backoff(attempt, rand=lambda: 1.0) == pytest.approx(low)
    assert low <= policy.backoff(attempt) <= high


def test_huge_attempt_does_not_overflow() -> None:
    """A very large attempt number still gives the capped delay."""
    assert RetryPolicy().backoff(10**6, rand=lambda: 0.0) == 8.0


def test_server_hint_wins_up_to_the_cap() -> None:
    """retry_after is used when within max_retry_after; a longer one falls back to the backoff."""
    policy = RetryPolicy()
    err = RateLimitError("slow down", status_code=429, retry_after=2.5)
    assert policy.delay(0, err) == 2.5
    err = RateLimitError("slow down", status_code=429, retry_after=600)
    assert policy.delay(0, err, rand=lambda: 0.0) == 0.5


def test_should_retry_rules() -> None:
    """Retry 408/409/429/5xx/529 and connection errors; not 400, total timeouts or stream errors; x-should-retry overrides."""
    policy = RetryPolicy()
    for status in (408, 409, 429, 500, 502, 503, 529):
        assert policy.should_retry(APIStatusError("x", status_code=status), 0)
    assert not policy.should_retry(BadRequestError("x", status_code=400), 0)
    assert policy.should_retry(APIConnectionError("refused"), 0)
    assert policy.should_retry(APITimeoutError("slow", kind="connect"), 0)
    assert not policy.should_retry(APITimeoutError("cap", kind="total"), 0)
    assert not policy.should_retry(StreamError("bad"), 0)
    assert not policy.should_retry(ServerError("x", status_code=500, should_retry=False), 0)
    assert policy.should_retry(BadRequestError("x", status_code=400, should_retry=True), 0)
    assert not policy.should_retry(ServerError("x", status_code=500), 2)
    assert not RetryPolicy.none().should_retry(ServerError("x", status_code=500), 0)


def test_parse_retry_after_forms() -> None:
    """retry-after-ms wins, then retry-after as seconds or an HTTP date."""
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=lambda: 1_000_000) == pytest.approx(10)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_policy_validation() -> None:
    """Negative numbers are rejected when the policy is built."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(retries=-1)


def test_timeout_forms() -> None:
    """Timeout.of takes None (defaults), seconds (connect and read) or a Timeout; never 'no timeout'."""
    assert Timeout.of(None) == Timeout(10.0, 120.0, None)
    assert Timeout.of(5) == Timeout(5.0, 5.0, None)
    assert Timeout.of(Timeout(total=30)).total == 30
    for bad in (0, -1, "5", True):
        with pytest.raises(ConfigurationError):
            Timeout.of(bad)  # type: ignore[arg-type]
