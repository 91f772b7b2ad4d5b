"""Hooks: what each one is given, in which order and on which thread, and that they never break a stream."""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Iterator

import pytest

import llmstreamer
from llmstreamer import (
    ConfigurationError,
    Message,
    ModelSocketStreamer,
    OpenAIStreamer,
    RetryPolicy,
    StreamCancelled,
    _engine,
)
from llmstreamer.hooks import EndSummary, Hooks, LogHooks, RequestInfo, ResponseInfo, RetryInfo, StartInfo, WireEvent
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing.modelsocket import FakeModelSocketServer, Generation

from ..conftest import Recorder
from ..hookspy import HookSpy

HI = [Message.user("Hi")]
KEY = "sk-hooks-test-key-0123456789"
QUICK = RetryPolicy(retries=2, initial_delay=0.001, jitter=0)


def make(server: FakeLLMServer, **kw: Any) -> OpenAIStreamer:
    kw.setdefault("retry", QUICK)
    return OpenAIStreamer(api_key=KEY, base_url=server.base_url("openai"), **kw)


@pytest.fixture(autouse=True)
def _no_default_hooks() -> Iterator[None]:
    """Each test starts and ends without default hooks."""
    llmstreamer.set_default_hooks()
    yield
    llmstreamer.set_default_hooks()


def test_hooks_in_order_with_a_retry(server: FakeLLMServer, recorder: Recorder) -> None:
    """A retried stream calls start, request, response, retry, request, response, the wire events and end, in order."""
    server.add(Reply(status=503), Reply(text=["Hel", "lo"]))
    spy = HookSpy()
    with make(server, hooks=spy) as s:
        assert s.stream_chat(HI, recorder, temperature=0.5, max_tokens=20).wait(10)
    assert recorder.calls == [("retry", "ServerError", 1), ("content", "Hel"), ("content", "lo"), ("usage", 10, 2), ("finish", "Hello")]
    assert spy.names() == ["on_start", "on_request", "on_response", "on_retry", "on_request", "on_response", "on_event", "on_end"]
    assert len(spy.threads) == 1 and spy.threads.pop().startswith("llmstreamer-openai-")
    (start,) = spy.values("on_start")
    assert start == StartInfo(
        stream_id=start.stream_id, provider="openai", model="gpt-4o-mini", base_url=server.base_url("openai"),
        messages=tuple(HI), temperature=0.5, max_tokens=20,
    )  # fmt: skip
    first, second = spy.values("on_request")
    assert isinstance(first, RequestInfo) and (first.attempt, second.attempt) == (1, 2)
    assert first.method == "POST" and first.url == server.base_url("openai") + "/chat/completions"
    assert first.headers["Authorization"] == "***" and first.body_size == len(server.requests[0].body)
    statuses = spy.values("on_response")
    assert [r.status for r in statuses] == [503, 200] and all(isinstance(r, ResponseInfo) for r in statuses)
    assert statuses[1].request_id == recorder.response.request_id and statuses[1].time_to_headers >= 0  # type: ignore[union-attr]
    (retry,) = spy.values("on_retry")
    assert isinstance(retry, RetryInfo) and (retry.error_type, retry.attempt, retry.delay) == ("ServerError", 1, 0.001)
    events = spy.values("on_event")
    assert all(isinstance(e, WireEvent) and e.type == "message" for e in events) and events[-1].data == "[DONE]"
    summary = spy.summary
    assert (summary.outcome, summary.finish_reason, summary.error, summary.error_type) == ("finished", "stop", None, None)
    assert (summary.attempts, summary.requests, summary.usage and summary.usage.output_tokens) == (2, 2, 2)
    assert summary.response is not None and summary.response.text == "Hello" and summary.request_id == statuses[1].request_id
    assert summary.time_to_first_token is not None and summary.duration >= summary.time_to_first_token
    assert summary.bytes_out == sum(len(r.body) for r in server.requests) and summary.bytes_in and summary.bytes_in > 0
    assert {v.stream_id for _, v in spy.calls} == {start.stream_id}


