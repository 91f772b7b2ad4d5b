"""Session stores: round trips, listing, settings, leases and path safety, on every kind of store.

Every store is real: SQLite files, JSON files in a temporary directory, and the redis-server of
the resumable-streams tests.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, Iterator

import attrs
import pytest

from llmstreamer import ConfigurationError, LLMStreamError, Message, SessionBusyError, open_session_store
from llmstreamer._sessions._base import Commit
from llmstreamer.models import ImagePart, TextPart, ThinkingPart, ToolCall, ToolResult
from llmstreamer.sessions import Session, SessionMessage, SessionStore, estimate_tokens

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
KINDS = ["memory", "file", "sqlite", "redis"]


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh store of ``kind``."""
    if kind == "memory":
        return "memory://"
    if kind == "file":
        return f"file://{tmp_path}/sessions"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/sessions.db"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """A fresh store of each kind."""
    with open_session_store(store_url(request.param, tmp_path, request)) as opened:
        yield opened


def rich_session(**changes: Any) -> Session:
    """A session with every field set and every kind of message part, on two branches."""
    nodes = [
        SessionMessage("u1", None, Message.user("Describe this", images=[PNG]), 12, {}, 1700000000.25),
        SessionMessage(
            "a1",
            "u1",
            Message.assistant(
                "Let me look.",
                thinking=[ThinkingPart("hmm", signature="sig==", data={"opaque": [1, 2]})],
                tool_calls=[ToolCall("call_1", "zoom", {"x": 1.5}, '{"x": 1.5}', None, "tsig")],
            ),
            30,
            {"provider": "anthropic", "model": "claude", "finish_reason": "tool_calls", "usage": {"input_tokens": 40}},
            1700000001.5,
        ),
        SessionMessage("t1", "a1", Message.tool([ToolResult("call_1", "zoom", "a cat", is_error=False)]), 2, {}, 1700000002.0),
        SessionMessage(
            "a2",
            "t1",
            Message("assistant", [TextPart("A cat."), ImagePart(url="https://example.test/c.jpg", mime_type="image/jpeg")]),
            3,
            {"finish_reason": "stop", "time_to_first_token": 0.125, "duration": 1.75, "request_id": "req_9"},
            1700000003.0,
        ),
        SessionMessage("a3", "u1", Message.assistant("Another answer"), 3, {"finish_reason": "stop"}, 1700000004.0),
        SessionMessage("e1", None, Message.user("Edited question"), 4, {}, 1700000005.0),
    ]
    fields: dict[str, Any] = {
        "name": "rich",
        "labels": {"user": "ada", "team": "blue"},
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "system": "Be brief.",
        "options": {"temperature": 0.5, "reasoning": "low", "response_format": {"type": "object"}, "tools": ["zoom"]},
        "created": 1700000000.125,
        "modified": 1700000005.5,
        "overhead": 17,
        "head": "a2",
        "nodes": nodes,
    }
    fields.update(changes)
    return Session(**fields)


def test_round_trip_every_field_and_message(store: SessionStore) -> None:
    """Every field and every part (text, thinking with signature, tool calls and results, images, metadata) comes back equal."""
    session = rich_session()
    store.create(session)
    assert store.get(session.id) == session
    assert store.get("rich") == session
    assert store.get("rich").messages == tuple(n.message for n in session.path())


def test_commit_appends_and_moves_the_head(store: SessionStore) -> None:
    """A commit under the lease appends messages and moves the head; the summary follows."""
    session = rich_session()
    store.create(session)
    new = (
        SessionMessage("u9", "a2", Message.user("And a dog?"), 4, {}, 1700000010.0),
        SessionMessage("a9", "u9", Message.assistant("No dog."), 2, {"finish_reason": "stop"}, 1700000011.0),
    )
    with store.lease(session.id) as lease:
        lease.commit(Commit(new, "a9", 20, 6, 20 + 12 + 30 + 2 + 3 + 4 + 2, modified=1700000012.0))
    expected = attrs.evolve(session, nodes=session.nodes + new, head="a9", overhead=20, modified=1700000012.0)
    assert store.get(session.id) == expected
    [info], total = store.list()
    assert (info.message_count, info.tokens, info.modified, total) == (6, expected.tokens, 1700000012.0, 1)


def test_list_is_newest_first_with_anded_labels_and_pages(store: SessionStore) -> None:
    """list() orders by modification time, filters by every label given, and pages with a total."""
    for i in range(5):
        labels = {"user": "ada" if i % 2 == 0 else "bob", "n": str(i)}
        store.create(Session(name=f"s{i}", labels=labels, created=1000.0 + i, modified=2000.0 - i))
    page, total = store.list()
    assert ([i.name for i in page], total) == (["s0", "s1", "s2", "s3", "s4"], 5)
    page, total = store.list(labels={"user": "ada"}, offset=1, limit=1)
    assert ([i.name for i in page], total) == (["s2"], 3)
    page, total = store.list(labels={"user": "ada", "n": "4"})
    assert ([i.name for i in page], total) == (["s4"], 1)
    assert store.list(labels={"user": "carol"}) == ([], 0)
    assert store.list(limit=0) == ([], 5)


def test_update_changes_settings_and_keeps_names_unique(store: SessionStore) -> None:
    """update() renames, relabels and changes settings; a taken name is refused on create and update."""
    a = store.create(Session(name="a", provider="eliza", model="eliza", labels={"old": "x"}))
    store.create(Session(name="b", labels={"old": "x"}))
    with pytest.raises(ConfigurationError, match="named 'b' exists"):
        store.create(Session(name="b"))
    with pytest.raises(ConfigurationError, match="named 'b' exists"):
        store.update("a", name="b")
    updated = store.update("a", name="c", labels={"k": "v"}, system="Hi", options={"temperature": 1.0}, model="m2")
    assert (updated.id, updated.name, dict(updated.labels), updated.system, dict(updated.options), updated.model) == (
        a.id, "c", {"k": "v"}, "Hi", {"temperature": 1.0}, "m2"
    )
    assert store.find("a") is None
    assert store.get("c").id == a.id
    assert ([i.name for i in store.list(labels={"k": "v"})[0]], store.list(labels={"old": "x"})[1]) == (["c"], 1)
    store.delete("b")
    assert store.list(labels={"old": "x"}) == ([], 0)
    store.create(Session(name="a"))  # the old name is free again
    with pytest.raises(ConfigurationError, match="cannot change"):
        store.update("c", head="x")


def test_delete_and_missing_sessions(store: SessionStore) -> None:
    """delete() removes a session and frees its name; a missing one is a clear error, find() says None."""
    s = store.create(Session(name="gone"))
    store.delete("gone")
    assert (store.find(s.id), store.find("gone")) == (None, None)
    with pytest.raises(ConfigurationError, match="no session 'gone'"):
        store.get("gone")
    with pytest.raises(ConfigurationError, match="no session"):
        store.delete(s.id)
    store.create(Session(name="gone"))


@pytest.mark.parametrize(
    ("labels", "match"),
    [({"not an identifier": "x"}, "identifier"), ({"a-b": "x"}, "identifier"), ({"k": 3}, "text value"), ({"ключ": "x"}, "identifier")],
)
def test_labels_with_bad_keys_are_refused(store: SessionStore, labels: dict[str, Any], match: str) -> None:
    """Label keys must be identifiers, values text, on create, update and list."""
    with pytest.raises(ConfigurationError, match=match):
        store.create(Session(labels=labels))
    s = store.create(Session())
    with pytest.raises(ConfigurationError, match=match):
        store.update(s.id, labels=labels)
    with pytest.raises(ConfigurationError, match=match):
        store.list(labels=labels)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b", "nul\x00byte", "tab\there", "", "..", "x" * 201])
def test_unsafe_names_are_refused(name: str) -> None:
    """Names with path separators, NUL or control characters, empty or too long, are refused."""
    with pytest.raises(ConfigurationError):
        Session(name=name)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "0000\x00", "ABCDEF00-0000-4000-8000-000000000000x"])
def test_ids_and_names_cannot_reach_outside(store: SessionStore, bad: str) -> None:
    """Looking up or deleting a hostile id or name finds nothing (or is refused); a session id must be a UUID."""
    try:
        assert store.find(bad) is None
    except ConfigurationError:
        pass
    with pytest.raises(ConfigurationError):
        store.delete(bad)
    with pytest.raises(ConfigurationError, match="UUID"):
        Session(id=bad)


def test_a_held_lease_makes_others_wait_then_busy(store: SessionStore) -> None:
    """A second lease waits up to its timeout and raises SessionBusyError; after release it is free."""
    s = store.create(Session())
    lease = store.lease(s.id, ttl=30)
    with pytest.raises(SessionBusyError, match="busy"):
        store.lease(s.id, timeout=0.1)
    other = store.create(Session())
    store.lease(other.id, timeout=0.1).release()  # a different session does not wait
    lease.release()
    store.lease(s.id, timeout=0.1).release()


def test_an_expired_lease_is_taken_and_the_old_holder_cannot_commit(store: SessionStore) -> None:
    """A lease that was not renewed expires; once another turn takes it, the old holder's commit fails and stores nothing."""
    s = store.create(Session())
    old = store.lease(s.id, ttl=0.05)
    new = store.lease(s.id, timeout=5, ttl=30)  # waits for the expiry
    assert old.renew() is False
    node = SessionMessage("u1", None, Message.user("late"), 1)
    with pytest.raises(SessionBusyError, match="lost its lease"):
        old.commit(Commit((node,), "u1", None, 1, 1))
    old.release()  # does not free the new holder's lease
    with pytest.raises(SessionBusyError):
        store.lease(s.id, timeout=0.05)
    new.release()
    assert store.get(s.id).nodes == ()


