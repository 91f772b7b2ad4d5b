"""A fresh interpreter that measures one client: the benchmark runs every client in its own.

Modes (``python worker.py MODE CLIENT ...``), each printing JSON on stdout:

- ``serve CLIENT``: read JSON commands from stdin, one a line, answer each with one JSON line.
  Ops: ``throughput`` (``base``, ``n``): one stream, wall and CPU seconds, text checked;
  ``latency`` (``base``, ``n``): one stream, the monotonic receipt time of every text piece;
  ``ttft`` (``base``, ``n``, ``count``): ``count`` streams on a warm client, request start to
  first text piece; ``quit``.
- ``first CLIENT BASE``: the import of the client's module, then building the client and its
  first request to the first text piece; peak RSS.
- ``concurrent CLIENT BASE STREAMS N``: ``STREAMS`` streams of ``N`` chunks at once; wall, CPU,
  RSS before and peak, and how many streams ended complete and correct.

Clocks: ``time.monotonic()`` for receipt stamps (the server stamps sends with the same clock),
``time.perf_counter()`` for durations, ``time.process_time()`` for CPU (all threads).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from clients import CLIENTS  # noqa: E402  (stdlib-only registry)
from wire import expected_text  # noqa: E402


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _load(name: str) -> Dict[str, Any]:
    info = CLIENTS[name]
    module = importlib.import_module("clients." + info.module)
    return module.CLIENTS[name]


class _Server:
    """The serve mode: a client built once per base URL, commands answered one by one."""

    def __init__(self, name: str) -> None:
        self.client = _load(name)
        self.states: Dict[str, Any] = {}

    def state(self, base: str, fresh: bool = False) -> Any:
        if fresh:
            return self.client["prepare"](base)
        found = self.states.get(base)
        if found is None:
            found = self.states[base] = self.client["prepare"](base)
        return found

    def throughput(self, base: str, n: int) -> Dict[str, Any]:
        run = self.client["run"]
        state = self.state(base)
        pieces: List[str] = []
        c0 = time.process_time()
        t0 = time.perf_counter()
        run(state, pieces.append)
        t1 = time.perf_counter()
        c1 = time.process_time()
        return {"wall": t1 - t0, "cpu": c1 - c0, "ok": "".join(pieces) == expected_text(n)}

    def latency(self, base: str, n: int) -> Dict[str, Any]:
        run = self.client["run"]
        state = self.state(base, fresh=True)
        stamps: List[Any] = []
        now = time.monotonic
        append = stamps.append

        def sink(text: str) -> None:
            append((now(), text))

        run(state, sink)
        text = "".join(t for _, t in stamps)
        total, out = 0, []
        for stamp, piece in stamps:
            total += len(piece)
            out.append((stamp, total))
        _close(state)
        return {"pieces": out, "ok": text == expected_text(n)}

    def ttft(self, base: str, n: int, count: int) -> Dict[str, Any]:
        run = self.client["run"]
        state = self.state(base)
        expected = expected_text(n)
        out, ok = [], True
        now = time.perf_counter
        for _ in range(count):
            stamps: List[float] = []
            pieces: List[str] = []

            def sink(text: str, stamps: List[float] = stamps, pieces: List[str] = pieces) -> None:
                if not stamps:
                    stamps.append(now())
                pieces.append(text)

            t0 = now()
            run(state, sink)
            out.append(stamps[0] - t0 if stamps else None)
            ok = ok and "".join(pieces) == expected
        return {"ttft": out, "ok": ok}


def _close(state: Any) -> None:
    """Release what a one-off client state holds (pools, sockets), so latency rounds do not pile up."""
    for obj in state if isinstance(state, tuple) else (state,):
        close = getattr(obj, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
        sock = getattr(obj, "sock", None)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def serve(name: str) -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # a library that prints cannot corrupt the protocol
    try:
        server = _Server(name)
        out.write(json.dumps({"ready": True}) + "\n")
    except Exception:
        out.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        return
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "quit":
            break
        try:
            result = getattr(server, op)(**cmd)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
        out.write(json.dumps(result) + "\n")


def first(name: str, base: str) -> None:
    info = CLIENTS[name]
    t0 = time.perf_counter()
    module = importlib.import_module("clients." + info.module)
    t1 = time.perf_counter()
    client = module.CLIENTS[name]
    stamps: List[float] = []
    pieces: List[str] = []

    def sink(text: str) -> None:
        if not stamps:
            stamps.append(time.perf_counter())
        pieces.append(text)

    t2 = time.perf_counter()
    client["run"](client["prepare"](base), sink)
    print(
        json.dumps(
            {
                "import": t1 - t0,
                "first": (stamps[0] - t2) if stamps else None,
                "ok": "".join(pieces) == expected_text(int(_param(base, "n", "20"))),
                "rss_kib": _status_kib("VmHWM"),
            }
        )
    )


def _param(base: str, key: str, default: str) -> str:
    for item in base.rsplit("/b/", 1)[-1].split(","):
        k, _, v = item.partition("=")
        if k == key:
            return v
    return default


def concurrent(name: str, base: str, streams: int, n: int, threads_only: bool = False) -> None:
    """``streams`` streams at once; ``threads_only`` starts each from its own thread even if the client has ``run_many``."""
    client = _load(name)
    prepare, run = client["prepare"], client["run"]
    expected = expected_text(n)
    shared = prepare(base) if client["shared"] else None
    pieces: List[List[str]] = [[] for _ in range(streams)]
    sinks: List[Callable[[str], Any]] = [p.append for p in pieces]
    errors: List[Any] = [None] * streams
    rss_before = _status_kib("VmRSS")
    c0 = time.process_time()
    t0 = time.perf_counter()
    if "run_many" in client and shared is not None and not threads_only:
        errors = client["run_many"](shared, sinks)
    else:

        def one(i: int) -> None:
            try:
                run(shared if shared is not None else prepare(base), sinks[i])
            except Exception as exc:
                errors[i] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=one, args=(i,), name=f"bench-{i}") for i in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
    t1 = time.perf_counter()
    c1 = time.process_time()
    correct = sum(1 for p in pieces if "".join(p) == expected)
    first_error = next((e for e in errors if e), None)
    print(
        json.dumps(
            {
                "wall": t1 - t0,
                "cpu": c1 - c0,
                "rss_before_kib": rss_before,
                "rss_peak_kib": _status_kib("VmHWM"),
                "correct": correct,
                "errors": sum(1 for e in errors if e),
                "first_error": first_error,
            }
        )
    )


def main() -> None:
    mode, name = sys.argv[1], sys.argv[2]
    if mode == "serve":
        serve(name)
    elif mode == "first":
        first(name, sys.argv[3])
    elif mode == "concurrent":
        concurrent(name, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "threads":  # memory.py: every stream started from its own thread
        concurrent(name, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), threads_only=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