def test_on_end_comes_after_the_terminal_callback(server: FakeLLMServer) -> None:
    """on_end runs after on_finish has returned, and before wait() returns."""
    order: list[str] = []
    server.add(Reply(text=["Hi"]))

    class Last(Hooks):
        def on_end(self, summary: EndSummary) -> None:
            order.append("on_end")

    with make(server, hooks=Last()) as s:
        assert s.stream_chat(HI, llmstreamer.StreamCallbacks(on_finish=lambda r: order.append("on_finish"))).wait(10)
        assert order == ["on_finish", "on_end"]


@pytest.mark.parametrize("status, error", [(401, "AuthenticationError"), (429, "RateLimitError"), (400, "BadRequestError")])
def test_summary_of_a_failed_stream(server: FakeLLMServer, recorder: Recorder, status: int, error: str) -> None:
    """A failed stream ends with outcome error, the error and its class name."""
    server.add(*[Reply(status=status)] * 3)
    spy = HookSpy()
    with make(server, hooks=spy, retry=0) as s:
        assert s.stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("error", error)]
    summary = spy.summary
    assert (summary.outcome, summary.error_type, summary.finish_reason, summary.attempts) == ("error", error, "error", 1)
    assert summary.error is recorder.error


def test_summary_of_a_cancelled_stream(server: FakeLLMServer, recorder: Recorder) -> None:
    """A cancelled stream ends with outcome cancelled and the partial response."""
    server.add(Reply(text=["first"], stall_after=2))
    spy = HookSpy()
    with make(server, hooks=spy) as s:
        handle = s.stream_chat(HI, recorder)
        assert server.wait_for(lambda: len(server.requests) == 1)
        assert any(e.data.find('"first"') >= 0 for e in _wait_events(spy))
        handle.cancel()
        assert handle.wait(10)
    assert recorder.calls == [("content", "first"), ("error", "StreamCancelled")]
    summary = spy.summary
    assert (summary.outcome, summary.error_type, summary.finish_reason) == ("cancelled", "StreamCancelled", "cancelled")
    assert summary.response is not None and summary.response.text == "first"


def _wait_events(spy: HookSpy) -> list[WireEvent]:
    """The wire events seen so far, once the content chunk has come (bounded)."""
    from ..conftest import wait_until

    assert wait_until(lambda: any('"first"' in v.data for v in spy.values("on_event")))
    return spy.values("on_event")


def test_iterator_and_chat_get_start_and_end(server: FakeLLMServer) -> None:
    """stream() and chat() run the hooks too; breaking out of the loop ends the stream as cancelled."""
    server.add(Reply(text=["a", "b"]), Reply(text=["c", "d"]))
    spy = HookSpy()
    with make(server, hooks=spy) as s:
        assert s.chat(HI).text == "ab"
        for event in s.stream(HI):
            if event.type == "content":
                break
    ends = spy.values("on_end")
    assert [e.outcome for e in ends] == ["finished", "cancelled"]
    assert ends[1].response is not None and ends[1].response.text == "c"
    assert [n for n in spy.names() if n in ("on_start", "on_end")] == ["on_start", "on_end", "on_start", "on_end"]


