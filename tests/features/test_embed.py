"""Embeddings on every provider: request shapes, order across batches, usage, errors, options."""

from __future__ import annotations

import math
import threading
from typing import Any, Iterator

import attrs
import pytest

import llmstreamer
from llmstreamer import (
    AuthenticationError,
    ConfigurationError,
    Embeddings,
    Message,
    ModelSocketStreamer,
    RateLimitError,
    RetryPolicy,
    StreamError,
    Usage,
)
from llmstreamer.testing import FakeLLMServer, Reply, fake_embedding
from llmstreamer.testing.modelsocket import FakeModelSocketServer, Generation, Hold

from ..conftest import Recorder

TEXTS = ["alpha", "beta gamma", "delta", "epsilon zeta eta", "theta"]
FAST = RetryPolicy(retries=2, initial_delay=0.001, max_delay=0.002)


def vectors(texts: list[str], dimensions: int | None = None) -> list[list[float]]:
    return [fake_embedding(t, dimensions) for t in texts]


def make(server: FakeLLMServer, spec: str, **kw: Any) -> Any:
    flavor = spec.split(":", 1)[0]
    return llmstreamer.streamer(spec, api_key="test-key", base_url=server.base_url(flavor), retry=FAST, **kw)


# --- the wire of each provider ------------------------------------------------------------------


def test_openai_request_and_answer(server: FakeLLMServer) -> None:
    """OpenAI: POST /embeddings with input list, model, encoding_format and dimensions; vectors, model, usage."""
    s = make(server, "openai:text-embedding-3-small")
    e = s.embed(["one two", "three"], dimensions=4)
    assert e == Embeddings(vectors(["one two", "three"], 4), "text-embedding-3-small", Usage(input_tokens=3, total_tokens=3), "openai")
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/openai/v1/embeddings")
    assert req.headers["authorization"] == "Bearer test-key"
    assert req.headers["accept"] == "application/json"
    assert req.json == {"model": "text-embedding-3-small", "input": ["one two", "three"], "encoding_format": "float", "dimensions": 4}


def test_default_chat_model_embeds_with_the_embedding_model(server: FakeLLMServer) -> None:
    """A streamer left on the default chat model embeds with the provider's default embedding model."""
    make(server, "openai").embed("hi")
    make(server, "mistral").embed("hi")
    make(server, "gemini").embed("hi")
    make(server, "ollama").embed("hi")
    assert [r.json.get("model") for r in server.requests[:2]] == ["text-embedding-3-small", "mistral-embed"]
    assert server.requests[2].path == "/gemini/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert server.requests[3].json["model"] == "nomic-embed-text"


def test_a_single_text_gives_one_vector(server: FakeLLMServer) -> None:
    """A bare string is one text: one vector."""
    e = make(server, "openai:m").embed("just one")
    assert e.vectors == vectors(["just one"]) and len(e) == 1
    assert server.requests[0].json["input"] == ["just one"]


