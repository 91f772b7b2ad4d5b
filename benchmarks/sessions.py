"""Session store latency: appending a turn to and loading a 200-message session, and listing 10,000 sessions.

Run it (a redis-server on a free loopback port is started when ``/usr/bin/redis-server`` exists)::

    python benchmarks/sessions.py                 # every store; prints a Markdown table
    python benchmarks/sessions.py --stores sqlite --sessions 2000

What each row measures, per store:

- *append turn*: what storing one turn costs on top of the model: take the session's lease,
  append a user message and an answer (about 800 bytes each, with metadata) and move the head in
  one commit, release the lease. The session holds 200 messages when the run starts.
- *send turn*: a whole `Conversation.send` with Eliza (no network, no pacing) on that
  session: lease, reload of the session, the answer, the commit; and the same turn by an
  in-memory `Conversation` with the same 200 messages (Eliza re-reads the history each turn).
- *load*: ``store.get`` of a 200-message session.
- *list*: ``store.list()`` (the 100 newest) and ``store.list(labels=...)`` over 10,000 sessions.

Not a test: the figures depend on the machine and its disk (``fsync`` on every file-store write).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from llmstreamer import Conversation, ElizaStreamer, Message, open_session_store
from llmstreamer._sessions._base import Commit
from llmstreamer.sessions import Session, SessionMessage, SessionStore

TEXT = ("The quick brown fox jumps over the lazy dog; " * 18)[:800]
META = {"provider": "openai", "model": "gpt-4o-mini", "finish_reason": "stop", "duration": 1.25,
        "usage": {"input_tokens": 900, "output_tokens": 200}}  # fmt: skip


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Run ``fn`` ``repeat`` times; median and p99 milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def big_session(messages: int, **fields: object) -> Session:
    """A session of ``messages`` alternating ~800-byte messages on one branch."""
    nodes: list[SessionMessage] = []
    for i in range(messages):
        msg = Message.user(TEXT) if i % 2 == 0 else Message.assistant(TEXT)
        nodes.append(SessionMessage(f"m{i}", nodes[-1].id if nodes else None, msg, 200, META if i % 2 else {}))
    return Session(provider="eliza", model="eliza", nodes=nodes, head=nodes[-1].id if nodes else None, **fields)  # type: ignore[arg-type]


def append_turn(store: SessionStore, session: Session, state: dict[str, object]) -> None:
    """Store one turn (two messages, following the head) under the session's lease."""
    n = int(state["n"])  # type: ignore[call-overload]
    user = SessionMessage(f"x{n}", str(state["head"]), Message.user(TEXT), 200)
    answer = SessionMessage(f"x{n + 1}", user.id, Message.assistant(TEXT), 200, META)
    with store.lease(session.id) as lease:
        lease.commit(Commit((user, answer), answer.id, 10, 202, 40_410))
    state.update(n=n + 2, head=answer.id)


def run_store(name: str, url: str, sessions: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Every measurement for one store."""
    out: dict[str, tuple[float, float]] = {}
    store = open_session_store(url)
    session = store.create(big_session(200))
    state: dict[str, object] = {"n": 0, "head": session.head}
    out["append turn"] = timed(lambda: append_turn(store, session, state), repeat)
    fresh = store.create(big_session(200))
    out["load 200 messages"] = timed(lambda: store.get(fresh.id), repeat)
    chat = Conversation.load(store, fresh.id, ElizaStreamer(seed=1))
    out["send turn (Eliza)"] = timed(lambda: chat.send("I am sad about my mother").result(30), max(10, repeat // 4))
    alone = Conversation(ElizaStreamer(seed=1), fresh.messages)
    out["send turn (Eliza), no store"] = timed(lambda: alone.send("I am sad about my mother").result(30), max(10, repeat // 4))
    start = time.perf_counter()
    for i in range(sessions):
        store.create(Session(provider="eliza", model="eliza", labels={"user": f"u{i % 50}"}, created=1_700_000_000.0 + i))
    fill = time.perf_counter() - start
    store.list()  # the file store caches summaries: the first listing reads every file
    out[f"list {sessions:,} (first, uncached)"] = (0.0, 0.0)
    out[f"list {sessions:,}, 100 newest"] = timed(lambda: store.list(), 20)
    out[f"list {sessions:,}, one label"] = timed(lambda: store.list(labels={"user": "u7"}), 20)
    out["fill (s per 1,000 creates)"] = (fill / sessions * 1000, 0.0)
    store.close()
    return out


def uncached_list(url: str) -> tuple[float, float]:
    """``list()`` by a store object that never listed before (a fresh worker)."""
    store = open_session_store(url)
    result = timed(lambda: store.list(), 1)
    store.close()
    return result


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """A throw-away redis-server on a free loopback port, or (None, None) without the binary."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        return None, None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    return None, None


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite,file,redis")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="llmstreamer-bench-")
    redis_proc, redis_url = start_redis()
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/sessions.db", "file": f"file://{tmp}/files"}
    if redis_url:
        urls["redis"] = redis_url
    results = {}
    try:
        for name in args.stores.split(","):
            if name not in urls:
                print(f"skipping {name}: not available", file=sys.stderr)
                continue
            print(f"measuring {name}...", file=sys.stderr)
            results[name] = run_store(name, urls[name], args.sessions, args.repeat)
            if name != "memory":
                results[name][f"list {args.sessions:,} (first, uncached)"] = uncached_list(urls[name])
    finally:
        if redis_proc is not None:
            redis_proc.kill()
            redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = list(next(iter(results.values())))
    print("| ms, median (p99) | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for row in rows:
        cells = []
        for name in results:
            p50, p99 = results[name][row]
            cells.append("-" if p50 == 0 else f"{p50:.2f}" + (f" ({p99:.2f})" if p99 else ""))
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