def test_estimate_tokens() -> None:
    """The estimate is about four characters a token, at least one; tools, results and images count too."""
    assert estimate_tokens(Message.user("")) == 1
    assert estimate_tokens(Message.user("abcd")) == 1
    assert estimate_tokens(Message.user("abcde")) == 2
    call = ToolCall("c", "zoom", {"x": 1}, '{"x": 1}')
    assert estimate_tokens(Message.assistant("", tool_calls=[call])) == 1 + 2
    assert estimate_tokens(Message.tool([ToolResult("c", "zoom", "12345678")])) == 2
    assert estimate_tokens(Message.user("", images=[PNG])) == 85


# --- URLs -------------------------------------------------------------------------------------


def test_sqlite_urls_are_relative_or_absolute_as_in_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///rel.db is relative to the working directory; sqlite:////abs/path.db is absolute."""
    monkeypatch.chdir(tmp_path)
    with open_session_store("sqlite:///rel.db") as rel:
        assert rel.url == f"sqlite:///{tmp_path}/rel.db"
    absolute = tmp_path / "sub" / "abs.db"
    with open_session_store(f"sqlite:///{absolute}") as opened:
        assert opened.url == f"sqlite:///{absolute}"
    assert (tmp_path / "rel.db").exists() and absolute.exists()


