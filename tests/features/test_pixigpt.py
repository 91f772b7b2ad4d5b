"""PixiGPT's REST client: assistants, threads, messages, runs followed to one terminal callback."""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

import pytest

from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    CallbackError,
    ConfigurationError,
    LLMStreamError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    StreamCancelled,
    StreamHandle,
    Timeout,
)
from llmstreamer._rest import create_may_retry
from llmstreamer.errors import ServerError
from llmstreamer.pixigpt import Assistant, PixiGPTClient, Run, Source, Thread
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

FAST = RetryPolicy(retries=2, initial_delay=0.001, max_delay=0.002)


class RunRecorder(Recorder):
    """A recorder that also notes ``on_status`` and finishes with a `Run`."""

    def on_status(self, run: Run) -> None:
        self._note("status", run.status)

    def on_retry(self, error: Any, attempt: int, delay: float) -> None:
        self._note("retry", type(error).__name__, attempt, delay)

    def on_finish(self, run: Any) -> None:  # type: ignore[override]
        self.response = run
        self._note("finish", run.message.text if run.message else None)
        self.done.set()

    def on_error(self, error: LLMStreamError) -> None:
        self.error = error
        self._note("error", type(error).__name__, error.message)
        self.done.set()


@pytest.fixture
def pixi(server: FakeLLMServer) -> Iterator[PixiGPTClient]:
    """A client on the fake server that polls every 10 ms."""
    with PixiGPTClient("pixi-key", server.base_url("pixigpt"), retry=FAST, poll_interval=0.01, max_poll_interval=0.02) as c:
        yield c


def follow(pixi: PixiGPTClient, server: FakeLLMServer, **kw: Any) -> tuple[RunRecorder, StreamHandle]:
    """Create a thread and run an assistant on it, recording the callbacks; wait for the end."""
    thread = pixi.create_thread()
    rec = RunRecorder()
    handle = pixi.run(thread.id, "asst_1", rec, **kw)
    assert handle.wait(10)
    return rec, handle


# --- runs ---------------------------------------------------------------------------------------


