"""Regressions found by the property tests and the fuzzer: malformed events on every provider.

(The SSE parser's own regressions are in tests/unit/test_sse.py.)
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from llmstreamer import StreamError, Usage
from llmstreamer.models import Event
from llmstreamer.provider import ProviderSpec, Streamer
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder
from .conftest import HI, edited, make, stream, upto

# --- malformed events never leak a foreign exception or a wrongly typed callback -----------------

# provider -> an event whose text field has the wrong JSON type (found by tools/fuzz.py)
_BAD_TEXT = {
    "openai": 'data: {"choices":[{"index":0,"delta":{"content":[{"type":"text","text":1.5}]}}]}\n\n',
    "anthropic": 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":{"a":1}}}\n\n',
    "gemini": 'data: {"candidates":[{"content":{"parts":[{"text":["x"]}],"role":"model"},"index":0}]}\n\n',
    "ollama": '{"model":"m","message":{"role":"assistant","content":["x"]},"done":false}\n',
}
_BAD_TEXT["mistral"] = _BAD_TEXT["deepseek"] = _BAD_TEXT["openai"]


def test_text_of_the_wrong_type_is_a_stream_error(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A content field holding a number, list or object ends in StreamError with the text so far;
    on_content never receives anything but a str (it used to, and building the partial then
    raised a TypeError past the engine)."""

    def insert(events: list[str], sse: bool) -> list[str]:
        at = upto("Alpha")(events)
        return [*events[:at], _BAD_TEXT[flavor], *events[at:]]

    server.add(edited(Reply(text=["Alpha", " Bravo"]), insert))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder)
    assert recorder.calls == [("content", "Alpha"), ("error", "StreamError")]
    assert recorder.error is not None and recorder.error.partial.text == "Alpha"


class _Emitter(Streamer):
    """A provider that emits the events it is given (a stand-in for a buggy third-party decoder)."""

    spec = ProviderSpec(name="emitter", default_model="m")

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events

    def stream_round(self, messages: Any, options: Any, context: Any) -> Iterator[Event]:
        yield from self.events


@pytest.mark.parametrize(
    "bad",
    [
        Event("content", 7),  # type: ignore[arg-type]
        Event("thinking", ["x"]),  # type: ignore[arg-type]
        Event("signature", {"s": 1}),  # type: ignore[arg-type]
        Event("tool_call_delta", data=(0, "id", ["name"], "{}")),
        Event("usage", data=Usage([1], [2])),  # type: ignore[arg-type]
        Event("usage", data={"input_tokens": 1}),
        Event("stop", 1),  # type: ignore[arg-type]
        Event("meta", data={"model": 1.5}),
    ],
    ids=lambda e: e.type,
)
def test_the_engine_refuses_wrongly_typed_events(bad: Event, recorder: Recorder) -> None:
    """Any provider's wrongly typed event ends the stream in StreamError naming it, with the partial."""
    streamer = _Emitter([Event("content", "ok"), bad, Event("done")])
    assert streamer.stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "ok"), ("error", "StreamError")]
    assert isinstance(recorder.error, StreamError) and bad.type in str(recorder.error)
    assert recorder.error.partial is not None and recorder.error.partial.text == "ok"


@pytest.mark.parametrize("status", [["RESOURCE_EXHAUSTED"], {"code": 429}, 7])
def test_an_error_body_with_a_malformed_type_is_still_an_error(status: Any) -> None:
    """An error whose ``status`` is not a string maps to a plain error instead of raising AttributeError."""
    from llmstreamer._wire_errors import error_from_body, error_from_event

    payload = {"error": {"status": status, "message": "quota"}}
    assert type(error_from_event(payload, provider="gemini")) is StreamError
    error = error_from_body(429, json.dumps(payload), {}, provider="gemini")
    assert error.status_code == 429 and error.error_type is None and error.message == "quota"
