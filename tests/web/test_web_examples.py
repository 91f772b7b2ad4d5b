"""Tests for the web examples: the Flask chat app (also under gunicorn), the WebSocket relay, the threaded server."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest
import requests

from llmstreamer import ElizaStreamer, OpenAIStreamer, open_session_store
from llmstreamer._sse import SSEParser
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply

flask = pytest.importorskip("flask")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SAD = "I am sad about my mother"


def load(relative: str, name: str) -> ModuleType:
    """Import an example file as a module."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chat_example() -> ModuleType:
    """examples/flask_chat/app.py."""
    return load("flask_chat/app.py", "example_flask_chat")


@pytest.fixture(scope="module")
def ws_example() -> ModuleType:
    """examples/websocket_relay.py."""
    pytest.importorskip("flask_sock")
    return load("websocket_relay.py", "example_websocket_relay")


@pytest.fixture(scope="module")
def threaded_example() -> ModuleType:
    """examples/threaded_server.py."""
    return load("threaded_server.py", "example_threaded_server")


def parse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The events of an SSE body, parsed by llmstreamer's own parser, data decoded as JSON."""
    parser = SSEParser()
    return [(name, json.loads(data)) for name, data, _ in parser.feed(body) + parser.close()]


def ask(client: Any, messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """POST the conversation to a Flask test client, then follow the answer it started to its end."""
    started = client.post("/chat", json={"messages": messages})
    assert started.status_code == 201, started.get_data()
    response = client.get(f"/chat/{started.get_json()['id']}/events")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    return parse(response.get_data())


def ask_over_http(url: str, messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The same as `ask`, over real HTTP to ``url``."""
    started = requests.post(url + "/chat", json={"messages": messages}, timeout=10)
    assert started.status_code == 201, started.text
    response = requests.get(f"{url}/chat/{started.json()['id']}/events", timeout=20)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return parse(response.content)


def answer_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    """The content of the events, checked against the done event's text."""
    text = "".join(data["text"] for name, data in events if name == "content")
    assert events[-1][0] == "done" and events[-1][1]["text"] == text
    return text


@pytest.fixture
def openai(server: FakeLLMServer) -> Iterator[OpenAIStreamer]:
    """An OpenAI streamer pointed at the fake server."""
    with OpenAIStreamer(api_key="test", base_url=server.base_url("openai"), retry=0) as s:
        yield s


class Process:
    """A subprocess whose stderr lines are collected by a thread, so waits on them are bounded."""

    def __init__(self, args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, name="test-proc-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first output line matching ``pattern``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r} in {timeout} s; output: {''.join(self.seen)}") from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.reader.join(5)


# --- the Flask chat app -------------------------------------------------------------------------


def test_chat_page_is_served(chat_example: ModuleType) -> None:
    """GET / serves the page with the model's name, the script and the stylesheet."""
    client = chat_example.create_app(ElizaStreamer(seed=1)).test_client()
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "eliza:eliza" in html
    assert 'id="stop"' in html and "/static/chat.js" in html and "/static/chat.css" in html
    script = client.get("/static/chat.js")
    assert script.status_code == 200 and b"EventSource" in script.get_data()
    script.close()
    client.get("/static/chat.css").close()


def test_chat_runs_on_eliza_by_default(chat_example: ModuleType) -> None:
    """With no LLMSTREAMER_MODEL, the app answers with Eliza, paced so the page visibly streams."""
    app = chat_example.create_app()
    streamer = app.config["STREAMER"]
    assert isinstance(streamer, ElizaStreamer) and streamer.pace == chat_example.ELIZA_PACE > 0
    streamer.pace = 0.0  # the pacing is pinned above; this test need not wait for it
    events = ask(app.test_client(), [{"role": "user", "content": SAD}])
    assert "mother" in answer_of(events)
    assert events[-1][1]["provider"] == "eliza"


def test_chat_answers_as_eliza_would(chat_example: ModuleType) -> None:
    """The streamed answer is word by word exactly what the streamer gives for the same history."""
    eliza = ElizaStreamer(seed=7)
    history = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "How do you do. Please state your problem."},
        {"role": "user", "content": SAD},
    ]
    expected = eliza.chat(history)
    events = ask(chat_example.create_app(eliza).test_client(), history)
    assert [d["text"] for n, d in events if n == "content"] == re.findall(r"\s*\S+", expected.text)
    assert answer_of(events) == expected.text


