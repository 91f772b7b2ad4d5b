"""llmock (a chaos mock of the OpenAI, Anthropic, Gemini and Mistral wires) through the public API:
every scripted scenario on every wire, each asserted on the whole list of callbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

import llmstreamer
from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    Message,
    RateLimitError,
    RetryPolicy,
    StreamError,
    Timeout,
    Tool,
)

from ..conftest import Recorder
from .servers import ServerProcess

# wire -> (model spec, base path on llmock, SSE events llmock sends before the first text piece)
WIRES = {
    "openai": ("openai:gpt-4o-mini", "/v1", 1),  # the role chunk
    "anthropic": ("anthropic:claude-sonnet-4-5", "/anthropic", 3),  # message_start, content_block_start, ping
    "gemini": ("gemini:gemini-2.0-flash", "/gemini", 0),
    "mistral": ("mistral:mistral-small-latest", "/mistral/v1", 1),
}
ALL = pytest.mark.parametrize("wire", sorted(WIRES))

TEXT = "one two three four five six"  # llmock streams it word by word
PIECES = ["one ", "two ", "three ", "four ", "five ", "six"]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _streamer(llmock: ServerProcess, wire: str, **kwargs: Any) -> llmstreamer.Streamer:
    spec, path, _ = WIRES[wire]
    kwargs.setdefault("timeout", Timeout(connect=5, read=5))
    return llmstreamer.streamer(spec, base_url=llmock.url + path, api_key="interop-key", **kwargs)


def _run(llmock: ServerProcess, wire: str, recorder: Recorder, *, streamer: Any = None, **options: Any) -> Recorder:
    s = streamer or _streamer(llmock, wire)
    handle = s.stream_chat([Message.user("What is the weather in Paris?")], recorder, **options)
    assert handle.wait(30), "the stream did not end"
    return recorder


def _cut(wire: str, pieces: int = 2) -> int:
    """The ``after_chunks`` of a fault that lands after ``pieces`` text pieces on ``wire``."""
    return WIRES[wire][2] + pieces


def _usage(wire: str, words: int) -> list[tuple[Any, ...]]:
    # llmock counts a token per four characters; its Mistral wire sends usage only when asked with
    # stream_options, which Mistral's API does not take (so llmstreamer never sends it)
    return [] if wire == "mistral" else [("usage", 7, words)]  # the question is 7 tokens


@ALL
def test_text(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A scripted answer arrives piece by piece, in order, and finishes with stop."""
    scenario({"type": "reply", "text": TEXT})
    _run(llmock, wire, recorder)
    assert recorder.calls == [("content", p) for p in PIECES] + _usage(wire, 6) + [("finish", TEXT)]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"


