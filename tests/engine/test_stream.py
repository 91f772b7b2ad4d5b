"""The callback and thread invariants (README, "Callbacks and threads"), and the three ways to consume a stream."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from llmstreamer import (
    CallbackError,
    Message,
    OpenAIStreamer,
    RetryPolicy,
    StreamCallbacks,
    StreamCancelled,
    StreamHandler,
)
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder, wait_until

HI = [Message.user("Hi")]


def make(server: FakeLLMServer, **kw: object) -> OpenAIStreamer:
    return OpenAIStreamer(api_key="sk-test", base_url=server.base_url("openai"), **kw)  # type: ignore[arg-type]


def test_callbacks_fire_in_wire_order(server: FakeLLMServer, recorder: Recorder) -> None:
    """Callbacks fire in wire order, and the whole list is exactly what was streamed."""
    server.add(Reply(thinking=["Let me see."], text=["Hel", "lo"]))
    make(server).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [
        ("thinking", "Let me see."),
        ("content", "Hel"),
        ("content", "lo"),
        ("usage", 10, 2),
        ("finish", "Hello"),
    ]


def test_one_terminal_callback_last_and_wait_after_it_returns(server: FakeLLMServer) -> None:
    """Exactly one of on_finish/on_error fires, last; wait() returns only after it has returned."""
    release = threading.Event()
    seen: list[str] = []

    def on_finish(response: object) -> None:
        seen.append("finish-start")
        release.wait(5)
        seen.append("finish-end")

    handle = make(server).stream_chat(
        HI, StreamCallbacks(on_content=lambda t: seen.append("content"), on_finish=on_finish, on_error=lambda e: seen.append("error"))
    )
    assert wait_until(lambda: "finish-start" in seen)
    assert not handle.wait(0.05) and not handle.done()
    release.set()
    assert handle.wait(5) and handle.done()
    assert seen[-2:] == ["finish-start", "finish-end"] and "error" not in seen


def test_error_is_the_single_last_callback(server: FakeLLMServer, recorder: Recorder) -> None:
    """A failing stream ends with one on_error, after the content that arrived."""
    server.add(Reply(text=["one", " two"], truncate=True))
    make(server).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "one"), ("content", " two"), ("error", "IncompleteStreamError")]
    assert recorder.error is not None and recorder.error.partial is not None
    assert recorder.error.partial.text == "one two"


def test_all_callbacks_run_on_the_named_worker_thread(server: FakeLLMServer, recorder: Recorder) -> None:
    """Every callback of a stream runs on one worker thread named llmstreamer-<provider>-<n>."""
    make(server).stream_chat(HI, recorder).wait(5)
    assert len(recorder.threads) == 1
    (name,) = recorder.threads
    assert name.startswith("llmstreamer-openai-") and name != threading.current_thread().name


def test_raising_callback_stops_the_stream_and_closes_the_socket(server: FakeLLMServer, recorder: Recorder) -> None:
    """A callback that raises ends in CallbackError (original as __cause__) and the connection is closed."""
    server.add(Reply(text=["a", "b", "c"], stall_after=3))  # the server would hold the stream open
    boom = ValueError("boom")

    class Raising(Recorder):
        def on_content(self, text: str) -> None:
            super().on_content(text)
            raise boom

    rec = Raising()
    handle = make(server).stream_chat(HI, rec)
    assert handle.wait(5)
    assert rec.calls == [("content", "a"), ("error", "CallbackError")]
    assert isinstance(rec.error, CallbackError) and rec.error.__cause__ is boom
    assert "on_content raised ValueError: boom" in str(rec.error)
    assert rec.error.partial is not None and rec.error.partial.text == "a"
    assert server.wait_for(lambda: server.open_connections == 0, timeout=2)


def test_raising_on_error_and_on_finish_are_logged_not_propagated(server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """An on_error or on_finish that raises is logged; the worker survives and wait() returns."""
    server.add(Reply(text="ok"), Reply(status=400))

    def bad(_: object) -> None:
        raise RuntimeError("callback bug")

    s = make(server, retry=0)
    with caplog.at_level(logging.ERROR, logger="llmstreamer"):
        assert s.stream_chat(HI, StreamCallbacks(on_finish=bad)).wait(5)
        assert s.stream_chat(HI, StreamCallbacks(on_error=bad)).wait(5)
    assert [r.getMessage() for r in caplog.records] == [
        "llmstreamer: on_finish raised; the exception was dropped",
        "llmstreamer: on_error raised; the exception was dropped",
    ]


def test_cancel_unblocks_a_silent_read_quickly(server: FakeLLMServer) -> None:
    """cancel() from another thread aborts a read blocked on a silent server within 100 ms."""
    s = make(server)
    delays = []
    for _ in range(5):
        server.add(Reply(text=["first"], stall_after=2))  # the role chunk, then "first"
        rec = Recorder()
        handle = s.stream_chat(HI, rec)
        assert wait_until(lambda rec=rec: rec.calls[:1] == [("content", "first")])  # type: ignore[misc]
        start = time.monotonic()
        handle.cancel()
        assert rec.done.wait(5)
        delays.append(time.monotonic() - start)
        assert rec.calls == [("content", "first"), ("error", "StreamCancelled")]
        assert rec.error is not None and rec.error.partial is not None
        assert rec.error.partial.finish_reason == "cancelled" and rec.error.partial.text == "first"
        handle.wait(5)
    assert statistics.median(delays) < 0.1, delays


def test_cancel_while_waiting_for_headers(server: FakeLLMServer, recorder: Recorder) -> None:
    """cancel() also aborts a request whose response headers have not come yet."""

    server.add(Reply(silent=True))
    handle = make(server).stream_chat(HI, recorder)
    assert server.wait_for(lambda: len(server.requests) == 1)
    handle.cancel()
    assert handle.wait(2)
    assert recorder.calls == [("error", "StreamCancelled")]


def test_cancel_after_the_end_is_harmless(server: FakeLLMServer, recorder: Recorder) -> None:
    """cancel() after the stream ended changes nothing."""
    handle = make(server).stream_chat(HI, recorder)
    assert handle.wait(5)
    handle.cancel()
    assert recorder.kinds()[-1] == "finish" and handle.result().text


def test_no_retry_after_the_first_callback(server: FakeLLMServer, recorder: Recorder) -> None:
    """A failure after output has been delivered is reported, never retried (no duplicated text)."""
    server.add(Reply(text=["partial", " answer"], disconnect_after=2), Reply(text="SHOULD NOT BE SEEN"))
    make(server, retry=RetryPolicy(retries=3, initial_delay=0)).stream_chat(HI, recorder).wait(5)
    assert "retry" not in recorder.kinds()
    assert recorder.kinds()[-1] == "error" and len(server.requests) == 1


def test_stream_iterator_yields_events_and_break_cancels(server: FakeLLMServer) -> None:
    """stream() yields the events in order; breaking out closes the connection at once."""
    server.add(Reply(text=["a", "b"]))
    events = list(make(server).stream(HI))
    assert [(e.type, e.text) for e in events[:2]] == [("content", "a"), ("content", "b")]
    assert events[-1].type == "finish" and events[-1].data.text == "ab"

    server.add(Reply(text=["x", "y", "z"], stall_after=2))
    for event in make(server).stream(HI):
        if event.type == "content":
            break
    assert server.wait_for(lambda: server.open_connections == 0, timeout=2)


def test_stream_iterator_raises_with_partial(server: FakeLLMServer) -> None:
    """A failing stream() raises its error from the loop, with the partial response."""
    server.add(Reply(text=["only"], truncate=True))
    seen = []
    with pytest.raises(Exception) as info:
        for event in make(server).stream(HI):
            seen.append(event.type)
    assert type(info.value).__name__ == "IncompleteStreamError" and info.value.partial.text == "only"  # type: ignore[attr-defined]
    assert seen == ["content", "usage"] or seen == ["content"]


def test_chat_returns_the_response(server: FakeLLMServer) -> None:
    """chat() blocks and returns the final Response with metadata."""
    server.add(Reply(text="Hello there", model="gpt-4o-mini-2024"))
    response = make(server).chat(HI)
    assert response.text == "Hello there"
    assert response.finish_reason == "stop" and response.provider == "openai"
    assert response.model == "gpt-4o-mini-2024" and response.request_id.startswith("req_fake_")
    assert response.time_to_first_token is not None and 0 <= response.time_to_first_token <= response.duration
    assert response.message == Message.assistant("Hello there") and response.messages == (response.message,)


def test_result_raises_the_stream_error_and_times_out(server: FakeLLMServer) -> None:
    """result() raises the stream's error; result(timeout) raises TimeoutError while it runs."""
    server.add(Reply(text=["x"], stall_after=1))
    handle = make(server).stream_chat(HI)
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.05)
    handle.cancel()
    with pytest.raises(StreamCancelled):
        handle.result(5)


def test_stream_handler_subclass_and_plain_objects(server: FakeLLMServer) -> None:
    """A StreamHandler subclass (or any object with on_* methods) works as callbacks."""
    got: list[str] = []

    class Handler(StreamHandler):
        def on_content(self, text: str) -> None:
            got.append(text)

    class Plain:
        def on_finish(self, response: object) -> None:
            got.append("done")

    server.add(Reply(text=["a"]), Reply(text=["b"]))
    s = make(server)
    s.stream_chat(HI, Handler()).wait(5)
    s.stream_chat(HI, Plain()).wait(5)
    assert got == ["a", "done"]


def test_executor_runs_streams_on_its_threads(server: FakeLLMServer) -> None:
    """With executor=, streams run on the caller's pool and still keep every invariant."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="app-pool") as pool:
        s = make(server, executor=pool)
        recs = [Recorder() for _ in range(6)]
        handles = [s.stream_chat(HI, r) for r in recs]
        assert all(h.wait(5) for h in handles)
    for rec in recs:
        assert rec.kinds()[-1] == "finish"
        assert len(rec.threads) == 1 and next(iter(rec.threads)).startswith("app-pool")
