"""Many streams, sequential and concurrent, leave no thread and no socket behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from llmstreamer import Message, OpenAIStreamer, StreamCallbacks
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import llm_threads, socket_fds, wait_until


def test_sequential_and_concurrent_streams_leave_nothing_behind() -> None:
    """500 streams one after another and 50 at once end with no llmstreamer thread and no open socket."""
    before = socket_fds()
    with FakeLLMServer(default=Reply(text="hi there")) as server:
        s = OpenAIStreamer(api_key="k", base_url=server.base_url("openai"), pool_size=8)
        for _ in range(500):
            assert s.stream_chat([Message.user("Hi")]).result(5).text == "hi there"
        # Pooled keep-alive connections are reused: 500 streams need one connection.
        assert server.connections_opened <= 2
        texts: list[str] = []
        handles = [s.stream_chat([Message.user("Hi")], StreamCallbacks(on_finish=lambda r: texts.append(r.text))) for _ in range(50)]
        assert all(h.wait(10) for h in handles)
        assert texts == ["hi there"] * 50
        assert wait_until(lambda: not llm_threads())
        s.close()
        assert server.wait_for(lambda: server.open_connections == 0, timeout=5)
    assert wait_until(lambda: socket_fds() <= before)


def test_failed_and_cancelled_streams_release_connections() -> None:
    """Streams that fail or are cancelled close their connections instead of returning them dirty."""
    with FakeLLMServer() as server:
        s = OpenAIStreamer(api_key="k", base_url=server.base_url("openai"), retry=0)
        server.add(*[Reply(text=["a", "b"], stall_after=2)] * 10)
        handles = [s.stream_chat([Message.user("Hi")]) for _ in range(10)]
        assert server.wait_for(lambda: len(server.requests) == 10)
        for h in handles:
            h.cancel()
        assert all(h.wait(5) for h in handles)
        server.add(*[Reply(text=["x"], truncate=True)] * 10)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: s.stream_chat([Message.user("Hi")]).wait(5), range(10)))
        s.close()
        assert server.wait_for(lambda: server.open_connections == 0, timeout=5)
