"""Embeddings: the `Embeddings` value and the core every provider shares.

`Streamer.embed` lands here. The core checks the texts and options, splits the texts into
batches of the provider's ``embed_batch_size``, hands each batch to the provider's
``embed_batch`` and puts the vectors back together in input order, summing the usage. A
provider contributes only its wire: HTTP providers implement ``build_embed_request`` (the request of
one batch) and ``decode_embeddings`` (its JSON answer into a `Batch`), and `http_batch` sends it
with the streamer's transport, timeouts and retries (an embedding changes nothing on the
server, so every retryable failure is retried); other providers implement ``embed_batch``.

Options: ``dimensions`` (a shorter vector, where the model supports it), ``task_type`` (what
the vectors are for, e.g. ``retrieval_query``; Gemini and ModelSocket take one) and
``normalize`` (True: every vector has unit length, computed here if the provider does not do
it; False: sent where the wire has such a field). An option the provider cannot honour raises
`ConfigurationError` before anything is sent.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

import attrs

from . import _rest
from ._http import Request
from .errors import ConfigurationError, StreamError
from .models import Usage

__all__ = ["Batch", "EmbedOptions", "Embeddings", "default_batch", "embed", "http_batch", "model_for", "openai_decode", "post_json", "unit"]


@attrs.frozen
class Embeddings:
    """The vectors of one `Streamer.embed` call, one per input text, in input order.

    Attributes:
        vectors: One list of floats per text.
        model: The model that made them (as the provider names it).
        usage: The input tokens counted by the provider (summed over batches), or None when
            the provider reports none.
        provider: The provider's name.

    Example::

        e = llmstreamer.streamer("openai:text-embedding-3-small").embed(["cat", "dog"])
        len(e.vectors), len(e.vectors[0])      # (2, 1536)
    """

    vectors: list[list[float]]
    model: str = ""
    usage: Usage | None = None
    provider: str = ""

    def __len__(self) -> int:
        return len(self.vectors)


@attrs.frozen
class EmbedOptions:
    """The options of one `Streamer.embed` call (None: not given)."""

    dimensions: int | None = None
    task_type: str | None = None
    normalize: bool | None = None


@attrs.frozen
class Batch:
    """What a provider returns for one batch: its vectors in order, the model and the usage."""

    vectors: list[list[float]]
    model: str | None = None
    usage: Usage | None = None


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise ConfigurationError(f"embed takes a text or a list of texts, got {type(texts).__name__}")
    out = list(texts)
    for text in out:
        if not isinstance(text, str):
            raise ConfigurationError(f"embed takes texts (str), got a {type(text).__name__}")
    return out


def _options(streamer: Any, dimensions: Any, task_type: Any, normalize: Any) -> EmbedOptions:
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}", provider=streamer.provider)
    if task_type is not None and (not isinstance(task_type, str) or not task_type):
        raise ConfigurationError(f"task_type must be a non-empty string, got {task_type!r}", provider=streamer.provider)
    if normalize is not None and not isinstance(normalize, bool):
        raise ConfigurationError(f"normalize must be True or False, got {normalize!r}", provider=streamer.provider)
    takes = streamer.spec.embed_options
    for name, value in (("dimensions", dimensions), ("task_type", task_type)):
        if value is not None and name not in takes:
            raise ConfigurationError(f"{streamer.provider} embeddings do not take {name}", provider=streamer.provider)
    return EmbedOptions(dimensions, task_type, normalize)


def embed(streamer: Any, texts: Any, *, dimensions: Any = None, task_type: Any = None, normalize: Any = None) -> Embeddings:
    """`Streamer.embed`: split, send each batch, reassemble in order, sum the usage."""
    if not streamer.spec.has_embeddings:
        raise ConfigurationError(f"{streamer.provider} has no embeddings endpoint", provider=streamer.provider)
    items = _texts(texts)
    options = _options(streamer, dimensions, task_type, normalize)
    model = model_for(streamer)
    size = max(1, int(streamer.spec.embed_batch_size))
    vectors: list[list[float]] = []
    usage: Usage | None = None
    for start in range(0, len(items), size):
        batch = tuple(items[start : start + size])
        part = streamer.embed_batch(batch, options)
        if len(part.vectors) != len(batch):
            raise StreamError(
                f"asked for {len(batch)} embeddings, got {len(part.vectors)}", provider=streamer.provider
            )
        vectors.extend(part.vectors)
        if part.model:
            model = part.model
        if part.usage is not None:
            usage = part.usage if usage is None else usage + part.usage
    if options.normalize:
        vectors = [unit(v) for v in vectors]
    return Embeddings(vectors, model, usage, streamer.provider)


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)


def model_for(streamer: Any) -> str:
    """The model that embeds: the streamer's, except that a streamer left on the provider's
    default chat model embeds with the provider's default embedding model."""
    default: str | None = streamer.spec.default_embedding_model
    model: str = streamer.model
    return default if default and model == streamer.spec.default_model else model


def default_batch(streamer: Any, texts: tuple[str, ...], options: EmbedOptions) -> Batch:
    """`Streamer.embed_batch` unless a provider overrides it: the provider's HTTP request."""
    if getattr(streamer, "build_embed_request", None) is None:
        raise ConfigurationError(f"{streamer.provider} has no embeddings endpoint", provider=streamer.provider)
    return http_batch(streamer, texts, options)


def post_json(streamer: Any, path: str, body: Any) -> Request:
    """A JSON POST to ``base_url + path`` that wants a JSON answer: the provider's auth headers
    (``streamer.auth_headers()``), the user's headers on top."""
    merged = {"Content-Type": "application/json", "Accept": "application/json", **streamer.auth_headers(), **streamer.headers}
    return Request("POST", streamer.base_url + path, merged, json.dumps(body).encode())


def http_batch(streamer: Any, texts: tuple[str, ...], options: EmbedOptions) -> Batch:
    """One batch over HTTP: the provider's request, sent with retries, and its decoded answer.

    ``streamer`` is an `HTTPStreamer` with the hooks ``build_embed_request(texts, options) ->
    Request`` and ``decode_embeddings(payload, texts) -> Batch``.
    """
    request = streamer.build_embed_request(texts, options)
    answer = _rest.call(streamer.transport, request, timeout=streamer.timeout, retry=streamer.retry)
    try:
        batch: Batch = streamer.decode_embeddings(answer.value, texts)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise StreamError(f"malformed embeddings answer ({type(exc).__name__}: {exc})", provider=streamer.provider) from exc
    return batch


def openai_decode(payload: Any) -> Batch:
    """Read OpenAI's embeddings answer (also Mistral's and the compatible servers'):
    ``{"data": [{"index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``."""
    data = sorted(payload["data"], key=lambda item: item.get("index", 0))
    vectors = [[float(x) for x in item["embedding"]] for item in data]
    counts = payload.get("usage") or None
    usage = None
    if counts:
        prompt = counts.get("prompt_tokens") or 0
        usage = Usage(input_tokens=prompt, total_tokens=counts.get("total_tokens") or prompt)
    return Batch(vectors, payload.get("model"), usage)
