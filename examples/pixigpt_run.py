"""Run a PixiGPT assistant on a thread and follow the run: statuses as they change, then the answer.

    python examples/pixigpt_run.py --demo                        # against a local fake server
    PIXIGPT_API_KEY=... python examples/pixigpt_run.py --assistant asst_123 "What is the capital of France?"
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator

from llmstreamer import LLMStreamError, StreamCallbacks
from llmstreamer.pixigpt import PixiGPTClient


@contextlib.contextmanager
def client(args: argparse.Namespace) -> Iterator[PixiGPTClient]:
    """A client on PixiGPT, or with --demo on a fake server of our own with a scripted run."""
    if not args.demo:
        with PixiGPTClient() as pixi:
            yield pixi
        return
    from llmstreamer.testing import FakeLLMServer

    with FakeLLMServer() as server:
        source = {"id": "src_1", "tool_name": "WebSearch", "title": "Paris", "url": "https://en.wikipedia.org/wiki/Paris"}
        server.pixigpt.script_run(["queued", "in_progress", "completed"], text="Paris.", sources=[source])
        with PixiGPTClient("demo-key", server.base_url("pixigpt"), poll_interval=0.05) as pixi:
            yield pixi


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("question", nargs="?", default="What is the capital of France?")
    parser.add_argument("--assistant", default="asst_demo", help="the assistant's id")
    parser.add_argument("--demo", action="store_true", help="start a local fake server and use it")
    args = parser.parse_args(argv)
    try:
        with client(args) as pixi:
            thread = pixi.create_thread()
            pixi.create_message(thread.id, args.question)
            callbacks = StreamCallbacks(on_content=lambda text: print("answer:", text))
            handle = pixi.run(thread.id, args.assistant, callbacks, on_status=lambda run: print("status:", run.status))
            run = handle.result(timeout=600)
            for source in run.message.sources if run.message else ():
                print("source:", source.title, source.url)
    except LLMStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
