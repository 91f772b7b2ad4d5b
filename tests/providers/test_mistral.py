"""MistralStreamer against the fake server's Mistral flavor: text, thinking pieces, whole tool calls, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmstreamer import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    Message,
    MistralStreamer,
    Model,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    StreamError,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    Usage,
)
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing._wire import sse
from llmstreamer.testing._wire_compat import chunk

from ..conftest import Recorder

HI = [Message.user("Hi")]


def make(server: FakeLLMServer, **kw: Any) -> MistralStreamer:
    return MistralStreamer(api_key="test-key", base_url=server.base_url("mistral"), **kw)


def raw(*deltas: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> list[str]:
    """Mistral-shaped events: a role chunk, one chunk per delta, a finish chunk, [DONE]."""
    model = "mistral-small-latest"
    extra = {"usage": usage} if usage else {}
    return [
        chunk(model, {"role": "assistant", "content": ""}),
        *(chunk(model, d) for d in deltas),
        chunk(model, {"content": ""}, finish, **extra),
        sse("[DONE]"),
    ]


def test_thinking_pieces_are_kept_apart_from_text(server: FakeLLMServer, recorder: Recorder) -> None:
    """Typed content pieces: thinking pieces go to on_thinking, text pieces to on_content."""
    server.add(Reply(thinking=["Let", " me think."], text=["It is", " 4."]))
    make(server, model="magistral-medium-latest").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [
        ("thinking", "Let"),
        ("thinking", " me think."),
        ("content", "It is"),
        ("content", " 4."),
        ("usage", 10, 2),
        ("finish", "It is 4."),
    ]
    response = recorder.response
    assert response is not None
    assert (response.thinking, response.text) == ("Let me think.", "It is 4.")
    assert response.message.content == (ThinkingPart("Let me think."), TextPart("It is 4."))


def test_unknown_content_pieces_are_ignored(server: FakeLLMServer) -> None:
    """Content pieces of other types (references) are skipped; a plain string thinking is read too."""
    server.add(
        Reply(
            events=raw(
                {"content": [{"type": "thinking", "thinking": "hmm"}]},
                {"content": [{"type": "reference", "reference_ids": [1]}, {"type": "text", "text": "Yes."}]},
            )
        )
    )
    response = make(server).chat(HI)
    assert (response.thinking, response.text) == ("hmm", "Yes.")


def test_usage_comes_from_the_last_chunk_without_stream_options(server: FakeLLMServer) -> None:
    """Usage rides on the finish chunk; stream_options, which Mistral does not take, is never sent."""
    server.add(Reply(text="Hi there", usage=Usage(input_tokens=12, output_tokens=5)))
    response = make(server).chat(HI)
    assert response.usage == Usage(input_tokens=12, output_tokens=5, total_tokens=17)
    assert "stream_options" not in server.requests[0].json


@pytest.mark.parametrize(
    ("wire", "normalized"),
    [("stop", "stop"), ("length", "length"), ("model_length", "length"), ("error", "error")],
)
def test_finish_reasons_are_normalized(server: FakeLLMServer, wire: str, normalized: str) -> None:
    """Mistral's finish reasons, model_length and error included, map to the normalized ones."""
    server.add(Reply(text="Some text", finish_reason=wire))
    assert make(server).chat(HI).finish_reason == normalized


def test_whole_tool_calls_without_index_become_tool_calls(server: FakeLLMServer, recorder: Recorder) -> None:
    """Whole tool calls without an index (several in one delta) become separate ToolCall values."""
    calls = [ToolCall("gSIMJiOkT", "get_weather", {"city": "Paris"}), ToolCall("x9Y8z7W6v", "get_time", {"tz": "CET"})]
    server.add(Reply(text="", tool_calls=calls, finish_reason="tool_calls"))
    make(server).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("tool_call", "get_weather"), ("tool_call", "get_time"), ("usage", 10, 1), ("finish", "")]
    response = recorder.response
    assert response is not None and response.finish_reason == "tool_calls"
    assert response.tool_calls == (
        ToolCall("gSIMJiOkT", "get_weather", {"city": "Paris"}, '{"city": "Paris"}'),
        ToolCall("x9Y8z7W6v", "get_time", {"tz": "CET"}, '{"tz": "CET"}'),
    )
    assert response.message.tool_calls == response.tool_calls


def test_whole_tool_calls_in_separate_chunks_stay_separate(server: FakeLLMServer) -> None:
    """Whole calls without an index that arrive in two chunks are two calls, not one merged call."""
    first = {"tool_calls": [{"id": "aaaaaaaaa", "function": {"name": "one", "arguments": '{"a": 1}'}}]}
    second = {"tool_calls": [{"id": "bbbbbbbbb", "function": {"name": "two", "arguments": '{"b": 2}'}}]}
    server.add(Reply(events=raw(first, second, finish="tool_calls")))
    response = make(server).chat(HI)
    assert [(c.id, c.name, dict(c.arguments)) for c in response.tool_calls] == [
        ("aaaaaaaaa", "one", {"a": 1}),
        ("bbbbbbbbb", "two", {"b": 2}),
    ]


@pytest.mark.parametrize("indexed", [True, False])
def test_streamed_tool_call_fragments_keep_the_first_name(server: FakeLLMServer, indexed: bool) -> None:
    """Incremental fragments with "name": "" continue the call and never overwrite its name."""
    index = {"index": 0} if indexed else {}
    deltas = [
        {"tool_calls": [{**index, "id": "ccccccccc", "function": {"name": "search", "arguments": '{"q": '}}]},
        {"tool_calls": [{**index, "id": "null", "function": {"name": "", "arguments": '"cats"'}}]},
        {"tool_calls": [{**index, "function": {"name": "", "arguments": "}"}}]},
    ]
    server.add(Reply(events=raw(*deltas, finish="tool_calls")))
    response = make(server).chat(HI)
    assert response.tool_calls == (ToolCall("ccccccccc", "search", {"q": "cats"}, '{"q": "cats"}'),)


