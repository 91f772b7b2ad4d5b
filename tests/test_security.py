"""Key hygiene: never in repr, str, logs, exceptions or URLs; never sent to another origin."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from llmstreamer import AnthropicStreamer, LLMStreamError, Message, OpenAIStreamer
from llmstreamer.testing import FakeLLMServer, Reply

KEY = "sk-SECRET-0123456789abcdef"
PROVIDERS = {"openai": (OpenAIStreamer, "authorization"), "anthropic": (AnthropicStreamer, "x-api-key")}


@pytest.fixture(params=sorted(PROVIDERS))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(base_url: str, flavor: str, **kw: Any) -> Any:
    return PROVIDERS[flavor][0](api_key=KEY, base_url=base_url, retry=0, **kw)


def test_key_not_in_repr_or_str(server: FakeLLMServer, flavor: str) -> None:
    """repr/str/vars of a streamer never show the key."""
    s = make(server.base_url(flavor), flavor)
    assert KEY not in repr(s) and KEY not in str(s)
    assert all(KEY not in repr(v) for v in vars(s).values())


def test_key_from_environment_not_in_repr(server: FakeLLMServer, flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key read from the environment is just as hidden."""
    env = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}[flavor]
    monkeypatch.setenv(env, KEY)
    s = PROVIDERS[flavor][0](base_url=server.base_url(flavor))
    assert KEY not in repr(s) and KEY not in repr(vars(s))


def test_key_not_in_logs_errors_or_urls(server: FakeLLMServer, flavor: str, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG, across a success and an error that echoes the key, no log record, URL or error text holds it."""
    server.add(Reply(text="ok"), Reply(status=401, body={"error": {"type": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}"}}))
    s = make(server.base_url(flavor), flavor)
    with caplog.at_level(logging.DEBUG):
        s.chat([Message.user("Hi")])
        with pytest.raises(LLMStreamError) as info:
            s.chat([Message.user("Hi")])
    err = info.value
    for text in (str(err), repr(err), err.message, str(err.body), repr(vars(err))):
        assert KEY not in text
    assert "***" in str(err)
    assert caplog.records, "expected DEBUG records"
    for record in caplog.records:
        assert KEY not in record.getMessage()
    for req in server.requests:
        assert KEY not in req.path


def test_credentials_dropped_on_cross_origin_redirect(flavor: str) -> None:
    """On 301/302/303/307/308 to another port, the credential header is not sent there."""
    header = PROVIDERS[flavor][1]
    with FakeLLMServer() as first, FakeLLMServer() as second:
        for status in (301, 302, 303, 307, 308):
            target = second.base_url(flavor) + ("/chat/completions" if flavor == "openai" else "/v1/messages")
            first.add(Reply(status=status, headers={"location": target}, body=""))
            second.add(Reply(text="moved"))
            assert make(first.base_url(flavor), flavor).chat([Message.user("Hi")]).text == "moved"
            assert KEY in first.requests[-1].headers[header]
            assert header not in second.requests[-1].headers
            assert second.requests[-1].json["messages"]  # the body followed the redirect


def test_credentials_kept_on_same_origin_redirect(server: FakeLLMServer, flavor: str) -> None:
    """A redirect within the same origin keeps the key."""
    header = PROVIDERS[flavor][1]
    target = server.base_url(flavor) + ("/chat/completions" if flavor == "openai" else "/v1/messages")
    server.add(Reply(status=307, headers={"location": target}, body=""), Reply(text="same"))
    assert make(server.base_url(flavor), flavor).chat([Message.user("Hi")]).text == "same"
    assert KEY in server.requests[-1].headers[header]


def test_custom_credential_headers_dropped_too(flavor: str) -> None:
    """A user's own api-key / x-goog-api-key headers are dropped on a cross-origin redirect as well."""
    with FakeLLMServer() as first, FakeLLMServer() as second:
        target = second.base_url(flavor) + ("/chat/completions" if flavor == "openai" else "/v1/messages")
        first.add(Reply(status=302, headers={"location": target}, body=""))
        s = make(first.base_url(flavor), flavor, headers={"api-key": KEY, "x-goog-api-key": KEY, "x-trace": "t"})
        s.chat([Message.user("Hi")])
        sent = second.requests[-1].headers
        assert "api-key" not in sent and "x-goog-api-key" not in sent and sent["x-trace"] == "t"


def test_redirect_loop_is_bounded(server: FakeLLMServer, flavor: str) -> None:
    """A redirect loop ends in a clear error after a few hops."""
    from llmstreamer import APIConnectionError

    target = server.base_url(flavor) + ("/chat/completions" if flavor == "openai" else "/v1/messages")
    server.default = Reply(status=307, headers={"location": target}, body="")
    with pytest.raises(APIConnectionError, match="redirects"):
        make(server.base_url(flavor), flavor).chat([Message.user("Hi")])
    assert len(server.requests) == 6
