"""The LiteLLM proxy (``litellm[proxy]``, mock_response models, a master key) through the public API:
its OpenAI wire, and its Anthropic /v1/messages bridged to a second LiteLLM proxy."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import llmstreamer
from llmstreamer import Message, OverloadedError, RetryPolicy, ServerError, StreamCancelled, StreamError, Timeout

from ..conftest import Recorder
from .conftest import LITELLM_KEY, LONG_TEXT, SHORT_TEXT, UPSTREAM_LONG_TEXT, LiteLLM

BRIDGED_TEXT = "Hello through the bridge."


def _openai(litellm: LiteLLM, model: str, **kwargs: Any) -> llmstreamer.Streamer:
    kwargs.setdefault("timeout", Timeout(connect=5, read=30))
    return llmstreamer.streamer(f"openai:{model}", base_url=litellm.url + "/v1", api_key=LITELLM_KEY, **kwargs)


def _anthropic(litellm: LiteLLM, model: str, **kwargs: Any) -> llmstreamer.Streamer:
    kwargs.setdefault("timeout", Timeout(connect=5, read=30))
    return llmstreamer.streamer(f"anthropic:{model}", base_url=litellm.url, api_key=LITELLM_KEY, **kwargs)


def _pieces(text: str) -> list[tuple[Any, ...]]:
    """LiteLLM streams a mock answer three characters at a time."""
    return [("content", text[i : i + 3]) for i in range(0, len(text), 3)]


def _usage(recorder: Recorder) -> list[tuple[Any, ...]]:
    """The one usage callback, before the finish (LiteLLM counts the tokens with its own tokenizer)."""
    usages = [c for c in recorder.calls if c[0] == "usage"]
    assert len(usages) == 1 and usages[0][1] > 0 and usages[0][2] > 0
    return usages


def _run(s: llmstreamer.Streamer, recorder: Recorder, timeout: float = 120) -> Recorder:
    handle = s.stream_chat([Message.user("Hello?")], recorder)
    assert handle.wait(timeout), "the stream did not end"
    return recorder


def test_text(litellm: LiteLLM, recorder: Recorder) -> None:
    """A mock answer streams in order and finishes with stop; the call id LiteLLM echoes is the request id."""
    _run(_openai(litellm, "mock-text", headers={"x-litellm-call-id": "interop-call-1"}), recorder)
    assert recorder.calls == _pieces(SHORT_TEXT) + _usage(recorder) + [("finish", SHORT_TEXT)]
    response = recorder.response
    assert response is not None and (response.finish_reason, response.model) == ("stop", "mock-text")
    # LiteLLM sends no x-request-id; its x-litellm-call-id names the call in its logs
    assert response.request_id == "interop-call-1"


def test_long_answer(litellm: LiteLLM, recorder: Recorder) -> None:
    """An answer of more than 10,000 chunks arrives whole and in order."""
    _run(_openai(litellm, "mock-long"), recorder)
    pieces = _pieces(LONG_TEXT)
    assert len(pieces) > 10_000
    assert recorder.calls == pieces + _usage(recorder) + [("finish", LONG_TEXT)]


def test_cancel_mid_stream(litellm: LiteLLM) -> None:
    """cancel() from another thread mid-answer ends the stream at once with StreamCancelled and the text so far."""
    started = threading.Event()

    class Canceller(Recorder):
        def on_content(self, text: str) -> None:
            super().on_content(text)
            started.set()

    recorder = Canceller()
    handle = _openai(litellm, "mock-long").stream_chat([Message.user("Hello?")], recorder)
    assert started.wait(60)
    handle.cancel()
    assert handle.wait(10)
    received = len(recorder.calls) - 1
    assert recorder.calls == [*_pieces(LONG_TEXT)[:received], ("error", "StreamCancelled")]
    assert 0 < received < len(_pieces(LONG_TEXT))
    assert isinstance(recorder.error, StreamCancelled)
    assert recorder.error.partial is not None and LONG_TEXT.startswith(recorder.error.partial.text)


def test_list_models(litellm: LiteLLM) -> None:
    """list_models() lists the proxy's model names, as configured."""
    names = ["mock-text", "mock-long", "mock-overloaded", "bridge-text", "bridge-long"]
    assert [m.id for m in _openai(litellm, "mock-text").list_models()] == names


