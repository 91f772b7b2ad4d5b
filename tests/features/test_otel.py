"""OpenTelemetry: one GenAI span per stream, its attributes, nesting across the worker thread, and the metrics."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import attrs
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmstreamer
import llmstreamer.otel
from llmstreamer import Message, ModelSocketStreamer, OpenAIStreamer, RetryPolicy, StreamCallbacks, Timeout
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing.modelsocket import FakeModelSocketServer, Generation

from ..conftest import Recorder, wait_until

HI = [Message.user("Hi")]
KEY = "sk-otel-test-key-0123456789"


class Ends(SpanProcessor):
    """Counts spans started and ended: a span never ended is a leak."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: list[int] = []

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started.append(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.ended.append(span.context.span_id)


@attrs.define
class Telemetry:
    """The in-memory SDK pipeline a test reads spans and metrics from."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    provider: TracerProvider
    ends: Ends
    hooks: llmstreamer.otel.OTelHooks

    def spans(self, name_prefix: str = "chat ") -> list[ReadableSpan]:
        """The finished spans whose names start with ``name_prefix``."""
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(name_prefix)]

    def span(self) -> ReadableSpan:
        """The one stream span."""
        (found,) = self.spans()
        return found

    def metrics(self) -> dict[str, Any]:
        """name -> (unit, [(attributes, data point)]) of every metric recorded so far."""
        out: dict[str, Any] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out[m.name] = (m.unit, [(dict(p.attributes or {}), p) for p in m.data.data_points])
        return out


def _pipeline(**kw: Any) -> Telemetry:
    exporter, ends = InMemorySpanExporter(), Ends()
    provider = TracerProvider()
    provider.add_span_processor(ends)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    hooks = llmstreamer.otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]), **kw)
    return Telemetry(exporter, reader, provider, ends, hooks)


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """An instrumented process with in-memory span and metric exporters; every span must have ended."""
    found = _pipeline()
    yield found
    llmstreamer.otel.uninstrument()
    assert sorted(found.ends.started) == sorted(found.ends.ended), "a span was never ended"
    assert not found.hooks._streams


def make(server: FakeLLMServer, **kw: Any) -> OpenAIStreamer:
    kw.setdefault("retry", 0)
    return OpenAIStreamer(api_key=KEY, base_url=server.base_url("openai"), **kw)


def test_span_of_a_successful_stream(otel: Telemetry, server: FakeLLMServer, recorder: Recorder) -> None:
    """A stream makes one CLIENT span ``chat {model}`` with the GenAI attributes, status unset."""
    server.add(Reply(text=["Hel", "lo"]))
    with make(server) as s:
        assert s.stream_chat(HI, recorder, temperature=0.2, top_p=0.9, max_tokens=50, seed=7, stop=["END"]).wait(10)
    assert recorder.calls == [("content", "Hel"), ("content", "lo"), ("usage", 10, 2), ("finish", "Hello")]
    span = otel.span()
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    port = int(server.base_url("openai").split(":")[2].split("/")[0])
    attributes = dict(span.attributes or {})
    assert attributes.pop("gen_ai.response.id").startswith("req_fake_")  # the x-request-id header
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 2,
        "llmstreamer.outcome": "finished",
    }
    assert not span.events


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


ERRORS = {
    "AuthenticationError": Reply(status=401),
    "PermissionDeniedError": Reply(status=403),
    "NotFoundError": Reply(status=404),
    "BadRequestError": Reply(status=400),
    "RequestTooLargeError": Reply(status=413),
    "RateLimitError": Reply(status=429),
    "ServerError": Reply(status=500),
    "OverloadedError": Reply(text=["x"], error={"type": "overloaded_error", "message": "Overloaded"}),
    "IncompleteStreamError": Reply(text=["x"], truncate=True),
    "StreamError": Reply(events=["data: {not json\n\n"]),
    "APIConnectionError": Reply(text=["x", "y"], disconnect_after=2),
    "APITimeoutError": Reply(silent=True, stall_for=5),
}


@pytest.mark.parametrize("error", sorted(ERRORS))
def test_span_of_each_error_class(otel: Telemetry, server: FakeLLMServer, recorder: Recorder, error: str) -> None:
    """A failed stream's span has error.type, an ERROR status, and the duration metric carries error.type."""
    server.add(ERRORS[error])
    with make(server, timeout=Timeout(connect=5, read=0.3)) as s:
        assert s.stream_chat(HI, recorder).wait(10)
    assert recorder.kinds()[-1] == "error" and recorder.calls[-1] == ("error", error)
    span = otel.span()
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == error and attributes["llmstreamer.outcome"] == "error"
    assert attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert span.status.status_code is StatusCode.ERROR and (span.status.description or "").startswith(error)
    (point,) = otel.metrics()["gen_ai.client.operation.duration"][1]
    assert point[0]["error.type"] == error


def test_span_of_a_connection_refused(otel: Telemetry, recorder: Recorder) -> None:
    """A stream that cannot connect still makes one ended span with error.type APIConnectionError."""
    with OpenAIStreamer(api_key=KEY, base_url=_closed_port(), retry=0) as s:
        assert s.stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("error", "APIConnectionError")]
    assert dict(otel.span().attributes or {})["error.type"] == "APIConnectionError"