@ALL
def test_tool_calls_for_the_caller(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """Scripted calls of a declaration-only tool end the stream with the calls, in the wire's order, and tool_calls."""
    calls = [{"name": "get_weather", "arguments": {"city": city}} for city in ("Paris", "Rome")]
    scenario({"type": "reply", "tool_calls": calls})
    _run(llmock, wire, recorder, tools=[Tool("get_weather", "Weather of a city.", WEATHER)])
    assert recorder.calls == [
        ("tool_call", "get_weather"),
        ("tool_call", "get_weather"),
        *_usage(wire, 8),
        ("finish", ""),
    ]
    response = recorder.response
    assert response is not None and response.finish_reason == "tool_calls"
    made = [(c.name, c.arguments, c.error) for c in response.tool_calls]
    assert made == [("get_weather", {"city": "Paris"}, None), ("get_weather", {"city": "Rome"}, None)]
    assert len({c.id for c in response.tool_calls}) == 2


def _weather_tool(ran: list[str]) -> Tool:
    def get_weather(city: str) -> str:
        ran.append(city)
        return "sunny"

    return Tool("get_weather", "Weather of a city.", WEATHER, fn=get_weather)


def _last_request(llmock: ServerProcess) -> str:
    """The body of the last request llmock served, as JSON text."""
    records = requests.get(llmock.url + "/_llmock/requests", timeout=10).json()["requests"]
    return json.dumps(records[-1]["body"])


def _rounds(recorder: Recorder) -> list[tuple[Any, ...]]:
    """The callbacks without usage: llmock's token estimate of a conversation depends on each
    wire's request shape (usage is pinned by the single-round tests)."""
    return [call for call in recorder.calls if call[0] != "usage"]


@ALL
def test_tool_loop(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """The model's tool call runs, its result goes back in the wire's shape, and the model answers."""
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    scenario({"type": "reply", "tool_calls": [call]}, {"type": "reply", "text": "Sunny."})
    ran: list[str] = []
    _run(llmock, wire, recorder, tools=[_weather_tool(ran)])
    assert _rounds(recorder) == [
        ("tool_call", "get_weather"),
        ("tool_result", "get_weather", "sunny"),
        ("content", "Sunny."),
        ("finish", "Sunny."),
    ]
    assert ran == ["Paris"]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"
    sent = _last_request(llmock)
    made = recorder.response.tool_calls[0]
    # Gemini's wire has no call ids (llmstreamer makes them up): there the name links call and result
    assert "sunny" in sent and (made.name if wire == "gemini" else made.id) in sent


@ALL
def test_unknown_tool(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A call of a tool that was never offered runs nothing: the model gets an error result and answers."""
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    scenario(
        {"type": "reply", "tool_calls": [call]},
        {"type": "tool_fault", "kind": "unknown_tool"},
        {"type": "reply", "text": "Sorry."},
    )
    ran: list[str] = []
    _run(llmock, wire, recorder, tools=[_weather_tool(ran)])
    error = "error: unknown tool 'llmock_unknown_tool'; available tools: get_weather"
    assert _rounds(recorder) == [
        ("tool_call", "llmock_unknown_tool"),
        ("tool_result", "llmock_unknown_tool", error),
        ("content", "Sorry."),
        ("finish", "Sorry."),
    ]
    assert ran == []


@ALL
def test_malformed_tool_arguments(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A call whose arguments are not JSON (or, on Gemini, lack a required one) is not run: the model gets an error result."""
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    scenario(
        {"type": "reply", "tool_calls": [call]},
        {"type": "tool_fault", "kind": "malformed_arguments"},
        {"type": "reply", "text": "Sorry."},
    )
    ran: list[str] = []
    _run(llmock, wire, recorder, tools=[_weather_tool(ran)])
    # llmock cuts the JSON text in half; Gemini sends arguments as an object, so there it sends {}
    error = (
        "error: bad arguments for 'get_weather': missing a required argument: 'city'"
        if wire == "gemini"
        else "error: the arguments are not valid JSON (Expecting value: line 1 column 9 (char 8))"
    )
    assert _rounds(recorder) == [
        ("tool_call", "get_weather"),
        ("tool_result", "get_weather", error),
        ("content", "Sorry."),
        ("finish", "Sorry."),
    ]
    assert ran == []


@ALL
def test_tool_call_cut_by_the_token_limit(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A tool call cut off by the token limit finishes with length, carries its error and is never run."""
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    # OpenAI and Mistral: finish_reason length mid-arguments; Anthropic: stop_reason max_tokens with an
    # unterminated input_json_delta; Gemini: MAX_TOKENS (its calls arrive whole, here with no arguments)
    scenario(
        {"type": "reply", "tool_calls": [call], "finish_reason": "length"},
        {"type": "tool_fault", "kind": "malformed_arguments"},
        {"type": "reply", "text": "unused"},
    )
    ran: list[str] = []
    _run(llmock, wire, recorder, tools=[_weather_tool(ran)])
    assert recorder.calls == [("tool_call", "get_weather"), *_usage(wire, 2), ("finish", "")]
    response = recorder.response
    assert response is not None and response.finish_reason == "length"
    assert ran == []
    if wire != "gemini":
        assert [c.error is not None for c in response.tool_calls] == [True]


@ALL
def test_truncated_stream(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A stream that ends cleanly but early, with no finish, is IncompleteStreamError with the partial text."""
    scenario({"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "truncate", "after_chunks": _cut(wire)})
    _run(llmock, wire, recorder)
    assert recorder.calls == [("content", "one "), ("content", "two "), ("error", "IncompleteStreamError")]
    assert isinstance(recorder.error, IncompleteStreamError)
    assert recorder.error.partial is not None and recorder.error.partial.text == "one two "


@ALL
def test_disconnect(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A connection dropped mid-stream is APIConnectionError with the partial text, never retried."""
    scenario(
        {"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "disconnect", "after_chunks": _cut(wire)}
    )
    _run(llmock, wire, recorder)
    assert recorder.calls == [("content", "one "), ("content", "two "), ("error", "APIConnectionError")]
    assert isinstance(recorder.error, APIConnectionError)
    assert recorder.error.partial is not None and recorder.error.partial.text == "one two "


@ALL
def test_disconnect_before_any_output_is_retried(
    llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str
) -> None:
    """A connection dropped before anything reached a callback is retried, and the retry's answer is whole."""
    scenario(
        {"type": "reply", "text": TEXT, "times": 2}, {"type": "stream_fault", "kind": "disconnect", "after_chunks": 0}
    )
    s = _streamer(llmock, wire, retry=RetryPolicy(retries=1, initial_delay=0.05, jitter=0))
    _run(llmock, wire, recorder, streamer=s)
    expected = [("retry", "APIConnectionError", 1)] + [("content", p) for p in PIECES] + _usage(wire, 6)
    assert recorder.calls == [*expected, ("finish", TEXT)]


@ALL
def test_malformed_chunk(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A chunk that is not JSON ends the stream with StreamError and the partial text."""
    scenario({"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "malformed", "after_chunks": _cut(wire)})
    _run(llmock, wire, recorder)
    assert recorder.calls == [("content", "one "), ("content", "two "), ("error", "StreamError")]
    assert type(recorder.error) is StreamError
    assert recorder.error.partial is not None and recorder.error.partial.text == "one two "


@ALL
def test_short_stall(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A pause shorter than the read timeout is waited out and the answer completes."""
    fault = {"type": "stream_fault", "kind": "stall", "after_chunks": _cut(wire), "stall_seconds": 0.3}
    scenario({"type": "reply", "text": TEXT}, fault)
    _run(llmock, wire, recorder)
    assert recorder.calls == [("content", p) for p in PIECES] + _usage(wire, 6) + [("finish", TEXT)]


@ALL
def test_long_stall(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A pause longer than the read timeout is APITimeoutError with the partial text, not a hang."""
    fault = {"type": "stream_fault", "kind": "stall", "after_chunks": _cut(wire), "stall_seconds": 5}
    scenario({"type": "reply", "text": TEXT}, fault)
    _run(llmock, wire, recorder, streamer=_streamer(llmock, wire, timeout=Timeout(connect=5, read=0.5)))
    assert recorder.calls == [("content", "one "), ("content", "two "), ("error", "APITimeoutError")]
    assert isinstance(recorder.error, APITimeoutError)
    assert recorder.error.partial is not None and recorder.error.partial.text == "one two "


@ALL
@pytest.mark.parametrize(("status", "error"), [(429, "RateLimitError"), (529, "OverloadedError")])
def test_retry_after(
    llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str, status: int, error: str
) -> None:
    """A 429 or 529 with retry-after is retried after exactly the server's delay, then the answer streams."""
    scenario({"type": "fail", "status": status, "retry_after": 0.2}, {"type": "reply", "text": TEXT})
    delays: list[float] = []
    recorder_retry = recorder.on_retry

    def on_retry(err: Any, attempt: int, delay: float) -> None:
        delays.append(delay)
        recorder_retry(err, attempt, delay)

    recorder.on_retry = on_retry  # type: ignore[method-assign]
    _run(llmock, wire, recorder)
    assert recorder.calls == [("retry", error, 1)] + [("content", p) for p in PIECES] + _usage(wire, 6) + [
        ("finish", TEXT)
    ]
    assert delays == [0.2]


@ALL
def test_rate_limit_outlasts_the_retries(llmock: ServerProcess, scenario: Any, recorder: Recorder, wire: str) -> None:
    """A 429 that outlasts the retries ends in RateLimitError with the status and the server's retry-after."""
    scenario({"type": "fail", "status": 429, "retry_after": 0.1, "times": 3})
    _run(llmock, wire, recorder)
    assert recorder.calls == [
        ("retry", "RateLimitError", 1),
        ("retry", "RateLimitError", 2),
        ("error", "RateLimitError"),
    ]
    assert isinstance(recorder.error, RateLimitError)
    assert (recorder.error.status_code, recorder.error.retry_after) == (429, 0.1)


MODELS = {
    "openai": [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4-turbo",
        "gpt-3.5-turbo",
        "gpt-image-1",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ],
    "anthropic": [
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-haiku-4-5-20251001",
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
    ],
    "gemini": ["gemini-2.5-pro", "gemini-2.0-flash", "gemini-1.5-pro", "gemini-1.5-flash"],
    "mistral": [
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "open-mistral-7b",
        "open-mixtral-8x7b",
        "open-mixtral-8x22b",
    ],
}


@ALL
def test_list_models(llmock: ServerProcess, wire: str) -> None:
    """list_models() reads each wire's model list (Gemini's ids without ``models/``)."""
    assert [m.id for m in _streamer(llmock, wire).list_models()] == MODELS[wire]
