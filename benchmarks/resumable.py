"""How much a resumable stream costs: events/s through the Redis log and the memory log, next to a direct `sse_stream`.

Run with the project's environment (it needs ``redis`` and ``/usr/bin/redis-server``)::

    .venv/bin/python benchmarks/resumable.py            # ~1 minute; prints a Markdown section
    .venv/bin/python benchmarks/resumable.py --write    # and puts it in RESULTS.md

It starts its own redis-server (no persistence) on a free loopback port, and, in a process of
its own (so it does not compete for this one's GIL), a `llmstreamer.testing.FakeLLMServer` that
plays OpenAI streams. Measured, per path:

- throughput: one stream of 20,000 chunks, and 100 concurrent streams of 1,000 chunks, each
  followed by one live reader; events/s from ``start`` until every reader has the ``done`` event;
- added latency: 1,000 chunks written 1 ms apart, one live reader, best of 3 runs by p99; per event, the time from the
  producer handing it to the log (``emit``; for ``sse_stream``, its callback) until the reader
  has it (``events()`` decoded, or the SSE body chunk); p50 and p99;
- the producer's cost per event: a stream's callback (payload, JSON, append) called 100,000
  times on the producing thread; the Redis writer thread runs on the other core meanwhile.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from llmstreamer import OpenAIStreamer, StreamCallbacks  # noqa: E402
from llmstreamer._payloads import _secret_of  # noqa: E402
from llmstreamer._resumable import _feed  # noqa: E402
from llmstreamer.testing import FakeLLMServer, Reply  # noqa: E402
from llmstreamer.web import ResumableStreams, sse_stream  # noqa: E402

QUESTION = [{"role": "user", "content": "go"}]
MARK = ("<!-- resumable:start -->", "<!-- resumable:end -->")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    """A redis-server without persistence; (process, url, its directory)."""
    port, folder = free_port(), tempfile.mkdtemp(prefix="bench-redis-")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0", folder
        except OSError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def serve() -> None:
    """The fake server (``--serve``): the model name says the reply, ``n<chunks>d<ms between writes>``."""

    def reply(request: Any) -> Reply:
        found = re.fullmatch(r"n(\d+)d([\d.]+)", request.json["model"])
        assert found is not None
        delay = float(found.group(2)) / 1000
        return Reply(text=chunks(int(found.group(1))), writes="event" if delay else "whole", delay=delay)

    with FakeLLMServer(default=reply) as server:
        print(server.base_url("openai"), flush=True)
        sys.stdin.read()


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process; (process, base URL)."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def chunks(n: int) -> list[str]:
    """``n`` word-sized text chunks."""
    return [f" w{i % 97}" for i in range(n)]


def run_direct(streamer: Any, on_chunk: Callable[[bytes], None] | None = None, callbacks: Any = None) -> int:
    """Consume one `sse_stream` body; the number of events."""
    count = 0
    for chunk in sse_stream(streamer, QUESTION, keepalive=None, callbacks=callbacks):
        if on_chunk is not None:
            on_chunk(chunk)
        count += chunk.count(b"\nevent: ") + chunk.startswith(b"event: ")
    return count


def run_log(streams: ResumableStreams, streamer: Any) -> int:
    """Start one stream and follow it live to its end; the number of events."""
    stream_id = streams.start(streamer, QUESTION)
    return sum(1 for _ in streams.events(stream_id, timeout=60))


def _one(go: threading.Barrier, counts: list[int], streamer: Any, log: ResumableStreams | None) -> None:
    go.wait()
    counts.append(run_direct(streamer) if log is None else run_log(log, streamer))


def throughput(base: str, streams: dict[str, ResumableStreams | None], n_streams: int, n_chunks: int) -> dict[str, float]:
    """events/s of ``n_streams`` concurrent streams of ``n_chunks`` each, per path (best of 3)."""
    out: dict[str, float] = {}
    model = f"n{n_chunks}d0"
    with OpenAIStreamer(model=model, api_key="bench", base_url=base, retry=0, pool_size=n_streams + 4) as streamer:
        for name, log in streams.items():
            best = 0.0
            for _ in range(3):
                counts: list[int] = []
                go = threading.Barrier(n_streams + 1)
                threads = [threading.Thread(target=_one, args=(go, counts, streamer, log)) for _ in range(n_streams)]
                for t in threads:
                    t.start()
                go.wait()
                began = time.perf_counter()
                for t in threads:
                    t.join()
                best = max(best, sum(counts) / (time.perf_counter() - began))
            out[name] = best
    return out


def latency(base: str, name: str, log: ResumableStreams | None, n: int = 1000) -> tuple[float, float]:
    """p50 and p99 (ms) from the producer's hand-off to a live reader, for ``n`` chunks 1 ms apart."""
    sent: list[float] = []
    got: list[float] = []
    with OpenAIStreamer(model=f"n{n}d1", api_key="bench", base_url=base, retry=0) as streamer:
        if log is None:
            def stamp_chunk(chunk: bytes) -> None:
                now = time.perf_counter()
                got.extend([now] * chunk.count(b"event: content"))

            run_direct(streamer, stamp_chunk, callbacks=StreamCallbacks(on_content=lambda text: sent.append(time.perf_counter())))
        else:
            inner = log._log.emit

            def emit(producing: Any, kind: str, data: str, end: str | None) -> None:
                if kind == "content":
                    sent.append(time.perf_counter())
                inner(producing, kind, data, end)

            log._log.emit = emit  # type: ignore[method-assign]
            try:
                stream_id = log.start(streamer, QUESTION)
                for event in log.events(stream_id, timeout=60):
                    if event.type == "content":
                        got.append(time.perf_counter())
            finally:
                del log._log.emit
    assert len(sent) == len(got) == n, (name, len(sent), len(got))
    delays = sorted((g - s) * 1000 for s, g in zip(sent, got))
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]