class Raising(Hooks):
    """Every hook raises."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def _boom(self, name: str) -> None:
        self.called.append(name)
        raise RuntimeError(f"hook {name} is broken")

    def on_start(self, info: StartInfo) -> None:
        self._boom("on_start")

    def on_request(self, info: RequestInfo) -> None:
        self._boom("on_request")

    def on_response(self, info: ResponseInfo) -> None:
        self._boom("on_response")

    def on_event(self, event: WireEvent) -> None:
        self._boom("on_event")

    def on_retry(self, info: RetryInfo) -> None:
        self._boom("on_retry")

    def on_end(self, summary: EndSummary) -> None:
        self._boom("on_end")


def test_a_raising_hook_changes_nothing(server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """Hooks that raise leave the callbacks and the outcome as they were, are logged once each and skipped after."""
    server.add(Reply(status=503), Reply(text=["Hel", "lo"]), Reply(status=503), Reply(text=["Hel", "lo"]))
    plain, broken = Recorder(), Recorder()
    spy, raising = HookSpy(), Raising()
    with make(server) as s:
        assert s.stream_chat(HI, plain).wait(10)
    with caplog.at_level(logging.WARNING, logger="llmstreamer.hooks"), make(server, hooks=[raising, spy]) as s:
        assert s.stream_chat(HI, broken).wait(10)
    assert broken.calls == plain.calls == [
        ("retry", "ServerError", 1), ("content", "Hel"), ("content", "lo"), ("usage", 10, 2), ("finish", "Hello"),
    ]  # fmt: skip
    assert raising.called == ["on_start", "on_request", "on_response", "on_retry", "on_event", "on_end"]
    assert spy.names() == ["on_start", "on_request", "on_response", "on_retry", "on_request", "on_response", "on_event", "on_end"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "llmstreamer.hooks"]
    assert len(warnings) == 6 and all("is broken" in w for w in warnings)


def test_default_hooks_and_own_hooks_both_run(server: FakeLLMServer) -> None:
    """set_default_hooks reaches every streamer, next to a streamer's own hooks; calling it empty removes them."""
    server.add(Reply(text=["x"]), Reply(text=["y"]))
    default, own = HookSpy(), HookSpy()
    llmstreamer.set_default_hooks(default)
    with make(server, hooks=own) as s:
        s.chat(HI)
        llmstreamer.set_default_hooks()
        s.chat(HI)
    assert [e.outcome for e in default.values("on_end")] == ["finished"]
    assert [e.outcome for e in own.values("on_end")] == ["finished", "finished"]


def test_hooks_need_a_hook_method() -> None:
    """An object with none of the hook methods is refused at construction, before any request."""
    with pytest.raises(ConfigurationError, match="on_start"):
        OpenAIStreamer(api_key=KEY, hooks=object())
    with pytest.raises(ConfigurationError):
        llmstreamer.set_default_hooks("not hooks")


