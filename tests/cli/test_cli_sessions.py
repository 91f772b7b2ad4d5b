"""The command line's stored sessions, run as real processes: chat --session, sessions list/show/delete/export, /retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmstreamer import open_session_store
from llmstreamer._cli_sessions import default_store_url
from llmstreamer.sessions import Session
from tests.cli.test_cli import SAD, SAD_REPLY, finish, run, spawn


@pytest.fixture
def store(tmp_path: Path) -> str:
    """The URL of an empty SQLite store in a temporary directory."""
    return f"sqlite:///{tmp_path}/sessions.db"


def test_chat_session_twice_in_two_processes_continues_one_conversation(store: str) -> None:
    """`chat --session demo` run twice (two processes) continues one session; `sessions list --json` counts its messages."""
    first = run("chat", "--store", store, "--session", "demo", "--seed", "7", SAD)
    second = run("chat", "--store", store, "--session", "demo", "--seed", "7", SAD)
    assert (first.returncode, first.stdout, first.stderr) == (0, SAD_REPLY + "\n", "")
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout != first.stdout  # Eliza saw the history: the same seed and prompt answer differently
    listed = run("sessions", "list", "--json", "--store", store)
    assert listed.returncode == 0
    data = json.loads(listed.stdout)
    assert data["total"] == 1
    [info] = data["sessions"]
    assert (info["name"], info["message_count"], info["provider"], info["model"]) == ("demo", 4, "eliza", "eliza")
    with open_session_store(store) as opened:
        texts = [m.text for m in opened.get("demo").messages]
    assert texts == [SAD, SAD_REPLY, SAD, second.stdout.rstrip("\n")]


def test_chat_labels_a_new_session(store: str) -> None:
    """`chat --session NAME --label k=v` labels the session it creates; `sessions list --label` finds it."""
    done = run("chat", "--store", store, "--session", "tagged", "--label", "user=ada", "--label", "team=blue", "--seed", "7", SAD)
    assert done.returncode == 0
    listed = json.loads(run("sessions", "list", "--json", "--label", "user=ada", "--store", store).stdout)
    assert [(s["name"], s["labels"]) for s in listed["sessions"]] == [("tagged", {"team": "blue", "user": "ada"})]
    lonely = run("chat", "--label", "user=ada", SAD)
    assert (lonely.returncode, lonely.stderr) == (2, "llmstreamer: error: --store and --label need --session NAME\n")


def test_store_comes_from_the_environment(store: str) -> None:
    """LLMSTREAMER_STORE chooses the store when --store is not given."""
    done = run("chat", "--session", "env", "--seed", "7", SAD, env={"LLMSTREAMER_STORE": store})
    assert done.returncode == 0
    with open_session_store(store) as opened:
        assert len(opened.get("env").messages) == 2


def test_default_store_is_sqlite_in_the_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without --store or LLMSTREAMER_STORE, sessions live in $XDG_DATA_HOME/llmstreamer/sessions.db."""
    monkeypatch.delenv("LLMSTREAMER_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_url() == f"sqlite:///{tmp_path}/llmstreamer/sessions.db"


def test_sessions_list_show_export_delete(store: str) -> None:
    """list filters by label and prints a line per session; show and export print the session; delete removes it."""
    with open_session_store(store) as opened:
        opened.create(Session(name="alpha", labels={"team": "blue"}, provider="eliza", model="eliza", created=1000.0))
        opened.create(Session(name="beta", labels={"team": "red"}, provider="eliza", model="eliza", created=2000.0))
    run("chat", "--store", store, "--session", "alpha", "--seed", "7", SAD)
    listed = run("sessions", "list", "--label", "team=blue", "--store", store)
    assert listed.returncode == 0
    assert [line.split()[:3] for line in listed.stdout.splitlines()] == [["alpha", "2", "messages"]]
    assert "team=blue" in listed.stdout
    shown = run("sessions", "show", "alpha", "--json", "--store", store)
    data = json.loads(shown.stdout)
    assert (data["name"], data["message_count"], [m["message"]["content"] for m in data["messages"]]) == (
        "alpha", 2, [SAD, SAD_REPLY]
    )
    text = run("sessions", "show", "alpha", "--store", store).stdout
    assert f"user: {SAD}" in text and f"assistant: {SAD_REPLY}" in text
    exported = run("sessions", "export", "alpha", "--store", store)
    with open_session_store(store) as opened:
        assert Session.from_dict(json.loads(exported.stdout)) == opened.get("alpha")
    assert run("sessions", "delete", "alpha", "--store", store).returncode == 0
    gone = run("sessions", "show", "alpha", "--store", store)
    assert (gone.returncode, gone.stderr) == (2, f"llmstreamer: error: no session 'alpha' in {store}\n")
    bad = run("sessions", "list", "--label", "not-an-identifier=x", "--store", store)
    assert bad.returncode == 2 and "identifier" in bad.stderr


def test_interactive_retry_and_branches(store: str) -> None:
    """In the interactive chat of a session, /retry answers again on a new branch and /branches lists both."""
    child, log = spawn("--seed", "7", "--pace", "0", "--store", store, "--session", "live")
    try:
        child.expect_exact("> ")
        child.sendline(SAD)
        child.expect_exact(SAD_REPLY)
        child.expect_exact("> ")
        child.sendline("/retry")
        child.expect_exact("> ")
        child.sendline("/branches")
        child.expect_exact("> ")
        child.sendline("/exit")
        assert finish(child) == 0
    finally:
        child.close(force=True)
    with open_session_store(store) as opened:
        session = opened.get("live")
    branches = session.branches()
    assert [(b.length, b.current) for b in branches] == [(2, False), (2, True)]
    lines = log.getvalue().splitlines()
    listed = [line for line in lines if "messages" in line and line[:2] in ("* ", "  ")]
    assert [line[:10] for line in listed] == [f"  {branches[0].leaf_id[:8]}", f"* {branches[1].leaf_id[:8]}"]
