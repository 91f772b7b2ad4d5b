"""The Flask chat example keeps each visitor's conversation in a session store, not in the page."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmstreamer import OpenAIStreamer, open_session_store
from llmstreamer._sse import SSEParser
from llmstreamer.testing import FakeLLMServer, Reply

flask = pytest.importorskip("flask")

APP = Path(__file__).resolve().parent.parent / "examples" / "flask_chat" / "app.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """examples/flask_chat/app.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("example_flask_chat_sessions", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer_of(body: bytes) -> str:
    """The answer text of an SSE body, checked against its done event."""
    parser = SSEParser()
    events = [(name, json.loads(data)) for name, data, _ in parser.feed(body) + parser.close()]
    text = "".join(data["text"] for name, data in events if name == "content")
    assert events[-1][0] == "done" and events[-1][1]["text"] == text
    return text


def post(client: Any, *messages: tuple[str, str]) -> Any:
    """POST /chat with the page's view of the history."""
    return client.post("/chat", json={"messages": [{"role": r, "content": c} for r, c in messages]})


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


def test_a_busy_session_answers_409(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another turn holds the visitor's session, a second request gets 409 after LOCK_TIMEOUT."""
    from llmstreamer import ElizaStreamer

    store = open_session_store("memory://")
    client = example.create_app(ElizaStreamer(seed=1), store=store).test_client()
    post(client, ("user", "I am sad")).get_data()
    cookie = client.get_cookie(example.SESSION_COOKIE)
    monkeypatch.setattr(example, "LOCK_TIMEOUT", 0.1)
    with store.lease(cookie.value):
        busy = post(client, ("user", "I am sad"), ("assistant", "x"), ("user", "Again"))
    assert busy.status_code == 409 and "busy" in busy.get_json()["error"]


def test_the_store_comes_from_the_environment(example: ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMSTREAMER_STORE=redis://... puts the conversations in Redis, shared by every worker."""
    from llmstreamer import ElizaStreamer

    monkeypatch.setenv("LLMSTREAMER_STORE", redis_url)
    app = example.create_app(ElizaStreamer(seed=1))
    post(app.test_client(), ("user", "I am sad")).get_data()
    with open_session_store(redis_url) as store:
        [info], total = store.list()
    assert (total, info.message_count) == (1, 2)
