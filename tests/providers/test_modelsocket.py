"""ModelSocket: sequences over one WebSocket, routed by cid, against a real loopback server."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CallbackError,
    ConfigurationError,
    Conversation,
    LLMStreamError,
    Message,
    ModelSocketClient,
    ModelSocketStreamer,
    NotFoundError,
    RateLimitError,
    StreamCancelled,
    StreamError,
    Timeout,
    ToolCall,
    ToolResult,
    tool,
)
from llmstreamer.testing.modelsocket import (
    CloseSeq,
    Drop,
    Fail,
    FakeModelSocketServer,
    Generation,
    GenRequest,
    Hidden,
    Hold,
    Raw,
    ToolCalls,
)

from ..conftest import Recorder
from .conftest import MODELSOCKET_KEY, MODELSOCKET_MODEL

KEY, MODEL = MODELSOCKET_KEY, MODELSOCKET_MODEL
HI = [Message.user("Hi")]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "modelsocket_fork.py"


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny in {city}"


@tool(permission="write")
def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: Which file.
    """
    return "deleted"


def data(frame: dict[str, Any]) -> dict[str, Any]:
    return frame["data"]  # type: ignore[no-any-return]


class Blocking(Recorder):
    """A recorder whose first ``on_content`` blocks until ``release`` is set (a slow consumer)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked = threading.Event()
        self.release = threading.Event()

    def on_content(self, text: str) -> None:
        if not self.blocked.is_set():
            self.blocked.set()
            assert self.release.wait(10)
        super().on_content(text)


# --- a chat turn --------------------------------------------------------------------------------


def test_chat_turn(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """A bare stream_chat opens a sequence, appends, generates, closes; hidden BOS/EOS never reach on_content."""
    ms.add(Generation("Hello there"))
    assert streamer.stream_chat([Message.system("Be kind."), *HI], recorder).wait(5)
    assert recorder.calls == [("content", "Hello"), ("content", " there"), ("usage", 8, 2), ("finish", "Hello there")]
    assert [(f.get("request"), data(f).get("command")) for f in ms.requests] == [
        ("seq_open", None),
        ("seq_command", "append"),
        ("seq_command", "append"),
        ("seq_command", "gen"),
        ("seq_command", "close"),
    ]
    opened, system, user, gen, close = ms.requests
    assert data(opened) == {"model": MODEL}
    assert data(system) == {"command": "append", "text": "Be kind.", "role": "system"}
    assert data(user) == {"command": "append", "text": "Hi", "role": "user"}
    assert data(gen) == {"command": "gen", "role": "assistant"}
    assert {f["seq_id"] for f in (system, user, gen, close)} == {"seq_1"}
    assert len({f["cid"] for f in ms.requests}) == 5
    assert ms.sequences["seq_1"].state == "closed"
    response = recorder.response
    assert response is not None
    assert (response.provider, response.model, response.finish_reason) == ("modelsocket", MODEL, "stop")
    assert recorder.threads and all(t.startswith("llmstreamer-modelsocket-") for t in recorder.threads)
    handshake = ms.handshakes[0]
    assert handshake["authorization"] == f"Bearer {KEY}"
    assert handshake["sec-websocket-protocol"] == "modelsocket.v0"


def test_options_reach_the_gen_command(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Sampling options, stop strings, extra fields and the system option are sent as the protocol names them."""
    streamer.chat(
        HI,
        system="Short answers.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_tokens=50,
        stop=["\n\n", "END"],
        seed=7,
        extra={"repeat_penalty": 1.1},
    )
    assert data(ms.commands("append")[0]) == {"command": "append", "text": "Short answers.", "role": "system"}
    assert data(ms.commands("gen")[0]) == {
        "command": "gen",
        "role": "assistant",
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 50,
        "seed": 7,
        "stop_strings": ["\n\n", "END"],
        "repeat_penalty": 1.1,
    }


