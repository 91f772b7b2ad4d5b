"""llmstreamer, the library under test: ``stream_chat`` with callbacks and the ``stream()`` iterator.

One streamer per base URL, built with the library defaults (its own pool, retries, timeouts),
as a user would. ``run_many`` for the callback client starts every ``stream_chat`` at once from
one shared streamer and waits for all the handles: that is the documented way to run
concurrent streams, each on its own worker thread.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from llmstreamer import AnthropicStreamer, Message, OpenAIStreamer, StreamCallbacks

_MESSAGES = [Message.user("Say something")]


def prepare_openai(base: str) -> OpenAIStreamer:
    return OpenAIStreamer(model="gpt-4o-mini", api_key="sk-bench", base_url=base + "/v1")


def prepare_anthropic(base: str) -> AnthropicStreamer:
    return AnthropicStreamer(model="claude-sonnet-4-6", api_key="sk-ant-bench", base_url=base)


def run_cb(streamer: Any, sink: Callable[[str], Any]) -> None:
    streamer.stream_chat(_MESSAGES, StreamCallbacks(on_content=sink)).result(timeout=600)


def run_iter(streamer: Any, sink: Callable[[str], Any]) -> None:
    for event in streamer.stream(_MESSAGES):
        if event.type == "content":
            sink(event.text)


def run_many_cb(streamer: Any, sinks: List[Callable[[str], Any]]) -> List[Any]:
    handles = [streamer.stream_chat(_MESSAGES, StreamCallbacks(on_content=sink)) for sink in sinks]
    errors: List[Any] = []
    for handle in handles:
        try:
            handle.result(timeout=600)
            errors.append(None)
        except Exception as exc:  # reported per stream
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


CLIENTS: Dict[str, Dict[str, Any]] = {
    "lls_cb": {"prepare": prepare_openai, "run": run_cb, "shared": True, "run_many": run_many_cb},
    "lls_iter": {"prepare": prepare_openai, "run": run_iter, "shared": True},
    "lls_cb_anth": {"prepare": prepare_anthropic, "run": run_cb, "shared": True, "run_many": run_many_cb},
    "lls_iter_anth": {"prepare": prepare_anthropic, "run": run_iter, "shared": True},
}
