"""OpenAI's and Anthropic's own wire over a real loopback socket (what every provider shares is in
the contract suite, test_providers): line endings, BOM and keep-alives, a truncation's wording,
signatures, cached tokens, unknown fields, request bodies and headers, history in wire form."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from llmstreamer import (
    AnthropicStreamer,
    Message,
    OpenAIStreamer,
    StreamCallbacks,
    ToolCall,
    Usage,
)
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

PROVIDERS = {"openai": OpenAIStreamer, "anthropic": AnthropicStreamer}
TEXT = ["Héllo", " wörld", " 🎉", " 中文", " done."]


@pytest.fixture(params=sorted(PROVIDERS))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(server: FakeLLMServer, flavor: str, **kw: Any) -> HTTPStreamer:
    return PROVIDERS[flavor](api_key="sk-test-key", base_url=server.base_url(flavor), retry=0, **kw)  # type: ignore[no-any-return]


@pytest.mark.parametrize("line_ending", ["\n", "\r\n", "\r"])
def test_exact_text_under_every_line_ending(server: FakeLLMServer, flavor: str, line_ending: str) -> None:
    """The text arrives exactly with LF, CRLF or CR line endings, even written one byte at a time."""
    server.add(Reply(text=TEXT, writes="byte", line_ending=line_ending))
    rec = Recorder()
    make(server, flavor).stream_chat([Message.user("Hi")], rec).wait(10)
    assert rec.calls == [*(("content", t) for t in TEXT), ("usage", 10, 5), ("finish", "".join(TEXT))]


@pytest.mark.parametrize("transfer", ["chunked", "close", "length"])
def test_bom_comments_and_transfer_modes(server: FakeLLMServer, flavor: str, transfer: str) -> None:
    """A BOM, keep-alive comments (and Anthropic pings) and every body framing give the same answer."""
    server.add(Reply(text=TEXT, bom=True, comments=True, transfer=transfer, writes="byte"))
    assert make(server, flavor).chat([Message.user("Hi")]).text == "".join(TEXT)


def test_close_delimited_lone_event_is_not_held_back(server: FakeLLMServer, flavor: str) -> None:
    """On a close-delimited body a lone small event reaches on_content while the server is still silent."""
    arrived = threading.Event()
    sent = time.monotonic()
    waited = []

    def on_content(text: str) -> None:
        waited.append(time.monotonic() - sent)
        arrived.set()

    # The first content event is the only one sent before the server goes silent for 10 s.
    first = 2 if flavor == "openai" else 4
    server.add(Reply(text=["twenty-byte-event!!"], transfer="close", stall_after=first, stall_for=10))
    handle = make(server, flavor).stream_chat([Message.user("Hi")], StreamCallbacks(on_content=on_content))
    assert arrived.wait(5), "the event was held back until EOF"
    handle.cancel()
    handle.wait(5)
    assert waited[0] < 0.05, waited


def test_anthropic_thinking_keeps_its_signature(server: FakeLLMServer, recorder: Recorder) -> None:
    """Anthropic's thinking signature is kept on the message's thinking part, which comes first."""
    server.add(Reply(thinking=["Let", " me", " think."], text=["Answer."], signature="sig-123"))
    make(server, "anthropic").stream_chat([Message.user("Hi")], recorder).wait(5)
    assert recorder.calls[:4] == [("thinking", "Let"), ("thinking", " me"), ("thinking", " think."), ("content", "Answer.")]
    response = recorder.response
    assert response is not None and response.text == "Answer." and response.thinking == "Let me think."
    assert response.message.content[0].signature == "sig-123"  # type: ignore[union-attr]


def test_tool_call_fragments_are_assembled(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """Tool-call arguments streamed in fragments assemble into ToolCall values, in order."""
    calls = [ToolCall("call_1", "weather", {"city": "Paris", "unit": "°C"}), ToolCall("call_2", "time", {"tz": "CET"})]
    server.add(Reply(text="Checking.", tool_calls=calls, finish_reason="tool_calls"))
    make(server, flavor).stream_chat([Message.user("Hi")], recorder).wait(5)
    assert recorder.kinds() == ["content", "tool_call", "tool_call", "usage", "finish"]
    response = recorder.response
    assert response is not None
    assert [(c.id, c.name, dict(c.arguments)) for c in response.tool_calls] == [(c.id, c.name, dict(c.arguments)) for c in calls]


def test_cached_tokens_are_reported(server: FakeLLMServer, flavor: str) -> None:
    """Cached input tokens reach Response.usage next to the input and output counts."""
    server.add(Reply(text="x", usage=Usage(input_tokens=100, output_tokens=7, cached_input_tokens=40)))
    usage = make(server, flavor).chat([Message.user("Hi")]).usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (100, 7, 40)


def test_unknown_events_and_fields_are_ignored(server: FakeLLMServer, flavor: str) -> None:
    """Event types and fields the client does not know are skipped, not fatal."""
    if flavor == "openai":
        events = [
            'data: {"choices":[{"index":0,"delta":{"content":"ok","new_field":1},"finish_reason":null}],"model":"m","x":2}\n\n',
            'data: {"object":"azure.filter","choices":[]}\n\n',
            'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
            "data: [DONE]\n\n",
        ]
    else:
        events = [
            'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":1}}}\n\n',
            'event: brand_new\ndata: {"type":"brand_new","stuff":1}\n\n',
            'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}\n\n',
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}    }\n\n',
            'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}\n\n',
            'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        ]
    server.add(Reply(events=events))
    assert make(server, flavor).chat([Message.user("Hi")]).text == "ok"


def test_list_models(server: FakeLLMServer, flavor: str) -> None:
    """list_models() returns Model values from the provider's models endpoint."""
    models = make(server, flavor).list_models()
    assert models and all(m.provider == flavor and m.id for m in models)
    assert server.requests[-1].method == "GET"


