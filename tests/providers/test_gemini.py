"""GeminiStreamer against the fake server's Gemini flavor: text, thinking, tools, usage, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from llmstreamer import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    GeminiStreamer,
    ImagePart,
    Message,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    Usage,
)
from llmstreamer.testing import FakeLLMServer, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
KEY = "gm-test-key-123"


def make(server: FakeLLMServer, **kwargs: Any) -> GeminiStreamer:
    """A streamer pointed at the fake server, with no retries unless asked."""
    kwargs.setdefault("retry", 0)
    return GeminiStreamer(model="gemini-2.5-flash", api_key=KEY, base_url=server.base_url("gemini"), **kwargs)


def data(obj: dict[str, Any]) -> str:
    """One Gemini SSE event, framed with CRLF as Gemini sends it."""
    return f"data: {json.dumps(obj)}\r\n\r\n"


def chunk(parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None) -> str:
    """A GenerateContentResponse event with one candidate."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    obj: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}
    if usage is not None:
        obj["usageMetadata"] = usage
    return data(obj)


def run(streamer: GeminiStreamer, recorder: Any, messages: Any = None, **options: Any) -> None:
    """Stream and wait (bounded) for the terminal callback."""
    handle = streamer.stream_chat(messages or [Message.user("Hi")], recorder, **options)
    assert handle.wait(10)


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("writes", ["whole", "event", "byte"])
@pytest.mark.parametrize("transfer", ["chunked", "close"])
def test_text_arrives_exactly(server: FakeLLMServer, recorder: Any, writes: str, transfer: str) -> None:
    """Text streams exactly, fragment by fragment, however the bytes are written."""
    server.add(Reply(text=["Héllo", " wörld ", "👋🏽", "!"], writes=writes, transfer=transfer))
    run(make(server), recorder)
    assert recorder.calls == [
        ("content", "Héllo"),
        ("content", " wörld "),
        ("content", "👋🏽"),
        ("content", "!"),
        ("usage", 10, 4),
        ("finish", "Héllo wörld 👋🏽!"),
    ]
    assert recorder.response.finish_reason == "stop"
    assert recorder.response.model == "gemini-2.5-flash"
    assert recorder.response.request_id == "fake-response-id"


