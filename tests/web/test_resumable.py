"""Tests for llmstreamer.web.ResumableStreams on both logs: the in-process one and a real redis-server."""

from __future__ import annotations

import json
import threading
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmstreamer import ConfigurationError, ElizaStreamer, OpenAIStreamer, StreamCallbacks
from llmstreamer._sse import SSEParser
from llmstreamer.errors import APIConnectionError, LLMStreamError
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.web import ResumableStreams, StreamEvent, StreamLogError, UnknownStreamError, sse_stream
from tests.conftest import wait_until

SAD = [{"role": "user", "content": "I am sad about my mother"}]
LONG = [{"role": "user", "content": "I remember my childhood home very well"}]


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str | None:
    """The URL of each kind of log: None (this process) and a real, emptied redis-server."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def streams(url: str | None) -> Iterator[ResumableStreams]:
    """A `ResumableStreams` on each kind of log."""
    with ResumableStreams(url) as s:
        yield s


@pytest.fixture
def openai(server: FakeLLMServer) -> Iterator[OpenAIStreamer]:
    """An OpenAI streamer pointed at the fake server, without retries."""
    with OpenAIStreamer(api_key="sk-test-secret", base_url=server.base_url("openai"), retry=0) as s:
        yield s


def order(event_id: str) -> tuple[int, ...]:
    """An event id as a tuple that sorts like the log's ids (``"7"`` or ``"1700000000000-3"``)."""
    return tuple(int(part) for part in event_id.split("-"))


def direct_events(streamer: Any, messages: Any, **options: Any) -> list[tuple[str, dict[str, Any]]]:
    """The events `sse_stream` sends for the same request: the reference payloads."""
    parser = SSEParser()
    body = b"".join(sse_stream(streamer, messages, keepalive=None, **options))
    return [(name, json.loads(data)) for name, data, _ in parser.feed(body) + parser.close()]