@pytest.mark.parametrize(
    ("status", "error_class", "message"),
    [
        (400, BadRequestError, "Invalid request."),
        (401, AuthenticationError, "Unauthorized"),
        (403, PermissionDeniedError, "Forbidden"),
        (404, NotFoundError, "Invalid model: no-such-model"),
        (413, RequestTooLargeError, "Request too large."),
        (422, BadRequestError, "Field required"),
        (429, RateLimitError, "Requests rate limit exceeded"),
        (500, ServerError, "Internal server error"),
        (503, ServerError, "Service unavailable"),
    ],
)
def test_status_errors_map_to_the_error_tree(
    server: FakeLLMServer, recorder: Recorder, status: int, error_class: type[APIStatusError], message: str
) -> None:
    """Mistral's error bodies, terse 401 and nested 422 included, map to the classes errors.py gives their statuses."""
    server.add(Reply(status=status, headers={"retry-after": "3"} if status == 429 else {}))
    make(server, retry=0).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("error", error_class.__name__)]
    error = recorder.error
    assert isinstance(error, error_class) and error.status_code == status
    assert message in error.message
    assert error.provider == "mistral"
    if status == 429:
        assert isinstance(error, RateLimitError) and error.retry_after == 3.0


def test_in_band_error_keeps_the_partial_answer(server: FakeLLMServer, recorder: Recorder) -> None:
    """An {"object": "error"} event mid-stream ends in its mapped error, with the text so far as partial."""
    server.add(Reply(text=["Half", " done"], error={"type": "service_unavailable", "message": "Try later"}))
    make(server).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Half"), ("content", " done"), ("error", "ServerError")]
    error = recorder.error
    assert isinstance(error, ServerError) and error.status_code == 503 and error.message == "Try later"
    assert error.partial is not None and error.partial.text == "Half done" and error.partial.finish_reason == "error"


def test_in_band_error_of_unknown_type_is_a_stream_error(server: FakeLLMServer) -> None:
    """An in-band error whose type maps to no status is a StreamError naming the type."""
    server.add(Reply(text="x", error={"type": "weird_failure", "message": "odd"}))
    with pytest.raises(StreamError, match="weird_failure: odd"):
        make(server).chat(HI)


def test_request_body_carries_model_system_and_options(server: FakeLLMServer) -> None:
    """Model, system prompt and options go where Mistral expects them: max_tokens, random_seed, stop."""
    make(server, model="mistral-large-latest").chat(
        HI, system="Be brief.", temperature=0.3, top_p=0.9, max_tokens=50, stop=["END"], seed=42
    )
    request = server.requests[0]
    assert request.path == "/mistral/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.json == {
        "model": "mistral-large-latest",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["END"],
        "random_seed": 42,
    }


def test_history_with_tool_calls_and_results_goes_back_on_the_wire(server: FakeLLMServer) -> None:
    """An assistant tool call and its result are sent back; tool messages carry the tool's name."""
    call = ToolCall("gSIMJiOkT", "get_weather", {"city": "Paris"}, '{"city": "Paris"}')
    history = [
        Message.user("Weather?"),
        Message.assistant(thinking=[ThinkingPart("hidden")], tool_calls=[call]),
        Message.tool([ToolResult("gSIMJiOkT", "get_weather", "sunny")]),
    ]
    make(server).chat(history)
    assert server.requests[0].json["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "gSIMJiOkT", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "gSIMJiOkT", "content": "sunny", "name": "get_weather"},
    ]


def test_unsupported_option_fails_before_any_request(server: FakeLLMServer) -> None:
    """An option Mistral cannot honour raises ConfigurationError and sends nothing."""
    with pytest.raises(ConfigurationError, match="top_k"):
        make(server).stream_chat(HI, top_k=5)
    assert server.requests == []


def test_list_models_reads_the_models_endpoint(server: FakeLLMServer) -> None:
    """list_models() reads GET /models into Model values."""
    assert make(server).list_models() == [
        Model("mistral-small-latest", "mistral", 1731000000, "mistralai"),
        Model("magistral-medium-latest", "mistral", 1749000000, "mistralai"),
    ]
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/mistral/v1/models")


def test_key_comes_from_the_environment_and_never_shows(monkeypatch: pytest.MonkeyPatch, server: FakeLLMServer) -> None:
    """The key is read from MISTRAL_API_KEY, sent as a bearer token, and absent from the repr."""
    monkeypatch.setenv("MISTRAL_API_KEY", "env-secret-123")
    streamer = MistralStreamer(base_url=server.base_url("mistral"))
    assert streamer.model == "mistral-small-latest"
    assert "env-secret-123" not in repr(streamer)
    streamer.chat(HI)
    assert server.requests[0].headers["authorization"] == "Bearer env-secret-123"


def test_missing_key_names_the_variable() -> None:
    """Without a key the constructor fails, naming MISTRAL_API_KEY."""
    with pytest.raises(ConfigurationError, match="MISTRAL_API_KEY"):
        MistralStreamer()


def test_error_body_of_a_200_json_response_is_an_error(server: FakeLLMServer) -> None:
    """A 200 whose body is a JSON error object is reported as that error, not as an empty stream."""
    body = {"object": "error", "message": "Invalid model", "type": "invalid_request_error", "param": None, "code": None}
    server.add(Reply(body=json.dumps(body), content_type="application/json"))
    with pytest.raises(BadRequestError, match="Invalid model"):
        make(server, retry=0).chat(HI)
