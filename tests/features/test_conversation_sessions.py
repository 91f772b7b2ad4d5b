"""Conversations in a session store: branches seen by the provider, stored metadata, tokens, failures, leases."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from llmstreamer import (
    ConfigurationError,
    Conversation,
    ElizaStreamer,
    Message,
    OpenAIStreamer,
    ServerError,
    SessionBusyError,
    StreamCancelled,
    Usage,
    open_session_store,
)
from llmstreamer.sessions import SessionStore
from llmstreamer.testing import FakeLLMServer, Reply
from tests.conftest import Recorder
from tests.features.test_sessions import store_url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """A fresh store: in memory, SQLite, or Redis."""
    with open_session_store(store_url(request.param, tmp_path, request)) as opened:
        yield opened


def openai(server: FakeLLMServer) -> OpenAIStreamer:
    """An OpenAI streamer on the fake server, without retries."""
    return OpenAIStreamer(model="gpt-4o-mini", api_key="test", base_url=server.base_url("openai"), retry=0)


def sent(server: FakeLLMServer, n: int) -> list[tuple[str, str]]:
    """The (role, text) messages of the n-th request the fake server received."""
    return [(m["role"], m["content"]) for m in server.requests[n].json["messages"]]


def test_retry_and_edit_send_exactly_the_current_branch(server: FakeLLMServer, store: SessionStore) -> None:
    """After retry() and edit(), the provider receives the path to the current leaf and nothing else."""
    server.add(Reply(text="A1"), Reply(text="B1"), Reply(text="B2"), Reply(text="C1"), Reply(text="D1"))
    chat = Conversation(openai(server), store=store, name="branches", system="Be brief.")
    chat.send("a").result(5)
    chat.send("b").result(5)
    assert chat.retry().result(5).text == "B2"
    first = chat.session.path()[0].id
    assert chat.edit(first[:8], "a-edited").result(5).text == "C1"
    assert [m.text for m in chat.messages] == ["a-edited", "C1"]
    old = next(b for b in chat.branches() if "B1" in b.text)
    chat.switch(old.leaf_id)
    chat.send("d").result(5)
    system = ("system", "Be brief.")
    assert [sent(server, i) for i in range(5)] == [
        [system, ("user", "a")],
        [system, ("user", "a"), ("assistant", "A1"), ("user", "b")],
        [system, ("user", "a"), ("assistant", "A1"), ("user", "b")],
        [system, ("user", "a-edited")],
        [system, ("user", "a"), ("assistant", "A1"), ("user", "b"), ("assistant", "B1"), ("user", "d")],
    ]
    again = Conversation.load(store, "branches", openai(server))
    assert [m.text for m in again.messages] == ["a", "A1", "b", "B1", "d", "D1"]
    assert [(b.text, b.length, b.current) for b in again.branches()] == [
        ("B2", 4, False), ("C1", 2, False), ("D1", 6, True)
    ]


def test_a_finished_turn_is_stored_with_its_metadata_and_tokens(server: FakeLLMServer, store: SessionStore) -> None:
    """The answer is stored with provider, model, finish reason, usage, timings and request id; tokens use the provider's counts."""
    server.add(Reply(text="Hello there", usage=Usage(input_tokens=40, output_tokens=3), headers={"x-request-id": "req_7"}))
    chat = Conversation(openai(server), store=store, labels={"user": "ada"})
    response = chat.send("Hi, how are you today?").result(5)
    user, answer = store.get(chat.id).path()
    assert (user.message, user.tokens, user.meta) == (Message.user("Hi, how are you today?"), 6, {})
    assert answer.message == response.message
    assert answer.tokens == 3
    assert answer.meta == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "request_id": "req_7",
        "finish_reason": "stop",
        "usage": {"input_tokens": 40, "output_tokens": 3, "cached_input_tokens": 0, "reasoning_tokens": 0, "total_tokens": 43},
        "time_to_first_token": response.time_to_first_token,
        "duration": response.duration,
    }
    stored = store.get(chat.id)
    assert stored.overhead == 40 - 6
    assert stored.tokens == chat.tokens == 34 + 6 + 3
    [info], _ = store.list(labels={"user": "ada"})
    assert (info.message_count, info.tokens) == (2, 43)


