"""Resumable streams on a real redis-server: outages, restarts, and streams shared between processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from llmstreamer import ElizaStreamer
from llmstreamer.testing import FakeLLMServer
from llmstreamer.web import ResumableStreams, StreamEvent, StreamLogError
from tests.conftest import wait_until
from tests.redisserver import RedisServer, redis_server_fixture

redis = pytest.importorskip("redis")

ROOT = Path(__file__).resolve().parents[2]
LONG = "I remember my childhood home very well"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text_of(events: list[StreamEvent]) -> str:
    """The answer joined from the content events, checked against the done event; ids strictly increase."""
    ids = [tuple(int(p) for p in e.id.split("-")) for e in events]
    assert ids == sorted(set(ids)), "a duplicate or out-of-order id"
    text = "".join(e.data["text"] for e in events if e.type == "content")
    assert events[-1].type == "done" and events[-1].data["text"] == text
    return text


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server of its own that writes every command to its append-only file before answering."""
    yield from redis_server_fixture(extra_args=("--appendonly", "yes", "--appendfsync", "always"))


# --- Redis down ---------------------------------------------------------------------------------


def test_start_fails_with_stream_log_error_when_redis_is_unreachable(server: FakeLLMServer) -> None:
    """With nothing listening, start, status, cancel and events raise StreamLogError (never a redis exception); nothing goes upstream."""
    from llmstreamer import OpenAIStreamer

    streams = ResumableStreams(f"redis://127.0.0.1:{closed_port()}/0")
    with OpenAIStreamer(api_key="test", base_url=server.base_url("openai")) as openai, pytest.raises(StreamLogError) as info:
        streams.start(openai, [{"role": "user", "content": "Hi"}])
    assert isinstance(info.value.__cause__, redis.RedisError)
    assert "Redis failed while starting a stream" in str(info.value)
    for call in (lambda: streams.status("x"), lambda: streams.cancel("x"), lambda: streams.events("x"), lambda: streams.sse("x")):
        with pytest.raises(StreamLogError):
            call()
    assert server.requests == []


def test_start_works_again_once_redis_is_back(redis_server: RedisServer, redis_url: str) -> None:
    """After Redis stops, start fails clearly; after it restarts, the same object starts streams again."""
    streams = ResumableStreams(redis_url)
    assert streams.status(streams.start(ElizaStreamer(seed=1), [{"role": "user", "content": LONG}])) is not None
    redis_server.stop()
    with pytest.raises(StreamLogError):
        streams.start(ElizaStreamer(seed=1), [{"role": "user", "content": LONG}])
    redis_server.start()
    stream_id = streams.start(ElizaStreamer(seed=1), [{"role": "user", "content": LONG}])
    assert text_of(list(streams.events(stream_id, timeout=10))) == ElizaStreamer(seed=1).chat([{"role": "user", "content": LONG}]).text
    streams.close()


def test_a_reader_gets_a_clear_error_when_redis_vanishes(redis_server: RedisServer, redis_url: str) -> None:
    """Mid-stream, a follower's iterator raises StreamLogError and an SSE body ends without a terminal event; the producer gives up."""
    streams = ResumableStreams(redis_url)
    streams._log.grace = 0.5  # type: ignore[attr-defined]  # give up quickly once Redis stays down
    stream_id = streams.start(ElizaStreamer(seed=2, pace=0.2), [{"role": "user", "content": LONG}])
    events = streams.events(stream_id)
    body = streams.sse(stream_id, keepalive=0.1)
    assert next(events).type == "content"
    assert next(body).startswith(b"retry:")
    redis_server.stop()
    with pytest.raises(StreamLogError):
        for _ in events:
            pass
    rest = b"".join(body)
    assert rest.endswith(b": the log is unavailable; reconnect\n\n") and b"event: done" not in rest
    assert wait_until(lambda: streams._log._writer is None, timeout=10)  # type: ignore[attr-defined]
    redis_server.start()
    streams.close()


