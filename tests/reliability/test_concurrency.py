"""One streamer shared by 50 threads running 200 streams at once: every answer right, no pool noise."""

from __future__ import annotations

import logging
import threading

import pytest

from llmstreamer import Message, StreamHandle
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply

from ..conftest import Recorder
from .conftest import make

THREADS = 50
PER_THREAD = 4


def echo(request: RecordedRequest) -> Reply:
    """Answer with the ticket the request carries, so a mixed-up answer cannot pass."""
    body = request.body.decode()
    start = body.index("ticket-")
    ticket = body[start : body.index(" ", start)]
    return Reply(text=["answer", f" for {ticket}"])


def test_fifty_threads_two_hundred_concurrent_streams(flavor: str, server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """50 threads each start 4 streams on one shared streamer (pool of 32); all 200 run at once and
    each gets exactly its own answer; urllib3 logs no warning ("connection pool is full" or other)."""
    server.default = echo
    recorders: dict[str, Recorder] = {}
    handles: list[StreamHandle] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS, timeout=10)
    with caplog.at_level(logging.WARNING, logger="urllib3"), make(flavor, server.base_url(flavor)) as shared:

        def starter(n: int) -> None:
            barrier.wait()
            for k in range(PER_THREAD):
                ticket = f"ticket-{n}-{k}"
                recorder = Recorder()
                handle = shared.stream_chat([Message.user(f"please answer {ticket} now")], recorder)
                with lock:
                    recorders[ticket] = recorder
                    handles.append(handle)

        threads = [threading.Thread(target=starter, args=(n,), name=f"starter-{n}") for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(handles) == THREADS * PER_THREAD
        assert all(h.wait(60) for h in handles)
    for ticket, recorder in recorders.items():
        assert recorder.calls == [
            ("content", "answer"),
            ("content", f" for {ticket}"),
            ("usage", 10, 2),
            ("finish", f"answer for {ticket}"),
        ], ticket
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []
    assert len(server.requests) == THREADS * PER_THREAD