# --- request bodies ----------------------------------------------------------------------------


def test_openai_request_body_and_headers(server: FakeLLMServer) -> None:
    """OpenAI gets the model, the system prompt first, options in its field names, and a bearer key."""
    make(server, "openai", headers={"X-Trace": "1"}).chat(
        [Message.user("Hi"), Message.assistant("Hello"), {"role": "user", "content": "More"}],
        system="Be brief.",
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["END"],
        seed=7,
        extra={"user": "u-1"},
    )
    req = server.requests[-1]
    assert req.path == "/openai/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test-key" and req.headers["x-trace"] == "1"
    assert req.headers["accept-encoding"] == "identity"
    assert req.json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "More"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,  # the fake server is not api.openai.com
        "stop": ["END"],
        "seed": 7,
        "user": "u-1",
    }


def test_anthropic_request_body_and_headers(server: FakeLLMServer) -> None:
    """Anthropic gets system at top level, a default max_tokens, its option names, x-api-key and a version."""
    make(server, "anthropic", model="claude-haiku-4-5").chat(
        [Message.system("From the history."), Message.user("Hi"), Message.user("again")],
        system="Be brief.",
        temperature=0.5,
        top_k=40,
        stop="END",
    )
    req = server.requests[-1]
    assert req.path == "/anthropic/v1/messages"
    assert req.headers["x-api-key"] == "sk-test-key" and req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    assert req.json == {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "again"}]}],
        "max_tokens": 4096,
        "stream": True,
        "system": "Be brief.\n\nFrom the history.",
        "temperature": 0.5,
        "top_k": 40,
        "stop_sequences": ["END"],
    }


def test_history_with_tool_calls_and_thinking_round_trips(server: FakeLLMServer, flavor: str) -> None:
    """An assistant message with thinking and tool calls, and the tool results, go back in wire form."""
    from llmstreamer import ThinkingPart, ToolResult

    history = [
        Message.user("Weather?"),
        Message.assistant("Let me look.", thinking=[ThinkingPart("hmm", "sig-1")], tool_calls=[ToolCall("call_9", "weather", {"city": "Oslo"})]),
        Message.tool([ToolResult("call_9", "weather", "cold")]),
    ]
    make(server, flavor).chat(history)
    wire = server.requests[-1].json["messages"]
    if flavor == "openai":
        assert wire[1]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}
        assert wire[2] == {"role": "tool", "tool_call_id": "call_9", "content": "cold"}
    else:
        assert wire[1]["content"] == [
            {"type": "thinking", "thinking": "hmm", "signature": "sig-1"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_9", "name": "weather", "input": {"city": "Oslo"}},
        ]
        assert wire[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "cold"}]}
