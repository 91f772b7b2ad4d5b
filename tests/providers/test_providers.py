"""One behaviour suite for every HTTP provider: text, thinking, usage, finish reasons, errors,
truncation, cancellation and the request body, each against that provider's own wire format."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import llmstreamer
from llmstreamer import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    LLMStreamError,
    Message,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamCancelled,
    ToolCall,
    Usage,
)
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply
from llmstreamer.testing._wire import render

from ..conftest import Recorder, wait_until

SYSTEM = "Answer briefly."
TEXT = ["Héllo", " wörld", " 🎉", " done."]


def _chat_completions(max_field: str) -> Callable[[RecordedRequest], dict[str, Any]]:
    def read(req: RecordedRequest) -> dict[str, Any]:
        body = req.json
        return {
            "model": body["model"],
            "system": body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else None,
            "temperature": body.get("temperature"),
            "max_tokens": body.get(max_field),
            "stop": body.get("stop"),
        }

    return read


def _anthropic(req: RecordedRequest) -> dict[str, Any]:
    body = req.json
    return {"model": body["model"], "system": body.get("system"), "temperature": body.get("temperature"), "max_tokens": body.get("max_tokens"), "stop": body.get("stop_sequences")}


def _gemini(req: RecordedRequest) -> dict[str, Any]:
    body, config = req.json, req.json.get("generationConfig", {})
    model = req.path.split("/models/", 1)[1].split(":", 1)[0]
    system = body.get("systemInstruction", {}).get("parts", [{}])[0].get("text")
    return {"model": model, "system": system, "temperature": config.get("temperature"), "max_tokens": config.get("maxOutputTokens"), "stop": config.get("stopSequences")}


def _ollama(req: RecordedRequest) -> dict[str, Any]:
    body, options = req.json, req.json.get("options", {})
    system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else None
    return {"model": body["model"], "system": system, "temperature": options.get("temperature"), "max_tokens": options.get("num_predict"), "stop": options.get("stop")}


# name -> (how the request carries model/system/options, the finish reasons its wire can express)
ALL_FINISH = ("stop", "length", "tool_calls", "content_filter")
PROVIDERS: dict[str, tuple[Callable[[RecordedRequest], dict[str, Any]], tuple[str, ...]]] = {
    "openai": (_chat_completions("max_tokens"), ALL_FINISH),  # a base URL not api.openai.com
    "anthropic": (_anthropic, ALL_FINISH),
    "gemini": (_gemini, ALL_FINISH),
    "mistral": (_chat_completions("max_tokens"), ("stop", "length", "tool_calls")),
    "ollama": (_ollama, ("stop", "length", "tool_calls")),
    "openrouter": (_chat_completions("max_tokens"), ALL_FINISH),
    "deepseek": (_chat_completions("max_tokens"), ALL_FINISH),
    "groq": (_chat_completions("max_tokens"), ALL_FINISH),
    "llamacpp": (_chat_completions("max_tokens"), ALL_FINISH),
    # pixigpt does not stream: its preset's one-JSON-answer rounds are pinned in test_pixigpt_chat.py
}
# the terminal event a truncation error names, where it is not Chat Completions' ``data: [DONE]``
TERMINAL = {"anthropic": "message_stop", "gemini": "finishReason", "ollama": '"done": true'}


@pytest.fixture(params=sorted(PROVIDERS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(server: FakeLLMServer, name: str, **kw: Any) -> HTTPStreamer:
    kw.setdefault("retry", 0)
    return llmstreamer.streamer(f"{name}:test-model", api_key="sk-provider-suite", base_url=server.base_url(name), **kw)  # type: ignore[return-value]


def events_until(name: str, reply: Reply, marker: str) -> int:
    """How many wire events the fake server sends up to and including the first holding ``marker``."""
    path = f"/{name}/v1/models/test-model:streamGenerateContent"  # the first segment picks the flavor
    request = RecordedRequest("POST", path, {}, b'{"model": "test-model", "stream_options": {"include_usage": true}}')
    events = render(name, reply, request).events
    return next(i for i, e in enumerate(events) if marker in e) + 1


@pytest.mark.parametrize("writes", ["whole", "event", "byte"])
def test_exact_text(server: FakeLLMServer, name: str, writes: str) -> None:
    """The text arrives exactly, fragment by fragment, written whole, per event or one byte at a time."""
    server.add(Reply(text=TEXT, writes=writes, usage=None))
    rec = Recorder()
    make(server, name).stream_chat([Message.user("Hi")], rec).wait(10)
    assert [c for c in rec.calls if c[0] != "usage"] == [*(("content", t) for t in TEXT), ("finish", "".join(TEXT))]


def test_thinking_is_kept_apart(server: FakeLLMServer, name: str) -> None:
    """Thinking reaches on_thinking and Response.thinking, never the text, and comes first."""
    server.add(Reply(thinking=["Let me", " think."], text=["Answer."]))
    rec = Recorder()
    make(server, name).stream_chat([Message.user("Hi")], rec).wait(10)
    kinds = [c[0] for c in rec.calls if c[0] in ("thinking", "content")]
    assert kinds == ["thinking", "thinking", "content"]
    assert rec.response is not None and rec.response.text == "Answer." and rec.response.thinking == "Let me think."


def test_usage(server: FakeLLMServer, name: str) -> None:
    """The provider's token counts reach on_usage and Response.usage."""
    server.add(Reply(text="ok", usage=Usage(input_tokens=12, output_tokens=7)))
    rec = Recorder()
    make(server, name).stream_chat([Message.user("Hi")], rec).wait(10)
    assert ("usage", 12, 7) in rec.calls
    assert rec.response is not None and rec.response.usage is not None
    assert (rec.response.usage.input_tokens, rec.response.usage.output_tokens) == (12, 7)