def test_no_acknowledged_event_is_lost_across_a_redis_restart(persistent_redis: RedisServer) -> None:
    """Redis restarts mid-answer: the producer retries what was not acknowledged, and a resumed reader gets every event once."""
    streams = ResumableStreams(persistent_redis.url)
    question = [{"role": "user", "content": LONG}]
    expected = ElizaStreamer(seed=3).chat(question).text
    stream_id = streams.start(ElizaStreamer(seed=3, pace=0.1), question)
    got: list[StreamEvent] = []
    for event in streams.events(stream_id):
        got.append(event)
        if len(got) == 3:
            break
    persistent_redis.restart()
    deadline = time.monotonic() + 20
    while got[-1].type != "done":
        assert time.monotonic() < deadline, [e.type for e in got]
        try:
            got.extend(streams.events(stream_id, after=got[-1].id, timeout=10))
        except StreamLogError:
            continue  # the restart is still under way: reconnect, like EventSource would
    assert text_of(got) == expected
    assert streams.status(stream_id) == "done"
    streams.close()


class ReplyEater:
    """A TCP proxy to Redis that, once armed, lets the next batch of XADDs through and drops Redis's reply (closing the connection)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.ate = threading.Event()
        threading.Thread(target=self._accept, name="test-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            eat = threading.Event()
            threading.Thread(target=self._up, args=(client, server, eat), name="test-proxy", daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, eat), name="test-proxy", daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, eat: threading.Event) -> None:
        while data := self._recv(client):
            if self.armed.is_set() and b"XADD" in data:
                self.armed.clear()
                eat.set()
            server.sendall(data)
        server.close()

    def _down(self, server: socket.socket, client: socket.socket, eat: threading.Event) -> None:
        while data := self._recv(server):
            if eat.is_set():  # Redis has done the work; the client never learns it
                self.ate.set()
                client.shutdown(socket.SHUT_RDWR)
                client.close()
                server.close()
                return
            client.sendall(data)
        client.close()

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        self.listener.close()


def test_a_lost_reply_does_not_duplicate_events(redis_server: RedisServer, redis_url: str) -> None:
    """Redis stores a batch but its reply is lost: the writer sends it again, and each event is still stored once."""
    proxy = ReplyEater(redis_server.port)
    streams = ResumableStreams(f"redis://127.0.0.1:{proxy.port}/0")
    question = [{"role": "user", "content": LONG}]
    try:
        stream_id = streams.start(ElizaStreamer(seed=4, pace=0.05), question)
        events = streams.events(stream_id, timeout=10)
        got = [next(events)]
        proxy.armed.set()
        got.extend(events)
        assert proxy.ate.is_set()
        assert text_of(got) == ElizaStreamer(seed=4).chat(question).text
        assert [e.id for e in streams.events(stream_id, timeout=0)] == [e.id for e in got]
        origin = got[0].id.split("-")[0]
        assert [e.id for e in got] == [f"{origin}-{n}" for n in range(1, len(got) + 1)]
    finally:
        streams.close()
        proxy.close()


# --- several processes --------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m tests.resumable_proc ...`` in the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.resumable_proc", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def line_of(proc: subprocess.Popen[str], word: str) -> str:
    """The rest of the process's first output line that starts with ``word`` (bounded by the process's own timeout)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(word + " "):
            return line[len(word) + 1 :].strip()
    raise AssertionError(f"no {word!r} line; exit code {proc.wait(10)}")


def test_read_and_resume_in_another_process(redis_url: str) -> None:
    """A stream started in one process is read, cut, and resumed by another; the text is the whole answer."""
    producer = run("start", redis_url, "5", "0.05", LONG)
    try:
        stream_id = line_of(producer, "id")
        streams = ResumableStreams(redis_url)
        got: list[StreamEvent] = []
        for event in streams.events(stream_id, timeout=10):
            got.append(event)
            if len(got) == 4:
                break
        got.extend(streams.events(stream_id, after=got[-1].id, timeout=10))
        expected = ElizaStreamer(seed=5).chat([{"role": "user", "content": LONG}]).text
        assert text_of(got) == expected
        calls = json.loads(line_of(producer, "calls"))
        assert calls == [*(["content", e.data["text"]] for e in got if e.type == "content"), ["finish", expected]]
        streams.close()
    finally:
        assert producer.wait(20) == 0