def test_callbacks_see_the_turn_already_stored(server: FakeLLMServer, store: SessionStore, recorder: Recorder) -> None:
    """The user's callbacks run as usual, and when on_finish fires the turn is in the store."""
    server.add(Reply(text="Hello there"))
    chat = Conversation(openai(server), store=store)
    seen: list[int] = []
    recorder_finish = recorder.on_finish
    recorder.on_finish = lambda r: (seen.append(len(store.get(chat.id).nodes)), recorder_finish(r))  # type: ignore[method-assign]
    chat.send("Hi", recorder).wait(5)
    assert recorder.calls == [("content", "Hello"), ("content", " there"), ("usage", 10, 2), ("finish", "Hello there")]
    assert seen == [2]


def test_a_failed_turn_stores_nothing(server: FakeLLMServer, store: SessionStore) -> None:
    """A turn that fails mid-stream leaves the session as it was; its partial answer is on the error."""
    server.add(Reply(text="Hello"), Reply(text="Half an", error={"type": "server_error", "message": "boom"}))
    chat = Conversation(openai(server), store=store)
    chat.send("one").result(5)
    with pytest.raises(ServerError, match="boom") as caught:
        chat.send("two").result(5)
    assert caught.value.partial is not None and caught.value.partial.text == "Half an"
    assert [m.text for m in store.get(chat.id).messages] == ["one", "Hello"]
    assert [m.text for m in chat.messages] == ["one", "Hello"]


def test_keep_partial_stores_the_prompt_and_partial_answer(server: FakeLLMServer, store: SessionStore) -> None:
    """With keep_partial, a cancelled turn keeps the user's message and what arrived, marked cancelled."""
    server.add(Reply(text=["Half", " an", " answer"], stall_after=3, stall_for=5))
    chat = Conversation(openai(server), store=store, keep_partial=True)
    got = threading.Event()
    handle = chat.send("tell me", on_content_hook(got))
    assert got.wait(5)
    handle.cancel()
    with pytest.raises(StreamCancelled):
        handle.result(5)
    user, answer = store.get(chat.id).path()
    assert (user.message.text, answer.message.text, answer.meta["finish_reason"]) == ("tell me", "Half an", "cancelled")


def on_content_hook(event: threading.Event) -> Any:
    """Callbacks that set ``event`` once the second fragment has arrived."""
    count = [0]

    class Hook:
        def on_content(self, text: str) -> None:
            count[0] += 1
            if count[0] == 2:
                event.set()

    return Hook()


def test_a_busy_session_raises_after_lock_timeout_and_others_do_not_wait(store: SessionStore) -> None:
    """While a turn holds a session, a second turn waits lock_timeout then raises; another session goes ahead."""
    eliza = ElizaStreamer(seed=7)
    chat = Conversation(eliza, store=store, name="held", lock_timeout=0.2)
    other = Conversation(eliza, store=store, name="free", lock_timeout=0.2)
    with store.lease(chat.id):
        with pytest.raises(SessionBusyError, match="busy"):
            Conversation.load(store, "held", eliza, lock_timeout=0.2).send("hi")
        with pytest.raises(SessionBusyError):
            chat.retry()
        assert other.send("I am sad").result(5).text
    assert chat.send("I am sad").result(5).text
    assert len(store.get("held").nodes) == 2


def test_the_lease_is_renewed_while_streaming(server: FakeLLMServer, tmp_path: Path) -> None:
    """A turn longer than its lease's ttl keeps the session: a waiter gives up, and the turn is stored."""
    store = open_session_store(f"sqlite:///{tmp_path}/s.db")
    server.add(Reply(text="one two three four five six", writes="event", delay=0.15))
    chat = Conversation(openai(server), store=store, lease_ttl=0.3)
    started = threading.Event()

    class Started:
        def on_content(self, text: str) -> None:
            started.set()

    handle = chat.send("count", Started())
    assert started.wait(5)
    with pytest.raises(SessionBusyError):
        store.lease(chat.id, timeout=0.6)  # twice the ttl: only renewal keeps the lease held
    assert handle.result(5).text == "one two three four five six"
    assert len(store.get(chat.id).nodes) == 2
    store.close()


