"""Tests for llmstreamer.web: the SSE body, the Flask response and the WebSocket relay."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from typing import Any, Iterator

import pytest
import requests

from llmstreamer import (
    CallbackError,
    ConfigurationError,
    Message,
    OpenAIStreamer,
    RateLimitError,
    StreamCallbacks,
    StreamError,
    ToolCall,
    ToolResult,
    Usage,
)
from llmstreamer._sse import SSEParser
from llmstreamer.models import Event
from llmstreamer.provider import ProviderSpec, Streamer
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.web import flask_response, relay, sse_stream

flask = pytest.importorskip("flask")

HI = [{"role": "user", "content": "Hi"}]
KEY = "sk-test-secret-0123456789"
USAGE = {"input_tokens": 10, "output_tokens": 2, "cached_input_tokens": 0, "reasoning_tokens": 0, "total_tokens": 12}


def parse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The events of an SSE body, parsed by llmstreamer's own parser, data decoded as JSON."""
    parser = SSEParser()
    items = parser.feed(body) + parser.close()
    return [(name, json.loads(data)) for name, data, _ in items]


def timeless(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The events with the done event's timings and request id checked for type and removed."""
    out = []
    for name, data in events:
        if name == "done":
            data = dict(data)
            assert isinstance(data.pop("duration"), float)
            ttft = data.pop("time_to_first_token")
            assert ttft is None or isinstance(ttft, float)
            request_id = data.pop("request_id")
            assert request_id is None or request_id.startswith("req_fake_")
        out.append((name, data))
    return out


def done(text: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """The expected done event of an OpenAI answer ``text`` from the fake server."""
    data = {
        "text": text,
        "thinking": "",
        "tool_calls": [],
        "finish_reason": "stop",
        "usage": USAGE,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "messages": [{"role": "assistant", "content": text}],
    }
    data.update(fields)
    return ("done", data)


HELLO_EVENTS = [
    ("content", {"text": "Hello"}),
    ("content", {"text": " there"}),
    ("usage", USAGE),
    done("Hello there"),
]


@pytest.fixture
def openai(server: FakeLLMServer) -> Iterator[OpenAIStreamer]:
    """An OpenAI streamer pointed at the fake server, with no retries."""
    with OpenAIStreamer(api_key=KEY, base_url=server.base_url("openai"), retry=0) as s:
        yield s


class ScriptStreamer(Streamer):
    """A local streamer that plays a fixed list of normalized events (every event kind, no network)."""

    spec = ProviderSpec(name="script", default_model="script-1")

    def __init__(self, script: list[Event]) -> None:
        super().__init__()
        self.script = script

    def stream_round(self, messages: Any, options: Any, context: Any) -> Iterator[Event]:
        yield from self.script


def chat_app(streamer: Streamer, **kw: Any) -> Any:
    """A Flask app whose POST /chat streams ``flask_response(streamer, HI, **kw)``."""
    app = flask.Flask("test_web")

    @app.post("/chat")
    def chat() -> Any:
        return flask_response(streamer, HI, **kw)

    return app


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read from ``sock`` until ``marker`` has arrived (bounded by the socket's timeout)."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before {marker!r}: {data!r}"
        data += chunk
    return data


# --- sse_stream ---------------------------------------------------------------------------------


def test_sse_body_parses_back_into_the_events_sent(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """An answer streamed from the fake server comes out as content, usage and done events, exactly."""
    server.add(Reply(text="Hello there"))
    body = sse_stream(openai, HI)
    chunks = list(body)
    body.close()
    assert timeless(parse(b"".join(chunks))) == HELLO_EVENTS


def test_sse_body_split_into_single_bytes_parses_the_same(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Fed one byte at a time, the parser finds the same events (every event is complete and framed)."""
    server.add(Reply(text="Hello there"))
    body = b"".join(sse_stream(openai, HI))
    parser = SSEParser()
    items = [item for i in range(len(body)) for item in parser.feed(body[i : i + 1])]
    assert timeless([(name, json.loads(data)) for name, data, _ in items]) == HELLO_EVENTS


def test_every_event_kind_has_its_payload() -> None:
    """Thinking, content, tool calls, tool results and usage map to their documented JSON payloads (the values' to_dict)."""
    call = ToolCall("call_1", "lookup", {"q": "weather"}, '{"q": "weather"}')
    bad = ToolCall("call_2", "lookup", {}, "{oops", "the arguments are not valid JSON")
    script = [
        Event("thinking", "Let me look."),
        Event("block_end"),
        Event("content", "Checking"),
        Event("tool_call", data=call),
        Event("tool_call", data=bad),
        Event("usage", data=Usage(7, 5, 1, 2)),
        Event("stop", "tool_calls"),
        Event("done"),
    ]
    streamer = ScriptStreamer(script)
    expected = streamer.chat(HI)
    events = timeless(parse(b"".join(sse_stream(streamer, HI))))
    usage = {"input_tokens": 7, "output_tokens": 5, "cached_input_tokens": 1, "reasoning_tokens": 2, "total_tokens": 12}
    call_json = {"id": "call_1", "name": "lookup", "arguments": {"q": "weather"}, "raw_arguments": '{"q": "weather"}'}
    bad_json = {
        "id": "call_2",
        "name": "lookup",
        "arguments": {},
        "raw_arguments": "{oops",
        "error": "the arguments are not valid JSON",
    }
    assert events == [
        ("thinking", {"text": "Let me look."}),
        ("content", {"text": "Checking"}),
        ("tool_call", call_json),
        ("tool_call", bad_json),
        ("usage", usage),
        (
            "done",
            {
                "text": "Checking",
                "thinking": "Let me look.",
                "tool_calls": [call_json, bad_json],
                "finish_reason": "tool_calls",
                "usage": usage,
                "model": "script-1",
                "provider": "script",
                "messages": [m.to_dict() for m in expected.messages],
            },
        ),
    ]


def test_tool_results_stream_as_events() -> None:
    """A tool result a provider ran mid-round is sent as a tool_result event."""
    script = [
        Event("tool_call", data=ToolCall("c1", "clock", {})),
        Event("tool_result", data=ToolResult("c1", "clock", "12:00")),
        Event("content", "It is noon."),
        Event("stop", "stop"),
        Event("done"),
    ]
    events = parse(b"".join(sse_stream(ScriptStreamer(script), HI)))
    assert [(name, data) for name, data in events if name != "done"] == [
        ("tool_call", {"id": "c1", "name": "clock", "arguments": {}}),
        ("tool_result", {"call_id": "c1", "name": "clock", "content": "12:00", "is_error": False}),
        ("content", {"text": "It is noon."}),
    ]
    assert events[-1][1]["text"] == "It is noon."


def test_line_separators_inside_text_are_escaped(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """U+2028, U+2029 and U+0085 are escaped, so even str.splitlines() keeps each data line whole."""
    server.add(Reply(text=["a\u2028b", "\x85c\u2029", "é\n"]))
    body = b"".join(sse_stream(openai, HI))
    for line in body.decode("utf-8").splitlines():
        assert line == "" or line.startswith(("event: ", "data: ")), line
    events = parse(body)
    assert [data["text"] for name, data in events if name == "content"] == ["a\u2028b", "\x85c\u2029", "é\n"]
    assert events[-1][1]["text"] == "a\u2028b\x85c\u2029é\n"


def test_server_side_callbacks_see_the_whole_stream(server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """Callbacks given to sse_stream fire too, on the stream's worker thread, in order."""
    server.add(Reply(text="Hello there"))
    body = sse_stream(openai, HI, callbacks=recorder)
    assert timeless(parse(b"".join(body))) == HELLO_EVENTS
    body.close()
    assert recorder.calls == [("content", "Hello"), ("content", " there"), ("usage", 10, 2), ("finish", "Hello there")]
    assert all(name.startswith("llmstreamer-openai-") for name in recorder.threads)


def test_a_raising_server_callback_ends_with_an_error_event(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """A server-side callback that raises stops the stream; the client gets the event, then the error."""

    def boom(text: str) -> None:
        raise RuntimeError("metrics are down")

    server.add(Reply(text="Hello there"))
    events = parse(b"".join(sse_stream(openai, HI, callbacks=StreamCallbacks(on_content=boom))))
    assert events == [
        ("content", {"text": "Hello"}),
        ("error", {"error": "CallbackError", "message": "on_content raised RuntimeError: metrics are down", "provider": "openai"}),
    ]


def test_keepalive_comments_while_the_model_is_silent(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """While the model says nothing, a keep-alive comment goes out every interval; the parser ignores it."""
    server.add(Reply(text="Hello there", stall_after=2))
    body = sse_stream(openai, HI, keepalive=0.02)
    first = next(body)
    for _ in range(500):  # keep-alives may come before the first token, too
        if first != b": keep-alive\n\n":
            break
        first = next(body)
    assert parse(first) == [("content", {"text": "Hello"})]
    assert [next(body), next(body)] == [b": keep-alive\n\n", b": keep-alive\n\n"]
    assert parse(b": keep-alive\n\n") == []
    body.close()
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)


def test_closing_the_body_cancels_the_upstream_stream(server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """close() mid-stream shuts the upstream connection at once; the stream ends cancelled."""
    server.add(Reply(text="Hello there", stall_after=2))
    body = sse_stream(openai, HI, callbacks=recorder)
    assert parse(next(body)) == [("content", {"text": "Hello"})]
    body.close()
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]
    assert recorder.error is not None and recorder.error.partial.text == "Hello"
    assert list(body) == []
    body.close()  # idempotent


def test_closing_before_iterating_still_cancels(server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """A body closed before its first chunk (the client left at once) still cancels the stream."""
    server.add(Reply(text="Hello there", stall_after=1))
    body = sse_stream(openai, HI, callbacks=recorder)
    assert server.wait_for(lambda: len(server.requests) == 1, timeout=5)
    body.close()
    assert recorder.done.wait(5)
    assert recorder.calls == [("error", "StreamCancelled")]
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)


def test_errors_become_an_error_event_without_the_key(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """An HTTP error is sent as one error event with its class, message and status; the key never appears."""
    server.add(Reply(status=429))
    body = b"".join(sse_stream(openai, HI))
    assert KEY.encode() not in body
    assert parse(body) == [
        (
            "error",
            {
                "error": "RateLimitError",
                "message": "Rate limit reached. Please try again later.",
                "provider": "openai",
                "status_code": 429,
            },
        )
    ]


def test_an_error_message_that_holds_the_key_is_redacted() -> None:
    """Should any error message contain the streamer's key, the error event shows *** instead."""

    class Leaky(ScriptStreamer):
        def stream_round(self, messages: Any, options: Any, context: Any) -> Iterator[Event]:
            yield Event("content", "Hi")
            raise StreamError(f"upstream echoed {KEY} back")

    leaky = Leaky([])
    leaky.api_key.value = KEY
    body = b"".join(sse_stream(leaky, HI))
    assert KEY.encode() not in body
    assert parse(body)[-1] == ("error", {"error": "StreamError", "message": "upstream echoed *** back", "provider": "script"})


def test_bad_arguments_raise_before_any_request(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Bad messages, options or keepalive raise ConfigurationError from the call, and nothing is sent."""
    with pytest.raises(ConfigurationError):
        sse_stream(openai, [{"role": "wizard", "content": "x"}])
    with pytest.raises(ConfigurationError, match="top_k"):
        sse_stream(openai, HI, top_k=3)
    for bad in (0, -1.0, True, "5"):
        with pytest.raises(ConfigurationError, match="keepalive"):
            sse_stream(openai, HI, keepalive=bad)
        with pytest.raises(ConfigurationError, match="keepalive"):
            relay(lambda text: None, openai, HI, keepalive=bad)
    assert server.requests == []


def test_options_reach_the_request(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Options given to sse_stream go to stream_chat: they show up in the request body."""
    server.add(Reply(text="Hi"))
    list(sse_stream(openai, [Message.user("Hi")], system="Be brief.", temperature=0.5, max_tokens=20))
    body = server.requests[0].json
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["temperature"], body["max_tokens"]) == (0.5, 20)  # not api.openai.com: max_tokens


def test_keepalive_none_sends_no_comments(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """With keepalive=None the body holds only events, however slow the model."""
    server.add(Reply(text="Hello there", delay=0.05))
    body = b"".join(sse_stream(openai, HI, keepalive=None))
    assert all(line == b"" or line.startswith((b"event: ", b"data: ")) for line in body.split(b"\n"))
    assert timeless(parse(body)) == HELLO_EVENTS


def test_web_imports_flask_only_when_used() -> None:
    """Importing llmstreamer.web does not import flask (an optional dependency)."""
    code = "import sys, llmstreamer.web; assert 'flask' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


# --- flask_response -----------------------------------------------------------------------------


def test_flask_response_headers_and_body(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Through Flask's test client: event-stream type, no caching, no proxy buffering, the exact events."""
    server.add(Reply(text="Hello there"))
    response = chat_app(openai).test_client().post("/chat")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert timeless(parse(response.get_data())) == HELLO_EVENTS


def test_flask_response_takes_extra_headers(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Extra headers are added, and may override the defaults."""
    server.add(Reply(text="Hi"))
    response = chat_app(openai, headers={"X-Chat": "1", "Cache-Control": "no-store"}).test_client().post("/chat")
    assert (response.headers["X-Chat"], response.headers["Cache-Control"]) == ("1", "no-store")
    response.get_data()


def test_flask_test_client_disconnect_cancels_upstream(server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """Closing an unbuffered Flask test response mid-stream closes the upstream connection within 1 s."""
    server.add(Reply(text="Hello there", stall_after=2))
    response = chat_app(openai, callbacks=recorder).test_client().post("/chat", buffered=False)
    chunks = iter(response.response)
    assert parse(next(chunks)) == [("content", {"text": "Hello"})]
    response.close()
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]


def test_real_server_thread_streams_the_events(server: FakeLLMServer, openai: OpenAIStreamer, serve: Any) -> None:
    """Through a real werkzeug server thread and requests, the body parses back into the exact events."""
    server.add(Reply(text="Hello there"))
    site = serve(chat_app(openai))
    with requests.post(site.url + "/chat", stream=True, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        body = b"".join(response.iter_content(chunk_size=None))
    assert timeless(parse(body)) == HELLO_EVENTS


def test_real_client_disconnect_cancels_upstream_within_a_second(
    server: FakeLLMServer, openai: OpenAIStreamer, serve: Any, recorder: Any
) -> None:
    """A client that hangs up mid-stream makes the fake LLM server see its connection closed within 1 s."""
    server.add(Reply(text="Hello there", stall_after=2))
    site = serve(chat_app(openai, callbacks=recorder, keepalive=0.05))
    port = int(site.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        assert b'data: {"text":"Hello"}' in read_until(sock, b'data: {"text":"Hello"}')
        assert server.open_connections == 1
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]


# --- relay --------------------------------------------------------------------------------------


def test_relay_sends_json_frames_and_returns_the_response(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Each event becomes one JSON text frame with its type; the Response is returned."""
    server.add(Reply(text="Hello there"))
    frames: list[str] = []
    response = relay(frames.append, openai, HI)
    assert response.text == "Hello there"
    decoded = [json.loads(f) for f in frames]
    assert timeless([(d.pop("type"), d) for d in decoded]) == HELLO_EVENTS


def test_relay_calls_send_on_the_calling_thread(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """send is only ever called from the thread that called relay."""
    server.add(Reply(text="Hello there"))
    threads: set[str] = set()
    relay(lambda text: threads.add(threading.current_thread().name), openai, HI)
    assert threads == {threading.current_thread().name}


def test_relay_failing_send_cancels_the_stream(server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """When send raises, the upstream connection is closed and relay raises CallbackError from it."""
    server.add(Reply(text="Hello there", stall_after=2))
    gone = ConnectionResetError("the client went away")

    def send(text: str) -> None:
        raise gone

    with pytest.raises(CallbackError) as caught:
        relay(send, openai, HI, callbacks=recorder)
    assert caught.value.__cause__ is gone
    assert caught.value.partial is not None and caught.value.partial.text == "Hello"
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]


def test_relay_keepalive_notices_a_client_gone_while_the_model_is_silent(
    server: FakeLLMServer, openai: OpenAIStreamer
) -> None:
    """With keepalive, a dead socket is found by a keepalive frame even when no token comes."""
    server.add(Reply(text="Hello there", stall_after=1))
    frames: list[str] = []

    def send(text: str) -> None:
        frames.append(text)
        if len(frames) == 3:
            raise BrokenPipeError("closed")

    with pytest.raises(CallbackError, match="BrokenPipeError"):
        relay(send, openai, HI, keepalive=0.02)
    assert frames == ['{"type":"keepalive"}'] * 3
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)


def test_relay_sends_the_error_frame_then_raises(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """A failed stream sends its error frame, then raises the same error."""
    server.add(Reply(status=429))
    frames: list[str] = []
    with pytest.raises(RateLimitError):
        relay(frames.append, openai, HI)
    assert [json.loads(f) for f in frames] == [
        {
            "type": "error",
            "error": "RateLimitError",
            "message": "Rate limit reached. Please try again later.",
            "provider": "openai",
            "status_code": 429,
        }
    ]


def test_relay_raises_the_stream_error_when_the_error_frame_cannot_be_sent(
    server: FakeLLMServer, openai: OpenAIStreamer
) -> None:
    """If even the error frame cannot be sent, the stream's own error is raised (not CallbackError)."""
    server.add(Reply(status=429))

    def send(text: str) -> None:
        raise OSError("closed")

    with pytest.raises(RateLimitError):
        relay(send, openai, HI)


def test_relay_done_frame_that_fails_keeps_the_response(server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """A send that fails on the done frame raises CallbackError whose partial is the whole answer."""
    server.add(Reply(text="Hello there"))

    def send(text: str) -> None:
        if '"type":"done"' in text:
            raise OSError("closed")

    with pytest.raises(CallbackError) as caught:
        relay(send, openai, HI)
    assert caught.value.partial is not None
    assert (caught.value.partial.text, caught.value.partial.finish_reason) == ("Hello there", "stop")
