"""Sessions under load and under crashes: turns from threads and processes never interleave or get lost,
and a process killed in the middle of writing leaves every session readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llmstreamer import Conversation, ElizaStreamer, open_session_store
from llmstreamer.sessions import Session
from tests.features.test_sessions import store_url

ROOT = Path(__file__).resolve().parents[2]

SENDER = """
import sys
from llmstreamer import Conversation, ElizaStreamer, open_session_store
url, session_id, tag, turns = sys.argv[1:5]
store = open_session_store(url)
chat = Conversation.load(store, session_id, ElizaStreamer(seed=1), lock_timeout=120)
print("ready", flush=True)
sys.stdin.readline()  # start together with the threads of the test
for i in range(int(turns)):
    chat.send(f"{tag} {i}").result(120)
print("done", flush=True)
"""

WRITER = """
import sys
from llmstreamer import Conversation, ElizaStreamer, open_session_store
url, ids = sys.argv[1], sys.argv[2:]
store = open_session_store(url)
chats = [Conversation.load(store, i, ElizaStreamer(seed=1), lock_timeout=30, lease_ttl=0.5) for i in ids]
n = 0
while True:
    for chat in chats:
        chat.send(f"turn {n} of a fairly long message that makes the document grow " * 3).result(30)
        n += 1
        print(n, flush=True)
"""


def python(code: str, *args: str) -> subprocess.Popen[str]:
    """Start ``python -c code args`` in the project directory."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_one_clean_chain(session: Session, expected_users: set[str] | None = None) -> None:
    """Every stored message is on one branch that alternates question and answer, each answer after its own question."""
    path = session.path()
    assert len(path) == len(session.nodes), "some turn went onto a side branch"
    assert [n.message.role for n in path] == ["user", "assistant"] * (len(path) // 2)
    for question, answer in zip(path[::2], path[1::2]):
        assert answer.parent == question.id
    if expected_users is not None:
        assert sorted(n.message.text for n in path[::2]) == sorted(expected_users)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "file", "redis"])
def test_twenty_threads_and_four_processes_on_one_session(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """20 threads and 4 processes send turns to one session: every turn is stored, none interleaved, no raw lock error."""
    url = store_url(kind, tmp_path, request)
    store = open_session_store(url)
    session_id = Conversation(ElizaStreamer(seed=1), store=store, name="busy").id
    procs = [python(SENDER, url, session_id, f"process {p}", "5") for p in range(4)]
    assert [p.stdout.readline() if p.stdout else "" for p in procs] == ["ready\n"] * 4
    errors: list[BaseException] = []
    go = threading.Event()

    def one_turn(i: int) -> None:
        try:
            chat = Conversation.load(store, session_id, ElizaStreamer(seed=1), lock_timeout=120)
            assert go.wait(60)
            chat.send(f"thread {i}").result(120)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_turn, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    go.set()
    for t in threads:
        t.join(180)
    outputs = [p.communicate(timeout=180) for p in procs]
    assert errors == []
    assert [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)] == [(0, "done\n", "")] * 4
    expected = {f"thread {i}" for i in range(20)} | {f"process {p} {i}" for p in range(4) for i in range(5)}
    assert_one_clean_chain(store.get(session_id), expected)
    [info], _ = store.list()
    assert info.message_count == 2 * len(expected)
    store.close()


def test_one_conversation_object_shared_by_threads(tmp_path: Path) -> None:
    """Many threads may share one stored Conversation: each send waits for the session, none is refused or lost."""
    store = open_session_store("memory://")
    chat = Conversation(ElizaStreamer(seed=1), store=store, lock_timeout=60)
    errors: list[BaseException] = []

    def one_turn(i: int) -> None:
        try:
            chat.send(f"thread {i}").result(60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_turn, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert_one_clean_chain(store.get(chat.id), {f"thread {i}" for i in range(10)})
    assert len(chat.refresh().nodes) == 20


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "sqlite", "redis"])
def test_sigkill_in_the_middle_of_writes_leaves_every_session_readable(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A writer killed with SIGKILL at three points leaves each session at a complete turn, readable and consistent."""
    url = store_url(kind, tmp_path, request)
    store = open_session_store(url)
    ids = [Conversation(ElizaStreamer(seed=1), store=store, name=f"crash {i}").id for i in range(3)]
    last = 0
    for target in (7, 19, 31):
        proc = python(WRITER, url, *ids)
        assert proc.stdout is not None
        written = 0
        while written < target:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "the writer died"
            written = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        sessions = [store.get(i) for i in ids]  # raises if any document is corrupt
        for session in sessions:
            assert_one_clean_chain(session)
        turns = sum(len(s.nodes) // 2 for s in sessions)
        assert turns >= last + target  # every acknowledged turn survived (one more may have landed)
        last = turns
    assert store.list()[1] == 3
    if kind == "file":
        leftovers = [p.name for p in (tmp_path / "sessions").iterdir() if p.name.endswith(".tmp")]
        assert all(name.startswith(".") for name in leftovers)
    store.close()
