"""Quickstart: stream a two-turn chat with callbacks.

Runs with no key and no network on Eliza (the default); ``--model`` picks another provider::

    python examples/quickstart.py
    python examples/quickstart.py --model openai:gpt-4o-mini     # needs OPENAI_API_KEY
"""

from __future__ import annotations

import argparse
import sys

import llmstreamer
from llmstreamer import Conversation, StreamCallbacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="eliza", help="provider[:model] (default: eliza)")
    args = parser.parse_args(argv)

    failures: list[llmstreamer.LLMStreamError] = []
    callbacks = StreamCallbacks(
        on_content=lambda text: print(text, end="", flush=True),  # each fragment, as it arrives
        on_finish=lambda response: print(f"\n  [{response.finish_reason} after {response.duration:.3f} s]"),
        on_error=failures.append,  # exactly one of on_finish / on_error fires, last
    )

    chat = Conversation(llmstreamer.streamer(args.model))
    for text in ("I am sad about my mother.", "She never listens to me."):
        print(f"> {text}")
        chat.send(text, callbacks).wait(timeout=120)  # the history is kept across turns
        if failures:
            print(f"\nfailed: {failures[0]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
