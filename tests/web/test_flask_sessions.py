"""The Flask chat example keeps each visitor's conversation in a session store, not in the page."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmstreamer import ElizaStreamer, OpenAIStreamer, open_session_store
from llmstreamer._sse import SSEParser
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.web import ResumableStreams

from .test_web_examples import load

flask = pytest.importorskip("flask")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """examples/flask_chat/app.py, imported as a module."""
    return load("flask_chat/app.py", "example_flask_chat_sessions")


def events_of(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The events of an SSE body, data decoded."""
    parser = SSEParser()
    return [(name, json.loads(data)) for name, data, _ in parser.feed(body) + parser.close()]


def answer_of(body: bytes) -> str:
    """The answer text of an SSE body, checked against its done event."""
    events = events_of(body)
    text = "".join(data["text"] for name, data in events if name == "content")
    assert events[-1][0] == "done" and events[-1][1]["text"] == text
    return text


def start(client: Any, body: dict[str, Any]) -> Any:
    """POST /chat with ``body``: the response that starts the answer."""
    return client.post("/chat", json=body)


def post(client: Any, *messages: tuple[str, str]) -> Any:
    """POST /chat with an API client's view of the history, then follow the answer: the events response."""
    started = start(client, {"messages": [{"role": r, "content": c} for r, c in messages]})
    if started.status_code != 201:
        return started
    return client.get(f"/chat/{started.get_json()['id']}/events")


def say(client: Any, text: str) -> Any:
    """POST /chat the way the page does (the next message only), then follow the answer."""
    started = start(client, {"message": text})
    assert started.status_code == 201, started.get_data()
    return client.get(f"/chat/{started.get_json()['id']}/events")


def test_history_is_kept_on_the_server_across_a_restart(example: ModuleType, server: FakeLLMServer, tmp_path: Path) -> None:
    """The second turn continues the stored session (not the page's copy), even in a new app on the same store."""
    server.add(Reply(text="Hello there"), Reply(text="More."))
    url = f"sqlite:///{tmp_path}/chat.db"
    streamer = OpenAIStreamer(api_key="test", base_url=server.base_url("openai"), retry=0)
    client = example.create_app(streamer, store=open_session_store(url)).test_client()
    first = post(client, ("user", "Hi"))
    assert answer_of(first.get_data()) == "Hello there"
    cookie = client.get_cookie(example.SESSION_COOKIE)
    assert cookie is not None
    restarted = example.create_app(streamer, store=open_session_store(url)).test_client()
    restarted.set_cookie(example.SESSION_COOKIE, cookie.value)
    second = post(restarted, ("user", "Hi"), ("assistant", "I was tampered with"), ("user", "Tell me more"))
    assert answer_of(second.get_data()) == "More."
    assert server.requests[1].json["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "Tell me more"},
    ]
    stored = json.loads(restarted.get("/history").get_data())
    assert stored == {"session": cookie.value, "messages": server.requests[1].json["messages"] + [{"role": "assistant", "content": "More."}]}
    streamer.close()


def test_the_page_sends_only_its_next_message(example: ModuleType) -> None:
    """{"message": ...} starts a stored session, then continues it; GET /history has every turn; DELETE /history starts afresh."""
    eliza, same = ElizaStreamer(seed=1), ElizaStreamer(seed=1)
    client = example.create_app(eliza, store=open_session_store("memory://")).test_client()
    assert client.get("/history").get_json() == {"session": None, "messages": []}
    first = same.chat([{"role": "user", "content": "I am sad"}]).text
    assert answer_of(say(client, "I am sad").get_data()) == first
    history = [{"role": "user", "content": "I am sad"}, {"role": "assistant", "content": first}]
    second = same.chat([*history, {"role": "user", "content": "My mother"}]).text
    assert answer_of(say(client, "My mother").get_data()) == second
    stored = client.get("/history").get_json()
    assert stored["messages"] == [*history, {"role": "user", "content": "My mother"}, {"role": "assistant", "content": second}]
    assert client.delete("/history").get_json() == {"session": None, "messages": []}
    assert client.get("/history").get_json() == {"session": None, "messages": []}
    say(client, "Hello").get_data()
    fresh = client.get("/history").get_json()
    assert fresh["session"] != stored["session"] and [m["content"] for m in fresh["messages"]][:1] == ["Hello"]