def test_the_callers_context_reaches_the_worker(server: FakeLLMServer) -> None:
    """With hooks set, callbacks see the context variables of the thread that called stream_chat."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []
    server.add(Reply(text=["x"]))
    var.set("caller")
    with make(server, hooks=HookSpy()) as s:
        assert s.stream_chat(HI, llmstreamer.StreamCallbacks(on_content=lambda t: seen.append(var.get()))).wait(10)
    assert seen == ["caller"]


def test_log_hooks_one_line_without_content_unless_asked(server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """LogHooks logs one INFO line per stream under llmstreamer.hooks; the answer only with content=True."""
    server.add(Reply(text=["secret", " answer"]), Reply(text=["secret", " answer"]))
    with caplog.at_level(logging.INFO, logger="llmstreamer"):
        with make(server, hooks=LogHooks()) as s:
            s.chat(HI)
        with make(server, hooks=LogHooks(content=True)) as s:
            s.chat(HI)
    lines = [r for r in caplog.records if r.name == "llmstreamer.hooks"]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    first, second = (r.getMessage() for r in lines)
    assert "openai gpt-4o-mini finished finish=stop" in first and "tokens=10/2" in first and "attempts=1" in first
    assert "secret" not in first and "text='secret answer'" in second


def test_log_hooks_are_off_by_default(server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """Without LogHooks installed, no stream summary is logged at any level."""
    server.add(Reply(text=["x"]))
    with caplog.at_level(logging.DEBUG), make(server) as s:
        s.chat(HI)
    assert not [r for r in caplog.records if r.name == "llmstreamer.hooks"]


def test_a_streamer_without_hooks_builds_no_recorder(server: FakeLLMServer) -> None:
    """No hooks anywhere: the stream carries no recorder, so none of the hook code runs."""
    with make(server) as s:
        run = _engine.prepare(s, HI, {})
    assert run.token.recorder is None


def test_modelsocket_on_send_and_on_event() -> None:
    """A WebSocket stream shows each frame it sends to on_send and each event it receives to on_event."""
    key = "ms-hooks-secret-0451"
    spy = HookSpy()
    recorder = Recorder()
    with FakeModelSocketServer(api_key=key) as ms:
        ms.add(Generation("Hello there"))
        s = ModelSocketStreamer(model="m", api_key=key, base_url=ms.url, timeout=5, retry=0, hooks=spy)
        try:
            assert s.stream_chat(HI, recorder).wait(10)
        finally:
            s.close()
    assert recorder.calls == [("content", "Hello"), ("content", " there"), ("usage", 5, 2), ("finish", "Hello there")]
    sent = [(f.type, f.data.count('"cid"')) for f in spy.values("on_send")]
    assert sent == [("seq_open", 1), ("append", 1), ("gen", 1), ("close", 1)]
    kinds = [e.type for e in spy.values("on_event")]
    assert kinds[0] == "seq_opened" and "seq_text" in kinds and "seq_gen_finish" in kinds and kinds[-1] == "seq_closed"
    assert spy.names()[0] == "on_start" and spy.names()[-1] == "on_end"
    summary = spy.summary
    assert (summary.outcome, summary.requests) == ("finished", 0)
    assert (summary.bytes_in, summary.bytes_out) == (received_bytes(spy), sent_bytes(spy))
    assert all(key not in repr(v) for _, v in spy.calls)


def sent_bytes(spy: HookSpy) -> int:
    """The UTF-8 size of the frames the spy saw sent (they hold no key, so redaction changed nothing)."""
    return sum(len(f.data.encode("utf-8")) for f in spy.values("on_send"))


def received_bytes(spy: HookSpy) -> int:
    """The size of the received frames with a cid as the fake server writes them (``json.dumps``, ASCII)."""
    import json

    events = [json.loads(e.data) for e in spy.values("on_event")]
    return sum(len(json.dumps(e).encode("utf-8")) for e in events if "cid" in e)


def test_on_end_of_an_error_has_the_partial(server: FakeLLMServer, recorder: Recorder) -> None:
    """A stream cut mid-way ends in on_end with the partial text and the error."""
    server.add(Reply(text=["par", "tial"], truncate=True))
    spy = HookSpy()
    with make(server, hooks=spy) as s:
        assert s.stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("content", "par"), ("content", "tial"), ("error", "IncompleteStreamError")]
    summary = spy.summary
    assert summary.outcome == "error" and summary.response is not None and summary.response.text == "partial"
    assert not isinstance(summary.error, StreamCancelled)


def test_a_streamer_with_hooks_is_freed_without_the_cycle_collector(server: FakeLLMServer) -> None:
    """The recorder holds no reference cycle: a dropped streamer (and its pooled connection) goes at once."""
    import gc
    import weakref

    server.add(Reply(text=["x"]), Reply(text=["y"]))
    s = make(server, hooks=HookSpy())
    s.chat(HI)
    assert s.stream_chat(HI).wait(10)
    gc.disable()
    try:
        ref = weakref.ref(s)
        del s
        assert ref() is None
    finally:
        gc.enable()
    assert server.wait_for(lambda: server.open_connections == 0, timeout=5)


def test_seq_generate_runs_default_hooks_without_the_key() -> None:
    """Seq.generate runs the default hooks; an error event that echoes the key reaches on_event redacted."""
    from llmstreamer import ModelSocketClient
    from llmstreamer.testing.modelsocket import Fail

    key = "ms-hooks-secret-0452"
    spy = HookSpy()
    recorder = Recorder()
    llmstreamer.set_default_hooks(spy)
    with FakeModelSocketServer(api_key=key) as ms:
        ms.add(Generation(["Hel", Fail(f"bad key {key}", code="invalid_request_error")]))
        with ModelSocketClient.connect(ms.url, key, timeout=5) as client:
            seq = client.open("m", skip_prelude=True)
            assert seq.generate(recorder).wait(10)
    assert recorder.calls == [("content", "Hel"), ("error", "BadRequestError")]
    assert recorder.error is not None and key not in str(recorder.error) and key not in repr(vars(recorder.error))
    errors = [e for e in spy.values("on_event") if e.type == "error"]
    assert len(errors) == 1 and "bad key ***" in errors[0].data
    assert spy.summary.outcome == "error" and all(key not in repr(v) for _, v in spy.calls)


def test_seq_streams_run_the_clients_hooks_and_count_their_own_bytes() -> None:
    """ModelSocketClient.connect(hooks=) observes generate and tool_return after the defaults; each
    stream counts only its own frames, even with another sequence generating on the connection."""
    from llmstreamer import ModelSocketClient, Tool
    from llmstreamer.testing.modelsocket import ToolCalls

    key = "ms-hooks-secret-0453"
    weather = Tool("get_weather", "The weather in a city.", {"type": "object", "properties": {}})
    call = {"name": "get_weather", "args": "{}", "id": "functions.get_weather:0"}
    order: list[str] = []
    default, own = HookSpy(), HookSpy()

    class First(Hooks):
        def on_start(self, info: StartInfo) -> None:
            order.append("default")

    class Second(Hooks):
        def on_start(self, info: StartInfo) -> None:
            order.append("own")

    llmstreamer.set_default_hooks(default, First())
    with FakeModelSocketServer(api_key=key) as ms:
        ms.add(Generation([ToolCalls([call]), "Done", " now."]), Generation("Other words here."))
        with ModelSocketClient.connect(ms.url, key, timeout=5, hooks=[own, Second()]) as client:
            seq, other = client.open("m", toolbox=[weather]), client.open("m", skip_prelude=True)
            first = seq.generate().result(5)
            assert first.finish_reason == "tool_calls"
            rest = Recorder()
            handles = [other.generate(), seq.tool_return("sunny", rest)]  # both in flight at once
            assert all(h.wait(10) for h in handles)
            assert client._conn._counted == {}  # every counted command was forgotten with its stream
    assert rest.calls == [("content", "Done"), ("content", " now."), ("usage", 44, 3), ("finish", "Done now.")]
    assert order == ["default", "own"] * 3
    assert default.calls == own.calls  # the same values, in the same order
    ends = own.values("on_end")
    assert [e.outcome for e in ends] == ["finished"] * 3 and len({e.stream_id for e in ends}) == 3
    for end in ends:
        mine = HookSpy()
        mine.calls = [(n, v) for n, v in own.calls if getattr(v, "stream_id", None) == end.stream_id]
        assert [f.type for f in mine.values("on_send")] == (["tool_return"] if end.response and end.response.text == "Done now." else ["gen"])
        assert (end.bytes_in, end.bytes_out) == (received_bytes(mine), sent_bytes(mine)) and end.bytes_in > 0
        assert mine.names()[0] == "on_start" and mine.names()[-1] == "on_end" and "on_event" in mine.names()
    assert all(key not in repr(v) for _, v in own.calls)


def test_client_hooks_need_a_hook_method() -> None:
    """A hooks object without any hook method fails in connect, before the connection opens."""
    from llmstreamer import ModelSocketClient

    with pytest.raises(ConfigurationError, match="hooks object"):
        ModelSocketClient.connect("ws://127.0.0.1:9/ws", "k", hooks=object())


def test_seq_streams_without_hooks_count_nothing() -> None:
    """Without hooks no command is registered for counting, so the reader keeps its plain parse."""
    from llmstreamer import ModelSocketClient, StreamCallbacks

    seen: list[int] = []
    with FakeModelSocketServer(api_key=KEY) as ms:
        ms.add(Generation("Plain words."))
        with ModelSocketClient.connect(ms.url, KEY, timeout=5) as client:
            seq = client.open("m", skip_prelude=True)
            counted = client._conn._counted
            done = seq.generate(StreamCallbacks(on_content=lambda _: seen.append(len(counted))))
            assert done.result(5).text == "Plain words."
    assert seen == [0, 0]