def test_span_when_a_callback_raises(otel: Telemetry, server: FakeLLMServer) -> None:
    """A callback that raises ends the stream in CallbackError; the span still ends, with that error type."""
    server.add(Reply(text=["a", "b", "c"]))
    calls: list[Any] = []

    def on_content(text: str) -> None:
        calls.append(("content", text))
        raise ValueError("boom")

    callbacks = StreamCallbacks(on_content=on_content, on_error=lambda e: calls.append(("error", type(e).__name__)))
    with make(server) as s:
        assert s.stream_chat(HI, callbacks).wait(10)
    assert calls == [("content", "a"), ("error", "CallbackError")]
    assert dict(otel.span().attributes or {})["error.type"] == "CallbackError"


def test_span_of_a_cancelled_stream(otel: Telemetry, server: FakeLLMServer, recorder: Recorder) -> None:
    """A cancelled stream's span ends, not as an error: outcome and finish reason say cancelled."""
    server.add(Reply(text=["first"], stall_after=2))
    with make(server) as s:
        handle = s.stream_chat(HI, recorder)
        assert wait_until(lambda: ("content", "first") in recorder.calls)
        handle.cancel()
        assert handle.wait(10)
    assert recorder.calls == [("content", "first"), ("error", "StreamCancelled")]
    span = otel.span()
    attributes = dict(span.attributes or {})
    assert attributes["llmstreamer.outcome"] == "cancelled" and attributes["gen_ai.response.finish_reasons"] == ("cancelled",)
    assert "error.type" not in attributes and span.status.status_code is StatusCode.UNSET


def test_span_of_a_retried_stream(otel: Telemetry, server: FakeLLMServer, recorder: Recorder) -> None:
    """Retries are events on the one span; the span reports the response that finally came."""
    server.add(Reply(status=429, headers={"retry-after-ms": "1"}), Reply(status=503), Reply(text=["ok"]))
    with make(server, retry=RetryPolicy(retries=2, initial_delay=0.001, jitter=0)) as s:
        assert s.stream_chat(HI, recorder).wait(10)
    assert recorder.calls == [("retry", "RateLimitError", 1), ("retry", "ServerError", 2), ("content", "ok"), ("usage", 10, 1), ("finish", "ok")]
    span = otel.span()
    assert [(e.name, dict(e.attributes or {})["error.type"], dict(e.attributes or {})["retry.attempt"]) for e in span.events] == [
        ("retry", "RateLimitError", 1),
        ("retry", "ServerError", 2),
    ]
    attributes = dict(span.attributes or {})
    assert attributes["http.response.status_code"] == 200 and attributes["gen_ai.response.id"] == recorder.response.request_id  # type: ignore[union-attr]
    assert "error.type" not in attributes


def test_user_spans_nest_across_the_worker_thread(otel: Telemetry, server: FakeLLMServer) -> None:
    """The caller's span is the stream span's parent; spans started in callbacks are the stream span's children."""
    server.add(Reply(text=["a", "b"]))
    tracer = otel.provider.get_tracer("test")

    def on_content(text: str) -> None:
        with tracer.start_as_current_span(f"content {text}"):
            pass

    def on_finish(response: Any) -> None:
        tracer.start_span("finish").end()

    with make(server) as s, tracer.start_as_current_span("request handler") as parent:
        handle = s.stream_chat(HI, StreamCallbacks(on_content=on_content, on_finish=on_finish))
    assert handle.wait(10)
    stream = otel.span()
    assert stream.parent is not None and stream.parent.span_id == parent.get_span_context().span_id
    assert stream.context is not None and stream.context.trace_id == parent.get_span_context().trace_id
    children = {s.name: s for s in otel.exporter.get_finished_spans() if s.name in ("content a", "content b", "finish")}
    assert sorted(children) == ["content a", "content b", "finish"]
    assert all(c.parent is not None and c.parent.span_id == stream.context.span_id for c in children.values())


def test_nesting_through_an_executor(otel: Telemetry, server: FakeLLMServer) -> None:
    """With executor=, the stream span's parent is still the span current where stream_chat was called."""
    server.add(Reply(text=["a"]))
    tracer = otel.provider.get_tracer("test")
    with ThreadPoolExecutor(1) as pool, make(server, executor=pool) as s:
        with tracer.start_as_current_span("handler") as parent:
            handle = s.stream_chat(HI)
        assert handle.wait(10)
    stream = otel.span()
    assert stream.parent is not None and stream.parent.span_id == parent.get_span_context().span_id


def test_the_worker_leaves_no_context_behind(otel: Telemetry, server: FakeLLMServer) -> None:
    """After the stream, the calling thread's current span is what it was (nothing attached leaks)."""
    server.add(Reply(text=["a"]), Reply(text=["b"]))
    before = trace.get_current_span()
    with make(server) as s:
        s.chat(HI)
        assert s.stream_chat(HI).wait(10)
    assert trace.get_current_span() is before and otel_context.get_current() == otel_context.get_current()
    assert len(otel.spans()) == 2