def test_unsupported_options_fail_before_connecting(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """An option ModelSocket cannot honour, an image or a negative seed raises before any handshake."""
    with pytest.raises(ConfigurationError, match="reasoning"):
        streamer.stream_chat(HI, reasoning="high")
    with pytest.raises(ConfigurationError, match="text only"):
        streamer.stream_chat([Message.user("look", images=[b"\x89PNG\r\n\x1a\n...."])])
    with pytest.raises(ConfigurationError, match="seed"):
        streamer.stream_chat(HI, seed=-1)
    with pytest.raises(ConfigurationError, match="ws://"):
        ModelSocketStreamer(model=MODEL, api_key=KEY, base_url="http://127.0.0.1:1/ws")
    assert ms.handshakes == []


def test_max_tokens_cut_is_length(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """A generation cut by max_tokens (no hidden EOS) finishes with "length"; a natural end with "stop"."""
    ms.add(Generation("one two three four five"), Generation("one two"))
    cut = streamer.chat(HI, max_tokens=3)
    assert (cut.text, cut.finish_reason) == ("one two three", "length")
    whole = streamer.chat(HI, max_tokens=3)
    assert (whole.text, whole.finish_reason) == ("one two", "stop")


def test_registry_and_repr(ms: FakeModelSocketServer) -> None:
    """The registry builds the streamer from "modelsocket:model"; MODELSOCKET_URL is the default base_url."""
    s = llmstreamer.streamer(f"modelsocket:{MODEL}", api_key=KEY, base_url=ms.url)
    assert isinstance(s, ModelSocketStreamer) and s.model == MODEL
    assert ModelSocketStreamer(api_key=KEY).base_url == "wss://models.mixlayer.ai/ws"
    with pytest.raises(ConfigurationError, match="MODELSOCKET_API_KEY"):
        ModelSocketStreamer(model=MODEL)
    assert KEY not in repr(s)
    s.close()


# --- conversations: state on the server ---------------------------------------------------------


def test_second_turn_sends_only_the_new_text(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Within a Conversation the sequence stays open and the second turn appends only the new user text."""
    chat = Conversation(streamer)
    assert chat.send("My name is Ada.", system="Be brief.").result(5).text == "You said: My name is Ada."
    assert chat.send("What is my name?").result(5).text == "You said: What is my name?"
    assert len(ms.commands("seq_open")) == 1
    assert [data(f)["text"] for f in ms.commands("append")] == ["Be brief.", "My name is Ada.", "What is my name?"]
    assert ms.commands("close") == []
    assert ms.sequences["seq_1"].context == [
        ("system", "Be brief."),
        ("user", "My name is Ada."),
        ("assistant", "You said: My name is Ada."),
        ("user", "What is my name?"),
        ("assistant", "You said: What is my name?"),
    ]
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "assistant"]


def test_failed_turn_starts_a_fresh_sequence(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """A failed turn closes its sequence; the next turn opens a new one and sends the whole history."""
    chat = Conversation(streamer)
    chat.send("one").result(5)
    ms.add(Generation(["par", Fail("boom", code="server_error")]))
    with pytest.raises(LLMStreamError, match="boom"):
        chat.send("two").result(5)
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")
    assert chat.send("three").result(5).text == "You said: three"
    assert [data(f)["text"] for f in ms.commands("append")] == ["one", "two", "one", "You said: one", "three"]
    assert [data(f)["role"] for f in ms.commands("append")][2:] == ["user", "assistant", "user"]


def test_session_close_releases_the_sequence(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Closing a conversation's session closes its sequence; the next turn re-sends the history on a new one."""
    chat = Conversation(streamer)
    chat.send("one").result(5)
    chat._state.close()
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")
    chat.send("two").result(5)
    assert [data(f)["text"] for f in ms.commands("append")] == ["one", "one", "You said: one", "two"]


def test_conversation_fork_forks_the_sequence(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Conversation.fork() forks the server sequence: both continue independently from the shared context."""
    chat = Conversation(streamer)
    chat.send("Tell me a story.").result(5)
    other = chat.fork()
    assert len(ms.commands("fork")) == 1
    assert other.send("Make it sad.").result(5).text == "You said: Make it sad."
    assert chat.send("Make it happy.").result(5).text == "You said: Make it happy."
    parent, child = ms.sequences["seq_1"], ms.sequences["seq_2"]
    assert child.parent == "seq_1"
    shared = [("user", "Tell me a story."), ("assistant", "You said: Tell me a story.")]
    assert parent.context == [*shared, ("user", "Make it happy."), ("assistant", "You said: Make it happy.")]
    assert child.context == [*shared, ("user", "Make it sad."), ("assistant", "You said: Make it sad.")]
    assert len(ms.commands("seq_open")) == 1


def test_seq_fork_gives_two_independent_continuations(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """seq.fork() returns a sequence with the same model and tools; both generate their own continuation at once."""
    seq = client.open(MODEL, skip_prelude=True)
    seq.append("The capital of France is")
    child = seq.fork()
    assert (child.model, child.toolbox, child.id) == (seq.model, seq.toolbox, "seq_2")
    seq.append("Paris, and of Italy")
    child.append("Paris, and of Spain")
    a, b = Recorder(), Recorder()
    ha, hb = seq.generate(a), child.generate(b)
    assert ha.wait(5) and hb.wait(5)
    assert a.calls[-1] == ("finish", "You said: Paris, and of Italy")
    assert b.calls[-1] == ("finish", "You said: Paris, and of Spain")
    assert data(ms.commands("seq_open")[0]) == {"model": MODEL, "skip_prelude": True}
    assert ms.sequences["seq_2"].context[0] == ("user", "The capital of France is")


# --- tools --------------------------------------------------------------------------------------


def test_tool_round_trip_uses_the_generation_cid(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """A seq_tool_call runs the tool; the result goes back as tool_return on the gen's cid with its gen_opts."""
    from llmstreamer.tools import tool_prompt

    call = {"name": "get_weather", "args": '{"city": "Paris"}', "id": "functions.get_weather:0"}
    ms.add(Generation(["Let me check. ", ToolCalls([call]), "It is", " sunny."]))
    streamer.stream_chat([Message.user("Weather in Paris?")], recorder, tools=[get_weather], temperature=0.3).wait(5)
    assert recorder.calls == [
        ("content", "Let me check. "),
        ("tool_call", "get_weather"),
        ("tool_result", "get_weather", "sunny in Paris"),
        ("content", "It is"),
        ("content", " sunny."),
        ("usage", ms.sequences["seq_1"].tokens(), 6),
        ("finish", "Let me check. It is sunny."),
    ]
    opened = data(ms.commands("seq_open")[0])
    assert opened == {"model": MODEL, "tools_enabled": True}
    definitions = data(ms.commands("append")[0])
    assert definitions == {"command": "append", "text": tool_prompt([get_weather]), "role": "system"}
    gen, returned = ms.commands("gen")[0], ms.commands("tool_return")[0]
    assert returned["cid"] == gen["cid"] and returned["seq_id"] == gen["seq_id"]
    assert data(returned) == {
        "command": "tool_return",
        "results": [{"name": "get_weather", "result": "sunny in Paris", "id": "functions.get_weather:0"}],
        "gen_opts": {"role": "assistant", "temperature": 0.3},
    }
    response = recorder.response
    assert response is not None
    assert [m.role for m in response.messages] == ["assistant", "tool", "assistant"]
    assert response.tool_calls == (ToolCall("functions.get_weather:0", "get_weather", {"city": "Paris"}, '{"city": "Paris"}'),)
    assert response.messages[1].tool_results == (ToolResult("functions.get_weather:0", "get_weather", "sunny in Paris"),)


def test_tool_rounds_are_bounded_by_max_iterations(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """Past max_iterations tool rounds the stream ends with finish_reason "max_iterations" and the sequence is closed."""
    call = {"name": "get_weather", "args": '{"city": "Oslo"}'}
    ms.add(Generation([ToolCalls([call]), "again", ToolCalls([call]), "never"]))
    streamer.stream_chat(HI, recorder, tools=[get_weather], max_iterations=1).wait(5)
    assert recorder.kinds() == ["tool_call", "tool_result", "content", "tool_call", "usage", "finish"]
    assert recorder.response is not None and recorder.response.finish_reason == "max_iterations"
    assert len(ms.commands("tool_return")) == 1
    assert "id" not in data(ms.commands("tool_return")[0])["results"][0]
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")


def test_confirm_tool_decides_and_a_raising_confirm_stops(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """A write tool runs only when confirm_tool approves; a confirm_tool that raises ends in CallbackError."""
    call = {"name": "delete_file", "args": '{"path": "/tmp/x"}'}
    ms.add(Generation([ToolCalls([call]), "done"]))
    response = streamer.chat(HI, tools=[delete_file], confirm_tool=lambda c: (False, "not today"))
    assert response.messages[1].tool_results[0].content == "refused: not today"
    assert data(ms.commands("tool_return")[0])["results"] == [{"name": "delete_file", "result": "refused: not today"}]

    def explode(c: ToolCall) -> bool:
        raise RuntimeError("no")

    ms.add(Generation([ToolCalls([call]), "done"]))
    rec = Recorder()
    streamer.stream_chat(HI, rec, tools=[delete_file], confirm_tool=explode).wait(5)
    assert rec.calls == [("tool_call", "delete_file"), ("error", "CallbackError")]
    assert isinstance(rec.error, CallbackError) and isinstance(rec.error.__cause__, RuntimeError)
    assert ms.wait_for(lambda: ms.sequences["seq_2"].state == "closed")


def test_seq_open_with_toolbox_runs_tools(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """client.open(model, toolbox=...) sends tools_enabled and tool_prompt; Seq.generate runs the tools."""
    seq = client.open(MODEL, toolbox=[get_weather], tool_prompt="Call tools as JSON.")
    assert data(ms.commands("seq_open")[0]) == {"model": MODEL, "tools_enabled": True, "tool_prompt": "Call tools as JSON."}
    seq.append("Weather in Rome?")
    ms.add(Generation([ToolCalls([{"name": "get_weather", "args": '{"city": "Rome"}'}]), "Warm."]))
    response = seq.generate(top_k=5, repeat_penalty=1.2).result(5)
    assert response.text == "Warm."
    assert response.tool_calls[0].id == "call_1_1"
    assert data(ms.commands("tool_return")[0])["gen_opts"] == {"role": "assistant", "top_k": 5, "repeat_penalty": 1.2}
    assert ("tool", "get_weather: sunny in Rome") in ms.sequences[seq.id].context


def test_conversation_keeps_the_sequence_across_tool_turns(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Turns with the same tools reuse the sequence (definitions sent once); different tools open a new one."""
    chat = Conversation(streamer)
    call = {"name": "get_weather", "args": '{"city": "Lima"}'}
    ms.add(Generation([ToolCalls([call]), "Mild."]))
    assert chat.send("Weather in Lima?", tools=[get_weather]).result(5).text == "Mild."
    assert chat.send("Thanks!", tools=[get_weather]).result(5).text == "You said: Thanks!"
    assert len(ms.commands("seq_open")) == 1
    assert [data(f)["role"] for f in ms.commands("append")] == ["system", "user", "user"]
    assert [m.role for m in chat.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    chat.send("And now?", tools=[get_weather, delete_file]).result(5)
    assert len(ms.commands("seq_open")) == 2
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")


def test_idle_and_total_timeouts(ms: FakeModelSocketServer) -> None:
    """A silent generation fails with APITimeoutError (read, or total) and its sequence is closed."""
    gate = threading.Event()
    ms.add(Generation(["a", Hold(gate)]), Generation(["b", Hold(gate)]))
    idle = ModelSocketStreamer(model=MODEL, api_key=KEY, base_url=ms.url, timeout=Timeout(read=0.2), retry=0)
    total = ModelSocketStreamer(model=MODEL, api_key=KEY, base_url=ms.url, timeout=Timeout(total=0.3), retry=0)
    try:
        with pytest.raises(APITimeoutError) as read:
            idle.chat(HI)
        with pytest.raises(APITimeoutError) as whole:
            total.chat(HI)
    finally:
        idle.close()
        total.close()
        gate.set()
    assert (read.value.kind, whole.value.kind) == ("read", "total")
    assert read.value.partial is not None and read.value.partial.text == "a"
    assert ms.wait_for(lambda: all(seq.state == "closed" for seq in ms.sequences.values()))


# --- many sequences on one connection ----------------------------------------------------------


def test_twenty_sequences_route_while_one_consumer_blocks(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """20 interleaved generations on one connection each get exactly their own events; a blocked consumer stalls only itself."""
    seqs = [client.open(MODEL) for _ in range(20)]
    for i, seq in enumerate(seqs):
        seq.append(f"number {i} speaking")
    ms.pause()  # let all 20 gens arrive, then the server interleaves them one event at a time
    slow = Blocking()
    recorders = [slow, *(Recorder() for _ in range(19))]
    handles = [seq.generate(rec) for seq, rec in zip(seqs, recorders)]
    assert ms.wait_for(lambda: len(ms.commands("gen")) == 20)
    ms.resume()
    assert slow.blocked.wait(5)
    assert all(h.wait(5) for h in handles[1:])
    assert not handles[0].done()
    slow.release.set()
    assert handles[0].wait(5)
    for i, rec in enumerate(recorders):
        assert rec.calls == [
            ("content", "You"),
            ("content", " said:"),
            ("content", " number"),
            ("content", f" {i}"),
            ("content", " speaking"),
            ("usage", 4, 6),
            ("finish", f"You said: number {i} speaking"),
        ]
    assert ms.open_connections == 1


# --- errors -------------------------------------------------------------------------------------


def test_error_by_cid_fails_that_command_only(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """An error with a cid fails only its command; the refused sequence stays usable, the others go on."""
    a, b = client.open(MODEL), client.open(MODEL)
    a.append("x")
    b.append("y")
    gate = threading.Event()
    ms.add(Generation(["A", Hold(gate), "B"]), Generation([Fail("bad temperature", code="invalid_request_error")]))
    rb, ra = Recorder(), Recorder()
    hb = b.generate(rb)
    assert ms.wait_for(lambda: len(ms.commands("gen")) == 1)
    ha = a.generate(ra)
    assert ha.wait(5)
    assert ra.calls == [("error", "BadRequestError")]
    assert isinstance(ra.error, BadRequestError) and ra.error.status_code == 400
    assert ra.error.error_type == "invalid_request_error"
    gate.set()
    assert hb.wait(5)
    assert rb.calls[-1] == ("finish", "AB")
    assert not a.closed
    assert a.generate().result(5).text == "You said: x"


def test_error_by_seq_id_fails_every_pending_command_of_the_sequence(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """An error with a seq_id and no cid fails what is pending on that sequence, not on others."""
    a, b = client.open(MODEL), client.open(MODEL)
    a.append("x")
    b.append("y")
    ms.add(Generation(["par", Fail("the model crashed", route="seq")]))
    ra = Recorder()
    a.generate(ra).wait(5)
    assert ra.calls == [("content", "par"), ("error", "StreamError")]
    assert isinstance(ra.error, StreamError) and "the model crashed" in str(ra.error)
    assert ra.error.partial is not None and ra.error.partial.text == "par"
    assert b.generate().result(5).text == "You said: y"


def test_error_without_cid_or_seq_is_only_logged(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, caplog: pytest.LogCaptureFixture) -> None:
    """An error event with neither cid nor seq_id is logged; the stream goes on."""
    ms.add(Generation(["a", Fail("maintenance soon", route="none"), "b"]))
    with caplog.at_level(logging.WARNING, logger="llmstreamer"):
        assert streamer.chat(HI).text == "ab"
    assert any("maintenance soon" in r.getMessage() for r in caplog.records)


def test_rate_limit_error_carries_retry_after(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """code rate_limit_exceeded becomes RateLimitError with retry_after from details.retry_after_ms."""
    details = {"rpm_limit": 10, "rpm_remaining": 0, "retry_after_ms": 1500}
    ms.add(Generation([Fail("slow down", code="rate_limit_exceeded", details=details)]))
    with pytest.raises(RateLimitError) as info:
        streamer.chat(HI)
    assert (info.value.status_code, info.value.retry_after, info.value.error_type) == (429, 1.5, "rate_limit_exceeded")


def test_rate_limit_before_output_is_retried(ms: FakeModelSocketServer, recorder: Recorder) -> None:
    """A rate limit before any output is retried after the server's hint, on a fresh sequence."""
    ms.add(Generation([Fail("slow down", code="rate_limit_exceeded", details={"retry_after_ms": 10})]))
    s = ModelSocketStreamer(model=MODEL, api_key=KEY, base_url=ms.url, timeout=5, retry=1)
    try:
        s.stream_chat(HI, recorder).wait(5)
    finally:
        s.close()
    assert recorder.calls == [
        ("retry", "RateLimitError", 1),
        ("content", "You"),
        ("content", " said:"),
        ("content", " Hi"),
        ("usage", 6, 3),
        ("finish", "You said: Hi"),
    ]
    assert len(ms.commands("seq_open")) == 2


def test_seq_closed_with_an_error_fails_the_generation(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """A server-initiated seq_closed (no cid) with an error fails the pending generation, keeping the partial text."""
    ms.add(Generation(["Once", " upon", CloseSeq("out of memory")]))
    streamer.stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Once"), ("content", " upon"), ("error", "StreamError")]
    assert recorder.error is not None and "out of memory" in str(recorder.error)
    assert recorder.error.partial is not None and recorder.error.partial.text == "Once upon"
    assert ms.commands("close") == []  # the server closed it already


def test_seq_close_accepts_seq_closed_without_cid(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """seq.close() returns when seq_closed arrives without a cid, as servers may send it."""
    ms.close_without_cid = True
    seq = client.open(MODEL)
    seq.close()
    assert seq.closed and seq.state == "closed"
    with pytest.raises(ConfigurationError, match="closed"):
        seq.append("more")


def test_unknown_model_fails_the_open(ms: FakeModelSocketServer) -> None:
    """An error on the seq_open's cid (model_not_found) fails the open as NotFoundError."""
    ms.models = (MODEL,)
    with ModelSocketClient.connect(ms.url, KEY, timeout=5) as c:
        with pytest.raises(NotFoundError, match="unknown model"):
            c.open("no/such-model")
        assert c.open(MODEL).id == "seq_1"


def test_commands_on_a_busy_sequence_are_refused(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """While a generation runs, the sequence refuses other commands instead of confusing the server."""
    seq = client.open(MODEL)
    gate = threading.Event()
    ms.add(Generation(["a", Hold(gate)]))
    handle = seq.generate()
    with pytest.raises(ConfigurationError, match="busy"):
        seq.append("wait")
    with pytest.raises(ConfigurationError, match="busy"):
        seq.fork()
    gate.set()
    assert handle.result(5).text == "a"
    seq.append("now", role="system", hidden=True)
    assert data(ms.commands("append")[-1]) == {"command": "append", "text": "now", "role": "system", "hidden": True}


def test_malformed_frame_fails_only_its_command(ms: FakeModelSocketServer, client: ModelSocketClient, caplog: pytest.LogCaptureFixture) -> None:
    """A frame that does not parse fails the command its cid names; one without a cid is logged; others go on."""
    a, b = client.open(MODEL), client.open(MODEL)
    a.append("x")
    b.append("y")

    def broken(req: GenRequest) -> Generation:
        return Generation(["ok", Raw('{"event": "seq_text", "cid": "' + req.cid + '", "text": ')])

    # a cid that is not a string is as malformed as a frame that is not JSON: logged, not fatal
    odd = Raw('{"event": "seq_text", "cid": ["x"], "text": "?"}')
    ms.add(broken, Generation(["b", Raw("not json at all"), odd, Raw('{"event": "seq_future", "cid": "zzz"}'), "c"]))
    with caplog.at_level(logging.WARNING, logger="llmstreamer"):
        ra = Recorder()
        a.generate(ra).wait(5)
        assert ra.calls == [("content", "ok"), ("error", "StreamError")]
        assert b.generate().result(5).text == "bc"
    assert any("malformed frame" in r.getMessage() for r in caplog.records)


def test_handshake_refusals_map_to_errors(ms: FakeModelSocketServer) -> None:
    """A wrong key is AuthenticationError, a 429 handshake RateLimitError with retry-after, a refused port APIConnectionError."""
    with pytest.raises(AuthenticationError, match="invalid API key"):
        ModelSocketClient.connect(ms.url, "wrong-key", timeout=5)
    with FakeModelSocketServer(handshake_status=429, handshake_headers={"Retry-After": "7"}) as busy:
        with pytest.raises(RateLimitError) as info:
            ModelSocketClient.connect(busy.url, "test-key", timeout=5)
        assert info.value.retry_after == 7.0
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(APIConnectionError) as refused:
        ModelSocketClient.connect(f"ws://127.0.0.1:{port}/ws", KEY, timeout=5)
    assert type(refused.value) is APIConnectionError and isinstance(refused.value.__cause__, OSError)


def test_handshake_redirect_is_not_followed(ms: FakeModelSocketServer) -> None:
    """A redirected handshake is refused, so the key never reaches the other origin."""
    with FakeModelSocketServer(api_key=None, redirect_to=ms.url) as mover:
        with pytest.raises(APIConnectionError, match="redirect"):
            ModelSocketClient.connect(mover.url, KEY, timeout=5)
        assert len(mover.handshakes) == 1
    assert ms.handshakes == []


# --- connection loss, cancel, close -------------------------------------------------------------


def test_dropped_connection_fails_every_pending_stream_once(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """When the server drops the connection mid-generation, every pending stream fails once with APIConnectionError."""
    seqs = [client.open(MODEL) for _ in range(3)]
    gate = threading.Event()
    for seq in seqs:
        seq.append("hello")
    ms.add(*(Generation(["Hi", Hold(gate)]) for _ in seqs))
    recorders = [Recorder() for _ in seqs]
    handles = [seq.generate(rec) for seq, rec in zip(seqs, recorders)]
    assert ms.wait_for(lambda: all(rec.calls for rec in recorders))
    ms.drop()
    assert all(h.wait(5) for h in handles)
    for rec in recorders:
        assert rec.calls == [("content", "Hi"), ("error", "APIConnectionError")]
        assert rec.error is not None and rec.error.partial is not None and rec.error.partial.text == "Hi"
    assert len({id(rec.error) for rec in recorders}) == 3
    assert client.closed and all(seq.closed for seq in seqs)
    with pytest.raises(APIConnectionError):
        client.open(MODEL)


def test_drop_script_step_and_reconnect(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """A Drop mid-generation fails the stream with APIConnectionError; the streamer's next stream reconnects."""
    ms.add(Generation(["par", "tial", Drop()]))
    streamer.stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "par"), ("content", "tial"), ("error", "APIConnectionError")]
    assert streamer.chat(HI).text == "You said: Hi"
    assert len(ms.handshakes) == 2


def test_cancel_during_generation(ms: FakeModelSocketServer, streamer: ModelSocketStreamer, recorder: Recorder) -> None:
    """cancel() mid-generation ends with StreamCancelled and the partial text, and closes the sequence on the server."""
    gate = threading.Event()
    ms.add(Generation(["Hel", Hold(gate), "lo"]))
    handle = streamer.stream_chat(HI, recorder)
    assert ms.wait_for(lambda: bool(recorder.calls))
    handle.cancel()
    assert handle.wait(1)
    assert recorder.calls == [("content", "Hel"), ("error", "StreamCancelled")]
    assert isinstance(recorder.error, StreamCancelled)
    assert recorder.error.partial is not None and recorder.error.partial.text == "Hel"
    assert recorder.error.partial.finish_reason == "cancelled"
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")
    gate.set()
    assert streamer.chat(HI).text == "You said: Hi"


def test_cancelled_seq_generation_closes_the_sequence(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """Cancelling Seq.generate closes that sequence (the server cannot stop a generation otherwise)."""
    seq = client.open(MODEL)
    gate = threading.Event()
    ms.add(Generation(["a", Hold(gate)]))
    rec = Recorder()
    handle = seq.generate(rec)
    assert ms.wait_for(lambda: bool(rec.calls))
    handle.cancel()
    assert handle.wait(1)
    assert rec.kinds() == ["content", "error"]
    assert seq.closed
    assert ms.wait_for(lambda: ms.sequences[seq.id].state == "closed")
    gate.set()


def test_client_close_fails_pending_streams_and_closes_sequences(ms: FakeModelSocketServer) -> None:
    """client.close() sends close for open sequences, fails a pending stream once, and ends its reader thread."""
    client = ModelSocketClient.connect(ms.url, KEY, timeout=5)
    busy, idle = client.open(MODEL), client.open(MODEL)
    gate = threading.Event()
    ms.add(Generation(["a", Hold(gate)]))
    rec = Recorder()
    handle = busy.generate(rec)
    assert ms.wait_for(lambda: bool(rec.calls))
    client.close()
    assert handle.wait(5)
    assert rec.calls == [("content", "a"), ("error", "APIConnectionError")]
    assert ms.wait_for(lambda: {f["seq_id"] for f in ms.commands("close")} == {busy.id, idle.id})
    assert not [t for t in threading.enumerate() if t.name.startswith("llmstreamer-modelsocket-reader")]
    client.close()  # idempotent
    gate.set()


def test_stream_iterator_break_closes_the_sequence(ms: FakeModelSocketServer, streamer: ModelSocketStreamer) -> None:
    """Breaking out of streamer.stream() stops the generation and closes its sequence."""
    gate = threading.Event()
    ms.add(Generation(["x", Hold(gate)]))
    events = streamer.stream(HI)
    for event in events:
        assert event.text == "x"
        break
    events.close()  # type: ignore[attr-defined]
    assert ms.wait_for(lambda: ms.sequences["seq_1"].state == "closed")
    gate.set()


# --- secrets and examples -----------------------------------------------------------------------


def test_key_never_in_repr_logs_or_errors(ms: FakeModelSocketServer, caplog: pytest.LogCaptureFixture) -> None:
    """The API key appears in no repr, client log record (DEBUG included) or error message."""
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        s = ModelSocketStreamer(model=MODEL, api_key=KEY, base_url=ms.url, timeout=5)
        try:
            s.chat(HI)
            ms.add(Generation(["a", Fail("nope", route="seq")]))
            with pytest.raises(StreamError) as failed:
                s.chat(HI)
            errors.append(failed.value)
            texts = [repr(s), repr(s._client), repr(Conversation(s))]
        finally:
            s.close()
        with FakeModelSocketServer(api_key="another-key") as other:
            with pytest.raises(AuthenticationError) as refused:
                ModelSocketClient.connect(other.url, KEY, timeout=5)
            errors.append(refused.value)
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [str(getattr(e, "body", "")) for e in errors]
    ours = [r for r in caplog.records if r.name.startswith("llmstreamer") or r.name.split(".")[0] == "websocket"]
    texts += [r.getMessage() for r in ours]  # the client side: llmstreamer and websocket-client
    assert ours
    assert not [t for t in texts if KEY in t]


def test_example_runs_against_the_fake_server() -> None:
    """examples/modelsocket_fork.py --demo runs against its own fake server and prints both forks."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("parent:") for line in lines)
    assert any(line.startswith("fork:") for line in lines)


def test_hidden_text_and_echo_never_reach_content(ms: FakeModelSocketServer, client: ModelSocketClient) -> None:
    """Hidden seq_text (BOS, special tokens, EOS) never reaches on_content; counts come from seq_text."""
    seq = client.open(MODEL)
    seq.append("hi")
    ms.add(Generation(["a", Hidden("<|python_tag|>"), "b"], eos="<|eot_id|>"))
    rec = Recorder()
    seq.generate(rec).wait(5)
    assert rec.calls == [("content", "a"), ("content", "b"), ("usage", 2, 3), ("finish", "ab")]
