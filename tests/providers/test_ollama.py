"""OllamaStreamer against the fake server's Ollama flavor: NDJSON text, thinking, tools, errors."""

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
    ImagePart,
    Message,
    NotFoundError,
    OllamaStreamer,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    Usage,
)
from llmstreamer.providers.ollama import _host_url
from llmstreamer.testing import FakeLLMServer, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


def make(server: FakeLLMServer, **kwargs: Any) -> OllamaStreamer:
    """A streamer pointed at the fake server, with no retries unless asked."""
    kwargs.setdefault("retry", 0)
    kwargs.setdefault("model", "llama3.2")
    return OllamaStreamer(base_url=server.base_url("ollama"), **kwargs)


def line(obj: dict[str, Any], newline: str = "\n") -> str:
    """One NDJSON line."""
    return json.dumps(obj, separators=(",", ":")) + newline


def piece(content: str = "", **message: Any) -> str:
    """A done:false line carrying a message fragment."""
    body = {"role": "assistant", "content": content, **message}
    return line({"model": "llama3.2", "created_at": "2025-06-01T12:00:00Z", "message": body, "done": False})


def final(reason: str = "stop", prompt: int = 5, output: int = 2, newline: str = "\n") -> str:
    """The done:true line with its counts."""
    obj = {
        "model": "llama3.2",
        "created_at": "2025-06-01T12:00:01Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        "prompt_eval_count": prompt,
        "eval_count": output,
    }
    return line(obj, newline)


def run(streamer: OllamaStreamer, recorder: Any, messages: Any = None, **options: Any) -> None:
    """Stream and wait (bounded) for the terminal callback."""
    handle = streamer.stream_chat(messages or [Message.user("Hi")], recorder, **options)
    assert handle.wait(10)


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("writes", ["whole", "event", "byte"])
@pytest.mark.parametrize("transfer", ["chunked", "close", "length"])
def test_text_arrives_exactly(server: FakeLLMServer, recorder: Any, writes: str, transfer: str) -> None:
    """Text streams exactly, line by line, however the bytes are written and framed."""
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
    assert recorder.response.model == "llama3.2"


def test_fake_server_speaks_ndjson(server: FakeLLMServer) -> None:
    """The Ollama flavor sends application/x-ndjson lines ending with a done line."""
    server.add(Reply(text="Hi there"))
    resp = requests.post(server.base_url("ollama") + "/api/chat", json={"model": "m", "messages": []}, timeout=5)
    assert resp.headers["content-type"] == "application/x-ndjson"
    lines = resp.content.split(b"\n")
    assert lines[-1] == b""
    objs = [json.loads(x) for x in lines[:-1]]
    assert [o["done"] for o in objs] == [False, False, True]
    assert objs[-1]["done_reason"] == "stop" and objs[-1]["eval_count"] == 2


def test_lines_split_across_reads_and_a_last_line_without_newline(server: FakeLLMServer, recorder: Any) -> None:
    """Lines cut at every byte, CRLF endings, blank lines and a final line with no newline all parse."""
    events = [piece("Hel"), "\n", piece("lo").replace("\n", "\r\n"), final(newline="")]
    server.add(Reply(events=events, writes="byte", transfer="close"))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Hel"), ("content", "lo"), ("usage", 5, 2), ("finish", "Hello")]


# --- thinking, usage, finish -----------------------------------------------------------------


def test_thinking_is_kept_apart_from_the_text(server: FakeLLMServer, recorder: Any) -> None:
    """message.thinking goes to on_thinking and stays out of the text."""
    server.add(Reply(thinking="Let me think.", text="Answer.", usage=Usage(12, 9)))
    run(make(server), recorder)
    assert recorder.calls == [
        ("thinking", "Let"),
        ("thinking", " me"),
        ("thinking", " think."),
        ("content", "Answer."),
        ("usage", 12, 9),
        ("finish", "Answer."),
    ]
    response = recorder.response
    assert (response.text, response.thinking) == ("Answer.", "Let me think.")
    assert response.message.content == (ThinkingPart("Let me think."), TextPart("Answer."))
    assert response.usage == Usage(12, 9, 0, 0, 21)