def test_completed_run_fires_statuses_then_the_answer(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A completed run: on_status per change, then thinking, content and on_finish with the message and its sources."""
    source = {"id": "src_1", "tool_name": "WebSearch", "title": "France", "url": "https://example.org/fr"}
    server.pixigpt.script_run(["queued", "queued", "in_progress", "completed"], text="Paris.", reasoning="Capital?", sources=[source])
    rec, handle = follow(pixi, server)
    assert rec.calls == [
        ("status", "queued"),
        ("status", "in_progress"),
        ("status", "completed"),
        ("thinking", "Capital?"),
        ("content", "Paris."),
        ("finish", "Paris."),
    ]
    run = handle.result()
    assert run.status == "completed" and run.message is not None
    assert run.message.sources == (Source("src_1", "WebSearch", "France", "https://example.org/fr"),)
    assert rec.threads == {t for t in rec.threads if t.startswith("llmstreamer-pixigpt-")} and len(rec.threads) == 1


def test_failed_run_carries_the_server_message(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A failed run ends in on_error with the server's error detail, and error.run is the failed run."""
    server.pixigpt.script_run(["in_progress", "failed"], error={"code": "server_error", "message": "the GPU caught fire"})
    rec, handle = follow(pixi, server)
    assert rec.calls == [
        ("status", "in_progress"),
        ("status", "failed"),
        ("error", "ServerError", "run run_2 failed: the GPU caught fire"),
    ]
    assert rec.error is not None and rec.error.run.status == "failed"  # type: ignore[attr-defined]
    with pytest.raises(ServerError, match="the GPU caught fire"):
        handle.result()
    server.pixigpt.script_run(["failed"], error={"code": "gpu_melted", "message": "no GPU"})
    rec, _ = follow(pixi, server)
    assert rec.calls == [("status", "failed"), ("error", "StreamError", "run run_4 failed: no GPU")]


def test_failed_run_with_a_known_code_maps_to_its_class(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A run failed with rate_limit_exceeded is a RateLimitError."""
    server.pixigpt.script_run(["failed"], error={"code": "rate_limit_exceeded", "message": "slow down"})
    rec, _ = follow(pixi, server)
    assert rec.calls == [("status", "failed"), ("error", "RateLimitError", "run run_2 failed: slow down")]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("cancelled", "StreamCancelled"),
        ("expired", "StreamError"),
        ("requires_action", "StreamError"),
        ("incomplete", "StreamError"),
        ("teleported", "StreamError"),
    ],
)
def test_other_terminal_and_unknown_statuses_end_once(pixi: PixiGPTClient, server: FakeLLMServer, status: str, error: str) -> None:
    """cancelled, expired, requires_action and unknown statuses end in exactly one on_error, last."""
    server.pixigpt.script_run(["queued", status])
    rec, _ = follow(pixi, server)
    assert [c[:2] for c in rec.calls] == [("status", "queued"), ("status", status), ("error", error)]
    assert status in rec.calls[-1][2]


def test_cancelling_is_followed_to_cancelled(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """cancelling is not terminal: polling goes on until the run is cancelled."""
    server.pixigpt.script_run(["in_progress", "cancelling", "cancelled"])
    rec, _ = follow(pixi, server)
    assert [c[:2] for c in rec.calls] == [
        ("status", "in_progress"), ("status", "cancelling"), ("status", "cancelled"), ("error", "StreamCancelled"),
    ]


def test_a_run_that_never_ends_hits_the_total_timeout(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A run stuck in_progress ends with APITimeoutError (total) after the run's timeout."""
    server.pixigpt.script_run(["in_progress"])
    rec, _handle = follow(pixi, server, timeout=0.3)
    assert rec.calls == [("status", "in_progress"), ("error", "APITimeoutError", "the stream exceeded its total timeout of 0.3 s")]
    assert isinstance(rec.error, APITimeoutError) and rec.error.kind == "total"
    assert rec.error.run.status == "in_progress"  # type: ignore[attr-defined]
    polls = [r for r in server.requests if r.method == "GET"]
    assert 1 <= len(polls) < 40  # polling backs off instead of hammering the server


def test_429_while_polling_waits_for_retry_after(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A 429 during polling is retried after the server's retry-after, reported through on_retry."""
    server.pixigpt.script_run(["queued", "completed"], text="ok")
    server.add(Reply(), Reply(), Reply(status=429, headers={"retry-after": "0.05"}))
    rec, _ = follow(pixi, server)
    assert rec.calls == [
        ("status", "queued"),
        ("retry", "RateLimitError", 1, 0.05),
        ("status", "completed"),
        ("content", "ok"),
        ("finish", "ok"),
    ]
    assert [r.method for r in server.requests] == ["POST", "POST", "GET", "GET"]


def test_retry_after_on_a_poll_sets_the_next_wait(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A retry-after header on a poll's answer sets the wait before the next poll."""
    server.pixigpt.script_run(["queued", "in_progress", "completed"], poll_headers={"retry-after": "0"})
    rec, _ = follow(pixi, server)
    assert rec.kinds() == ["status", "status", "status", "content", "finish"]


def test_cancel_stops_polling(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """cancel() ends the run's handle with StreamCancelled, and polling stops."""
    server.pixigpt.script_run(["in_progress"])
    thread = pixi.create_thread()
    rec = RunRecorder()
    seen = threading.Event()
    handle = pixi.run(thread.id, "asst_1", rec, on_status=lambda run: seen.set())
    assert seen.wait(5)
    handle.cancel()
    assert handle.wait(5)
    assert rec.calls == [("error", "StreamCancelled", "the stream was cancelled")]
    count = len(server.requests)
    with pytest.raises(StreamCancelled):
        handle.result()
    assert not server.wait_for(lambda: len(server.requests) > count, timeout=0.1)


def test_a_raising_callback_ends_in_callback_error(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """An on_status that raises stops following and ends in on_error(CallbackError)."""
    rec = RunRecorder()

    def boom(run: Run) -> None:
        raise RuntimeError("no")

    handle = pixi.run(pixi.create_thread().id, "asst_1", rec, on_status=boom)
    assert handle.wait(5)
    assert rec.calls == [("error", "CallbackError", "on_status raised RuntimeError: no")]
    assert isinstance(rec.error, CallbackError) and isinstance(rec.error.__cause__, RuntimeError)


def test_run_options_and_temperature_zero(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """The run create sends temperature 0 as 0, enable_thinking and max_tokens; unknown options are refused."""
    follow(pixi, server, temperature=0, enable_thinking=False, max_tokens=50)
    create = next(r for r in server.requests if r.path.endswith("/runs"))
    assert create.json == {"assistant_id": "asst_1", "enable_thinking": False, "temperature": 0, "max_tokens": 50}
    assert b'"temperature": 0' in create.body
    with pytest.raises(ConfigurationError, match="does not take"):
        pixi.run("t", "a", top_k=3)


# --- idempotency --------------------------------------------------------------------------------


def test_dropped_create_is_retried_with_the_same_key(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A create whose connection drops after it was sent is sent again with the same Idempotency-Key."""
    server.add(Reply(silent=True, stall_for=0))
    thread = pixi.create_thread()
    assert thread.id.startswith("thread_")
    first, second = server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(first.headers["idempotency-key"]) >= 16 and first.body == second.body == b"{}"


def test_dropped_create_without_a_key_is_not_retried(server: FakeLLMServer) -> None:
    """Without an Idempotency-Key, a create whose connection dropped is reported, not sent again."""
    pixi = PixiGPTClient("k", server.base_url("pixigpt"), retry=FAST, idempotency_keys=False)
    server.add(Reply(silent=True, stall_for=0))
    with pytest.raises(APIConnectionError):
        pixi.create_thread()
    assert len(server.requests) == 1 and "idempotency-key" not in server.requests[0].headers
    pixi.close()


def test_read_timeout_on_a_create_is_never_retried(server: FakeLLMServer) -> None:
    """A read timeout is ambiguous: the create is not sent again, even with a key."""
    pixi = PixiGPTClient("k", server.base_url("pixigpt"), retry=FAST, timeout=Timeout(connect=2, read=0.2))
    server.add(Reply(silent=True, stall_for=5))
    with pytest.raises(APITimeoutError):
        pixi.create_assistant("a", "b")
    assert len(server.requests) == 1
    pixi.close()


def test_429_and_503_with_retry_after_are_retried_for_creates(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """429, and 503 with retry-after, prove the create was not processed: it is sent again with its key."""
    thread = pixi.create_thread()
    server.add(Reply(status=429, headers={"retry-after": "0"}), Reply(status=503, headers={"retry-after": "0"}))
    assert pixi.create_message(thread.id, "hello").text == "hello"
    sent = [r for r in server.requests if r.path.endswith("/messages")]
    assert len(sent) == 3 and len({r.headers["idempotency-key"] for r in sent}) == 1


def test_500_on_a_create_is_not_retried(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A 500 (or 503 without retry-after) may have processed the create: it is reported, not retried."""
    server.add(Reply(status=500))
    with pytest.raises(ServerError):
        pixi.create_thread()
    assert len(server.requests) == 1


def test_connect_error_on_a_create_is_retried() -> None:
    """A create that never connected is retried: on_retry fires per attempt, then on_error."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    pixi = PixiGPTClient("k", f"http://127.0.0.1:{port}/v1", retry=FAST)
    rec = RunRecorder()
    handle = pixi.run("thread_1", "asst_1", rec)
    assert handle.wait(10)
    assert [c[:3] for c in rec.calls[:2]] == [("retry", "APIConnectionError", 1), ("retry", "APIConnectionError", 2)]
    assert all(0 < c[3] <= 0.002 for c in rec.calls[:2])  # the policy's backoff, no server hint
    assert rec.calls[2][:2] == ("error", "APIConnectionError") and len(rec.calls) == 3


def test_create_may_retry_rules() -> None:
    """The create retry rules: unsent, 429, 503 with retry-after always; a drop only with a key; never a read timeout."""
    unsent = APIConnectionError("refused")
    unsent._unsent = True  # type: ignore[attr-defined]
    dropped = APIConnectionError("dropped")
    assert create_may_retry(unsent, keyed=False) and not create_may_retry(dropped, keyed=False)
    assert create_may_retry(dropped, keyed=True)
    assert not create_may_retry(APITimeoutError("slow", kind="read"), keyed=True)
    assert create_may_retry(APITimeoutError("slow", kind="connect"), keyed=False)
    assert create_may_retry(RateLimitError("x", status_code=429), keyed=False)
    assert create_may_retry(ServerError("x", status_code=503, retry_after=1.0), keyed=False)
    assert not create_may_retry(ServerError("x", status_code=503), keyed=True)


# --- ids, CRUD, errors --------------------------------------------------------------------------


def test_ids_are_escaped_in_paths(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """Ids with /, ?, #, % and unicode are one escaped path segment, and reach the right object."""
    odd = "th/1?x=2#frag %é"
    server.pixigpt.seed_thread(odd)
    assert pixi.get_thread(odd).id == odd
    assert server.requests[-1].path == "/pixigpt/v1/threads/th%2F1%3Fx%3D2%23frag%20%25%C3%A9"
    with pytest.raises(NotFoundError):
        pixi.get_run(odd, "run/../../x")
    assert server.requests[-1].path.endswith("/runs/run%2F..%2F..%2Fx")
    with pytest.raises(ConfigurationError):
        pixi.get_thread("")


def test_assistants_crud(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """Assistants: create, get, list, update (PUT), list threads, delete; typed values."""
    made = pixi.create_assistant("Pixi", "Be brief.", tools_config="{}")
    assert made == Assistant(made.id, "Pixi", "Be brief.", "{}", 1700000000)
    assert pixi.get_assistant(made.id) == made
    assert pixi.list_assistants() == [made]
    assert pixi.update_assistant(made.id, instructions="Be briefer.").instructions == "Be briefer."
    assert server.requests[-1].method == "PUT" and server.requests[-1].json == {"instructions": "Be briefer."}
    thread = pixi.create_thread(metadata={"user": "ada"})
    pixi.run(thread.id, made.id).wait(5)
    assert pixi.list_assistant_threads(made.id, limit=5) == [Thread(thread.id, 1700000000, {"user": "ada"})]
    assert server.requests[-1].path.endswith(f"/assistants/{made.id}/threads?limit=5")
    pixi.delete_assistant(made.id)
    with pytest.raises(NotFoundError):
        pixi.get_assistant(made.id)


def test_threads_and_messages(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """Threads and messages: create, bulk create, list with limit, get, delete."""
    thread = pixi.create_thread()
    assert pixi.list_threads() == [thread] and pixi.get_thread(thread.id) == thread
    one = pixi.create_message(thread.id, "first")
    bulk = pixi.create_messages(thread.id, [{"role": "user", "content": "second"}, {"role": "assistant", "content": "third"}])
    assert [m.text for m in bulk] == ["second", "third"] and bulk[1].role == "assistant"
    assert server.requests[-1].path.endswith("/messages/bulk")
    assert server.requests[-1].json == {"messages": [{"role": "user", "content": "second"}, {"role": "assistant", "content": "third"}]}
    assert [m.text for m in pixi.list_messages(thread.id, limit=2)] == ["second", "third"]
    assert one.thread_id == thread.id
    pixi.delete_thread(thread.id)
    with pytest.raises(NotFoundError):
        pixi.get_thread(thread.id)
    with pytest.raises(ConfigurationError, match="role"):
        pixi.create_message(thread.id, "x", role="robot")


def test_rerank_moderation_vision(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """rerank, moderate, moderate_media and the vision endpoints send their fields and read typed answers."""
    ranked = pixi.rerank("red fox", ["blue sky", "red fox den", "fox"], top_k=2)
    assert [(r.index, r.document) for r in ranked] == [(1, "red fox den"), (2, "fox")]
    assert server.requests[-1].json == {"query": "red fox", "documents": ["blue sky", "red fox den", "fox"], "top_k": 2}
    assert pixi.moderate("hello").category == "SAFE"
    assert server.requests[-1].json == {"prompt": "hello"}
    pixi.moderate_media("https://example.org/a.png", is_video=True)
    assert server.requests[-1].json == {"media_url": "https://example.org/a.png", "is_video": True}
    assert pixi.analyze_image("https://example.org/a.png", "what?").result == "analyze of https://example.org/a.png"
    assert server.requests[-1].json == {"image_url": "https://example.org/a.png", "user_prompt": "what?"}
    assert pixi.image_tags("u").result == "tags of u" and pixi.ocr("u").result == "ocr of u"
    assert pixi.analyze_video("v").result == "video of v"
    assert server.requests[-1].path == "/pixigpt/v1/vision/video"


def test_errors_use_the_usual_tree(pixi: PixiGPTClient, server: FakeLLMServer) -> None:
    """A 401 is an AuthenticationError; every request carries the bearer key and JSON headers."""
    server.add(Reply(status=401))
    with pytest.raises(AuthenticationError):
        pixi.list_threads()
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer pixi-key" and req.headers["accept"] == "application/json"


def test_key_and_url_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: FakeLLMServer) -> None:
    """PIXIGPT_API_KEY and PIXIGPT_BASE_URL configure the client; no key is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="PIXIGPT_API_KEY"):
        PixiGPTClient()
    monkeypatch.setenv("PIXIGPT_API_KEY", "env-key")
    monkeypatch.setenv("PIXIGPT_BASE_URL", server.base_url("pixigpt"))
    with PixiGPTClient(retry=0) as pixi:
        pixi.list_assistants()
        assert "env-key" not in repr(pixi)
    assert server.requests[0].headers["authorization"] == "Bearer env-key"


def test_example_runs_against_the_fake_server() -> None:
    """examples/pixigpt_run.py --demo follows a scripted run and prints statuses, answer and source."""
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "pixigpt_run.py"
    proc = subprocess.run([sys.executable, str(example), "--demo"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "status: queued",
        "status: in_progress",
        "status: completed",
        "answer: Paris.",
        "source: Paris https://en.wikipedia.org/wiki/Paris",
    ]