def producer_cost(log: ResumableStreams, n: int = 100_000) -> float:
    """µs per event the producing thread spends in a stream's content callback (payload, JSON, append)."""
    stream_id = "bench-" + os.urandom(4).hex()
    producing = log._log.open(stream_id)
    feed = _feed(log._log, producing, _secret_of(None), {})
    on_content = feed.on_content
    assert on_content is not None
    began = time.perf_counter()
    for _ in range(n):
        on_content(" word")
    cost = (time.perf_counter() - began) / n * 1e6
    feed.on_error(_cancelled())  # type: ignore[misc]
    return cost


def _cancelled() -> Any:
    from llmstreamer import StreamCancelled

    return StreamCancelled("benchmark over")


def section(results: dict[str, Any]) -> str:
    """The Markdown section."""
    rows = [
        "| path | 1 stream of 20,000: events/s | 100 streams of 1,000: events/s | added latency p50 / p99 (ms) | producer µs/event |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("direct sse_stream", "memory log", "redis log"):
        p50, p99 = results["latency"][name]
        cost = results["cost"].get(name)
        rows.append(
            f"| {name} | {results['one'][name]:,.0f} | {results['hundred'][name]:,.0f} | {p50:.3f} / {p99:.3f} | "
            f"{'—' if cost is None else f'{cost:.1f}'} |"
        )
    return "\n".join([
        MARK[0],
        "## Resumable streams (issue 14)",
        "",
        f"`benchmarks/resumable.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, redis-server on loopback, "
        "OpenAI wire from `FakeLLMServer` in its own process; events are content chunks plus `usage` and `done`."
        " The machine is shared (other test suites ran meanwhile): the p99s carry their scheduling noise.",
        "",
        *rows,
        "",
        "- Throughput: best of 3, from `start` until every live reader has `done` (one reader per stream).",
        "- Added latency: 1,000 chunks 1 ms apart, best of 3 runs (by p99); from the producer's hand-off to the log (for `sse_stream`: its"
        " callback, just after the queue put) until the reader holds the event (`events()`, JSON decoded; for"
        " `sse_stream` the body chunk).",
        "- Producer µs/event: one content callback (payload, JSON, hand-off) on the producing thread; the Redis"
        " path only enqueues, the writer thread pipelines the XADDs of everything that is ready in one round trip.",
        MARK[1],
    ])


def main() -> None:
    """Measure, print the section, optionally write it into RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the resumable section of RESULTS.md")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    redis_proc, url, folder = start_redis()
    server, base = start_server()
    try:
        with ResumableStreams(None) as memory, ResumableStreams(url) as redis_log:
            paths: dict[str, ResumableStreams | None] = {"direct sse_stream": None, "memory log": memory, "redis log": redis_log}
            results: dict[str, Any] = {
                "one": throughput(base, paths, 1, 20_000),
                "hundred": throughput(base, paths, 100, 1_000),
                "latency": {name: min((latency(base, name, log) for _ in range(3)), key=lambda r: r[1]) for name, log in paths.items()},
                "cost": {"memory log": producer_cost(memory), "redis log": producer_cost(redis_log)},
            }
    finally:
        server.communicate("", timeout=10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    text = section(results)
    print(text)
    if args.write:
        from sections import put_section

        put_section(text, *MARK)


if __name__ == "__main__":
    main()
