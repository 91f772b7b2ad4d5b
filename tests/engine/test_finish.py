"""A finish is what the wire states, and the terminal event ends the stream at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmstreamer import (
    AnthropicStreamer,
    GeminiStreamer,
    IncompleteStreamError,
    Message,
    MistralStreamer,
    OllamaStreamer,
    OpenAICompatibleStreamer,
    OpenAIStreamer,
    Timeout,
    ToolCall,
    tool,
)
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

HI = [Message.user("Hi")]
HOLD = 1000  # stall_after past the last event: the server sends everything, then stays silent
FLAVORS = ["openai", "anthropic", "mistral", "ollama", "gemini", "llamacpp"]


def make(server: FakeLLMServer, flavor: str, **kw: Any) -> HTTPStreamer:
    """A streamer of ``flavor`` on the fake server, without retries."""
    kw.setdefault("retry", 0)
    url = server.base_url(flavor)
    if flavor == "openai":
        return OpenAIStreamer(api_key="sk-test-key", base_url=url, **kw)
    if flavor == "anthropic":
        return AnthropicStreamer(api_key="sk-test-key", base_url=url, **kw)
    if flavor == "mistral":
        return MistralStreamer(api_key="sk-test-key", base_url=url, **kw)
    if flavor == "ollama":
        return OllamaStreamer(model="llama3.2", base_url=url, **kw)
    if flavor == "gemini":
        return GeminiStreamer(api_key="sk-test-key", base_url=url, **kw)
    return OpenAICompatibleStreamer(model="local", base_url=url, name=flavor, quirks=["no_done"], **kw)


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    """One OpenAI chat.completion.chunk event."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}) + "\n\n"


def named(name: str, data: dict[str, Any]) -> str:
    """One Anthropic event."""
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"


