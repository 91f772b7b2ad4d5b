"""Rank a few documents by similarity to a question with embeddings (Eliza's offline ones by default).

    python examples/embeddings_search.py "where do cats sleep"
    OPENAI_API_KEY=... python examples/embeddings_search.py -m openai:text-embedding-3-small "where do cats sleep"
"""

from __future__ import annotations

import argparse
import sys

import llmstreamer

DOCUMENTS = [
    "Cats sleep for most of the day, often in warm and sunny spots.",
    "The stock market closed higher after the central bank's announcement.",
    "A good sourdough needs a lively starter and a long, cool rise.",
    "Kittens and cats like to sleep in boxes and on soft blankets.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("question", nargs="?", default="where do cats sleep")
    parser.add_argument("-m", "--model", default="eliza", help="PROVIDER[:MODEL] with embeddings")
    args = parser.parse_args(argv)
    try:
        with llmstreamer.streamer(args.model) as s:
            found = s.embed([args.question, *DOCUMENTS], normalize=True)
    except llmstreamer.LLMStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    query, *docs = found.vectors
    scores = [sum(q * d for q, d in zip(query, doc)) for doc in docs]  # unit vectors: cosine similarity
    for score, text in sorted(zip(scores, DOCUMENTS), reverse=True):
        print(f"{score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