def test_pull_and_leave_early(litellm: LiteLLM) -> None:
    """stream() yields the answer's events in the calling thread; leaving the loop early ends the request."""
    texts: list[str] = []
    events = _openai(litellm, "mock-long").stream([Message.user("Hello?")])
    for event in events:
        if event.type == "content":
            texts.append(event.text)
            if len(texts) == 100:
                break
    events.close()  # a generator left by break closes when collected; here at once
    assert "".join(texts) == LONG_TEXT[:300]


def test_fifty_concurrent_streams(litellm: LiteLLM) -> None:
    """Fifty streams at once from one streamer all finish with the whole answer, each with its own call id."""
    s = _openai(litellm, "mock-text", pool_size=50)
    recorders = [Recorder() for _ in range(50)]
    handles = [s.stream_chat([Message.user(f"Hello {i}?")], r) for i, r in enumerate(recorders)]
    assert all(h.wait(120) for h in handles)
    for r in recorders:
        assert r.calls == _pieces(SHORT_TEXT) + _usage(r) + [("finish", SHORT_TEXT)]
    ids = {r.response.request_id for r in recorders if r.response is not None}
    assert len(ids) == 50 and None not in ids


def test_overloaded(litellm: LiteLLM, recorder: Recorder) -> None:
    """LiteLLM's mock overload (HTTP 529, code "529") is OverloadedError with the status and the call id."""
    headers = {"x-litellm-call-id": "interop-call-2"}
    _run(_openai(litellm, "mock-overloaded", retry=RetryPolicy.none(), headers=headers), recorder)
    assert recorder.calls == [("error", "OverloadedError")]
    assert isinstance(recorder.error, OverloadedError)
    assert (recorder.error.status_code, recorder.error.request_id) == (529, "interop-call-2")


def test_json_answer_to_a_stream_request(litellm: LiteLLM, recorder: Recorder) -> None:
    """LiteLLM answers /v1/messages for a mock model with one JSON message, not a stream: a StreamError that says so."""
    _run(_anthropic(litellm, "mock-text", retry=RetryPolicy.none()), recorder)
    assert recorder.calls == [("error", "StreamError")]
    assert type(recorder.error) is StreamError
    assert "expected a stream, got an application/json body" in str(recorder.error)


def test_anthropic_bridge(litellm: LiteLLM, recorder: Recorder) -> None:
    """Anthropic's wire from the front proxy, bridged to the upstream proxy's chat completions, streams the answer."""
    litellm.ensure_upstream()
    _run(_anthropic(litellm, "bridge-text"), recorder)
    assert recorder.calls == _pieces(BRIDGED_TEXT) + _usage(recorder) + [("finish", BRIDGED_TEXT)]
    assert recorder.response is not None and recorder.response.finish_reason == "stop"


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_upstream_killed_mid_stream(litellm: LiteLLM, wire: str) -> None:
    """Killing the upstream proxy mid-answer ends the stream in ServerError (500) with the text so far.

    The front proxy reports the failure in-band: on the OpenAI wire a data line
    ``{"error": {"code": "500", ...}}`` (the status as a string), on the Anthropic wire an
    ``event: error`` of type ``api_error``.
    """
    litellm.ensure_upstream()
    flowing = threading.Event()

    class Watcher(Recorder):
        def on_content(self, text: str) -> None:
            super().on_content(text)
            flowing.set()

    recorder = Watcher()
    streamer = _openai if wire == "openai" else _anthropic
    handle = streamer(litellm, "bridge-long").stream_chat([Message.user("Count.")], recorder)
    try:
        assert flowing.wait(60)
        # at once: the front proxy reads ahead of its client, so a stream killed late may
        # already hold its whole answer
        litellm.upstream.kill()
        assert handle.wait(60)
    finally:
        handle.cancel()
    assert recorder.kinds()[-1] == "error" and set(recorder.kinds()[:-1]) == {"content"}
    assert isinstance(recorder.error, ServerError) and recorder.error.status_code == 500, recorder.error
    partial = recorder.error.partial
    assert partial is not None and 0 < len(partial.text) < len(UPSTREAM_LONG_TEXT)
    assert UPSTREAM_LONG_TEXT.startswith(partial.text)
