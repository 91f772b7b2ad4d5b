"""A separate process for the cross-process tests of resumable streams: start a stream, or cancel one.

``python -m tests.resumable_proc start URL SEED PACE TEXT`` starts Eliza's answer to TEXT on the
Redis log at URL (``ALIVE_MS`` in the environment shortens its heartbeat expiry), prints ``id <stream id>``, waits for the end and prints ``calls <json>``: every
callback the producing process saw. ``python -m tests.resumable_proc cancel URL ID`` cancels a
stream and prints ``cancelled <bool>``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from llmstreamer import ElizaStreamer, StreamCallbacks
from llmstreamer.web import ResumableStreams


def start(url: str, seed: int, pace: float, text: str) -> None:
    """Start a stream, print its id, wait (bounded) for its end, print the callbacks seen."""
    calls: list[Any] = []
    ended = threading.Event()

    def finish(response: Any) -> None:
        calls.append(["finish", response.text])
        ended.set()

    def error(err: Any) -> None:
        calls.append(["error", type(err).__name__])
        ended.set()

    callbacks = StreamCallbacks(on_content=lambda t: calls.append(["content", t]), on_finish=finish, on_error=error)
    streams = ResumableStreams(url)
    if os.environ.get("ALIVE_MS"):  # a shorter heartbeat expiry, for the test of a killed producer
        streams._log.alive_ms = int(os.environ["ALIVE_MS"])  # type: ignore[attr-defined]
    stream_id = streams.start(ElizaStreamer(seed=seed, pace=pace), [{"role": "user", "content": text}], callbacks)
    print("id", stream_id, flush=True)
    if not ended.wait(60):
        print("timeout", flush=True)
        sys.exit(1)
    streams.close()  # flush the last events to Redis before exiting
    print("calls", json.dumps(calls), flush=True)


def main(argv: list[str]) -> None:
    """Run one command."""
    if argv[0] == "start":
        start(argv[1], int(argv[2]), float(argv[3]), argv[4])
    elif argv[0] == "cancel":
        print("cancelled", ResumableStreams(argv[1]).cancel(argv[2]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
