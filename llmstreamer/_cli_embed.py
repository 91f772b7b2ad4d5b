"""``llmstreamer embed``: print the embedding vectors of texts (the CLI's hook is in ``cli``).

Plain output is one line per text, its vector's numbers separated by spaces (ready for
``numpy.loadtxt`` or ``awk``); ``--json`` prints one object with ``provider``, ``model``,
``vectors`` and ``usage``. Without TEXT arguments, each line of a piped stdin is one text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["add_embed"]

MODEL_ENV = "LLMSTREAMER_MODEL"
DEFAULT_MODEL = "eliza"


def add_embed(commands: Any) -> None:
    """Add the ``embed`` command to the CLI's subparsers."""
    embed = commands.add_parser(
        "embed",
        help="print the embedding vectors of texts",
        description="Print one embedding vector per TEXT (or per line of a piped stdin).",
    )
    embed.add_argument("texts", nargs="*", metavar="TEXT", help="the texts to embed, one vector each")
    embed.add_argument(
        "-m",
        "--model",
        metavar="PROVIDER[:MODEL]",
        help=f"e.g. openai:text-embedding-3-small (default: ${MODEL_ENV}, else {DEFAULT_MODEL})",
    )
    embed.add_argument("--dimensions", type=int, metavar="N", help="a shorter vector, where the model allows")
    embed.add_argument("--task-type", metavar="TYPE", help="what the vectors are for, e.g. retrieval_query (Gemini)")
    embed.add_argument("--normalize", action="store_true", help="scale every vector to length 1")
    embed.add_argument("--json", action="store_true", help="print one JSON object with the vectors and usage")
    embed.set_defaults(run=_embed)


def _embed(args: argparse.Namespace) -> int:
    from .errors import ConfigurationError
    from .registry import streamer

    texts = list(args.texts)
    if not texts and not sys.stdin.isatty():
        texts = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ConfigurationError("give at least one TEXT to embed (or pipe lines on stdin)")
    spec = args.model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    with streamer(spec) as s:
        found = s.embed(
            texts, dimensions=args.dimensions, task_type=args.task_type, normalize=True if args.normalize else None
        )
    out = sys.stdout
    if args.json:
        usage = found.usage
        counts = {"input_tokens": usage.input_tokens, "total_tokens": usage.total_tokens} if usage else None
        payload = {"provider": found.provider, "model": found.model, "vectors": found.vectors, "usage": counts}
        out.write(json.dumps(payload) + "\n")
    else:
        for vector in found.vectors:
            out.write(" ".join(repr(x) for x in vector) + "\n")
    out.flush()
    return 0
