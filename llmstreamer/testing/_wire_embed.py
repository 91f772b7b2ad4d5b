"""Embeddings as the fake servers answer them, on every wire, with vectors a test can predict.

`fake_embedding` makes the vector of one text: its length, a checksum of its characters and its
word count, then filler up to ``dimensions`` (cut short when fewer are asked for). Tokens are
counted as words. Shapes: OpenAI-style ``/embeddings`` (also Mistral's, with
``output_dimension``, and every compatible server's), Gemini ``:batchEmbedContents``, Ollama
``/api/embed``; ModelSocket's ``embed`` command is answered in ``modelsocket``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._reply import RecordedRequest

__all__ = ["answer", "fake_embedding", "kind_of", "tokens"]


def fake_embedding(text: str, dimensions: int | None = None) -> list[float]:
    """The fake servers' vector for ``text``: ``[len, checksum, words, 0.5, 0.5...]``, ``dimensions`` long (3 by default)."""
    size = 3 if dimensions is None else int(dimensions)
    head = [float(len(text)), float(sum(map(ord, text)) % 997), float(len(text.split()))]
    return (head + [0.5] * max(0, size - len(head)))[:size]


def tokens(texts: list[str]) -> int:
    """Tokens as the fake servers count them: words, at least one per text."""
    return sum(max(1, len(t.split())) for t in texts)


def kind_of(path: str) -> str | None:
    """Which embeddings wire a request path asks for, or None for any other request."""
    path = path.split("?", 1)[0]
    if path.endswith(":batchEmbedContents"):
        return "gemini"
    if path.endswith("/api/embed"):
        return "ollama"
    if path.endswith("/embeddings"):
        return "openai"
    return None


def answer(kind: str, request: RecordedRequest) -> dict[str, Any]:
    """The JSON answer to an embeddings request of ``kind``."""
    body = request.json or {}
    if kind == "gemini":
        out = []
        for item in body.get("requests") or ():
            text = "".join(p.get("text", "") for p in item["content"]["parts"])
            out.append({"values": fake_embedding(text, item.get("outputDimensionality"))})
        return {"embeddings": out}
    given = body.get("input")
    texts = [given] if isinstance(given, str) else list(given or ())
    if kind == "ollama":
        vectors = [fake_embedding(t, body.get("dimensions")) for t in texts]
        return {
            "model": body.get("model"),
            "embeddings": vectors,
            "total_duration": 1000,
            "load_duration": 10,
            "prompt_eval_count": tokens(texts),
        }
    size = body.get("dimensions", body.get("output_dimension"))
    data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t, size)} for i, t in enumerate(texts)]
    used = tokens(texts)
    return {"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": used, "total_tokens": used}}
