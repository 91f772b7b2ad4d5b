"""The pixigpt preset: one non-streaming request, fired through the usual callbacks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    APIConnectionError,
    ConfigurationError,
    Message,
    RateLimitError,
    ServerError,
    StreamCancelled,
    ToolCall,
)
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing._wire import sse
from llmstreamer.testing._wire_compat import chunk

from ..conftest import Recorder

HI = [Message.user("Hi")]


def pixi(server: FakeLLMServer, **kw: Any) -> Any:
    kw.setdefault("retry", 0)
    return llmstreamer.streamer("pixigpt:pixi-1", api_key="pk", base_url=server.base_url("pixigpt"), **kw)


def test_one_request_same_callbacks(server: FakeLLMServer, recorder: Recorder) -> None:
    """The answer comes in one JSON object; thinking, content, usage and finish fire as for a stream."""
    server.add(Reply(thinking=["Pondering", " more"], text=["Pixi", " here"]))
    pixi(server, assistant_id="asst_123").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("thinking", "Pondering more"), ("content", "Pixi here"), ("usage", 10, 2), ("finish", "Pixi here")]
    req = server.requests[0]
    assert req.path == "/pixigpt/v1/chat/completions" and req.headers["accept"] == "application/json"
    assert req.json == {"model": "pixi-1", "messages": [{"role": "user", "content": "Hi"}], "assistant_id": "asst_123"}
    assert recorder.response is not None and recorder.response.request_id is not None


@pytest.mark.parametrize(("level", "flag"), [("none", False), ("low", True), ("xhigh", True)])
def test_reasoning_is_enable_thinking(server: FakeLLMServer, level: str, flag: bool) -> None:
    """reasoning= is sent as enable_thinking, false only for "none"; temperature 0 is sent as 0."""
    pixi(server).chat(HI, reasoning=level, temperature=0)
    body = server.requests[0].json
    assert body["enable_thinking"] is flag and body["temperature"] == 0 and "reasoning_effort" not in body


def test_tool_calls_and_finish(server: FakeLLMServer, recorder: Recorder) -> None:
    """Tool calls in the answer's message fire on_tool_call whole; the finish reason is tool_calls."""
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    server.add(Reply(tool_calls=[call], finish_reason="tool_calls"))
    response = pixi(server).stream_chat(HI, recorder).result(5)
    assert recorder.calls == [("tool_call", "get_weather"), ("usage", 10, 1), ("finish", "")]
    assert response.finish_reason == "tool_calls" and response.tool_calls[0].arguments == {"city": "Paris"}


def test_error_in_the_body_and_statuses(server: FakeLLMServer) -> None:
    """An error object as the body is an error of its type; HTTP statuses map as usual."""
    server.add(Reply(error={"type": "rate_limit_error", "message": "slow down"}))
    with pytest.raises(RateLimitError, match="slow down"):
        pixi(server).chat(HI)
    server.add(Reply(status=500))
    with pytest.raises(ServerError):
        pixi(server).chat(HI)


def test_cut_body_is_a_connection_error(server: FakeLLMServer) -> None:
    """A JSON answer cut short is an error, never a short answer."""
    server.add(Reply(text="a long answer here", disconnect_at=40, transfer="length"))
    with pytest.raises((APIConnectionError, llmstreamer.StreamError)):
        pixi(server).chat(HI)


def test_a_server_that_streams_anyway_is_read_as_a_stream(server: FakeLLMServer, recorder: Recorder) -> None:
    """If the server answers text/event-stream after all, the preset reads the stream."""
    events = [chunk("pixi-1", {"role": "assistant", "content": "Str"}), chunk("pixi-1", {"content": "eamed"}, "stop"), sse("[DONE]")]
    server.add(Reply(events=events))
    pixi(server).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Str"), ("content", "eamed"), ("finish", "Streamed")]


def test_cancel_while_waiting_for_the_answer(server: FakeLLMServer, recorder: Recorder) -> None:
    """cancel() while the server thinks ends in StreamCancelled at once."""
    server.add(Reply(silent=True, stall_for=10))
    handle = pixi(server).stream_chat(HI, recorder)
    assert server.wait_for(lambda: len(server.requests) == 1)
    handle.cancel()
    assert handle.wait(5)
    assert recorder.calls == [("error", "StreamCancelled")] and isinstance(recorder.error, StreamCancelled)


def test_assistant_id_must_be_text(server: FakeLLMServer) -> None:
    """A bad assistant_id is a ConfigurationError at construction."""
    with pytest.raises(ConfigurationError, match="assistant_id"):
        pixi(server, assistant_id="")


def test_concurrent_requests(server: FakeLLMServer) -> None:
    """Several threads can chat at once on one preset streamer."""
    s = pixi(server)
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(s.chat(HI).text)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == ["Hello from the fake server."] * 4
