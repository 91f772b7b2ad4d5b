"""Parallel tool calls: the calls of one round run at once, report in call order, and stop on cancel."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import llmstreamer
from llmstreamer import ConfigurationError, Message, StreamCancelled, ToolCall, tool
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

QUESTION = [Message.user("Check three things.")]
FLAVORS = ["openai", "anthropic", "gemini"]


def make(server: FakeLLMServer, flavor: str = "openai") -> Any:
    """A streamer of ``flavor`` pointed at the fake server, without retries."""
    return llmstreamer.streamer(f"{flavor}:m", api_key="k", base_url=server.base_url(flavor), retry=0)


def script(server: FakeLLMServer, names: list[str]) -> None:
    """One round calling each tool in ``names`` (ids call_1..), then a text answer."""
    calls = [ToolCall(f"call_{i}", name, {"label": name}) for i, name in enumerate(names, 1)]
    server.add(Reply(tool_calls=calls, finish_reason="tool_calls"), Reply(text=["Done."]))


class Timed:
    """Tools that sleep and note when they ran and on which thread."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float, str]] = {}
        self.lock = threading.Lock()

    def make(self, name: str, seconds: float) -> Any:
        def sleeper(label: str) -> str:
            start = time.monotonic()
            time.sleep(seconds)  # the work a slow tool does, not a wait for another thread
            with self.lock:
                self.spans[name] = (start, time.monotonic(), threading.current_thread().name)
            return f"{label} ok"

        return tool(name=name, description="Sleeps.")(sleeper)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_three_slow_tools_finish_a_round_in_the_time_of_one(flavor: str, recorder: Recorder) -> None:
    """Three tools sleeping 0.3 s each finish their round in about 0.3 s, results in call order."""
    timed = Timed()
    tools = [timed.make(n, 0.3) for n in ("a", "b", "c")]
    with FakeLLMServer() as server:
        script(server, ["a", "b", "c"])
        assert make(server, flavor).stream_chat(QUESTION, recorder, tools=tools).wait(10)
    assert recorder.calls == [
        ("tool_call", "a"),
        ("tool_call", "b"),
        ("tool_call", "c"),
        ("usage", 10, 1),
        ("tool_result", "a", "a ok"),
        ("tool_result", "b", "b ok"),
        ("tool_result", "c", "c ok"),
        ("content", "Done."),
        ("usage", 20, 2),
        ("finish", "Done."),
    ]
    starts = [s for s, _, _ in timed.spans.values()]
    ends = [e for _, e, _ in timed.spans.values()]
    # a concurrency check with a generous margin (sequential would take 0.9 s), not a benchmark
    assert max(ends) - min(starts) < 0.8
    assert all(t.startswith("llmstreamer-tools-") for _, _, t in timed.spans.values())
    assert len(recorder.threads) == 1 and recorder.threads.pop().startswith(f"llmstreamer-{flavor}-")


def test_calls_overlap_without_any_clock(server: FakeLLMServer, recorder: Recorder) -> None:
    """Three tools that each wait for the other two at a barrier all get through: they ran at the same time."""
    barrier = threading.Barrier(3, timeout=5)

    def meet(label: str) -> str:
        barrier.wait()
        return f"{label} met"

    tools = [tool(name=n, description="Meets.")(meet) for n in ("x", "y", "z")]
    script(server, ["x", "y", "z"])
    assert make(server).stream_chat(QUESTION, recorder, tools=tools).wait(10)
    assert [c for c in recorder.calls if c[0] == "tool_result"] == [
        ("tool_result", "x", "x met"),
        ("tool_result", "y", "y met"),
        ("tool_result", "z", "z met"),
    ]


def test_results_keep_call_order_when_a_later_call_finishes_first(server: FakeLLMServer, recorder: Recorder) -> None:
    """The slowest call comes first: its result is still reported first, and the fast ones did not wait to start."""
    first_done = threading.Event()
    order: list[str] = []

    def slow(label: str) -> str:
        assert first_done.wait(5)  # runs until the fast tool has finished
        order.append("slow")
        return "slow ok"

    def fast(label: str) -> str:
        order.append("fast")
        first_done.set()
        return "fast ok"

    tools = [tool(name="slow", description="")(slow), tool(name="fast", description="")(fast)]
    script(server, ["slow", "fast"])
    assert make(server).stream_chat(QUESTION, recorder, tools=tools).wait(10)
    assert order == ["fast", "slow"]
    assert recorder.calls == [
        ("tool_call", "slow"),
        ("tool_call", "fast"),
        ("usage", 10, 1),
        ("tool_result", "slow", "slow ok"),
        ("tool_result", "fast", "fast ok"),
        ("content", "Done."),
        ("usage", 20, 2),
        ("finish", "Done."),
    ]


