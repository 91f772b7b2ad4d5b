"""Tools cannot be turned against the user: write/exec tools need confirmation, the loop is bounded,
and one stream's failing tool never touches another stream."""

from __future__ import annotations

import threading
from typing import Any

from llmstreamer import RetryPolicy, ToolCall, tool
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply

from ..conftest import Recorder
from .conftest import make, stream

RAN: list[str] = []


@tool(permission="write")
def save_note(text: str) -> str:
    """Save a note to disk."""
    RAN.append(f"save:{text}")
    return "saved"


@tool(permission="exec")
def run_shell(cmd: str) -> str:
    """Run a shell command."""
    RAN.append(f"shell:{cmd}")
    return "done"


@tool
def lookup(word: str) -> str:
    """Look a word up; a word starting with "boom" makes the tool raise."""
    if word.startswith("boom"):
        raise RuntimeError(f"lookup exploded on {word}")
    return f"meaning of {word}"


CALLS = (ToolCall("call_1", "save_note", {"text": "hi"}), ToolCall("call_2", "run_shell", {"cmd": "rm -rf /"}))


def test_write_and_exec_tools_are_refused_without_confirm_tool(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """With no confirm_tool, neither a write nor an exec tool runs: each call gets a refusal."""
    RAN.clear()
    server.add(Reply(tool_calls=CALLS, finish_reason="tool_calls"), Reply(text=["ok"]))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder, tools=[save_note, run_shell])
    assert recorder.calls == [
        ("tool_call", "save_note"),
        ("tool_call", "run_shell"),
        ("usage", 10, 1),
        ("tool_result", "save_note", "refused: tool 'save_note' needs 'write' permission and no confirm_tool was given"),
        ("tool_result", "run_shell", "refused: tool 'run_shell' needs 'exec' permission and no confirm_tool was given"),
        ("content", "ok"),
        ("usage", 20, 2),
        ("finish", "ok"),
    ]
    assert RAN == []


def test_confirm_tool_decides_each_call(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """confirm_tool sees every write/exec call and only the approved one runs."""
    RAN.clear()
    asked: list[str] = []

    def confirm(call: ToolCall) -> Any:
        asked.append(call.name)
        return call.name == "save_note"

    server.add(Reply(tool_calls=CALLS, finish_reason="tool_calls"), Reply(text=["ok"]))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder, tools=[save_note, run_shell], confirm_tool=confirm)
    assert asked == ["save_note", "run_shell"] and RAN == ["save:hi"]
    assert recorder.calls == [
        ("tool_call", "save_note"),
        ("tool_call", "run_shell"),
        ("usage", 10, 1),
        ("tool_result", "save_note", "saved"),
        ("tool_result", "run_shell", "refused: the call was not approved"),
        ("content", "ok"),
        ("usage", 20, 2),
        ("finish", "ok"),
    ]


def test_max_iterations_bounds_a_model_that_never_stops_calling(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A model that calls a tool on every round is stopped after max_iterations requests."""
    server.default = Reply(tool_calls=[ToolCall("call_1", "lookup", {"word": "again"})], finish_reason="tool_calls")
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder, tools=[lookup], max_iterations=4)
    round_calls = [("tool_call", "lookup"), ("usage", 10, 1)]
    result = ("tool_result", "lookup", "meaning of again")
    assert recorder.calls == [
        *round_calls, result, ("tool_call", "lookup"), ("usage", 20, 2), result,
        ("tool_call", "lookup"), ("usage", 30, 3), result, ("tool_call", "lookup"), ("usage", 40, 4), ("finish", ""),
    ]  # fmt: skip
    assert recorder.response is not None and recorder.response.finish_reason == "max_iterations"
    assert len(server.requests) == 4


def test_a_tool_exception_never_reaches_another_stream(flavor: str, server: FakeLLMServer) -> None:
    """Ten concurrent streams on one streamer and one toolbox: the five whose tool raises get an
    error result; the others get their own answers; no stream ends in on_error."""

    def reply(request: RecordedRequest) -> Reply:
        body = request.body.decode()
        word = next(w for w in ("boom0", "boom1", "boom2", "boom3", "boom4", "ok0", "ok1", "ok2", "ok3", "ok4") if w in body)
        if "meaning of" in body or "exploded" in body:  # the second round: answer with the tool's result
            return Reply(text=[f"answer for {word}"])  # one chunk
        return Reply(tool_calls=[ToolCall("call_1", "lookup", {"word": word})], finish_reason="tool_calls")

    server.default = reply
    words = [f"boom{i}" for i in range(5)] + [f"ok{i}" for i in range(5)]
    recorders = {w: Recorder() for w in words}
    barrier = threading.Barrier(len(words), timeout=10)

    shared = make(flavor, server.base_url(flavor), retry=RetryPolicy.none())

    def one(word: str) -> None:
        barrier.wait()
        stream(shared, recorders[word], tools=[lookup], system=f"the word is {word}")

    threads = [threading.Thread(target=one, args=(w,)) for w in words]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    shared.close()
    for word, rec in recorders.items():
        expected = f"error: RuntimeError: lookup exploded on {word}" if word.startswith("boom") else f"meaning of {word}"
        assert rec.calls == [
            ("tool_call", "lookup"),
            ("usage", 10, 1),
            ("tool_result", "lookup", expected),
            ("content", f"answer for {word}"),
            ("usage", 20, 2),
            ("finish", f"answer for {word}"),
        ], word