def test_metrics_units_and_attributes(otel: Telemetry, server: FakeLLMServer) -> None:
    """Duration (s), time to first chunk (s) and token usage ({token}, by gen_ai.token.type) carry the GenAI attributes."""
    server.add(Reply(text=["a", "b"]), Reply(text=["c"]))
    with make(server) as s:
        s.chat(HI)
        s.chat(HI)
    found = otel.metrics()
    port = int(server.base_url("openai").split(":")[2].split("/")[0])
    shared = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    unit, points = found["gen_ai.client.operation.duration"]
    assert unit == "s" and [(a, p.count) for a, p in points] == [(shared, 2)]
    assert points[0][1].explicit_bounds[0] == 0.01
    unit, points = found["gen_ai.client.operation.time_to_first_chunk"]
    assert unit == "s" and [(a, p.count) for a, p in points] == [(shared, 2)]
    unit, points = found["gen_ai.client.token.usage"]
    assert unit == "{token}"
    assert sorted((a["gen_ai.token.type"], p.count, p.sum) for a, p in points) == [("input", 2, 20), ("output", 2, 3)]
    assert all({k: v for k, v in a.items() if k != "gen_ai.token.type"} == shared for a, _ in points)


def test_iterator_span_ends_when_the_loop_breaks(otel: Telemetry, server: FakeLLMServer) -> None:
    """stream(): breaking out of the loop ends the span as cancelled; its parent is the caller's span."""
    server.add(Reply(text=["a", "b", "c"]))
    tracer = otel.provider.get_tracer("test")
    with make(server) as s, tracer.start_as_current_span("loop") as parent:
        for event in s.stream(HI):
            if event.type == "content":
                break
    span = otel.span()
    assert dict(span.attributes or {})["llmstreamer.outcome"] == "cancelled"
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id


def test_no_content_unless_asked(otel: Telemetry, server: FakeLLMServer) -> None:
    """By default no prompt or answer text is recorded anywhere on the span."""
    server.add(Reply(text=["private answer"]))
    with make(server) as s:
        s.chat([Message.user("private question")], system="private system")
    span = otel.span()
    text = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
    assert "private" not in text


def test_content_when_asked(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the capture variable set, the system instructions, input and output messages are recorded as JSON."""
    monkeypatch.setenv(llmstreamer.otel.CONTENT_ENV, "true")
    otel = _pipeline()
    try:
        server.add(Reply(text=["An answer."]))
        with make(server) as s:
            s.chat([Message.user("A question?")], system="Be brief.")
    finally:
        llmstreamer.otel.uninstrument()
    attributes = dict(otel.span().attributes or {})
    assert attributes["gen_ai.system_instructions"] == '[{"type": "text", "content": "Be brief."}]'
    assert attributes["gen_ai.input.messages"] == '[{"role": "user", "parts": [{"type": "text", "content": "A question?"}]}]'
    assert attributes["gen_ai.output.messages"] == (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "An answer."}], "finish_reason": "stop"}]'
    )


def test_instrument_replaces_and_uninstrument_stops(server: FakeLLMServer) -> None:
    """instrument() twice leaves one instrumentation; uninstrument() stops new spans."""
    first = _pipeline()
    second = _pipeline()
    server.add(Reply(text=["a"]), Reply(text=["b"]))
    try:
        with make(server) as s:
            s.chat(HI)
            llmstreamer.otel.uninstrument()
            s.chat(HI)
    finally:
        llmstreamer.otel.uninstrument()
    assert (len(first.spans()), len(second.spans())) == (0, 1)


def test_modelsocket_span(otel: Telemetry) -> None:
    """A WebSocket provider's stream gets its span too, with the server's address."""
    key = "ms-otel-secret-0451"
    with FakeModelSocketServer(api_key=key) as ms:
        ms.add(Generation("Hello"))
        s = ModelSocketStreamer(model="m", api_key=key, base_url=ms.url, timeout=5, retry=0)
        try:
            s.chat(HI)
        finally:
            s.close()
    attributes = dict(otel.span().attributes or {})
    assert attributes["gen_ai.provider.name"] == "modelsocket" and attributes["server.address"] == "127.0.0.1"
    assert attributes["gen_ai.usage.output_tokens"] == 1


def test_spans_of_concurrent_streams_stay_apart(otel: Telemetry, server: FakeLLMServer) -> None:
    """Concurrent streams on one streamer each get their own span, each with its own parent."""
    server.add(*[Reply(text=["x"], delay=0.01) for _ in range(6)])
    tracer = otel.provider.get_tracer("test")
    parents: dict[int, int] = {}
    lock = threading.Lock()

    def one(n: int) -> None:
        with tracer.start_as_current_span(f"handler {n}") as parent:
            handle = s.stream_chat(HI)
        assert handle.wait(10)
        with lock:
            parents[parent.get_span_context().span_id] = n

    with make(server) as s:
        threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    spans = otel.spans()
    assert len(spans) == 6 and sorted(parents[s.parent.span_id] for s in spans if s.parent) == list(range(6))