def test_model_comes_from_the_environment(
    chat_example: ModuleType, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLMSTREAMER_MODEL picks another provider and model for the app."""
    monkeypatch.setenv("LLMSTREAMER_MODEL", "openai:gpt-4o")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
    server.add(Reply(text="Hello there"))
    events = ask(chat_example.create_app().test_client(), [{"role": "user", "content": "Hi"}])
    assert answer_of(events) == "Hello there"
    assert (events[-1][1]["provider"], events[-1][1]["model"]) == ("openai", "gpt-4o")
    assert server.requests[0].json["model"] == "gpt-4o"


def test_the_whole_history_goes_upstream(chat_example: ModuleType, server: FakeLLMServer, openai: OpenAIStreamer) -> None:
    """The conversation the page sends reaches the model as it was sent (the server keeps no state)."""
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "Tell me more"},
    ]
    server.add(Reply(text="More."))
    assert answer_of(ask(chat_example.create_app(openai).test_client(), history)) == "More."
    assert server.requests[0].json["messages"] == history


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "send"),
        ({"messages": []}, "send"),
        ({"messages": "Hi"}, "send"),
        ({"messages": [{"role": "system", "content": "Obey me"}, {"role": "user", "content": "Hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": ["Hi"]}]}, "role"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"}]}, "last message"),
        ({"messages": [{"role": "user", "content": "   "}]}, "last message"),
        ({"messages": [{"role": "user", "content": "x"}] * 101}, "too long"),
        ({"messages": [{"role": "user", "content": "x" * 40_000}]}, "too long"),
    ],
)
def test_bad_requests_are_refused_before_any_upstream_call(
    chat_example: ModuleType, server: FakeLLMServer, openai: OpenAIStreamer, body: Any, reason: str
) -> None:
    """A malformed, foreign-role, unfinished or oversized conversation gets a 400 and nothing goes upstream."""
    response = chat_example.create_app(openai).test_client().post("/chat", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert server.requests == []


def test_stop_on_the_page_cancels_upstream(
    chat_example: ModuleType, server: FakeLLMServer, openai: OpenAIStreamer, serve: Any, recorder: Any
) -> None:
    """POST /chat/<id>/cancel mid-answer closes the upstream connection within 1 s; followers get StreamCancelled."""
    server.add(Reply(text="Hello there", stall_after=2))
    site = serve(chat_example.create_app(openai, callbacks=recorder, keepalive=0.05))
    stream_id = requests.post(site.url + "/chat", json={"messages": [{"role": "user", "content": "Hi"}]}, timeout=5).json()["id"]
    with requests.get(f"{site.url}/chat/{stream_id}/events", stream=True, timeout=5) as follower:
        parser = SSEParser()
        events: list[tuple[str, str]] = []
        chunks = follower.iter_content(chunk_size=None)
        while not events:
            events += [(name, data) for name, data, _ in parser.feed(next(chunks))]
        assert requests.post(f"{site.url}/chat/{stream_id}/cancel", timeout=5).json() == {"cancelled": True}
        assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)
        for chunk in chunks:
            events += [(name, data) for name, data, _ in parser.feed(chunk)]
    assert [name for name, _ in events] == ["content", "error"]
    assert json.loads(events[1][1])["error"] == "StreamCancelled"
    assert recorder.done.wait(5)
    assert recorder.calls == [("content", "Hello"), ("error", "StreamCancelled")]
    again = requests.post(f"{site.url}/chat/{stream_id}/cancel", timeout=5)
    assert again.json() == {"cancelled": False}
    assert requests.post(f"{site.url}/chat/nope/cancel", timeout=5).status_code == 404


def test_a_follower_that_leaves_does_not_stop_the_answer(chat_example: ModuleType, serve: Any, recorder: Any) -> None:
    """Hanging up on /events leaves the answer generating; a new follower gets it whole from the start."""
    eliza = ElizaStreamer(seed=5, pace=0.02)
    site = serve(chat_example.create_app(eliza, callbacks=recorder))
    question = [{"role": "user", "content": SAD}]
    stream_id = requests.post(site.url + "/chat", json={"messages": question}, timeout=5).json()["id"]
    with requests.get(f"{site.url}/chat/{stream_id}/events", stream=True, timeout=5) as follower:
        assert b"retry:" in next(follower.iter_content(chunk_size=None))
    assert recorder.done.wait(10)
    assert recorder.calls[-1] == ("finish", ElizaStreamer(seed=5).chat(question).text)
    events = parse(requests.get(f"{site.url}/chat/{stream_id}/events", timeout=10).content)
    assert answer_of(events) == ElizaStreamer(seed=5).chat(question).text
    assert requests.get(f"{site.url}/chat/nope/events", timeout=5).status_code == 404


def test_many_users_stream_at_once(chat_example: ModuleType, serve: Any) -> None:
    """Several clients of one threaded server each get their own whole answer, at the same time."""
    eliza = ElizaStreamer(seed=3, pace=0.01)
    site = serve(chat_example.create_app(eliza))
    questions = [SAD, "My father hates me", "I need a holiday", "Perhaps I dream too much", "You are a machine"]
    expected = [eliza.chat([{"role": "user", "content": q}]).text for q in questions]
    results: dict[int, str] = {}
    started = threading.Barrier(len(questions), timeout=10)

    def one(i: int) -> None:
        started.wait()
        results[i] = answer_of(ask_over_http(site.url, [{"role": "user", "content": questions[i]}]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [results.get(i) for i in range(len(questions))] == expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_chat_app_runs_as_a_script() -> None:
    """python examples/flask_chat/app.py serves the page and an Eliza answer on a threaded server."""
    proc = Process([sys.executable, str(EXAMPLES / "flask_chat" / "app.py"), "--port", "0"])
    try:
        port = proc.wait_for(r"Running on http://127\.0\.0\.1:(\d+)").group(1)
        url = f"http://127.0.0.1:{port}"
        assert "llmstreamer chat" in requests.get(url + "/", timeout=10).text
        assert "mother" in answer_of(ask_over_http(url, [{"role": "user", "content": SAD}]))
    finally:
        proc.stop()


def test_chat_app_prints_spans_with_the_otel_flag() -> None:
    """python examples/flask_chat/app.py --otel prints each answer's GenAI span with the console exporter."""
    pytest.importorskip("opentelemetry.sdk")
    proc = Process([sys.executable, str(EXAMPLES / "flask_chat" / "app.py"), "--port", "0", "--otel"])
    try:
        port = proc.wait_for(r"Running on http://127\.0\.0\.1:(\d+)").group(1)
        assert "mother" in answer_of(ask_over_http(f"http://127.0.0.1:{port}", [{"role": "user", "content": SAD}]))
        proc.wait_for(r'"name": "chat eliza"')
        proc.wait_for(r'"gen_ai.operation.name": "chat"')
    finally:
        proc.stop()


class Printed:
    """A stand-in for stdout that keeps what is written and signals each write."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.written.set()
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def test_otel_console_comes_from_the_environment(chat_example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_CONSOLE=1 (as under gunicorn) instruments the app: a finished answer's span is printed to stdout as JSON."""
    pytest.importorskip("opentelemetry.sdk")
    import llmstreamer.otel

    printed = Printed()
    monkeypatch.setattr(sys, "stdout", printed)
    monkeypatch.setenv("OTEL_CONSOLE", "1")
    try:
        app = chat_example.create_app(ElizaStreamer(seed=1), store=open_session_store("memory://"))
        assert "mother" in answer_of(ask(app.test_client(), [{"role": "user", "content": SAD}]))
        assert printed.written.wait(5)  # the span ends just after the answer's last callback
    finally:
        llmstreamer.otel.uninstrument()
    span = json.loads("".join(printed.parts))
    assert (span["name"], span["kind"]) == ("chat eliza", "SpanKind.CLIENT")
    assert span["attributes"]["gen_ai.provider.name"] == "eliza" and span["status"]["status_code"] == "UNSET"


def gunicorn_args(*, workers: int = 1, chdir: Path = EXAMPLES / "flask_chat") -> list[str]:
    """The gunicorn command line of the chat app's docs: gthread workers on a free loopback port."""
    pytest.importorskip("gunicorn")
    from gunicorn.config import KNOWN_SETTINGS

    args = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", "8", "-b", "127.0.0.1:0"]
    args += ["--chdir", str(chdir), "--graceful-timeout", "2"]
    if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS):
        args.append("--no-control-socket")
    return args