def comparable(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Events with the timing fields of ``done`` removed (they differ between two runs)."""
    out = []
    for kind, data in events:
        if kind == "done":
            data = {k: v for k, v in data.items() if k not in ("duration", "time_to_first_token", "request_id")}
        out.append((kind, data))
    return out


def text_of(events: list[StreamEvent]) -> str:
    """The answer joined from the content events, checked against the done event."""
    text = "".join(e.data["text"] for e in events if e.type == "content")
    assert events[-1].type == "done" and events[-1].data["text"] == text
    return text


# --- what is stored -----------------------------------------------------------------------------


def test_events_are_the_payloads_of_sse_stream(streams: ResumableStreams, recorder: Any) -> None:
    """The log holds exactly sse_stream's events, ids strictly increasing; callbacks fire in the producer."""
    eliza = ElizaStreamer(seed=4)
    expected = direct_events(eliza, SAD)
    stream_id = streams.start(eliza, SAD, recorder)
    events = list(streams.events(stream_id, timeout=10))
    assert comparable([(e.type, e.data) for e in events]) == comparable(expected)
    ids = [order(e.id) for e in events]
    assert ids == sorted(set(ids))
    assert recorder.done.wait(5)
    answer = expected[-1][1]
    words = [d["text"] for k, d in expected if k == "content"]
    assert recorder.calls == [
        *(("content", w) for w in words),
        ("usage", answer["usage"]["input_tokens"], answer["usage"]["output_tokens"]),
        ("finish", answer["text"]),
    ]
    assert streams.status(stream_id) == "done"


def test_thinking_content_and_usage_are_logged(streams: ResumableStreams, server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """Thinking, content, usage and done from a real wire are stored with sse_stream's payloads."""
    reply = Reply(thinking="Let me see.", text="Hello there")
    server.add(reply, reply)
    expected = direct_events(openai, [{"role": "user", "content": "Hi"}])
    stream_id = streams.start(openai, [{"role": "user", "content": "Hi"}])
    events = list(streams.events(stream_id, timeout=10))
    assert comparable([(e.type, e.data) for e in events]) == comparable(expected)
    assert [e.type for e in events] == ["thinking", "thinking", "thinking", "content", "content", "usage", "done"]


def test_a_failed_stream_ends_with_its_error_event(streams: ResumableStreams, server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """An upstream failure is the last event, with the error payload and no key; status is error."""
    server.add(Reply(status=429, error={"type": "rate_limit_error", "message": "slow down sk-test-secret"}))
    stream_id = streams.start(openai, [{"role": "user", "content": "Hi"}])
    events = list(streams.events(stream_id, timeout=10))
    assert [e.type for e in events] == ["error"]
    assert events[0].data["error"] == "RateLimitError" and events[0].data["status_code"] == 429
    assert "sk-test-secret" not in json.dumps(events[0].data)
    assert streams.status(stream_id) == "error"


def test_a_raising_callback_ends_the_log_with_callback_error(streams: ResumableStreams) -> None:
    """A server-side callback that raises stops the answer; the log ends with a CallbackError event."""

    def boom(text: str) -> None:
        raise RuntimeError("metrics are down")

    stream_id = streams.start(ElizaStreamer(seed=1), SAD, StreamCallbacks(on_content=boom))
    events = list(streams.events(stream_id, timeout=10))
    assert [e.type for e in events] == ["content", "error"]
    assert events[-1].data["error"] == "CallbackError" and streams.status(stream_id) == "error"


def test_bad_options_fail_at_start_and_leave_no_stream(streams: ResumableStreams, server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """start() raises ConfigurationError for an option the provider refuses; nothing goes upstream."""
    with pytest.raises(ConfigurationError):
        streams.start(openai, [{"role": "user", "content": "Hi"}], reasoning="bogus")
    assert server.requests == []


# --- resuming -----------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.sets(st.integers(min_value=1, max_value=15), max_size=6))
def test_resume_is_exact_at_any_cut(streams: ResumableStreams, cuts: set[int]) -> None:
    """A reader that stops after any events and resumes with the last id gets every later event once, in order."""
    eliza = ElizaStreamer(seed=9, pace=0.002)
    stream_id = streams.start(eliza, LONG)
    got: list[StreamEvent] = []
    readers = 0
    while not got or got[-1].type not in ("done", "error"):
        readers += 1
        for event in streams.events(stream_id, after=got[-1].id if got else None, timeout=10):
            got.append(event)
            if len(got) in cuts:
                break  # this reader goes away; the next one resumes after the id it had
    whole = list(streams.events(stream_id, timeout=10))  # an uninterrupted reader
    assert got == whole
    assert text_of(got) == text_of(whole) == eliza.chat(LONG).text
    assert readers == 1 + len([c for c in cuts if c < len(whole)])


def test_resume_while_live_from_every_event(streams: ResumableStreams) -> None:
    """Readers that resume, while the answer is still being written, after each event in turn all see the same rest."""
    eliza = ElizaStreamer(seed=2, pace=0.01)
    stream_id = streams.start(eliza, LONG)
    seen: list[StreamEvent] = []
    rests: list[list[StreamEvent]] = []
    for event in streams.events(stream_id, timeout=10):
        seen.append(event)
        if event.type == "content":
            rests.append([event, *streams.events(stream_id, after=event.id, timeout=10)])
    for rest in rests:
        assert rest == seen[seen.index(rest[0]):]
    assert text_of(seen) == eliza.chat(LONG).text


def test_timeout_zero_returns_what_is_stored(streams: ResumableStreams) -> None:
    """events(timeout=0) yields only what is stored now; a bounded timeout ends a silent wait early."""
    gate = threading.Event()

    def hold(text: str) -> None:
        gate.wait(10)

    stream_id = streams.start(ElizaStreamer(seed=1), SAD, StreamCallbacks(on_content=hold))
    assert wait_until(lambda: len(list(streams.events(stream_id, timeout=0))) == 1)
    assert [e.type for e in streams.events(stream_id, timeout=0.05)] == ["content"]
    gate.set()
    assert list(streams.events(stream_id, timeout=10))[-1].type == "done"


# --- errors -------------------------------------------------------------------------------------


def test_unknown_ids_raise_a_key_error_at_once(streams: ResumableStreams) -> None:
    """events, sse and cancel raise UnknownStreamError (a KeyError) at the call, not later; status is None."""
    for call in (lambda: streams.events("nope"), lambda: streams.sse("nope"), lambda: streams.cancel("nope")):
        with pytest.raises(UnknownStreamError) as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, LLMStreamError)
        assert "nope" in str(info.value)
    assert streams.status("nope") is None


def test_a_malformed_after_id_is_a_configuration_error(streams: ResumableStreams) -> None:
    """An id that the log could not have made is refused with ConfigurationError (400 in the Flask glue)."""
    stream_id = streams.start(ElizaStreamer(seed=1), SAD)
    for bad in ("abc", "1-2-3", "-1", ""):
        with pytest.raises(ConfigurationError):
            streams.events(stream_id, after=bad)
    list(streams.events(stream_id, timeout=10))


def test_bad_arguments_are_refused() -> None:
    """A bad ttl, prefix or URL scheme is a ConfigurationError."""
    for kwargs in ({"ttl": 0}, {"ttl": -1}, {"ttl": True}, {"ttl": float("inf")}, {"prefix": ""}):
        with pytest.raises(ConfigurationError):
            ResumableStreams(None, **kwargs)
    with pytest.raises(ConfigurationError, match="redis://"):
        ResumableStreams("postgres://x")
    with pytest.raises(ConfigurationError, match="not a usable Redis URL"):
        ResumableStreams("redis://127.0.0.1:notaport/0")
    assert issubclass(StreamLogError, APIConnectionError)


# --- cancel, status, expiry ---------------------------------------------------------------------


def test_cancel_stops_upstream_and_ends_the_log(streams: ResumableStreams, server: FakeLLMServer, openai: OpenAIStreamer, recorder: Any) -> None:
    """cancel() closes the upstream connection within a second; the log ends with StreamCancelled; status cancelled."""
    server.add(Reply(text="Hello there friend", stall_after=2))
    stream_id = streams.start(openai, [{"role": "user", "content": "Hi"}], recorder)
    events = streams.events(stream_id, timeout=10)
    assert next(events).data == {"text": "Hello"}
    assert streams.status(stream_id) == "running"
    assert streams.cancel(stream_id) is True
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
    rest = list(events)
    assert [e.type for e in rest] == ["error"] and rest[0].data["error"] == "StreamCancelled"
    assert streams.status(stream_id) == "cancelled"
    assert streams.cancel(stream_id) is False
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]


@pytest.mark.parametrize("ttl", [0.3])
def test_logs_expire_ttl_after_their_end(url: str | None, ttl: float) -> None:
    """ttl seconds after the end the id is unknown: status None, events raise UnknownStreamError."""
    with ResumableStreams(url, ttl=ttl) as streams:
        stream_id = streams.start(ElizaStreamer(seed=1), SAD)
        assert list(streams.events(stream_id, timeout=10))[-1].type == "done"
        assert streams.status(stream_id) == "done"
        assert wait_until(lambda: streams.status(stream_id) is None, timeout=5)
        with pytest.raises(UnknownStreamError):
            streams.events(stream_id)


def test_a_running_stream_outlives_its_ttl(url: str | None) -> None:
    """A stream running longer than ttl keeps its log: the clock starts at its end."""
    with ResumableStreams(url, ttl=0.3) as streams:
        stream_id = streams.start(ElizaStreamer(seed=3, pace=0.1), LONG)
        events = list(streams.events(stream_id, timeout=10))  # about 1.3 s, over four ttls
        assert text_of(events) == ElizaStreamer(seed=3).chat(LONG).text
        assert [e.id for e in streams.events(stream_id, timeout=0)] == [e.id for e in events]


# --- the SSE body -------------------------------------------------------------------------------


def sse_events(body: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of an SSE body."""
    out = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            out.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return out


def test_sse_body_has_ids_and_resumes_after_last_event_id(streams: ResumableStreams) -> None:
    """The body starts with retry:, each event has an id: line; from a Last-Event-ID it sends only what follows."""
    stream_id = streams.start(ElizaStreamer(seed=6), SAD)
    events = list(streams.events(stream_id, timeout=10))
    body = b"".join(streams.sse(stream_id))
    assert body.startswith(b"retry: 1000\n\n")
    assert sse_events(body) == [(e.id, e.type, e.data) for e in events]
    rest = b"".join(streams.sse(stream_id, events[2].id))
    assert sse_events(rest) == [(e.id, e.type, e.data) for e in events[3:]]
    assert b"".join(streams.sse(stream_id, events[-1].id)) == b"retry: 1000\n\n"


def test_sse_sends_keepalives_and_closing_it_leaves_the_generation_running(
    streams: ResumableStreams, server: FakeLLMServer, openai: OpenAIStreamer
) -> None:
    """While the model is silent the body sends comments; close() stops following and the answer still completes."""
    server.add(Reply(text="Hello there", delay=0.15))
    stream_id = streams.start(openai, [{"role": "user", "content": "Hi"}])
    body = streams.sse(stream_id, keepalive=0.05)
    assert next(body) == b"retry: 1000\n\n"
    assert next(body) == b": keep-alive\n\n"
    body.close()
    with pytest.raises(StopIteration):
        next(body)
    events = list(streams.events(stream_id, timeout=10))
    assert text_of(events) == "Hello there" and streams.status(stream_id) == "done"


# --- the producer never waits for readers -------------------------------------------------------


def test_readers_that_stop_reading_cost_the_producer_nothing(streams: ResumableStreams) -> None:
    """Readers that never read on, and SSE bodies never closed, do not hold the answer back."""
    stream_id = streams.start(ElizaStreamer(seed=8), LONG)
    stuck = [streams.events(stream_id), streams.sse(stream_id)]
    assert next(stuck[0]).type == "content" and next(stuck[1]).startswith(b"retry")
    assert wait_until(lambda: streams.status(stream_id) == "done", timeout=10)
    assert text_of(list(streams.events(stream_id, timeout=10))) == ElizaStreamer(seed=8).chat(LONG).text


def test_hundred_streams_with_three_readers_each(streams: ResumableStreams) -> None:
    """100 concurrent streams, each followed live by 3 readers, all end with their own whole answer."""
    questions = [f"I remember my {thing} number {i}" for i, thing in enumerate(["dog", "house", "school", "friend"] * 25)]
    expected = [ElizaStreamer(seed=i).chat([{"role": "user", "content": q}]).text for i, q in enumerate(questions)]
    ids = [streams.start(ElizaStreamer(seed=i, pace=0.03), [{"role": "user", "content": q}]) for i, q in enumerate(questions)]
    results: dict[tuple[int, int], str] = {}
    failures: list[BaseException] = []

    def read(i: int, j: int) -> None:
        try:
            results[i, j] = text_of(list(streams.events(ids[i], timeout=30)))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(i, j), name="test-reader") for i in range(100) for j in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert all(results.get((i, j)) == expected[i] for i in range(100) for j in range(3))
    assert all(streams.status(i) == "done" for i in ids)


# --- the Flask glue -----------------------------------------------------------------------------


def resume_app(streams: ResumableStreams) -> Any:
    """A Flask app with one route: flask_resume for /s/<id>."""
    flask = pytest.importorskip("flask")
    from llmstreamer.web import flask_resume

    app = flask.Flask("resume")
    app.add_url_rule("/s/<stream_id>", "follow", lambda stream_id: flask_resume(streams, stream_id, keepalive=0.5))
    return app


def test_flask_resume_reads_last_event_id(streams: ResumableStreams) -> None:
    """200 with every event, or only those after Last-Event-ID; 204 once the client has the terminal event."""
    stream_id = streams.start(ElizaStreamer(seed=6), SAD)
    events = list(streams.events(stream_id, timeout=10))
    client = resume_app(streams).test_client()
    whole = client.get(f"/s/{stream_id}")
    assert whole.status_code == 200 and whole.mimetype == "text/event-stream"
    assert whole.headers["Cache-Control"] == "no-cache" and whole.headers["X-Accel-Buffering"] == "no"
    assert sse_events(whole.get_data()) == [(e.id, e.type, e.data) for e in events]
    rest = client.get(f"/s/{stream_id}", headers={"Last-Event-ID": events[4].id})
    assert sse_events(rest.get_data()) == [(e.id, e.type, e.data) for e in events[5:]]
    done = client.get(f"/s/{stream_id}", headers={"Last-Event-ID": events[-1].id})
    assert done.status_code == 204 and done.get_data() == b""


def test_flask_resume_refuses_unknown_ids_and_bad_last_event_ids(streams: ResumableStreams) -> None:
    """404 with a JSON reason for an unknown id, 400 for a Last-Event-ID this log could not have made."""
    client = resume_app(streams).test_client()
    missing = client.get("/s/nope")
    assert missing.status_code == 404 and "nope" in missing.get_json()["error"]
    stream_id = streams.start(ElizaStreamer(seed=6), SAD)
    bad = client.get(f"/s/{stream_id}", headers={"Last-Event-ID": "x-y"})
    assert bad.status_code == 400 and "not an event id" in bad.get_json()["error"]
    list(streams.events(stream_id, timeout=10))


def test_flask_resume_answers_503_when_redis_is_down() -> None:
    """A log that cannot be reached is a 503 with a JSON reason, not a raw exception."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    streams = ResumableStreams(f"redis://127.0.0.1:{port}/0")
    response = resume_app(streams).test_client().get("/s/abc")
    assert response.status_code == 503 and "Redis failed" in response.get_json()["error"]
