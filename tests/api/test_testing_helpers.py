"""llmstreamer.testing for users' own tests: CallbackRecorder and instant_retries."""

from __future__ import annotations

import llmstreamer
from llmstreamer import Message, RetryPolicy
from llmstreamer.testing import CallbackRecorder, FakeLLMServer, Reply, instant_retries


def test_the_recorder_keeps_every_callback_in_order(server: FakeLLMServer) -> None:
    """CallbackRecorder records the whole callback list, the final response and the worker thread."""
    server.add(Reply(text=["Hel", "lo"]))
    s = llmstreamer.OpenAIStreamer(model="m", api_key="sk-test", base_url=server.base_url("openai"), retry=0)
    rec = CallbackRecorder()
    assert s.stream_chat([Message.user("Hi")], rec).wait(10)
    assert rec.calls == [("content", "Hel"), ("content", "lo"), ("usage", 10, 2), ("finish", "Hello")]
    assert rec.done.is_set() and rec.response is not None and rec.response.text == "Hello"
    assert rec.kinds() == ["content", "content", "usage", "finish"]
    assert all(name.startswith("llmstreamer-openai-") for name in rec.threads)


def test_instant_retries_skip_the_delay_but_report_it(server: FakeLLMServer) -> None:
    """Inside instant_retries a 429 is retried at once; on_retry still gets the policy's delay, and sleeping returns after."""
    server.add(Reply(status=429, headers={"retry-after": "30"}), Reply(text="ok"))
    policy = RetryPolicy(retries=1, max_retry_after=60)
    s = llmstreamer.OpenAIStreamer(model="m", api_key="sk-test", base_url=server.base_url("openai"), retry=policy)
    delays: list[float] = []
    rec = CallbackRecorder()
    rec_retry = rec.on_retry

    def on_retry(error: object, attempt: int, delay: float) -> None:
        delays.append(delay)
        rec_retry(error, attempt, delay)

    rec.on_retry = on_retry  # type: ignore[method-assign]
    with instant_retries():
        assert s.stream_chat([Message.user("Hi")], rec).wait(20)  # a 30 s sleep would time out here
    assert rec.calls == [("retry", "RateLimitError", 1), ("content", "ok"), ("usage", 10, 1), ("finish", "ok")]
    assert delays == [30.0]
    from llmstreamer._cancel import set_retry_sleep

    assert set_retry_sleep(True) is True  # the switch is back on after the block
