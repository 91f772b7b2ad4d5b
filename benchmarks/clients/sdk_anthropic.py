"""The official anthropic SDK: ``messages.create(stream=True)`` and the ``messages.stream()`` helper.

One client per base URL; concurrent streams share it, as the SDK documents.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import anthropic

_MESSAGES = [{"role": "user", "content": "Say something"}]


def prepare(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-bench", base_url=base)


def run_create(client: anthropic.Anthropic, sink: Callable[[str], Any]) -> None:
    stream = client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, messages=_MESSAGES, stream=True)  # type: ignore[arg-type]
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            sink(event.delta.text)


def run_stream(client: anthropic.Anthropic, sink: Callable[[str], Any]) -> None:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=4096, messages=_MESSAGES) as stream:  # type: ignore[arg-type]
        for text in stream.text_stream:
            sink(text)


CLIENTS: Dict[str, Dict[str, Any]] = {
    "anthropic_create": {"prepare": prepare, "run": run_create, "shared": True},
    "anthropic_stream": {"prepare": prepare, "run": run_stream, "shared": True},
}
