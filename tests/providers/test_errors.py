"""Error mapping (HTTP statuses, odd bodies, in-band errors) and retries, for OpenAI and Anthropic."""

from __future__ import annotations

from typing import Any

import pytest

import llmstreamer._cancel
from llmstreamer import (
    AnthropicStreamer,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    LLMStreamError,
    Message,
    NotFoundError,
    OpenAIStreamer,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    RetryPolicy,
    ServerError,
    StreamError,
)
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

PROVIDERS = {"openai": OpenAIStreamer, "anthropic": AnthropicStreamer}
HI = [Message.user("Hi")]


@pytest.fixture(params=sorted(PROVIDERS))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry delays instead of sleeping them."""
    seen: list[float] = []

    def fake_wait(self: Any, seconds: float) -> bool:
        seen.append(seconds)
        return self.reason is not None

    monkeypatch.setattr(llmstreamer._cancel.CancelToken, "wait", fake_wait)
    return seen


def make(server: FakeLLMServer, flavor: str, **kw: Any) -> HTTPStreamer:
    kw.setdefault("retry", 0)
    return PROVIDERS[flavor](api_key="sk-test-key", base_url=server.base_url(flavor), **kw)  # type: ignore[no-any-return]


def fail(streamer: HTTPStreamer) -> LLMStreamError:
    with pytest.raises(LLMStreamError) as info:
        streamer.chat(HI)
    return info.value


STATUSES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (413, RequestTooLargeError),
    (422, BadRequestError),
    (429, RateLimitError),
    (500, ServerError),
    (503, ServerError),
    (529, OverloadedError),
]


@pytest.mark.parametrize(("status", "cls"), STATUSES)
def test_status_errors_map_to_the_tree(server: FakeLLMServer, flavor: str, status: int, cls: type) -> None:
    """Each status ends in its class with status, provider error type, request id and a body excerpt."""
    server.add(Reply(status=status))
    err = fail(make(server, flavor))
    assert type(err) is cls
    assert isinstance(err, APIStatusError)
    assert err.status_code == status and err.provider == flavor
    assert err.error_type and err.request_id and err.request_id.startswith("req_fake_")
    assert err.body and len(err.body) <= 500 and err.error_type in err.body
    assert err.partial is not None and err.partial.finish_reason == "error"
    assert str(status) in str(err)


def test_json_error_body_with_status_200(server: FakeLLMServer, flavor: str) -> None:
    """A 200 whose body is a JSON error is that error, not an empty stream."""
    server.add(Reply(body={"error": {"type": "invalid_request_error", "message": "bad model"}}))
    err = fail(make(server, flavor))
    assert isinstance(err, BadRequestError) and err.message == "bad model" and err.error_type == "invalid_request_error"


def test_html_502_page(server: FakeLLMServer, flavor: str) -> None:
    """A proxy's HTML 502 page is a ServerError with a short excerpt of the page."""
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 2000 + "</body></html>"
    server.add(Reply(status=502, body=page, content_type="text/html"))
    err = fail(make(server, flavor))
    assert isinstance(err, ServerError) and err.status_code == 502
    assert err.body is not None and err.body.startswith("<html>") and len(err.body) <= 500
    assert "Bad Gateway" in str(err)


def test_json_body_that_is_not_an_error(server: FakeLLMServer, flavor: str) -> None:
    """A 200 JSON body that is no error is a StreamError saying a stream was expected."""
    server.add(Reply(body={"hello": "world"}))
    err = fail(make(server, flavor))
    assert type(err) is StreamError and "expected a stream" in str(err)


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"type": "overloaded_error", "message": "Overloaded"}, OverloadedError),
        ({"type": "rate_limit_error", "message": "slow"}, RateLimitError),
        ({"type": "api_error", "message": "boom"}, ServerError),
        ({"type": "invalid_request_error", "message": "no"}, BadRequestError),
        ({"type": "something_new", "message": "???"}, StreamError),
    ],
)
def test_in_band_errors_map_by_type(server: FakeLLMServer, flavor: str, error: dict[str, str], cls: type) -> None:
    """An error event inside a 200 stream maps to the class of its type, with the text so far kept."""
    server.add(Reply(text=["so", " far"], error=error))
    err = fail(make(server, flavor))
    assert type(err) is cls and error["message"] in str(err)
    assert err.partial is not None and err.partial.text == "so far"
    if isinstance(err, APIStatusError):
        assert err.error_type == error["type"]


# --- retries -------------------------------------------------------------------------------------


def test_retry_after_is_honoured(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """A 429 with retry-after is retried after exactly that delay, then succeeds."""
    server.add(Reply(status=429, headers={"retry-after": "2"}), Reply(text="ok"))
    rec = Recorder()
    make(server, flavor, retry=2).stream_chat(HI, rec).wait(5)
    assert rec.calls == [("retry", "RateLimitError", 1), ("content", "ok"), ("usage", 10, 1), ("finish", "ok")]
    assert waits == [2.0] and len(server.requests) == 2


def test_retry_after_ms_wins(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """retry-after-ms takes precedence over retry-after."""
    server.add(Reply(status=503, headers={"retry-after-ms": "250", "retry-after": "9"}), Reply(text="ok"))
    assert make(server, flavor, retry=1).chat(HI).text == "ok"
    assert waits == [0.25]


def test_backoff_when_no_hint(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """Without a hint the delays follow the exponential backoff with jitter."""
    server.add(Reply(status=500), Reply(status=500), Reply(text="ok"))
    assert make(server, flavor, retry=2).chat(HI).text == "ok"
    assert 0.375 <= waits[0] <= 0.5 and 0.75 <= waits[1] <= 1.0


def test_x_should_retry_overrides(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """x-should-retry: false stops a retry of a 500; true retries even a 400."""
    server.add(Reply(status=500, headers={"x-should-retry": "false"}))
    assert isinstance(fail(make(server, flavor, retry=2)), ServerError) and len(server.requests) == 1
    server.add(Reply(status=400, headers={"x-should-retry": "true"}), Reply(text="ok"))
    assert make(server, flavor, retry=2).chat(HI).text == "ok" and len(server.requests) == 3


def test_non_retryable_status_is_not_retried(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """A 401 fails at once, whatever the retry budget."""
    server.add(Reply(status=401))
    assert isinstance(fail(make(server, flavor, retry=5)), AuthenticationError)
    assert waits == [] and len(server.requests) == 1


def test_retries_run_out(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """After the last retry the last error is reported."""
    server.add(*[Reply(status=503)] * 3)
    err = fail(make(server, flavor, retry=RetryPolicy(retries=2)))
    assert isinstance(err, ServerError) and len(server.requests) == 3 and len(waits) == 2


def test_in_band_error_as_first_event_is_retried(server: FakeLLMServer, flavor: str, waits: list[float]) -> None:
    """An overloaded error arriving before any output counts as retryable, like a 529."""
    server.add(Reply(error={"type": "overloaded_error", "message": "Overloaded"}), Reply(text="ok"))
    assert make(server, flavor, retry=1).chat(HI).text == "ok"
    assert len(server.requests) == 2