ANTHROPIC_START = named("message_start", {"message": {"model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}})


# --- 3. "finished" is what the wire says ----------------------------------------------------------


def test_done_without_any_finish_reason_is_incomplete(server: FakeLLMServer, recorder: Recorder) -> None:
    """[DONE] after only the role chunk (llama.cpp's interrupted stream) is IncompleteStreamError, not stop."""
    server.add(Reply(events=[chunk({"role": "assistant", "content": ""}), "data: [DONE]\n\n"]))
    make(server, "openai").stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("error", "IncompleteStreamError")]
    assert isinstance(recorder.error, IncompleteStreamError) and "finish" in str(recorder.error)
    assert recorder.error.partial is not None and recorder.error.partial.finish_reason == "error"


@pytest.mark.parametrize("flavor", ["openai", "mistral", "llamacpp"])
def test_done_after_text_without_finish_reason_keeps_the_partial(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """Text then [DONE] with no finish_reason ends in IncompleteStreamError carrying the text, on every chat-completions wire."""
    server.add(Reply(events=[chunk({"role": "assistant"}), chunk({"content": "Hel"}), chunk({"content": "lo"}), "data: [DONE]\n\n"]))
    make(server, flavor).stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("content", "Hel"), ("content", "lo"), ("error", "IncompleteStreamError")]
    assert recorder.error is not None and recorder.error.partial is not None
    assert recorder.error.partial.text == "Hello"


def test_anthropic_message_stop_without_stop_reason_is_incomplete(server: FakeLLMServer, recorder: Recorder) -> None:
    """message_stop with no message_delta stop_reason before it is not a finished answer."""
    events = [
        ANTHROPIC_START,
        named("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        named("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        named("content_block_stop", {"index": 0}),
        named("message_stop", {}),
    ]
    server.add(Reply(events=events))
    make(server, "anthropic").stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("content", "Hi"), ("error", "IncompleteStreamError")]
    assert recorder.error is not None and recorder.error.partial is not None and recorder.error.partial.text == "Hi"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_stated_finish_still_finishes(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """An ordinary stream with its finish reason and terminal event ends in on_finish, on every HTTP wire."""
    server.add(Reply(text=["Hi", " there"], usage=None))
    make(server, flavor).stream_chat(HI, recorder).wait(10)
    calls = [c for c in recorder.calls if c[0] != "usage"]  # some wires always count tokens
    assert calls == [("content", "Hi"), ("content", " there"), ("finish", "Hi there")]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"


# --- 4. the terminal event ends the stream -------------------------------------------------------


@pytest.mark.parametrize("flavor", ["openai", "anthropic", "mistral", "ollama"])
def test_terminal_event_then_an_idle_open_connection_finishes_at_once(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """After the terminal event on_finish fires without waiting for the body's end or the 30 s read timeout."""
    server.add(Reply(text=["Hi", " there"], usage=None, stall_after=HOLD))
    streamer = make(server, flavor, timeout=Timeout(connect=10, read=30))
    handle = streamer.stream_chat(HI, recorder)
    assert recorder.done.wait(5), "on_finish waited for the idle connection"
    handle.wait(5)
    calls = [c for c in recorder.calls if c[0] != "usage"]
    assert calls == [("content", "Hi"), ("content", " there"), ("finish", "Hi there")]
    assert server.wait_for(lambda: server.open_connections == 0), "the half-read connection was kept"
    server.add(Reply(text=["again"], usage=None))
    assert streamer.chat(HI).text == "again"  # the next request on the same streamer works


@pytest.mark.parametrize("flavor", ["openai", "anthropic", "ollama"])
def test_junk_after_the_terminal_event_is_ignored(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """More chunks and garbage after the terminal event are never read as part of the answer."""
    junk = ("data: {not json\n\n", chunk({"content": " extra"})) if flavor != "ollama" else ('{"broken\n', '{"message": {"content": " extra"}}\n')
    server.add(Reply(text=["Hi"], usage=None, trailing=junk, stall_after=HOLD))
    streamer = make(server, flavor, timeout=Timeout(connect=10, read=30))
    streamer.stream_chat(HI, recorder)
    assert recorder.done.wait(5)
    assert [c for c in recorder.calls if c[0] != "usage"] == [("content", "Hi"), ("finish", "Hi")]


def test_junk_after_done_on_a_finished_body_closes_instead_of_pooling(server: FakeLLMServer) -> None:
    """Bytes after [DONE] in a body that then ends: the answer is whole, the next request still works."""
    server.add(Reply(text=["Hi"], trailing=["data: {garbage\n\n"] * 3))
    server.add(Reply(text=["Bye"]))
    streamer = make(server, "openai")
    assert streamer.chat(HI).text == "Hi"
    assert streamer.chat(HI).text == "Bye"


@pytest.mark.parametrize("flavor", ["openai", "anthropic", "ollama"])
def test_a_clean_end_keeps_the_connection_for_the_next_request(server: FakeLLMServer, flavor: str) -> None:
    """A body that ends right after its terminal event goes back to the pool: two requests, one connection."""
    server.add(Reply(text=["one"]), Reply(text=["two"]))
    streamer = make(server, flavor)
    assert streamer.chat(HI).text == "one"
    assert streamer.chat(HI).text == "two"
    assert server.connections_opened == 1


def test_gemini_reads_to_the_end_of_the_body(server: FakeLLMServer) -> None:
    """Gemini has no terminal event: usage that follows the finishReason chunk is still read."""
    finish = {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}]}
    late = {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}}
    server.add(Reply(events=[f"data: {json.dumps(finish)}\n\n", f"data: {json.dumps(late)}\n\n"]))
    response = make(server, "gemini").chat(HI)
    assert response.text == "Hi" and response.usage is not None and response.usage.total_tokens == 5


def test_llamacpp_without_done_reads_usage_after_the_finish(server: FakeLLMServer) -> None:
    """With the no_done quirk a finish_reason ends the answer, and the usage chunk after it is still read."""
    usage = {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}
    server.add(Reply(events=[chunk({"content": "Hi"}), chunk({}, "stop"), f"data: {json.dumps(usage)}\n\n"]))
    streamer = OpenAICompatibleStreamer(model="m", base_url=server.base_url("llamacpp"), name="llamacpp", quirks=["no_done"], retry=0)
    response = streamer.chat(HI)
    assert response.text == "Hi" and response.finish_reason == "stop"
    assert response.usage is not None and response.usage.total_tokens == 3


# --- 5. a truncated tool call is not a tool call ------------------------------------------------

RAN: list[str] = []


@tool
def weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    RAN.append(city)
    return f"Sunny in {city}"


CUT = ToolCall("call_1", "weather", {}, '{"city": "Os')


@pytest.mark.parametrize("flavor", ["openai", "mistral", "openrouter"])
def test_length_mid_arguments_is_never_run(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """finish_reason length inside a call's arguments: finish is length, the call has its error, nothing runs."""
    RAN.clear()
    server.add(Reply(tool_calls=[CUT], finish_reason="length", usage=None))
    streamer = make(server, flavor) if flavor != "openrouter" else OpenAICompatibleStreamer(model="m", base_url=server.base_url(flavor), name=flavor, retry=0)
    streamer.stream_chat(HI, recorder, tools=[weather]).wait(10)
    assert [c for c in recorder.calls if c[0] != "usage"] == [("tool_call", "weather"), ("finish", "")]
    response = recorder.response
    assert response is not None and response.finish_reason == "length"
    (call,) = response.tool_calls
    assert call.error is not None and "token limit" in call.error and call.raw_arguments == '{"city": "Os'
    assert RAN == [] and len(server.requests) == 1


def test_length_after_complete_looking_arguments_still_marks_the_open_call(server: FakeLLMServer) -> None:
    """On the chat-completions wire a call still being written when the limit hit is truncated even if its JSON parses."""
    RAN.clear()
    server.add(Reply(tool_calls=[ToolCall("call_1", "weather", {"city": "Oslo"})], finish_reason="length"))
    response = make(server, "openai").chat(HI, tools=[weather])
    assert response.finish_reason == "length" and response.tool_calls[0].error is not None
    assert RAN == [] and len(server.requests) == 1


def anthropic_tool_events(stop: bool, reason: str) -> list[str]:
    """An Anthropic tool_use block whose input is cut (no content_block_stop) or complete."""
    out = [
        ANTHROPIC_START,
        named("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}}),
        named("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        named("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}' if stop else '"Os'}}),
    ]
    if stop:
        out.append(named("content_block_stop", {"index": 0}))
    out.append(named("message_delta", {"delta": {"stop_reason": reason, "stop_sequence": None}, "usage": {"output_tokens": 9}}))
    out.append(named("message_stop", {}))
    return out


def test_anthropic_max_tokens_inside_input_json_is_never_run(server: FakeLLMServer, recorder: Recorder) -> None:
    """stop_reason max_tokens with an unterminated input_json_delta: length, the call's error, no tool run."""
    RAN.clear()
    server.add(Reply(events=anthropic_tool_events(stop=False, reason="max_tokens")))
    make(server, "anthropic").stream_chat(HI, recorder, tools=[weather]).wait(10)
    assert [c for c in recorder.calls if c[0] != "usage"] == [("tool_call", "weather"), ("finish", "")]
    assert recorder.response is not None and recorder.response.finish_reason == "length"
    (call,) = recorder.response.tool_calls
    assert call.error is not None and "token limit" in call.error
    assert RAN == [] and len(server.requests) == 1


def test_anthropic_complete_call_before_the_limit_keeps_no_error(server: FakeLLMServer) -> None:
    """A tool block closed by content_block_stop before max_tokens is whole (no error), but the cut round runs nothing."""
    RAN.clear()
    server.add(Reply(events=anthropic_tool_events(stop=True, reason="max_tokens")))
    response = make(server, "anthropic").chat(HI, tools=[weather])
    assert response.finish_reason == "length"
    (call,) = response.tool_calls
    assert call.error is None and dict(call.arguments) == {"city": "Oslo"}
    assert RAN == [] and len(server.requests) == 1


def test_anthropic_tool_use_still_runs(server: FakeLLMServer) -> None:
    """The same complete block with stop_reason tool_use runs the tool and goes on."""
    RAN.clear()
    server.add(Reply(events=anthropic_tool_events(stop=True, reason="tool_use")), Reply(text="Sunny."))
    response = make(server, "anthropic").chat(HI, tools=[weather])
    assert response.finish_reason == "stop" and response.text == "Sunny." and RAN == ["Oslo"]


@pytest.mark.parametrize("flavor", ["ollama", "gemini"])
def test_whole_calls_in_a_cut_round_are_not_run(server: FakeLLMServer, flavor: str) -> None:
    """Wires that send calls whole: a round that ends in length runs none of its calls."""
    RAN.clear()
    server.add(Reply(tool_calls=[ToolCall("call_1", "weather", {"city": "Oslo"})], finish_reason="length"))
    response = make(server, flavor).chat(HI, tools=[weather])
    assert response.finish_reason == "length" and [c.name for c in response.tool_calls] == ["weather"]
    assert RAN == [] and len(server.requests) == 1


# --- 6. tool calls keep the wire's order --------------------------------------------------------


def test_tool_calls_are_ordered_by_index_whatever_order_fragments_arrive(server: FakeLLMServer, recorder: Recorder) -> None:
    """Fragments of index 1 before index 0, interleaved: the calls come out as index 0, then 1."""
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    events = [
        chunk({"role": "assistant", "content": None}),
        chunk(call(1, id="call_b", type="function", function={"name": "second", "arguments": ""})),
        chunk(call(0, id="call_a", type="function", function={"name": "first", "arguments": '{"n":'})),
        chunk(call(1, function={"arguments": '{"n": 2}'})),
        chunk(call(0, function={"arguments": " 1}"})),
        chunk({}, "tool_calls"),
        "data: [DONE]\n\n",
    ]
    server.add(Reply(events=events))
    make(server, "openai").stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("tool_call", "first"), ("tool_call", "second"), ("finish", "")]
    assert recorder.response is not None
    assert [(c.id, dict(c.arguments)) for c in recorder.response.tool_calls] == [("call_a", {"n": 1}), ("call_b", {"n": 2})]
    assert recorder.response.finish_reason == "tool_calls"