@pytest.mark.parametrize(("provider", "reason"), [(p, r) for p, (_, reasons) in sorted(PROVIDERS.items()) for r in reasons])
def test_finish_reasons(server: FakeLLMServer, provider: str, reason: str) -> None:
    """Each finish reason the provider's wire can express comes out normalized."""
    calls = [ToolCall("call_1", "lookup", {"q": "x"})] if reason == "tool_calls" else []
    server.add(Reply(text="t", finish_reason=reason, tool_calls=calls))
    assert make(server, provider).chat([Message.user("Hi")]).finish_reason == reason


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError), (429, RateLimitError), (500, ServerError), (503, ServerError)],
)
def test_status_errors(server: FakeLLMServer, name: str, status: int, cls: type) -> None:
    """Error statuses end in the class errors.py gives each status, with the status and a body excerpt."""
    server.add(Reply(status=status))
    with pytest.raises(cls) as info:
        make(server, name).chat([Message.user("Hi")])
    assert isinstance(info.value, APIStatusError) and info.value.status_code == status and info.value.body


def test_in_band_error(server: FakeLLMServer, name: str) -> None:
    """An error event inside the stream ends in an LLMStreamError, with the text so far kept."""
    server.add(Reply(text=["so", " far"], error={"type": "rate_limit_error", "message": "rate limit exceeded"}))
    with pytest.raises(LLMStreamError) as info:
        make(server, name).chat([Message.user("Hi")])
    assert "rate limit" in str(info.value).lower()
    assert info.value.partial is not None and info.value.partial.text == "so far"


def test_truncation(server: FakeLLMServer, name: str) -> None:
    """A body that ends before the provider's terminal event is IncompleteStreamError naming that
    event, with the partial text."""
    server.add(Reply(text=["cut", " off"], truncate=True))
    with pytest.raises(IncompleteStreamError) as info:
        make(server, name).chat([Message.user("Hi")])
    assert info.value.partial is not None and info.value.partial.text == "cut off"
    assert TERMINAL.get(name, "[DONE]") in str(info.value)


def test_cancellation(server: FakeLLMServer, name: str) -> None:
    """cancel() on a stalled stream ends it with StreamCancelled, keeping what arrived."""
    reply = Reply(text=["first", " second"])
    server.add(reply.evolve(stall_after=events_until(name, reply, "first")))
    rec = Recorder()
    handle = make(server, name).stream_chat([Message.user("Hi")], rec)
    assert wait_until(lambda: ("content", "first") in rec.calls)
    handle.cancel()
    assert handle.wait(5)
    assert isinstance(rec.error, StreamCancelled) and rec.error.partial is not None and rec.error.partial.text == "first"
    assert server.wait_for(lambda: server.open_connections == 0, timeout=2)


def test_request_body(server: FakeLLMServer, name: str) -> None:
    """The model, the system prompt and the options arrive where this provider expects them."""
    make(server, name).chat([Message.user("Hi")], system=SYSTEM, temperature=0.3, max_tokens=77, stop=["END"])
    seen = PROVIDERS[name][0](server.requests[-1])
    assert seen == {"model": "test-model", "system": SYSTEM, "temperature": 0.3, "max_tokens": 77, "stop": ["END"]}