def test_the_answer_is_stored_with_its_metadata_when_nobody_follows_it(example: ModuleType, redis_url: str) -> None:
    """An answer nobody follows is still generated to its end and stored with provider, model, finish reason and usage."""
    store = open_session_store("memory://")
    streams = ResumableStreams(redis_url)
    client = example.create_app(ElizaStreamer(seed=1), store=store, streams=streams).test_client()
    started = start(client, {"message": "I am sad"})
    assert started.status_code == 201
    answer = ElizaStreamer(seed=1).chat([{"role": "user", "content": "I am sad"}])
    done = list(streams.events(started.get_json()["id"], timeout=10))  # the log, read without the page
    assert done[-1].type == "done"
    session = store.get(started.get_json()["session"])
    user, reply = session.path()
    assert (user.message.text, reply.message.text) == ("I am sad", answer.text)
    assert {k: reply.meta[k] for k in ("provider", "model", "finish_reason")} == {"provider": "eliza", "model": answer.model, "finish_reason": answer.finish_reason}
    assert reply.meta["usage"]["output_tokens"] == answer.usage.output_tokens  # type: ignore[union-attr]
    streams.close()


def test_a_stopped_answer_is_kept_as_far_as_it_got(example: ModuleType, server: FakeLLMServer) -> None:
    """Cancelling mid-answer stores the question and the partial answer the page showed."""
    server.add(Reply(text="Hello there", stall_after=2))
    store = open_session_store("memory://")
    with OpenAIStreamer(api_key="test", base_url=server.base_url("openai"), retry=0) as streamer:
        client = example.create_app(streamer, store=store, keepalive=0.05).test_client()
        stream_id = start(client, {"message": "Hi"}).get_json()["id"]
        streams = client.application.config["STREAMS"]
        first = next(streams.events(stream_id, timeout=5))
        assert (first.type, first.data["text"]) == ("content", "Hello")
        assert client.post(f"/chat/{stream_id}/cancel").get_json() == {"cancelled": True}
        events = events_of(client.get(f"/chat/{stream_id}/events").get_data())
    assert [(name, data.get("text") or data.get("error")) for name, data in events] == [("content", "Hello"), ("error", "StreamCancelled")]
    assert client.get("/history").get_json()["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    [info], _ = store.list()
    assert store.get(info.id).path()[-1].meta["finish_reason"] == "cancelled"


def test_a_busy_session_answers_409(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another turn holds the visitor's session, a second request gets 409 after LOCK_TIMEOUT, and nothing starts."""
    store = open_session_store("memory://")
    client = example.create_app(ElizaStreamer(seed=1), store=store).test_client()
    post(client, ("user", "I am sad")).get_data()
    cookie = client.get_cookie(example.SESSION_COOKIE)
    monkeypatch.setattr(example, "LOCK_TIMEOUT", 0.1)
    with store.lease(cookie.value):
        busy = post(client, ("user", "I am sad"), ("assistant", "x"), ("user", "Again"))
        page = start(client, {"message": "Again"})
    assert busy.status_code == 409 and "busy" in busy.get_json()["error"]
    assert page.status_code == 409 and "busy" in page.get_json()["error"]
    assert len(client.get("/history").get_json()["messages"]) == 2


@pytest.mark.parametrize("variable", ["LLMSTREAMER_STORE", "REDIS_URL"])
def test_the_store_comes_from_the_environment(example: ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """LLMSTREAMER_STORE=redis://..., or else REDIS_URL, puts the conversations in Redis, shared by every worker."""
    monkeypatch.delenv("LLMSTREAMER_STORE", raising=False)
    monkeypatch.setenv(variable, redis_url)
    app = example.create_app(ElizaStreamer(seed=1))
    post(app.test_client(), ("user", "I am sad")).get_data()
    with open_session_store(redis_url) as store:
        [info], total = store.list()
    assert (total, info.message_count) == (1, 2)
    app.config["STREAMS"].close()


def test_without_configuration_the_store_is_sqlite_in_the_instance_folder(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither LLMSTREAMER_STORE nor REDIS_URL, conversations go to sessions.db in the app's instance folder."""
    monkeypatch.delenv("LLMSTREAMER_STORE", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = example.create_app(ElizaStreamer(seed=1))
    store = app.config["SESSION_STORE"]
    assert store.url == "sqlite:///" + str(Path(app.instance_path) / "sessions.db")
    client = app.test_client()
    post(client, ("user", "I am sad")).get_data()
    session = client.get("/history").get_json()["session"]
    assert store.get(session).info.message_count == 2
    store.delete(session)