def test_cancel_from_a_third_process(redis_url: str) -> None:
    """Started in one process, followed in this one, cancelled from a third: the log ends with StreamCancelled within a second."""
    producer = run("start", redis_url, "6", "0.5", LONG)  # about 6 s: room for a slow canceller process
    try:
        stream_id = line_of(producer, "id")
        streams = ResumableStreams(redis_url)
        events = streams.events(stream_id, timeout=10)
        first = next(events)
        canceller = run("cancel", redis_url, stream_id)
        assert line_of(canceller, "cancelled") == "True"
        asked = time.monotonic()
        rest = list(events)
        waited = time.monotonic() - asked
        assert rest[-1].type == "error" and rest[-1].data["error"] == "StreamCancelled"
        assert waited < 5  # generous bound for a loaded machine; the writer polls every 0.2 s
        sent = [first, *rest[:-1]]
        assert json.loads(line_of(producer, "calls")) == [*(["content", e.data["text"]] for e in sent), ["error", "StreamCancelled"]]
        assert streams.status(stream_id) == "cancelled"
        assert canceller.wait(10) == 0
        streams.close()
    finally:
        assert producer.wait(20) == 0


def test_followers_learn_that_the_producer_died(redis_url: str) -> None:
    """The producing process is SIGKILLed mid-answer: its heartbeat stops, and followers get a StreamError event instead of waiting forever."""
    producer = run("start", redis_url, "6", "0.5", LONG, env={"ALIVE_MS": "600"})
    stream_id = line_of(producer, "id")
    streams = ResumableStreams(redis_url)
    events = streams.events(stream_id, timeout=30)
    first = next(events)
    assert first.type == "content"
    producer.kill()
    producer.wait(10)
    rest = list(events)
    assert [e.type for e in rest][-1] == "error"
    assert rest[-1].data == {"error": "StreamError", "message": "the process generating this answer stopped", "provider": None}
    assert all(e.type == "content" for e in rest[:-1])
    assert streams.status(stream_id) == "error"
    again = list(streams.events(stream_id, after=first.id, timeout=5))  # a later follower sees the same end
    assert again == rest
    streams.close()


def test_many_processes_follow_one_stream(redis_url: str) -> None:
    """Three reader processes and this one follow the same stream live and get the same events."""
    producer = run("start", redis_url, "7", "0.03", LONG)
    code = (
        "import sys, json; from llmstreamer.web import ResumableStreams; s = ResumableStreams(sys.argv[1]);"
        "print(json.dumps([[e.id, e.type, e.data] for e in s.events(sys.argv[2], timeout=10)]))"
    )
    try:
        stream_id = line_of(producer, "id")
        readers = [
            subprocess.Popen([sys.executable, "-c", code, redis_url, stream_id], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        mine = [[e.id, e.type, e.data] for e in ResumableStreams(redis_url).events(stream_id, timeout=10)]
        for reader in readers:
            out, _ = reader.communicate(timeout=30)
            assert json.loads(out) == mine
        assert mine[-1][1] == "done"
    finally:
        assert producer.wait(20) == 0


def test_prefix_separates_applications(redis_url: str) -> None:
    """Two ResumableStreams with different prefixes on one Redis do not see each other's streams."""
    one, two = ResumableStreams(redis_url, prefix="one"), ResumableStreams(redis_url, prefix="two")
    stream_id = one.start(ElizaStreamer(seed=1), [{"role": "user", "content": LONG}])
    assert two.status(stream_id) is None and one.status(stream_id) is not None
    list(one.events(stream_id, timeout=10))
    client = redis.Redis.from_url(redis_url)
    assert sorted(k.decode() for k in client.keys("*")) == [f"one:stream:{stream_id}", f"one:stream:{stream_id}:status"]
    assert 0 < client.pttl(f"one:stream:{stream_id}") <= 3600_000
    client.close()
    one.close()
    two.close()
