"""Soak llmstreamer against the fake server: many streams, and nothing may grow (not part of CI).

The fake server runs in a child process, so the figures are the client's alone. Phases:

- ``sequential``: N streams one after another (``stream_chat`` + ``wait``);
- ``concurrent``: N streams, 100 at a time, from one shared streamer;
- ``faults`` (with ``--faults``): N streams, 100 at a time, where every 3rd is cut without its
  terminal event, every 5th is reset mid-stream and every 7th stalls and is cancelled.

Threads, open file descriptors (and sockets among them) and RSS are printed at the start,
every 1,000 streams and at the end of each phase, then a verdict: threads and descriptors must
come back to where they started and RSS must stop growing after the first 1,000 streams.

Usage::

    python tools/soak.py                  # 10,000 sequential, then 10,000 concurrent
    python tools/soak.py --streams 2000 --faults
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from llmstreamer import LLMStreamError, Message, OpenAIStreamer, RetryPolicy, StreamCallbacks
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply

TEXT = "The quick brown fox jumps over the lazy dog."
HI = [Message.user("Hi")]
WAVE = 100


def serve() -> int:
    """Child process: a fake server that prints its base URL and lives until stdin closes."""

    def reply(request: RecordedRequest) -> Reply:
        fault = (request.json or {}).get("soak_fault", "")
        if fault == "truncate":
            return Reply(text=TEXT, truncate=True)
        if fault == "reset":
            return Reply(text=TEXT, disconnect_after=3, reset=True)
        if fault == "stall":
            return Reply(text=TEXT, stall_after=2, stall_for=30)
        return Reply(text=TEXT)

    with FakeLLMServer(default=reply) as server:
        print(server.base_url("openai"), flush=True)
        sys.stdin.read()
    return 0


def figures() -> dict[str, int]:
    """Threads, open descriptors, sockets and RSS (KiB) of this process now."""
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    rss = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"threads": threading.active_count(), "fds": len(fds), "sockets": sockets, "rss_kib": rss}


def report(phase: str, done: int, started: float, rows: list[dict[str, Any]]) -> None:
    gc.collect()
    row = {"phase": phase, "streams": done, "seconds": round(time.monotonic() - started, 1), **figures()}
    rows.append(row)
    print(
        f"{phase:>10} {done:>6} streams {row['seconds']:>7.1f} s  threads {row['threads']:>3}  "
        f"fds {row['fds']:>3}  sockets {row['sockets']:>3}  rss {row['rss_kib'] / 1024:>6.1f} MiB",
        flush=True,
    )


def sequential(streamer: OpenAIStreamer, n: int, rows: list[dict[str, Any]]) -> int:
    started, failures = time.monotonic(), 0
    report("sequential", 0, started, rows)
    for i in range(1, n + 1):
        texts: list[str] = []
        handle = streamer.stream_chat(HI, StreamCallbacks(on_finish=texts.append))
        if not handle.wait(30) or [r.text for r in texts] != [TEXT]:
            failures += 1
            print(f"  stream {i} failed: {handle.done() and handle._outcome}", flush=True)
        if i % 1000 == 0:
            report("sequential", i, started, rows)
    return failures


def concurrent(streamer: OpenAIStreamer, n: int, rows: list[dict[str, Any]], *, faults: bool) -> int:
    phase = "faults" if faults else "concurrent"
    started, failures, done = time.monotonic(), 0, 0
    report(phase, 0, started, rows)
    while done < n:
        wave = []
        for j in range(done, min(done + WAVE, n)):
            fault = ""
            if faults:
                fault = "stall" if j % 7 == 0 else "reset" if j % 5 == 0 else "truncate" if j % 3 == 0 else ""
            handle = streamer.stream_chat(HI, extra={"soak_fault": fault}) if fault else streamer.stream_chat(HI)
            wave.append((fault, handle))
        for fault, handle in wave:
            if fault == "stall":
                handle.cancel()
            if not handle.wait(30):
                failures += 1
                print(f"  a {fault or 'plain'} stream did not end within 30 s", flush=True)
                continue
            try:
                ok = handle.result().text == TEXT
                why = "a wrong text"
            except LLMStreamError as err:
                ok = bool(fault)
                why = f"{type(err).__name__}: {err}"
            if not ok:
                failures += 1
                print(f"  a {fault or 'plain'} stream failed: {why}", flush=True)
        before = done
        done += len(wave)
        if done // 1000 > before // 1000:
            report(phase, done, started, rows)
    return failures


def verdict(rows: list[dict[str, Any]], start: dict[str, int]) -> bool:
    """Threads and descriptors back to the start; in each phase, RSS flat after its first 1,000."""
    end = rows[-1]
    ok = end["threads"] <= start["threads"] and end["fds"] <= start["fds"]
    print(f"threads {start['threads']} -> {end['threads']}, fds {start['fds']} -> {end['fds']} after close()")
    for phase in dict.fromkeys(r["phase"] for r in rows if r["phase"] != "closed"):
        mine = [r for r in rows if r["phase"] == phase and r["streams"] >= 1000]
        if len(mine) < 2:
            continue
        grew = mine[-1]["rss_kib"] - mine[0]["rss_kib"]
        most = max(r["threads"] for r in mine)
        ok = ok and grew < 4 * 1024
        print(
            f"{phase}: RSS {mine[0]['rss_kib'] / 1024:.1f} MiB at 1,000 streams -> {mine[-1]['rss_kib'] / 1024:.1f} MiB "
            f"at {mine[-1]['streams']:,} ({grew / 1024:+.1f} MiB); threads between waves at most {most}"
        )
    print(f"verdict: {'OK' if ok else 'GROWTH'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000, help="streams per phase (default 10,000)")
    parser.add_argument("--faults", action="store_true", help="add a phase of failing and cancelled streams")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        rows: list[dict[str, Any]] = []
        gc.collect()
        start = figures()
        print(f"start: {start}", flush=True)
        streamer = OpenAIStreamer(api_key="sk-soak", base_url=base_url, retry=RetryPolicy.none(), pool_size=WAVE)
        failures = sequential(streamer, args.streams, rows)
        failures += concurrent(streamer, args.streams, rows, faults=False)
        if args.faults:
            faulty = OpenAIStreamer(api_key="sk-soak", base_url=base_url, retry=RetryPolicy.none(), pool_size=WAVE)
            failures += concurrent(faulty, args.streams, rows, faults=True)
            faulty.close()
        streamer.close()
        deadline = time.monotonic() + 5  # worker threads end just after their terminal callback
        while threading.active_count() > start["threads"] and time.monotonic() < deadline:
            time.sleep(0.01)
        report("closed", 0, time.monotonic(), rows)
        print(f"failures: {failures}")
        return 0 if verdict(rows, start) and failures == 0 else 1
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)


if __name__ == "__main__":
    sys.exit(main())