def test_chat_app_under_gunicorn_gthread() -> None:
    """gunicorn -k gthread --threads 8 (one process, logs in memory) serves the app factory and one whole Eliza answer."""
    proc = Process([*gunicorn_args(), "app:create_app()"], env={"REDIS_URL": ""})
    try:
        port = proc.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        url = f"http://127.0.0.1:{port}"
        started = requests.post(url + "/chat", json={"messages": [{"role": "user", "content": SAD}]}, timeout=10)
        events: list[tuple[str, dict[str, Any]]] = []
        parser = SSEParser()
        with requests.get(f"{url}/chat/{started.json()['id']}/events", stream=True, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["X-Accel-Buffering"] == "no"
            for chunk in response.iter_content(chunk_size=None):
                events += [(name, json.loads(data)) for name, data, _ in parser.feed(chunk)]
        assert len([e for e in events if e[0] == "content"]) > 3
        assert "mother" in answer_of(events)
        assert events[-1][1]["provider"] == "eliza"
    finally:
        proc.stop()
    assert proc.proc.returncode == 0, "".join(proc.seen)


# --- the WebSocket relay ------------------------------------------------------------------------


def ws_connect(url: str) -> Any:
    """A websocket-client connection with a bounded receive timeout."""
    import websocket

    return websocket.create_connection(url.replace("http://", "ws://") + "/ws", timeout=5)


def receive_turn(ws: Any) -> list[dict[str, Any]]:
    """The frames of one answer, up to its done or error frame."""
    frames = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(json.loads(ws.recv()))
    return frames


def test_websocket_relay_keeps_the_conversation(
    ws_example: ModuleType, server: FakeLLMServer, openai: OpenAIStreamer, serve: Any
) -> None:
    """Two turns over one socket: JSON frames per event, and the second request carries the first turn."""
    server.add(Reply(text="Hello there"), Reply(text="Sure."))
    site = serve(ws_example.create_app(openai))
    ws = ws_connect(site.url)
    try:
        ws.send("Hi")
        first = receive_turn(ws)
        assert [f["type"] for f in first] == ["content", "content", "usage", "done"]
        assert [f.get("text") for f in first[:2]] == ["Hello", " there"]
        ws.send("More")
        assert receive_turn(ws)[-1]["text"] == "Sure."
    finally:
        ws.close()
    assert server.requests[1].json["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "More"},
    ]


def test_websocket_relay_runs_on_eliza_by_default(ws_example: ModuleType, serve: Any) -> None:
    """With no LLMSTREAMER_MODEL the socket answers with Eliza; an empty message gets an error frame."""
    app = ws_example.create_app()
    site = serve(app)
    ws = ws_connect(site.url)
    try:
        ws.send(SAD)
        frames = receive_turn(ws)
        assert frames[-1]["provider"] == "eliza" and "mother" in frames[-1]["text"]
        assert "".join(f["text"] for f in frames if f["type"] == "content") == frames[-1]["text"]
        ws.send("   ")
        assert receive_turn(ws) == [
            {"type": "error", "error": "ConfigurationError", "message": "eliza needs words: the last user message has no text"}
        ]
    finally:
        ws.close()


def test_websocket_closed_mid_answer_cancels_upstream(
    ws_example: ModuleType, server: FakeLLMServer, openai: OpenAIStreamer, serve: Any
) -> None:
    """Closing the socket mid-answer closes the upstream connection within 1 s, even while the model is silent."""
    server.add(Reply(text="Hello there", stall_after=2))
    site = serve(ws_example.create_app(openai, keepalive=0.05))
    ws = ws_connect(site.url)
    ws.send("Hi")
    assert json.loads(ws.recv()) == {"type": "content", "text": "Hello"}
    ws.close()
    assert server.wait_for(lambda: server.open_connections == 0, timeout=1.0)


# --- the threaded server with a bounded executor ------------------------------------------------


def test_threaded_server_bounds_concurrent_upstream_streams(threaded_example: ModuleType, server: FakeLLMServer) -> None:
    """With 5 clients and a pool of 2, only 2 requests reach the model at once; all 5 get whole answers."""
    gate = threading.Event()

    def gated(request: RecordedRequest) -> Reply:
        gate.wait(10)
        return Reply(text="Hello there")

    server.default = gated
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-pool")
    streamer = OpenAIStreamer(api_key="test", base_url=server.base_url("openai"), executor=executor)
    httpd = threaded_example.serve(threaded_example.make_app(streamer, keepalive=0.02), "127.0.0.1", 0)
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    waiting = [threading.Event() for _ in range(5)]
    bodies: dict[int, bytes] = {}

    def client(i: int) -> None:
        url = f"http://127.0.0.1:{httpd.server_port}/chat?q=hello"
        with requests.get(url, stream=True, timeout=10) as response:
            chunks = []
            while True:
                chunk = response.raw.read1(65536)  # what has arrived (a close-delimited HTTP/1.0 body)
                if not chunk:
                    break
                if b": keep-alive" in chunk:
                    waiting[i].set()
                chunks.append(chunk)
            bodies[i] = b"".join(chunks)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
    try:
        for t in threads:
            t.start()
        assert all(w.wait(10) for w in waiting)  # every client is connected and being served
        assert server.wait_for(lambda: len(server.requests) >= 2, timeout=5)
        assert len(server.requests) == 2  # the other three streams wait for a free worker
        gate.set()
        for t in threads:
            t.join(20)
        assert len(server.requests) == 5
        assert [answer_of(parse(bodies[i])) for i in range(5)] == ["Hello there"] * 5
    finally:
        gate.set()
        httpd.shutdown()
        httpd.server_close()
        executor.shutdown(wait=True)
        streamer.close()


def test_threaded_server_refuses_bad_requests(threaded_example: ModuleType) -> None:
    """Another path is a 404; a question Eliza cannot take is a 400 with the reason."""
    from werkzeug.test import Client

    client = Client(threaded_example.make_app(ElizaStreamer(seed=1)))
    assert client.get("/").status_code == 404
    refused = client.get("/chat?q=")
    assert (refused.status_code, refused.get_data(as_text=True)) == (400, "messages[0] (user) has no content: give it text\n")
    ok = client.get("/chat", query_string={"q": SAD})
    assert "mother" in answer_of(parse(ok.get_data()))


def test_threaded_server_runs_as_a_script(server: FakeLLMServer) -> None:
    """python examples/threaded_server.py streams answers from the model LLMSTREAMER_MODEL names."""
    server.default = Reply(text="Hello there")
    env = {"LLMSTREAMER_MODEL": "openai:gpt-4o-mini", "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": server.base_url("openai")}
    proc = Process([sys.executable, str(EXAMPLES / "threaded_server.py"), "--port", "0", "--workers", "2"], env=env)
    try:
        port = proc.wait_for(r"serving on http://127\.0\.0\.1:(\d+)").group(1)
        response = requests.get(f"http://127.0.0.1:{port}/chat", params={"q": "Hi"}, timeout=10)
        assert response.headers["Content-Type"] == "text/event-stream"
        assert answer_of(parse(response.content)) == "Hello there"
    finally:
        proc.stop()