def test_parallel_tools_false_runs_one_after_another_on_the_worker(server: FakeLLMServer, recorder: Recorder) -> None:
    """parallel_tools=False runs each call on the worker thread, one finishing before the next starts."""
    timed = Timed()
    tools = [timed.make(n, 0.01) for n in ("a", "b", "c")]
    script(server, ["a", "b", "c"])
    assert make(server).stream_chat(QUESTION, recorder, tools=tools, parallel_tools=False).wait(10)
    spans = [timed.spans[n] for n in ("a", "b", "c")]
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0]
    assert {t for _, _, t in spans} == recorder.threads
    assert recorder.kinds() == ["tool_call"] * 3 + ["usage"] + ["tool_result"] * 3 + ["content", "usage", "finish"]


def test_confirmations_are_asked_in_order_on_the_worker_before_any_tool_runs(server: FakeLLMServer, recorder: Recorder) -> None:
    """confirm_tool is asked once per write call, in call order, on the worker thread, before the tools run."""
    log: list[tuple[str, str]] = []

    def confirm(call: ToolCall) -> tuple[bool, str]:
        log.append(("confirm", call.name))
        assert threading.current_thread().name.startswith("llmstreamer-openai-")
        return (call.name != "w2", "no w2")

    def writer(label: str) -> str:
        log.append(("run", label))
        return "written"

    tools = [tool(name=n, description="", permission="write")(writer) for n in ("w1", "w2", "w3")]
    script(server, ["w1", "w2", "w3"])
    assert make(server).stream_chat(QUESTION, recorder, tools=tools, confirm_tool=confirm).wait(10)
    assert log[:3] == [("confirm", "w1"), ("confirm", "w2"), ("confirm", "w3")]
    assert sorted(log[3:]) == [("run", "w1"), ("run", "w3")]
    assert [c for c in recorder.calls if c[0] == "tool_result"] == [
        ("tool_result", "w1", "written"),
        ("tool_result", "w2", "refused: no w2"),
        ("tool_result", "w3", "written"),
    ]


def test_a_raising_tool_fills_its_own_slot_with_an_error(server: FakeLLMServer, recorder: Recorder) -> None:
    """One of three parallel calls raises: its slot carries the error result, the others their values."""

    def ok(label: str) -> str:
        return f"{label} ok"

    def boom(label: str) -> str:
        raise RuntimeError("disk on fire")

    tools = [tool(name="p", description="")(ok), tool(name="q", description="")(boom), tool(name="r", description="")(ok)]
    script(server, ["p", "q", "r"])
    assert make(server).stream_chat(QUESTION, recorder, tools=tools).wait(10)
    assert [c for c in recorder.calls if c[0] == "tool_result"] == [
        ("tool_result", "p", "p ok"),
        ("tool_result", "q", "error: RuntimeError: disk on fire"),
        ("tool_result", "r", "r ok"),
    ]


def test_cancel_stops_waiting_for_running_tools(server: FakeLLMServer, recorder: Recorder) -> None:
    """cancel() while two tools hang ends the stream at once with StreamCancelled; no next round is requested."""
    started = threading.Barrier(3, timeout=5)
    release = threading.Event()

    def hang(label: str) -> str:
        started.wait()
        release.wait(10)
        return "late"

    tools = [tool(name=n, description="")(hang) for n in ("h1", "h2")]
    script(server, ["h1", "h2"])
    try:
        handle = make(server).stream_chat(QUESTION, recorder, tools=tools)
        started.wait()  # both tools are running
        begun = time.monotonic()
        handle.cancel()
        assert handle.wait(5)
        waited = time.monotonic() - begun
    finally:
        release.set()  # let the abandoned tool threads end
    assert waited < 2.0
    assert recorder.calls == [("tool_call", "h1"), ("tool_call", "h2"), ("usage", 10, 1), ("error", "StreamCancelled")]
    assert isinstance(recorder.error, StreamCancelled) and len(server.requests) == 1


def test_parallel_tools_must_be_a_bool(server: FakeLLMServer) -> None:
    """parallel_tools="yes" fails before any request."""
    with pytest.raises(ConfigurationError, match="parallel_tools must be True or False"):
        make(server).stream_chat(QUESTION, parallel_tools="yes")
    assert server.requests == []
