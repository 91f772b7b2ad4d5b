"""ModelSocket held to the HTTP providers' rules: key hygiene, caller-run tools, error codes."""

from __future__ import annotations

from typing import Any

import pytest

from llmstreamer import (
    AuthenticationError,
    ConfigurationError,
    Conversation,
    LLMStreamError,
    Message,
    ModelSocketClient,
    ModelSocketStreamer,
    RateLimitError,
    ServerError,
    Timeout,
    Tool,
    ToolResult,
)
from llmstreamer.testing.modelsocket import Fail, FakeModelSocketServer, Generation, ToolCalls

from ..conftest import Recorder, wait_until
from .conftest import MODELSOCKET_KEY, MODELSOCKET_MODEL

KEY, MODEL = MODELSOCKET_KEY, MODELSOCKET_MODEL
HI = [Message.user("Weather in Paris?")]
# a declaration only: the model sees it, the caller runs it
WEATHER = Tool("get_weather", "The weather in a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CALL = {"name": "get_weather", "args": '{"city": "Paris"}', "id": "functions.get_weather:0"}


def data(request: dict[str, Any]) -> dict[str, Any]:
    return dict(request["data"])


# --- key hygiene: one Secret, one redaction rule -------------------------------------------------


def test_a_short_key_never_mangles_text(ms: FakeModelSocketServer) -> None:
    """A one-letter key is not "redacted" out of messages: the refusal reads "invalid API key" intact."""
    with pytest.raises(AuthenticationError) as refused:
        ModelSocketClient.connect(ms.url, "e", timeout=5)
    assert "invalid API key" in str(refused.value) and "***" not in str(refused.value)


def test_a_real_key_is_still_redacted() -> None:
    """The shared rule still hides a key of real length wherever it appears."""
    from llmstreamer._secret import Secret

    assert Secret(KEY).redact(f"bad key {KEY}!") == "bad key ***!"
    assert Secret("k").redact("keep k") == "keep k"


# --- declaration-only tools end the stream with tool_calls -----------------------------------------


def test_declaration_only_tool_ends_with_tool_calls(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """A call of a tool without a function ends the stream with finish_reason tool_calls and the call, as over HTTP."""
    ms.add(Generation(["Let me check. ", ToolCalls([CALL]), "It is", " sunny."]))
    streamer.stream_chat(HI, recorder, tools=[WEATHER]).wait(5)
    usage = [c for c in recorder.calls if c[0] == "usage"]  # token counts as the fake server reports them
    assert recorder.calls == [("content", "Let me check. "), ("tool_call", "get_weather"), *usage, ("finish", "Let me check. ")]
    assert len(usage) == 1
    response = recorder.response
    assert response is not None and response.finish_reason == "tool_calls"
    assert [(c.id, c.name, dict(c.arguments)) for c in response.tool_calls] == [("functions.get_weather:0", "get_weather", {"city": "Paris"})]
    assert ms.commands("tool_return") == []
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")


def test_conversation_continues_after_caller_run_tools(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """In a Conversation the caller's tool results go in the next turn, which starts a fresh sequence with the history."""
    chat = Conversation(streamer)
    ms.add(Generation([ToolCalls([CALL])]), Generation("Sunny, then."))
    first = chat.send("Weather in Paris?", tools=[WEATHER]).result(5)
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    second = chat.send(Message.tool([ToolResult(call.id, call.name, "sunny")]), tools=[WEATHER]).result(5)
    assert second.text == "Sunny, then." and second.finish_reason == "stop"
    assert ("system", "Result of tool get_weather (call functions.get_weather:0): sunny") in ms.sequences["seq_2"].context


# --- Seq.tool_return: the manual flow continues the same generation --------------------------------


def test_seq_tool_return_continues_the_same_generation(ms: FakeModelSocketServer, client: ModelSocketClient, recorder: Recorder) -> None:
    """generate stops on the caller's tool; tool_return sends the results on the gen's cid and streams the rest."""
    seq = client.open(MODEL, toolbox=[WEATHER])
    seq.append("Weather in Paris?")
    ms.add(Generation(["Let me check. ", ToolCalls([CALL]), "It is", " sunny."]))
    first = seq.generate(temperature=0.3).result(5)
    assert first.finish_reason == "tool_calls" and first.text == "Let me check. "
    assert wait_until(lambda: seq.state == "tool_call")  # the server's seq_state may come just after
    with pytest.raises(ConfigurationError, match="tool_return"):
        seq.generate()
    with pytest.raises(ConfigurationError, match="1 tool call"):
        seq.tool_return(["one", "two"])
    (call,) = first.tool_calls
    seq.tool_return([ToolResult(call.id, call.name, "sunny in Paris")], recorder).wait(5)
    usage = [c for c in recorder.calls if c[0] == "usage"]  # token counts as the fake server reports them
    assert recorder.calls == [("content", "It is"), ("content", " sunny."), *usage, ("finish", "It is sunny.")]
    assert len(usage) == 1
    assert recorder.response is not None and recorder.response.finish_reason == "stop"
    gen, returned = ms.commands("gen"), ms.commands("tool_return")
    assert len(gen) == 1 and len(returned) == 1 and returned[0]["cid"] == gen[0]["cid"]
    assert data(returned[0]) == {
        "command": "tool_return",
        "results": [{"name": "get_weather", "result": "sunny in Paris", "id": "functions.get_weather:0"}],
        "gen_opts": {"role": "assistant", "temperature": 0.3},
    }
    assert wait_until(lambda: seq.state == "ready")
    with pytest.raises(ConfigurationError, match="no generation waiting"):
        seq.tool_return(["again"])
    ms.add(Generation("Next."))
    assert seq.generate().result(5).text == "Next."  # the sequence is usable again


def test_seq_tool_return_takes_plain_strings(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """One string per call is enough: the result is named after its call."""
    seq = client.open(MODEL, toolbox=[WEATHER])
    seq.append("Weather?")
    ms.add(Generation([ToolCalls([CALL]), "Done."]))
    assert seq.generate().result(5).finish_reason == "tool_calls"
    assert seq.tool_return("warm").result(5).text == "Done."
    assert data(ms.commands("tool_return")[0])["results"] == [{"name": "get_weather", "result": "warm", "id": "functions.get_weather:0"}]


def test_closing_a_waiting_sequence_is_clean(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """A sequence left waiting for tool results closes normally, and then refuses tool_return."""
    seq = client.open(MODEL, toolbox=[WEATHER])
    seq.append("Weather?")
    ms.add(Generation([ToolCalls([CALL]), "never"]))
    assert seq.generate().result(5).finish_reason == "tool_calls"
    seq.close()
    assert seq.state == "closed"
    with pytest.raises(ConfigurationError):
        seq.tool_return("warm")


# --- in-band error codes written as numbers ---------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), [("500", ServerError), ("429", RateLimitError)])
def test_error_event_with_a_numeric_string_code(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, code: str, cls: type) -> None:
    """An error event whose code is "500" or "429" maps like that HTTP status, with status_code set."""
    ms.add(Generation(["so", Fail("upstream failed", code=code)]))
    with pytest.raises(LLMStreamError) as failed:
        streamer.chat(HI)
    err = failed.value
    assert type(err) is cls and err.status_code == int(code)  # type: ignore[attr-defined]
    assert err.partial is not None and err.partial.text == "so"


# --- the finish ends the stream --------------------------------------------------------------------


def test_finish_does_not_wait_for_a_slow_close(ms: FakeModelSocketServer, recorder: Recorder) -> None:
    """After seq_gen_finish, a server that never answers close holds on_finish for about a second, not the 30 s read timeout."""
    ms.ignore_close = True
    s = ModelSocketStreamer(model=MODEL, api_key=KEY, base_url=ms.url, timeout=Timeout(connect=5, read=30), retry=0)
    try:
        ms.add(Generation("All done."))
        s.stream_chat(HI, recorder)
        assert recorder.done.wait(10), "on_finish waited for seq_closed"
        usage = [c for c in recorder.calls if c[0] == "usage"]  # from seq_text: seq_closed never came
        assert recorder.calls == [("content", "All"), ("content", " done."), *usage, ("finish", "All done.")]
    finally:
        s.close()