def test_send_without_store_keeps_the_old_rules() -> None:
    """In memory, a second send during a turn is refused, and name or labels without a store are refused."""
    with FakeLLMServer() as server:
        server.add(Reply(text=["slow"], stall_after=0, stall_for=5))
        chat = Conversation(openai(server))
        handle = chat.send("hi")
        with pytest.raises(ConfigurationError, match="previous turn"):
            chat.send("again")
        handle.cancel()
        handle.wait(5)
    with pytest.raises(ConfigurationError, match="need a store"):
        Conversation(ElizaStreamer(), name="x")


def test_in_memory_branches_work_too() -> None:
    """retry(), edit(), branches() and switch() work without a store."""
    chat = Conversation(ElizaStreamer(seed=7))
    chat.send("I am sad about my mother").result(5)
    chat.retry().result(5)
    assert [b.length for b in chat.branches()] == [2, 2]
    chat.edit(chat.session.path()[0].id, "I need a holiday").result(5)
    assert [m.text for m in chat.messages] == ["I need a holiday", "Suppose you got a holiday soon."]
    chat.switch(chat.branches()[0].leaf_id)
    assert chat.messages[0].text == "I am sad about my mother"
    chat.reset()
    assert chat.messages == () and len(chat.branches()) == 3


def test_edit_refuses_answers_and_retry_needs_a_question(store: SessionStore) -> None:
    """edit() only rewrites user messages; retry() on an empty session is a clear error."""
    chat = Conversation(ElizaStreamer(seed=7), store=store)
    with pytest.raises(ConfigurationError, match="no user message"):
        chat.retry()
    chat.send("I am sad").result(5)
    with pytest.raises(ConfigurationError, match="only user messages"):
        chat.edit(chat.session.head or "", "x")
    with pytest.raises(ConfigurationError, match="no message"):
        chat.switch("nope")


def test_load_without_a_streamer_uses_the_sessions_provider(store: SessionStore) -> None:
    """Conversation.load() without a streamer builds the session's provider and model through the registry."""
    Conversation(ElizaStreamer(seed=7), store=store, name="eliza-chat").send("I am sad").result(5)
    again = Conversation.load(store, "eliza-chat")
    assert (again.streamer.provider, again.streamer.model, len(again.messages)) == ("eliza", "eliza", 2)


def test_fork_copies_the_current_branch_into_a_new_session(store: SessionStore) -> None:
    """fork() makes a new, unnamed session with the current branch; both continue independently."""
    chat = Conversation(ElizaStreamer(seed=7), store=store, name="orig", labels={"k": "v"})
    chat.send("I am sad").result(5)
    copy = chat.fork()
    copy.send("My job is boring").result(5)
    assert (len(store.get("orig").messages), len(store.get(copy.id).messages)) == (2, 4)
    assert (store.get(copy.id).name, dict(store.get(copy.id).labels)) == (None, {"k": "v"})


def test_settings_persist_and_tools_are_stored_by_name(store: SessionStore) -> None:
    """System prompt and options are stored with the session and sent on every turn; tools by name."""
    from llmstreamer import tool

    @tool
    def zoom(x: int) -> str:
        """Zoom in.

        Args:
            x: How far.
        """
        return "ok"

    with FakeLLMServer() as server:
        chat = Conversation(openai(server), store=store, name="s", system="Terse.", options={"temperature": 0.5, "tools": [zoom]})
        assert dict(store.get("s").options) == {"temperature": 0.5, "tools": ["zoom"]}
        chat.send("hi").result(5)
        Conversation.load(store, "s", openai(server)).send("again").result(5)
        bodies = [r.json for r in server.requests]
    assert [b["temperature"] for b in bodies] == [0.5, 0.5]
    assert [[t["function"]["name"] for t in b.get("tools", [])] for b in bodies] == [["zoom"], []]
    assert [b["messages"][0] for b in bodies] == [{"role": "system", "content": "Terse."}] * 2
