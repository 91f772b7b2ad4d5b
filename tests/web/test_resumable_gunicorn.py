"""The chat example under gunicorn with Redis: four gthread workers share answers; two instances survive a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from llmstreamer import ElizaStreamer
from llmstreamer._sse import SSEParser
from tests.web.test_web_examples import Process, gunicorn_args

pytest.importorskip("gunicorn")
pytest.importorskip("redis")

LONG = "I remember my childhood home very well"
SEED = 11
WRAPPER = f"""
import os
from app import create_app
from llmstreamer import ElizaStreamer
app = create_app(ElizaStreamer(seed={SEED}, pace=float(os.environ["ELIZA_PACE"])), keepalive=0.5)
"""


@pytest.fixture
def wsgi_dir(tmp_path: Path) -> Path:
    """A module ``slowchat`` with the chat app on a seeded, paced Eliza (so answers are known and take a while)."""
    (tmp_path / "slowchat.py").write_text(WRAPPER, encoding="utf-8")
    return tmp_path


@pytest.fixture
def instances(redis_url: str, wsgi_dir: Path) -> Iterator[Any]:
    """Start gunicorn instances of the chat app on the test Redis; all are stopped after the test."""
    started: list[Process] = []

    def start(workers: int, pace: float) -> tuple[Process, str]:
        args = [*gunicorn_args(workers=workers), "--pythonpath", str(wsgi_dir), "slowchat:app"]
        proc = Process(args, env={"REDIS_URL": redis_url, "ELIZA_PACE": str(pace)})
        started.append(proc)
        port = proc.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        for _ in range(workers):
            proc.wait_for(r"Booting worker")
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.stop()


def expected_text() -> str:
    """Eliza's answer to LONG with the instances' seed."""
    return ElizaStreamer(seed=SEED).chat([{"role": "user", "content": LONG}]).text


def start_answer(url: str) -> str:
    """POST the question; the id of the answer it started."""
    response = requests.post(url + "/chat", json={"messages": [{"role": "user", "content": LONG}]}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def follow(url: str, stream_id: str, last: str | None, stop_after: int | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) from /events after ``last``, on a fresh connection; hangs up after ``stop_after`` events."""
    headers = {"Last-Event-ID": last} if last else {}
    parser = SSEParser()
    got: list[tuple[str, str, dict[str, Any]]] = []
    with requests.get(f"{url}/chat/{stream_id}/events", headers=headers, stream=True, timeout=10) as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_content(chunk_size=None):
            for name, data, event_id in parser.feed(chunk):
                got.append((event_id, name, json.loads(data)))
            if stop_after is not None and len(got) >= stop_after:
                break
    return got


def joined(events: list[tuple[str, str, dict[str, Any]]]) -> str:
    """The content joined, checked against the done event, with ids strictly increasing (no duplicate)."""
    ids = [tuple(int(p) for p in e[0].split("-")) for e in events]
    assert ids == sorted(set(ids))
    text = "".join(data["text"] for _, name, data in events if name == "content")
    assert events[-1][1] == "done" and events[-1][2]["text"] == text
    return text


def test_four_workers_share_answers_through_redis(instances: Any) -> None:
    """With gunicorn -w 4 -k gthread, an answer is followed 2 events per connection across workers, and Stop from any worker cancels."""
    _, url = instances(4, 0.15)  # about 2 s per answer: time to cancel the second one mid-way
    stream_id = start_answer(url)
    events: list[tuple[str, str, dict[str, Any]]] = []
    for _ in range(40):
        events += follow(url, stream_id, events[-1][0] if events else None, stop_after=2)
        if events[-1][1] == "done":
            break
    assert joined(events) == expected_text()

    other = start_answer(url)
    first = follow(url, other, None, stop_after=1)
    assert requests.post(f"{url}/chat/{other}/cancel", timeout=10).json() == {"cancelled": True}
    rest = follow(url, other, first[-1][0])
    assert rest[-1][1] == "error" and rest[-1][2]["error"] == "StreamCancelled"
    assert requests.get(f"{url}/chat/{other}/events", headers={"Last-Event-ID": rest[-1][0]}, timeout=10).status_code == 204


def kill_instance(proc: Process) -> None:
    """SIGKILL a gunicorn master and every one of its workers (a machine that died)."""
    master = proc.proc.pid
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                workers.append(int(entry))
    for pid in [*workers, master]:
        os.kill(pid, signal.SIGKILL)
    proc.proc.wait(10)


def test_a_client_whose_instance_is_killed_resumes_on_the_other(instances: Any) -> None:
    """Two instances behind one Redis: the answer starts on A, the client follows on B, B is SIGKILLed, the client gets the rest from A."""
    _, url_a = instances(2, 0.15)
    proc_b, url_b = instances(2, 0.15)
    stream_id = start_answer(url_a)
    events: list[tuple[str, str, dict[str, Any]]] = []
    parser = SSEParser()
    response = requests.get(f"{url_b}/chat/{stream_id}/events", stream=True, timeout=10)
    try:
        chunks = response.iter_content(chunk_size=None)  # one iterator: a second one would start from a released body
        while len(events) < 3:
            events += [(event_id, name, json.loads(data)) for name, data, event_id in parser.feed(next(chunks))]
        kill_instance(proc_b)
        try:  # what B had sent before it died; its body then breaks (or, depending on timing, just ends)
            for chunk in chunks:
                events += [(event_id, name, json.loads(data)) for name, data, event_id in parser.feed(chunk)]
        except requests.RequestException:
            pass
    finally:
        response.close()
    assert events and events[-1][1] == "content"  # mid-answer
    events += follow(url_a, stream_id, events[-1][0])
    assert joined(events) == expected_text()


def test_four_workers_share_each_visitors_history_through_redis(instances: Any, redis_url: str) -> None:
    """With REDIS_URL the conversations are in Redis too: a visitor's turns continue one session whichever worker answers."""
    from llmstreamer import open_session_store

    _, url = instances(4, 0.01)
    visitor = requests.Session()  # keeps the session cookie, as the browser does
    answers = []
    for question in (LONG, "My father hates me"):
        started = visitor.post(url + "/chat", json={"message": question}, timeout=10)
        assert started.status_code == 201, started.text
        events = follow(url, started.json()["id"], None)  # a fresh connection: any worker
        answers.append(joined(events))
    whole = [
        {"role": "user", "content": LONG},
        {"role": "assistant", "content": answers[0]},
        {"role": "user", "content": "My father hates me"},
        {"role": "assistant", "content": answers[1]},
    ]
    for _ in range(8):  # new connections, spread over the workers
        with requests.Session() as fresh:
            fresh.cookies.update(visitor.cookies)
            assert fresh.get(url + "/history", timeout=10).json()["messages"] == whole
    with open_session_store(redis_url) as store:
        [info], total = store.list()
    assert (total, info.message_count) == (1, 4)
    visitor.close()
