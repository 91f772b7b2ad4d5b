"""Eliza's local embedding: hashed character n-grams and words, folded into a unit vector.

Deterministic across processes and machines (BLAKE2b, not Python's salted ``hash``), offline
and fast: texts that share spelling get close vectors, which is enough to test retrieval code
without a network. Each feature (the character 3-grams of the lower-cased text padded with
spaces, and each word) adds +1 or -1 to one of ``dimensions`` slots, chosen by its hash; the
sum is scaled to length 1. A text without features (the empty string) maps to a fixed unit
vector of its own.
"""

from __future__ import annotations

import hashlib
import math

__all__ = ["DIMENSIONS", "vector"]

DIMENSIONS = 256


def _features(text: str) -> list[str]:
    low = " ".join(text.lower().split())
    padded = f" {low} "
    grams = [padded[i : i + 3] for i in range(len(padded) - 2)] if low else []
    words = ["w:" + w for w in low.split()]
    return grams + words or ["<empty>"]


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The unit vector of ``text`` with ``dimensions`` components."""
    sums = [0.0] * dimensions
    for feature in _features(text):
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        sums[number % dimensions] += 1.0 if number >> 63 else -1.0
    norm = math.sqrt(math.fsum(x * x for x in sums))
    if not norm:  # the features cancelled out: fall back to the first feature's slot
        sums[0] = 1.0
        norm = 1.0
    return [x / norm for x in sums]