@pytest.mark.parametrize("url", ["postgres://x", "sqlite:///:memory:", "sqlite://", "file://otherhost/dir", "nothing"])
def test_unknown_or_unusable_urls_are_refused(url: str) -> None:
    """A scheme llmstreamer does not know, or a URL it cannot use, is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        open_session_store(url)


# --- the file store ------------------------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_file_store_directory_is_0700_and_files_0600(tmp_path: Path) -> None:
    """The store's directory is 0700 and every file it writes (sessions, names, leases, locks) 0600."""
    root = tmp_path / "sessions"
    with open_session_store(f"file://{root}") as st:
        s = st.create(rich_session())
        lease = st.lease(s.id)
        modes = _modes(root)
        lease.release()
    assert {k: v for k, v in modes.items() if k in (".", "names")} == {".": 0o700, "names": 0o700}
    assert {v for k, v in modes.items() if k not in (".", "names")} == {0o600}
    assert {f"{s.id}.json", f"{s.id}.lease", f"{s.id}.lock", ".lock"} <= set(modes)


def test_file_store_lookups_never_leave_the_directory(tmp_path: Path) -> None:
    """Hostile names are hashed and ids must be UUIDs: nothing outside the directory is read or removed."""
    outside = tmp_path / "secret.json"
    outside.write_text('{"id": "x"}')
    with open_session_store(f"file://{tmp_path}/sessions") as st:
        for bad in ("../secret", "../secret.json", str(outside), "..\\secret"):
            assert st.find(bad) is None
            with pytest.raises(ConfigurationError):
                st.delete(bad)
    assert outside.read_text() == '{"id": "x"}'


