"""The official openai SDK, synchronous client, ``chat.completions.create(stream=True)``.

One client per base URL; concurrent streams share it (the SDK documents its client as
thread-safe and meant to be reused).
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import openai

_MESSAGES = [{"role": "user", "content": "Say something"}]


def prepare(base: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-bench", base_url=base + "/v1")


def run(client: openai.OpenAI, sink: Callable[[str], Any]) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES, stream=True)  # type: ignore[arg-type]
    for chunk in stream:
        if chunk.choices:
            text = chunk.choices[0].delta.content
            if text:
                sink(text)


CLIENTS: Dict[str, Dict[str, Any]] = {"openai": {"prepare": prepare, "run": run, "shared": True}}
