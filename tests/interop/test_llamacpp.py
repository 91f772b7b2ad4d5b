"""llama.cpp through llama-cpp-python's server, running a tiny model the suite generates itself:
real inference with answers fixed by the weights (see tinyllama.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import llmstreamer
from llmstreamer import IncompleteStreamError, Message, Timeout

from ..conftest import Recorder
from .conftest import LLAMA_CONTEXT
from .servers import ServerProcess
from .tinyllama import ANSWER

# the answer as the server streams it: one piece per token, except that it holds back the bytes
# of a character split across tokens until the character is whole
PIECES = [
    "Hello",
    " from",
    " a",
    " tiny",
    " llama:",
    " caf",
    "é",
    " costs",
    " 5",
    "€",
    " and",
    " smiles",
    " ",
    "😀",
    ".",
]


def _streamer(llama: ServerProcess, spec: str = "llamacpp:tiny", **kwargs: Any) -> llmstreamer.Streamer:
    kwargs.setdefault("timeout", Timeout(connect=5, read=30))
    return llmstreamer.streamer(spec, base_url=llama.url + "/v1", api_key="interop-key", **kwargs)


def _run(s: llmstreamer.Streamer, recorder: Recorder, prompt: str = "Say hi", **options: Any) -> Recorder:
    handle = s.stream_chat([Message.user(prompt)], recorder, **options)
    assert handle.wait(60), "the stream did not end"
    return recorder


def _content(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [("content", piece) for piece in calls]


@pytest.mark.parametrize("spec", ["llamacpp:tiny", "openai:tiny", "openai-compatible:tiny"])
def test_text(llama: ServerProcess, recorder: Recorder, spec: str) -> None:
    """The model's answer streams token by token and finishes with stop (the server sends no usage)."""
    _run(_streamer(llama, spec), recorder)
    assert recorder.calls == [*_content(PIECES), ("finish", ANSWER)]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"
    assert recorder.response.request_id  # llama-cpp-python sends x-request-id


def test_list_models(llama: ServerProcess) -> None:
    """list_models() lists the served model under its alias."""
    assert [m.id for m in _streamer(llama).list_models()] == ["tiny"]


@pytest.mark.parametrize("spec", ["llamacpp:tiny", "openai:tiny"])
def test_max_tokens(llama: ServerProcess, recorder: Recorder, spec: str) -> None:
    """max_tokens reaches the server (as max_tokens, even from OpenAIStreamer) and the answer finishes with length."""
    _run(_streamer(llama, spec), recorder, max_tokens=3)
    assert recorder.calls == [*_content(PIECES[:3]), ("finish", "Hello from a")]
    assert recorder.response is not None and recorder.response.finish_reason == "length"


def test_stop_sequence(llama: ServerProcess, recorder: Recorder) -> None:
    """A stop sequence ends the answer before it, with finish stop."""
    _run(_streamer(llama), recorder, stop=["tiny"])
    assert recorder.calls == [*_content(["Hello", " from", " a", " "]), ("finish", "Hello from a ")]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"


def test_characters_split_across_tokens(llama: ServerProcess, recorder: Recorder) -> None:
    """é, € and 😀 are two, three and four byte tokens in the model, yet each arrives whole, never as U+FFFD."""
    _run(_streamer(llama), recorder)
    texts = [call[1] for call in recorder.calls if call[0] == "content"]
    assert [t for t in texts if not t.isascii()] == ["é", "€", "😀"]
    assert "\ufffd" not in "".join(texts)


def test_token_limit_inside_a_character(llama: ServerProcess, recorder: Recorder) -> None:
    """A token limit that falls inside é (after its first byte) still yields whole characters, finishing with length."""
    _run(_streamer(llama), recorder, max_tokens=7)
    # the server finishes the character it started before it stops
    assert recorder.calls == [*_content(PIECES[:7]), ("finish", "Hello from a tiny llama: café")]
    assert recorder.response is not None and recorder.response.finish_reason == "length"


def test_prompt_longer_than_the_context(llama: ServerProcess, recorder: Recorder) -> None:
    """A prompt longer than the context ends the stream with IncompleteStreamError and nothing received.

    The server refuses a non-streamed request like this with a 400 (context_length_exceeded), but
    for a streamed one it has already sent 200 and an event stream, and then ends the body with no
    event at all: the error is only in its log. llmstreamer reports a stream that never said how
    it finished; the openai SDK (``create(stream=True)``) yields no chunk and raises nothing, so an
    application sees an empty answer. llmstreamer is right: OpenAI's streaming reference ends every
    choice with a finish_reason and the stream with ``data: [DONE]``, and here neither came.
    """
    prompt = "x" * (LLAMA_CONTEXT * 2)
    _run(_streamer(llama), recorder, prompt=prompt)
    assert recorder.calls == [("error", "IncompleteStreamError")]
    assert isinstance(recorder.error, IncompleteStreamError)
    assert recorder.error.partial is not None and recorder.error.partial.text == ""

    import openai

    client = openai.OpenAI(base_url=llama.url + "/v1", api_key="interop-key", max_retries=0, timeout=30)
    chunks = list(
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}], stream=True)
    )
    assert chunks == []


class _Flowing(Recorder):
    """A recorder that signals its first content."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = threading.Event()

    def on_content(self, text: str) -> None:
        super().on_content(text)
        self.flowing.set()


def test_request_interrupted_by_the_next(llama: ServerProcess) -> None:
    """The server interrupts a running stream for a new request with [DONE] and no finish_reason:
    the interrupted stream is IncompleteStreamError with its text so far, the new one completes."""
    first, second = _Flowing(), Recorder()
    s = _streamer(llama)
    long = s.stream_chat([Message.user("Count!")], first)  # " tick tock" until the context is full
    assert first.flowing.wait(60)
    short = s.stream_chat([Message.user("Say hi")], second)
    assert long.wait(60) and short.wait(60)
    assert first.kinds()[-1] == "error" and set(first.kinds()[:-1]) == {"content"}
    assert isinstance(first.error, IncompleteStreamError)
    assert first.error.partial is not None and first.error.partial.text.startswith(" tick tock")
    assert second.calls == [*_content(PIECES), ("finish", ANSWER)]


def test_several_concurrent_requests(llama: ServerProcess) -> None:
    """Of requests that overlap, each either completes with a stated finish or is IncompleteStreamError;
    the last one served completes."""
    first = _Flowing()
    s = _streamer(llama)
    handles = [s.stream_chat([Message.user("Count!")], first)]
    assert first.flowing.wait(60)
    others = [Recorder() for _ in range(3)]
    handles += [s.stream_chat([Message.user("Say hi")], r) for r in others]
    assert all(h.wait(60) for h in handles)
    assert isinstance(first.error, IncompleteStreamError)
    complete = [r for r in others if r.error is None]
    assert complete, "one request is served to the end"
    for r in others:
        if r.error is None:
            assert r.calls == [*_content(PIECES), ("finish", ANSWER)]
        else:
            assert isinstance(r.error, IncompleteStreamError)
            assert r.error.partial is not None and ANSWER.startswith(r.error.partial.text)
            assert r.calls == [*_content([c[1] for c in r.calls[:-1]]), ("error", "IncompleteStreamError")]