@pytest.mark.parametrize(
    ("reason", "normalized"),
    [("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), ("something_new", "stop")],
)
def test_done_reasons_are_normalized(server: FakeLLMServer, recorder: Any, reason: str, normalized: str) -> None:
    """Each done_reason maps to the normalized finish reason."""
    server.add(Reply(text="x", finish_reason=reason))
    run(make(server), recorder)
    assert recorder.calls == [("content", "x"), ("usage", 10, 1), ("finish", "x")]
    assert recorder.response.finish_reason == normalized


def test_missing_counts_are_zero(server: FakeLLMServer, recorder: Any) -> None:
    """A done line without prompt_eval_count (a cached prompt) reports zero input tokens."""
    done = line({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop", "eval_count": 3})
    server.add(Reply(events=[piece("Hi"), done]))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Hi"), ("usage", 0, 3), ("finish", "Hi")]


# --- tool calls ------------------------------------------------------------------------------


def test_tool_calls_arrive_whole(server: FakeLLMServer, recorder: Any) -> None:
    """tool_calls become whole ToolCalls (an id made when none is given); finish_reason is tool_calls."""
    calls = [ToolCall("call_abc", "get_weather", {"city": "Paris"}), ToolCall("", "get_time", {"tz": "UTC"})]
    server.add(Reply(text="Let me check.", tool_calls=calls))
    run(make(server), recorder)
    assert recorder.calls == [
        ("content", "Let"),
        ("content", " me"),
        ("content", " check."),
        ("tool_call", "get_weather"),
        ("tool_call", "get_time"),
        ("usage", 10, 3),
        ("finish", "Let me check."),
    ]
    first, second = recorder.response.tool_calls
    assert recorder.response.finish_reason == "tool_calls"
    assert (first.id, first.name, dict(first.arguments)) == ("call_abc", "get_weather", {"city": "Paris"})
    assert json.loads(first.raw_arguments) == {"city": "Paris"}
    assert second.id and second.id != first.id and dict(second.arguments) == {"tz": "UTC"}


def test_tool_call_arguments_given_as_text_are_decoded(server: FakeLLMServer, recorder: Any) -> None:
    """Arguments sent as a JSON string are decoded; invalid ones keep the text and say why."""
    calls = [
        {"function": {"name": "a", "arguments": '{"x": 1}'}},
        {"function": {"name": "b", "arguments": "{not json"}},
    ]
    server.add(Reply(events=[piece(tool_calls=calls), final()]))
    run(make(server), recorder)
    assert recorder.calls == [("tool_call", "a"), ("tool_call", "b"), ("usage", 5, 2), ("finish", "")]
    good, bad = recorder.response.tool_calls
    assert (dict(good.arguments), good.error) == ({"x": 1}, None)
    assert (dict(bad.arguments), bad.raw_arguments) == ({}, "{not json")
    assert bad.error is not None


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_errors_map_to_classes(server: FakeLLMServer, recorder: Any, status: int, error: type) -> None:
    """Ollama's {"error": "..."} bodies map by status to the classes of errors.py's tree."""
    server.add(Reply(status=status))
    run(make(server), recorder)
    assert recorder.calls == [("error", error.__name__)]
    assert type(recorder.error) is error
    assert recorder.error.status_code == status
    assert recorder.error.message


def test_model_not_found_names_the_model(server: FakeLLMServer, recorder: Any) -> None:
    """A 404 keeps Ollama's message, which tells the user to pull the model."""
    server.add(Reply(status=404, error={"message": 'model "llama9" not found, try pulling it first'}))
    run(make(server, model="llama9"), recorder)
    assert recorder.calls == [("error", "NotFoundError")]
    assert "try pulling it first" in str(recorder.error)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ('model "x" not found, try pulling it first', "NotFoundError"),
        ("server busy, please try again.  maximum pending requests exceeded", "ServerError"),
        ("too many requests", "RateLimitError"),
        ("error parsing tool call: raw='{bad', err=unexpected end of JSON input", "StreamError"),
    ],
)
def test_in_band_error_line_ends_the_stream(server: FakeLLMServer, recorder: Any, message: str, error: str) -> None:
    """An {"error": ...} line inside a 200 stream ends it, mapped by its message, keeping the text."""
    server.add(Reply(text="Partial answer", error={"message": message}))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Partial"), ("content", " answer"), ("error", error)]
    assert recorder.error.partial.text == "Partial answer"
    assert message in str(recorder.error)


def test_in_band_error_does_not_wait_for_the_server_to_close(server: FakeLLMServer, recorder: Any) -> None:
    """An error line fails the stream at once even while the server keeps the connection open."""
    server.add(Reply(events=[piece("Hi"), line({"error": "something broke"})], stall_after=2))
    run(make(server), recorder)
    assert recorder.calls == [("content", "Hi"), ("error", "StreamError")]


# --- the request -----------------------------------------------------------------------------


def test_request_carries_model_system_and_options(server: FakeLLMServer, recorder: Any) -> None:
    """Model, system prompt, options (num_predict from max_tokens), think and extra= land in the body."""
    server.add(Reply(text="ok"))
    run(
        make(server),
        recorder,
        [Message.system("Be brief."), Message.user("Hi")],
        system="You are a test.",
        temperature=0.2,
        top_p=0.8,
        top_k=20,
        max_tokens=64,
        stop="END",
        seed=3,
        reasoning="high",
        extra={"keep_alive": "5m", "options": {"num_ctx": 8192}},
    )
    assert recorder.kinds()[-1] == "finish"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/ollama/api/chat")
    assert "authorization" not in req.headers
    assert req.json == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are a test."},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "options": {"temperature": 0.2, "top_p": 0.8, "top_k": 20, "num_predict": 64, "stop": ["END"], "seed": 3, "num_ctx": 8192},
        "think": True,
        "keep_alive": "5m",
    }


@pytest.mark.parametrize(
    ("model", "reasoning", "think"),
    [
        ("qwen3:8b", "none", False),
        ("qwen3:8b", "low", True),
        ("gpt-oss:20b", "medium", "medium"),
        ("gpt-oss:120b", "minimal", "low"),
        ("library/gpt-oss:20b", "xhigh", "high"),
        ("gpt-oss:20b", "none", False),
    ],
)
def test_reasoning_sets_think(server: FakeLLMServer, recorder: Any, model: str, reasoning: str, think: Any) -> None:
    """reasoning becomes think: false for none, a level for gpt-oss, else true."""
    server.add(Reply(text="ok"))
    run(make(server, model=model), recorder, reasoning=reasoning)
    assert server.requests[0].json["think"] == think


def test_history_goes_to_the_wire_in_ollama_shape(server: FakeLLMServer, recorder: Any) -> None:
    """Images as base64, assistant thinking and tool calls, tool results with tool_name."""
    server.add(Reply(text="ok"))
    messages = [
        Message.user("What is this?", images=[PNG]),
        Message("assistant", [ThinkingPart("Looking."), TextPart("Let me check.")]),
        Message.assistant(tool_calls=[ToolCall("call_1", "lookup", {"q": "cat"}), ToolCall("ollama_call_0123", "now", {})]),
        Message.tool([ToolResult("call_1", "lookup", "a cat"), ToolResult("ollama_call_0123", "now", "noon")]),
    ]
    run(make(server), recorder, messages)
    assert recorder.kinds()[-1] == "finish"
    assert server.requests[0].json["messages"] == [
        {"role": "user", "content": "What is this?", "images": [base64.b64encode(PNG).decode()]},
        {"role": "assistant", "content": "Let me check.", "thinking": "Looking."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"index": 0, "name": "lookup", "arguments": {"q": "cat"}}},
                {"type": "function", "function": {"index": 1, "name": "now", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "a cat", "tool_name": "lookup"},
        {"role": "tool", "content": "noon", "tool_name": "now"},
    ]


def test_image_urls_are_refused_before_any_request(server: FakeLLMServer) -> None:
    """Ollama takes image bytes only, so a URL image fails before anything is sent."""
    message = Message.user("Look", images=[ImagePart(url="https://x.test/cat.png")])
    with pytest.raises(ConfigurationError, match="bytes"):
        make(server).stream_chat([message])
    assert server.requests == []


def test_api_key_is_sent_as_a_bearer_token(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An api_key (or OLLAMA_API_KEY) goes in Authorization: Bearer and never in repr."""
    monkeypatch.setenv("OLLAMA_API_KEY", "cloud-key-789")
    server.add(Reply(text="ok"))
    streamer = make(server)
    assert streamer.chat([Message.user("Hi")]).text == "ok"
    assert server.requests[0].headers["authorization"] == "Bearer cloud-key-789"
    assert "cloud-key-789" not in repr(streamer)


# --- where the server is ---------------------------------------------------------------------


def test_ollama_host_without_a_scheme_is_honoured(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """OLLAMA_HOST given as host:port/path (no scheme) reaches the server over http."""
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}/ollama")
    server.add(Reply(text="ok"))
    streamer = OllamaStreamer(model="llama3.2", retry=0)
    assert streamer.base_url == f"http://127.0.0.1:{server.port}/ollama"
    assert streamer.chat([Message.user("Hi")]).text == "ok"
    assert server.requests[0].path == "/ollama/api/chat"


def test_the_default_address_is_localhost() -> None:
    """With nothing configured the streamer talks to http://localhost:11434."""
    assert OllamaStreamer().base_url == "http://localhost:11434"


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("localhost", "http://localhost:11434"),
        ("0.0.0.0:8080", "http://0.0.0.0:8080"),
        (":9999", "http://127.0.0.1:9999"),
        ("", "http://127.0.0.1:11434"),
        ("example.com:notaport", "http://example.com:11434"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("[::1]", "http://[::1]:11434"),
        ("::1", "http://[::1]:11434"),
        ("box.lan:11434/proxy/", "http://box.lan:11434/proxy"),
        ("https://ollama.com", "https://ollama.com"),
        ("http://gpu-box", "http://gpu-box"),
    ],
)
def test_host_values_are_read_as_ollama_reads_them(value: str, url: str) -> None:
    """Scheme-less OLLAMA_HOST values get http and port 11434; URLs are kept as they are."""
    assert _host_url(value) == url


def test_list_models_reads_the_tags(server: FakeLLMServer) -> None:
    """list_models returns the pulled models from GET /api/tags."""
    models = make(server).list_models()
    assert [(m.id, m.provider) for m in models] == [("llama3.2:latest", "ollama"), ("qwen3:8b", "ollama")]
    assert models[0].created == 1746120030
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/ollama/api/tags")