def test_fake_server_frames_events_with_crlf(server: FakeLLMServer) -> None:
    """The Gemini flavor ends every SSE line with CRLF and sends no terminator."""
    server.add(Reply(text="Hi there"))
    resp = requests.post(
        server.base_url("gemini") + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json={"contents": []},
        timeout=5,
    )
    body = resp.content
    assert resp.headers["content-type"] == "text/event-stream"
    assert body.startswith(b"data: {") and body.endswith(b"\r\n\r\n")
    assert body.count(b"\r\n\r\n") == 3 and body.replace(b"\r\n", b"").count(b"\n") == 0
    assert b"[DONE]" not in body
    assert json.loads(body.split(b"\r\n\r\n")[-2][6:])["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("line_ending", ["\n", "\r"])
def test_other_line_endings_parse_the_same(server: FakeLLMServer, recorder: Any, line_ending: str) -> None:
    """LF and CR line endings give the same callbacks as Gemini's CRLF."""
    server.add(Reply(text="One two", line_ending=line_ending, writes="byte"))
    run(make(server), recorder)
    assert recorder.calls == [("content", "One"), ("content", " two"), ("usage", 10, 2), ("finish", "One two")]


def test_final_text_may_share_the_finish_event(server: FakeLLMServer, recorder: Any) -> None:
    """Text in the event that carries finishReason is delivered before the finish."""
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    server.add(Reply(events=[chunk([{"text": "Hello"}]), chunk([{"text": " you"}], "STOP", usage)]))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Hello"), ("content", " you"), ("usage", 3, 2), ("finish", "Hello you")]


# --- thinking and signatures -----------------------------------------------------------------


def test_thinking_is_kept_apart_and_signed(server: FakeLLMServer, recorder: Any) -> None:
    """Thought parts go to on_thinking, and the signature riding on the next part signs them."""
    server.add(Reply(thinking="Let me think.", text="Answer.", signature="c2lnbmF0dXJl", usage=Usage(10, 30, 0, 20)))
    run(make(server), recorder)
    assert recorder.calls == [
        ("thinking", "Let"),
        ("thinking", " me"),
        ("thinking", " think."),
        ("content", "Answer."),
        ("usage", 10, 30),
        ("finish", "Answer."),
    ]
    response = recorder.response
    assert response.text == "Answer."
    assert response.thinking == "Let me think."
    assert response.message.content == (ThinkingPart("Let me think.", signature="c2lnbmF0dXJl"), TextPart("Answer."))
    assert response.usage == Usage(10, 30, 0, 20, 40)


def test_signature_on_a_trailing_empty_part_is_kept_after_the_text(server: FakeLLMServer, recorder: Any) -> None:
    """A signature on an empty text part after the answer (Gemini 3) becomes a ThinkingPart after it."""
    usage = {"promptTokenCount": 15, "candidatesTokenCount": 1, "totalTokenCount": 68, "thoughtsTokenCount": 52}
    server.add(
        Reply(events=[chunk([{"text": "4"}], usage=usage), chunk([{"text": "", "thoughtSignature": "EpcC"}], "STOP", usage)])
    )
    run(make(server), recorder)
    assert recorder.calls == [("content", "4"), ("usage", 15, 53), ("finish", "4")]
    assert recorder.response.message.content == (TextPart("4"), ThinkingPart("", signature="EpcC"))
    assert recorder.response.usage == Usage(15, 53, 0, 52, 68)


def test_thought_signature_on_a_thought_part_signs_it(server: FakeLLMServer, recorder: Any) -> None:
    """A thoughtSignature on the thought part itself signs that thinking block."""
    server.add(
        Reply(
            events=[
                chunk([{"text": "Hmm.", "thought": True, "thoughtSignature": "AAA"}]),
                chunk([{"text": "Yes."}], "STOP"),
            ]
        )
    )
    run(make(server), recorder)
    assert recorder.calls == [("thinking", "Hmm."), ("content", "Yes."), ("finish", "Yes.")]
    assert recorder.response.message.content == (ThinkingPart("Hmm.", signature="AAA"), TextPart("Yes."))


# --- usage -----------------------------------------------------------------------------------


def test_usage_is_cumulative_and_the_last_wins_even_after_the_finish(server: FakeLLMServer, recorder: Any) -> None:
    """usageMetadata repeats on every event; a usage-only event after finishReason is still read."""
    first = {"promptTokenCount": 7, "candidatesTokenCount": 1, "totalTokenCount": 8}
    final = {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10}
    late = {
        "promptTokenCount": 7,
        "candidatesTokenCount": 3,
        "cachedContentTokenCount": 4,
        "thoughtsTokenCount": 5,
        "toolUsePromptTokenCount": 2,
        "totalTokenCount": 17,
    }
    usage_only = data({"usageMetadata": late, "modelVersion": "gemini-2.5-flash"})
    server.add(Reply(events=[chunk([{"text": "a"}], usage=first), chunk([{"text": "b"}], "STOP", final), usage_only]))
    run(make(server), recorder)
    assert recorder.calls == [("content", "a"), ("content", "b"), ("usage", 9, 8), ("finish", "ab")]
    assert recorder.response.usage == Usage(9, 8, 4, 5, 17)
    assert recorder.response.finish_reason == "stop"


def test_no_usage_metadata_means_no_usage(server: FakeLLMServer, recorder: Any) -> None:
    """A stream without usageMetadata finishes with usage None and no on_usage call."""
    server.add(Reply(text="Hi", usage=None))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Hi"), ("finish", "Hi")]
    assert recorder.response.usage is None


# --- finish reasons --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "normalized"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("A_REASON_FROM_THE_FUTURE", "stop"),
    ],
)
def test_finish_reasons_are_normalized(server: FakeLLMServer, recorder: Any, wire: str, normalized: str) -> None:
    """Each finishReason maps to the normalized finish reason."""
    server.add(Reply(text="x", finish_reason=wire))
    run(make(server), recorder)
    assert recorder.calls == [("content", "x"), ("usage", 10, 1), ("finish", "x")]
    assert recorder.response.finish_reason == normalized