def test_a_corrupt_file_is_reported_by_name_not_skipped(tmp_path: Path) -> None:
    """get() and list() both raise an error naming a corrupt document; it can still be deleted."""
    root = tmp_path / "sessions"
    with open_session_store(f"file://{root}") as st:
        good = st.create(Session(name="good"))
        bad = st.create(Session(name="bad"))
        path = root / f"{bad.id}.json"
        path.write_text('{"version": 1, "id": "')
        with pytest.raises(LLMStreamError, match=f"{path} is corrupt"):
            st.get(bad.id)
        with pytest.raises(LLMStreamError, match=f"{path} is corrupt"):
            st.list()
        st.delete(bad.id)
        assert [i.id for i in st.list()[0]] == [good.id]


def test_file_store_ignores_leftover_temporary_files(tmp_path: Path) -> None:
    """A temporary file a crash left behind is not a session."""
    root = tmp_path / "sessions"
    with open_session_store(f"file://{root}") as st:
        s = st.create(Session(name="one"))
        (root / f".{s.id}.json.deadbeef.tmp").write_text("{half")
        assert [i.name for i in st.list()[0]] == ["one"]


# --- the SQLite store --------------------------------------------------------------------------------


def test_sqlite_file_is_0600_and_in_wal_mode(tmp_path: Path) -> None:
    """The database file is created 0600 and uses write-ahead logging."""
    db = tmp_path / "s.db"
    with open_session_store(f"sqlite:///{db}") as st:
        st.create(Session())
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_locked_database_becomes_session_busy_not_a_raw_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another connection holds the write lock past the busy timeout, writes raise SessionBusyError."""
    import llmstreamer._sessions.sqlite as sqlite_store

    db = tmp_path / "s.db"
    st = open_session_store(f"sqlite:///{db}")
    s = st.create(Session())
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT", 0.1)
    locked = open_session_store(f"sqlite:///{db}")
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SessionBusyError, match="stayed locked"):
            locked.lease(s.id, timeout=5)
        with pytest.raises(SessionBusyError):
            locked.create(Session())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    locked.lease(s.id, timeout=5).release()
    st.close()
    locked.close()


def test_redis_url_password_never_shows(redis_url: str) -> None:
    """The store's URL and repr hide a password given in the URL."""
    url = redis_url.replace("redis://", "redis://user:hunter2@")
    store = open_session_store(url)
    assert "hunter2" not in repr(store) and "hunter2" not in store.url
    store.close()


def test_stores_are_shared_between_two_opens(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two store objects on one URL (two workers) see each other's sessions at once."""
    for kind in ("file", "sqlite", "redis"):
        url = store_url(kind, tmp_path, request)
        with open_session_store(url) as one, open_session_store(url) as two:
            s = one.create(Session(name=f"shared-{kind}"))
            assert two.get(f"shared-{kind}") == s
            two.delete(s.id)
            assert one.find(s.id) is None
    assert os.path.isdir(tmp_path / "sessions")