def test_gemini_batch_embed_contents(server: FakeLLMServer) -> None:
    """Gemini: batchEmbedContents with one request per text, taskType in capitals, outputDimensionality."""
    s = make(server, "gemini:gemini-embedding-001")
    e = s.embed(["a b", "c"], task_type="retrieval_document", dimensions=5)
    assert e == Embeddings(vectors(["a b", "c"], 5), "gemini-embedding-001", None, "gemini")
    (req,) = server.requests
    assert req.path == "/gemini/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert req.headers["x-goog-api-key"] == "test-key"
    item = {"model": "models/gemini-embedding-001", "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 5}
    assert req.json == {
        "requests": [
            {"content": {"parts": [{"text": "a b"}]}, **item},
            {"content": {"parts": [{"text": "c"}]}, **item},
        ]
    }


def test_mistral_output_dimension(server: FakeLLMServer) -> None:
    """Mistral: POST /embeddings with output_dimension for dimensions."""
    e = make(server, "mistral:codestral-embed").embed(["x"], dimensions=2)
    assert e.vectors == vectors(["x"], 2) and e.usage == Usage(input_tokens=1, total_tokens=1)
    assert server.requests[0].path == "/mistral/v1/embeddings"
    assert server.requests[0].json == {"model": "codestral-embed", "input": ["x"], "encoding_format": "float", "output_dimension": 2}


def test_ollama_api_embed(server: FakeLLMServer) -> None:
    """Ollama: POST /api/embed with input list and dimensions; prompt_eval_count is the usage."""
    e = make(server, "ollama:all-minilm").embed(["p q", "r"], dimensions=3)
    assert e == Embeddings(vectors(["p q", "r"], 3), "all-minilm", Usage(input_tokens=3), "ollama")
    assert server.requests[0].path == "/ollama/api/embed"
    assert server.requests[0].json == {"model": "all-minilm", "input": ["p q", "r"], "dimensions": 3}


@pytest.mark.parametrize("preset", ["pixigpt", "vllm", "together", "openrouter", "lmstudio", "llamacpp"])
def test_compatible_presets_embed(server: FakeLLMServer, preset: str) -> None:
    """Every OpenAI-compatible preset with an embeddings endpoint posts to {base_url}/embeddings."""
    e = make(server, f"{preset}:emb").embed(["u", "v w"])
    assert e.vectors == vectors(["u", "v w"]) and e.provider == preset
    assert server.requests[0].path == f"/{preset}/v1/embeddings"
    assert server.requests[0].json == {"model": "emb", "input": ["u", "v w"], "encoding_format": "float"}


@pytest.mark.parametrize("spec", ["anthropic:claude-sonnet-4-5", "groq:llama", "deepseek:deepseek-chat"])
def test_providers_without_embeddings_refuse(server: FakeLLMServer, spec: str) -> None:
    """A provider without embeddings raises ConfigurationError before any request, even for no texts."""
    s = make(server, spec)
    for texts in (["x"], []):
        with pytest.raises(ConfigurationError, match="has no embeddings"):
            s.embed(texts)
    assert server.requests == []


@pytest.mark.parametrize(
    ("spec", "options"),
    [("openai:m", {"task_type": "query"}), ("mistral:m", {"task_type": "query"}), ("ollama:m", {"task_type": "x"})],
)
def test_unsupported_options_refused_before_sending(server: FakeLLMServer, spec: str, options: dict[str, Any]) -> None:
    """An option the provider cannot honour raises ConfigurationError before any request."""
    with pytest.raises(ConfigurationError, match="do not take task_type"):
        make(server, spec).embed(["x"], **options)
    assert server.requests == []


@pytest.mark.parametrize("bad", [b"bytes", 42, ["ok", 3], None])
def test_bad_texts_refused(server: FakeLLMServer, bad: Any) -> None:
    """Texts must be a str or str items; anything else is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        make(server, "openai:m").embed(bad)
    with pytest.raises(ConfigurationError, match="dimensions"):
        make(server, "openai:m").embed("x", dimensions=0)
    assert server.requests == []


def test_empty_list_sends_nothing(server: FakeLLMServer) -> None:
    """No texts: no request, no vectors."""
    assert make(server, "openai:m").embed([]) == Embeddings([], "m", None, "openai")
    assert server.requests == []


# --- batches ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["openai:m", "gemini:m", "mistral:m", "ollama:m", "vllm:m"])
def test_batches_split_and_reassemble_in_order(server: FakeLLMServer, spec: str) -> None:
    """Texts past the batch size go in several requests; vectors come back in input order, usage summed."""
    s = make(server, spec)
    s.spec = attrs.evolve(s.spec, embed_batch_size=2)
    e = s.embed(TEXTS)
    assert e.vectors == vectors(TEXTS)
    assert len(server.requests) == 3
    sent = []
    for req in server.requests:
        body = req.json
        sent.append([r["content"]["parts"][0]["text"] for r in body["requests"]] if "requests" in body else body["input"])
    assert sent == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:]]
    if not spec.startswith("gemini"):
        assert e.usage is not None and e.usage.input_tokens == 8


def test_answer_out_of_order_is_placed_by_index(server: FakeLLMServer) -> None:
    """An OpenAI answer listing data out of order is placed by each item's index."""
    data = [{"object": "embedding", "index": 1, "embedding": [2.0]}, {"object": "embedding", "index": 0, "embedding": [1.0]}]
    server.add(Reply(body={"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2}}))
    assert make(server, "openai:m").embed(["a", "b"]).vectors == [[1.0], [2.0]]


def test_wrong_count_is_a_stream_error(server: FakeLLMServer) -> None:
    """An answer with fewer vectors than texts is a StreamError, not a silent misalignment."""
    server.add(Reply(body={"object": "list", "data": [{"index": 0, "embedding": [1.0]}], "model": "m"}))
    with pytest.raises(StreamError, match="asked for 2 embeddings, got 1"):
        make(server, "openai:m").embed(["a", "b"])


def test_malformed_answer_is_a_stream_error(server: FakeLLMServer) -> None:
    """An answer without the expected fields is a StreamError naming the problem."""
    server.add(Reply(body={"unexpected": True}))
    with pytest.raises(StreamError, match="malformed embeddings answer"):
        make(server, "openai:m").embed(["a"])


# --- errors and retries -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["openai:m", "gemini:m", "mistral:m", "ollama:m", "pixigpt:m"])
def test_errors_through_the_usual_tree(server: FakeLLMServer, spec: str) -> None:
    """A 401 answer raises AuthenticationError (the usual tree), without retrying."""
    server.add(Reply(status=401))
    with pytest.raises(AuthenticationError):
        make(server, spec).embed(["a"])
    assert len(server.requests) == 1


def test_rate_limit_is_retried_with_retry_after(server: FakeLLMServer) -> None:
    """A 429 with retry-after is retried (embeddings change nothing), then the answer arrives."""
    server.add(Reply(status=429, headers={"retry-after": "0"}))
    assert make(server, "openai:m").embed(["a"]).vectors == vectors(["a"])
    assert len(server.requests) == 2


def test_dropped_connection_is_retried(server: FakeLLMServer) -> None:
    """A connection dropped before the answer is retried for embeddings."""
    server.add(Reply(silent=True, stall_for=0))
    assert make(server, "ollama:m").embed(["a"]).vectors == vectors(["a"])
    assert len(server.requests) == 2


def test_retries_exhausted_raise_the_last_error(server: FakeLLMServer) -> None:
    """After the policy's retries, the last error is raised with its retry hint."""
    server.add(*[Reply(status=429, headers={"retry-after": "0"})] * 3)
    with pytest.raises(RateLimitError) as info:
        make(server, "openai:m").embed(["a"])
    assert info.value.retry_after == 0 and len(server.requests) == 3


def test_key_never_in_errors(server: FakeLLMServer) -> None:
    """An error body echoing the key is redacted."""
    server.add(Reply(status=400, error={"message": "bad key test-key"}))
    with pytest.raises(llmstreamer.BadRequestError) as info:
        make(server, "openai:m").embed(["a"])
    assert "test-key" not in str(info.value)


# --- normalize ----------------------------------------------------------------------------------


def test_normalize_true_gives_unit_vectors(server: FakeLLMServer) -> None:
    """normalize=True scales every vector to length 1 when the provider does not."""
    e = make(server, "ollama:m").embed(["abc", "de f"], normalize=True)
    for got, raw in zip(e.vectors, vectors(["abc", "de f"])):
        norm = math.sqrt(sum(x * x for x in raw))
        assert got == pytest.approx([x / norm for x in raw])
        assert math.sqrt(sum(x * x for x in got)) == pytest.approx(1.0)


# --- Eliza --------------------------------------------------------------------------------------


def test_eliza_embeds_offline_deterministically() -> None:
    """Eliza: unit vectors from hashed n-grams, the same in every process; similar texts are closer."""
    s = llmstreamer.ElizaStreamer()
    e = s.embed(["the cat sat", "the cat sat down", "quantum chromodynamics", ""])
    assert e.model == "eliza-hashed-ngrams" and e.provider == "eliza" and len(e.vectors[0]) == 256
    for v in e.vectors:
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0)
    dot = [sum(a * b for a, b in zip(e.vectors[0], other)) for other in e.vectors[1:3]]
    assert dot[0] > 0.6 > dot[1]
    assert llmstreamer.ElizaStreamer(seed=7).embed(["the cat sat"]).vectors[0] == e.vectors[0]
    assert len(s.embed("x", dimensions=16, task_type="retrieval_query").vectors[0]) == 16


def test_eliza_vector_is_pinned() -> None:
    """The hashed vector does not change between versions (stored vectors stay comparable)."""
    v = llmstreamer.ElizaStreamer().embed("hello", dimensions=8).vectors[0]
    assert [round(x, 4) for x in v] == PINNED


PINNED = [0.5, 0.0, 0.0, 0.0, 0.5, -0.5, 0.5, 0.0]


# --- ModelSocket --------------------------------------------------------------------------------


@pytest.fixture
def ms() -> Iterator[FakeModelSocketServer]:
    """A fake ModelSocket server that wants a key."""
    with FakeModelSocketServer(api_key="ms-key") as srv:
        yield srv


def test_modelsocket_embed_command(ms: FakeModelSocketServer) -> None:
    """ModelSocket: open a sequence, embed with inputs/input_type/dimensions/normalize, vectors by index, close."""
    s = ModelSocketStreamer(model="m", api_key="ms-key", base_url=ms.url, timeout=5)
    try:
        e = s.embed(["a b", "c", "d e f"], dimensions=4, task_type="query", normalize=False)
    finally:
        s.close()
    assert e == Embeddings(vectors(["a b", "c", "d e f"], 4), "m", Usage(input_tokens=6), "modelsocket")
    (cmd,) = ms.commands("embed")
    assert cmd["data"] == {
        "command": "embed",
        "inputs": [{"text": "a b"}, {"text": "c"}, {"text": "d e f"}],
        "input_type": "query",
        "dimensions": 4,
        "normalize": False,
    }
    assert ms.wait_for(lambda: len(ms.commands("close")) == 1)


def test_modelsocket_embed_while_a_generation_runs(ms: FakeModelSocketServer) -> None:
    """An embed on the shared connection is routed by its cid while a generation streams on it."""
    gate = threading.Event()
    ms.add(Generation(["Hel", Hold(gate), "lo"]))
    s = ModelSocketStreamer(model="m", api_key="ms-key", base_url=ms.url, timeout=5)
    rec = Recorder()
    try:
        handle = s.stream_chat([Message.user("Hi")], rec)
        assert ms.wait_for(lambda: len(ms.commands("gen")) == 1)
        s.spec = attrs.evolve(s.spec, embed_batch_size=2)
        e = s.embed(TEXTS)
        assert e.vectors == vectors(TEXTS)
        assert not handle.done()
        gate.set()
        assert handle.wait(5)
    finally:
        s.close()
    assert rec.calls == [("content", "Hel"), ("content", "lo"), ("usage", 4, 1), ("finish", "Hello")]
    assert len(ms.commands("embed")) == 3 and ms.open_connections <= 1


def test_modelsocket_embed_errors_through_the_tree() -> None:
    """A ModelSocket error event (an unknown model) ends embed with the class of its code."""
    with FakeModelSocketServer(api_key="ms-key", models=["known"]) as srv:
        s = ModelSocketStreamer(model="unknown", api_key="ms-key", base_url=srv.url, timeout=5)
        try:
            with pytest.raises(llmstreamer.NotFoundError, match="unknown model"):
                s.embed(["a"])
        finally:
            s.close()
        assert srv.commands("embed") == []


def test_search_example_ranks_offline() -> None:
    """examples/embeddings_search.py ranks the cat documents first with Eliza's offline embeddings."""
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "embeddings_search.py"
    proc = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all("cat" in line.lower() for line in lines[:2])


def test_total_timeout_caps_an_embedding_call(server: FakeLLMServer) -> None:
    """Timeout(total=...) caps the embedding call, retries included: APITimeoutError (total)."""
    server.add(Reply(silent=True, stall_for=10))
    s = llmstreamer.streamer(
        "openai:m", api_key="k", base_url=server.base_url("openai"), timeout=llmstreamer.Timeout(total=0.3), retry=FAST
    )
    with pytest.raises(llmstreamer.APITimeoutError) as info:
        s.embed(["a"])
    assert info.value.kind == "total" and len(server.requests) == 1