# --- tool calls ------------------------------------------------------------------------------


def test_function_calls_arrive_whole_with_their_signature(server: FakeLLMServer, recorder: Any) -> None:
    """functionCall parts become whole ToolCalls; a STOP after them is finish_reason tool_calls."""
    calls = [
        ToolCall("", "get_weather", {"city": "Paris"}, signature="fc-sig"),
        ToolCall("call-2", "get_time", {"tz": "UTC", "nested": {"a": [1, 2]}}),
    ]
    server.add(Reply(text="Checking.", tool_calls=calls, finish_reason="stop"))
    run(make(server), recorder)
    assert recorder.calls == [
        ("content", "Checking."),
        ("tool_call", "get_weather"),
        ("tool_call", "get_time"),
        ("usage", 10, 1),
        ("finish", "Checking."),
    ]
    response = recorder.response
    assert response.finish_reason == "tool_calls"
    first, second = response.tool_calls
    assert first.id and first.id != second.id
    assert (first.name, dict(first.arguments), first.signature) == ("get_weather", {"city": "Paris"}, "fc-sig")
    assert json.loads(first.raw_arguments) == {"city": "Paris"}
    assert (second.id, dict(second.arguments), second.signature) == ("call-2", {"tz": "UTC", "nested": {"a": [1, 2]}}, None)


def test_function_call_without_a_name_is_a_stream_error(server: FakeLLMServer, recorder: Any) -> None:
    """A functionCall part with no name fails the stream instead of inventing a call."""
    server.add(Reply(events=[chunk([{"functionCall": {"args": {}}}], "STOP")]))
    run(make(server), recorder)
    assert recorder.calls == [("error", "StreamError")]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, BadRequestError, "INVALID_ARGUMENT"),
        (401, AuthenticationError, "UNAUTHENTICATED"),
        (403, PermissionDeniedError, "PERMISSION_DENIED"),
        (404, NotFoundError, "NOT_FOUND"),
        (429, RateLimitError, "RESOURCE_EXHAUSTED"),
        (500, ServerError, "INTERNAL"),
        (503, ServerError, "UNAVAILABLE"),
    ],
)
def test_status_errors_map_to_classes(server: FakeLLMServer, recorder: Any, status: int, error: type, kind: str) -> None:
    """Gemini's error bodies map by status to the classes of errors.py's tree."""
    server.add(Reply(status=status))
    run(make(server), recorder)
    assert recorder.calls == [("error", error.__name__)]
    err = recorder.error
    assert type(err) is error
    assert (err.status_code, err.error_type) == (status, kind)
    assert KEY not in str(err) and KEY not in (err.body or "")
    assert err.partial is not None and err.partial.text == ""


def test_rate_limit_reads_the_retry_info_delay(server: FakeLLMServer, recorder: Any) -> None:
    """A 429's RetryInfo.retryDelay becomes retry_after."""
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}
    server.add(Reply(status=429, error={"details": [retry]}))
    run(make(server), recorder)
    assert recorder.calls == [("error", "RateLimitError")]
    assert recorder.error.retry_after == pytest.approx(34.4)


def test_rate_limit_is_retried_after_the_server_delay(server: FakeLLMServer, recorder: Any) -> None:
    """A 429 before any output is retried after its retryDelay, then the answer streams."""
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}
    server.add(Reply(status=429, error={"details": [retry]}), Reply(text="ok"))
    run(make(server, retry=RetryPolicy(retries=1)), recorder)
    assert recorder.calls == [("retry", "RateLimitError", 1), ("content", "ok"), ("usage", 10, 1), ("finish", "ok")]
    assert len(server.requests) == 2


