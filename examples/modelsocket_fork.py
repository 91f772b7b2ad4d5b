"""Fork a ModelSocket sequence: one shared prompt, two continuations generated at the same time.

The server keeps the context (its KV cache); a fork copies it cheaply, so both branches reuse the
prompt without sending it again.

    python examples/modelsocket_fork.py --demo                 # against a local fake server
    MODELSOCKET_API_KEY=... python examples/modelsocket_fork.py [--url wss://...] [--model ...]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator

from llmstreamer import LLMStreamError, ModelSocketClient


@contextlib.contextmanager
def endpoint(args: argparse.Namespace) -> Iterator[tuple[str | None, str | None]]:
    """The URL and key to use: a fake server of our own with --demo, else the arguments."""
    if not args.demo:
        yield args.url, None
        return
    from llmstreamer.testing.modelsocket import FakeModelSocketServer

    with FakeModelSocketServer(api_key="demo-key") as server:
        yield server.url, "demo-key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="the ModelSocket URL (default: MODELSOCKET_URL or the public endpoint)")
    parser.add_argument("--model", default="meta/llama3.1-8b-instruct-free")
    parser.add_argument("--demo", action="store_true", help="start a local fake server and use it")
    args = parser.parse_args(argv)
    try:
        with endpoint(args) as (url, key), ModelSocketClient.connect(url, key, timeout=30) as client:
            seq = client.open(args.model)
            seq.append("You write one-line endings for stories.", role="system")
            seq.append("A lighthouse keeper finds a letter in a bottle.")
            fork = seq.fork()  # same context so far; independent from here on
            seq.append("End it happily.")
            fork.append("End it with a twist.")
            happy, twist = seq.generate(temperature=0.7), fork.generate(temperature=0.7)
            print("parent:", happy.result(60).text)
            print("fork:", twist.result(60).text)
            fork.close()
            seq.close()
    except LLMStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