def test_invalid_api_key_is_an_authentication_error(server: FakeLLMServer, recorder: Any) -> None:
    """A 400 whose details name API_KEY_INVALID is an AuthenticationError, not a BadRequestError."""
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]
    bad_key = Reply(status=400, error={"message": "API key not valid. Please pass a valid API key.", "details": details})
    server.add(bad_key)
    run(make(server), recorder)
    assert recorder.calls == [("error", "AuthenticationError")]
    assert (recorder.error.status_code, recorder.error.error_type) == (400, "API_KEY_INVALID")
    assert "API key not valid" in str(recorder.error)


def test_in_band_error_ends_the_stream_with_the_partial_text(server: FakeLLMServer, recorder: Any) -> None:
    """An {"error": ...} data event mid-stream maps by its status and keeps what arrived."""
    server.add(Reply(text="Partial answer", error={"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Partial"), ("content", " answer"), ("error", "ServerError")]
    assert recorder.error.status_code == 503
    assert recorder.error.partial.text == "Partial answer"


def test_blocked_prompt_is_a_bad_request_naming_the_reason(server: FakeLLMServer, recorder: Any) -> None:
    """promptFeedback.blockReason with no candidates fails with BadRequestError, and is not retried."""
    blocked = data(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": "gemini-2.5-flash",
        }
    )
    server.add(Reply(events=[blocked]))
    run(make(server, retry=RetryPolicy()), recorder)
    assert recorder.calls == [("error", "BadRequestError")]
    err = recorder.error
    assert err.error_type == "PROHIBITED_CONTENT" and "PROHIBITED_CONTENT" in str(err)
    assert len(server.requests) == 1


# --- the request -----------------------------------------------------------------------------


def test_request_carries_model_system_options_and_key_header(server: FakeLLMServer, recorder: Any) -> None:
    """The model is in the path, the key in x-goog-api-key (never the URL), options in generationConfig."""
    server.add(Reply(text="ok"))
    messages = [Message.system("Be brief."), Message.user("Hi")]
    run(
        make(server),
        recorder,
        messages,
        system="You are a test.",
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        max_tokens=256,
        stop=["END"],
        seed=7,
        extra={"generationConfig": {"candidateCount": 1}, "safetySettings": []},
    )
    assert recorder.kinds()[-1] == "finish"
    req = server.requests[0]
    assert req.method == "POST"
    assert req.path == "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert req.headers["x-goog-api-key"] == KEY
    assert "authorization" not in req.headers
    assert KEY not in req.path and "key=" not in req.path
    assert req.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "You are a test."}, {"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 7,
            "candidateCount": 1,
        },
        "safetySettings": [],
    }


def test_history_goes_to_the_wire_in_gemini_shape(server: FakeLLMServer, recorder: Any) -> None:
    """Images, signed thinking, tool calls and results become Gemini parts with alternating roles."""
    server.add(Reply(text="ok"))
    call_from_gemini = ToolCall("fc-1", "get_weather", {"city": "Paris"}, signature="fc-sig")
    call_made_here = ToolCall("gemini_call_0123456789abcdef", "get_time", {})
    messages = [
        Message.user("What is this?", images=[ImagePart(data=PNG), ImagePart(url="https://x.test/cat.jpg", mime_type="image/jpeg")]),
        Message(
            "assistant",
            [
                ThinkingPart("Looking.", signature="th-sig"),
                ThinkingPart("not from gemini"),
                TextPart("A cat."),
                ThinkingPart("", signature="tail-sig"),
            ],
        ),
        Message.user("Weather and time?"),
        Message.assistant(tool_calls=[call_from_gemini, call_made_here]),
        Message.tool([ToolResult("fc-1", "get_weather", "sunny"), ToolResult(call_made_here.id, "get_time", "boom", is_error=True)]),
    ]
    run(make(server), recorder, messages)
    assert recorder.kinds()[-1] == "finish"
    assert server.requests[0].json["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.jpg"}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Looking.", "thought": True, "thoughtSignature": "th-sig"},
                {"text": "A cat."},
                {"text": "", "thoughtSignature": "tail-sig"},
            ],
        },
        {"role": "user", "parts": [{"text": "Weather and time?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc-1"}, "thoughtSignature": "fc-sig"},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}, "id": "fc-1"}},
                {"functionResponse": {"name": "get_time", "response": {"error": "boom"}}},
            ],
        },
    ]


def test_a_streamed_answer_round_trips_to_the_next_request(server: FakeLLMServer, recorder: Any) -> None:
    """The assistant message of one turn goes back with its signatures where Gemini put them."""
    server.add(Reply(thinking="Hmm.", text="Done.", signature="s1", tool_calls=[ToolCall("", "f", {"x": 1}, signature="s2")]))
    streamer = make(server)
    first = streamer.chat([Message.user("Go")])
    server.add(Reply(text="ok"))
    streamer.chat([Message.user("Go"), first.message, Message.tool([ToolResult(first.tool_calls[0].id, "f", "1")])])
    assert server.requests[1].json["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Hmm.", "thought": True, "thoughtSignature": "s1"},
                {"text": "Done."},
                {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "s2"},
            ],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "1"}}}]},
    ]


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ({"thinking_budget": 1024}, {"thinkingBudget": 1024, "includeThoughts": True}),
        ({"reasoning": "none"}, {"thinkingBudget": 0}),
        ({"reasoning": "low"}, {"thinkingLevel": "low", "includeThoughts": True}),
        ({"reasoning": "xhigh"}, {"thinkingLevel": "high", "includeThoughts": True}),
    ],
)
def test_thinking_options_set_thinking_config(
    server: FakeLLMServer, recorder: Any, options: dict[str, Any], config: dict[str, Any]
) -> None:
    """thinking_budget and reasoning become generationConfig.thinkingConfig."""
    server.add(Reply(text="ok"))
    run(make(server), recorder, **options)
    assert server.requests[0].json["generationConfig"] == {"thinkingConfig": config}


def test_model_names_with_a_prefix_are_not_doubled(server: FakeLLMServer) -> None:
    """A model given as models/NAME (as list_models' raw names are) keeps one models/ in the path."""
    server.add(Reply(text="ok"))
    streamer = GeminiStreamer(model="models/gemini-2.5-pro", api_key=KEY, base_url=server.base_url("gemini"))
    assert streamer.chat([Message.user("Hi")]).text == "ok"
    assert server.requests[0].path == "/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def test_unsupported_option_fails_before_any_request(server: FakeLLMServer) -> None:
    """An option Gemini cannot honour raises ConfigurationError and sends nothing."""
    with pytest.raises(ConfigurationError, match="tool_choice"):
        make(server).stream_chat([Message.user("Hi")], tool_choice="auto")
    with pytest.raises(ConfigurationError, match="not both"):
        make(server).stream_chat([Message.user("Hi")], reasoning="high", thinking_budget=100)
    assert server.requests == []


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_key_comes_from_the_environment(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """GEMINI_API_KEY or GOOGLE_API_KEY is sent in x-goog-api-key and never shown in repr."""
    monkeypatch.setenv(variable, "env-key-456")
    server.add(Reply(text="ok"))
    streamer = GeminiStreamer(base_url=server.base_url("gemini"))
    assert streamer.chat([Message.user("Hi")]).text == "ok"
    assert server.requests[0].headers["x-goog-api-key"] == "env-key-456"
    assert "env-key-456" not in repr(streamer)


def test_a_missing_key_is_a_configuration_error() -> None:
    """Without a key the constructor names both environment variables."""
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiStreamer()


def test_list_models_strips_the_models_prefix(server: FakeLLMServer) -> None:
    """list_models returns ids without models/, from GET /v1beta/models with the key header."""
    models = make(server).list_models()
    assert [(m.id, m.provider, m.owned_by) for m in models] == [
        ("gemini-2.5-flash", "gemini", "google"),
        ("gemini-2.5-pro", "gemini", "google"),
    ]
    req = server.requests[0]
    assert (req.method, req.path.split("?")[0]) == ("GET", "/gemini/v1beta/models")
    assert req.headers["x-goog-api-key"] == KEY and KEY not in req.path
