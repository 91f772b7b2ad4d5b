"""What the benchmark server sends: the token vocabulary and the OpenAI / Anthropic SSE events.

Shared by the server (which renders the bodies) and the workers (which check every stream's
text against `expected_text`). Standard library only, so importing it costs a client nothing.
"""

from __future__ import annotations

import json
from typing import List

__all__ = ["VOCAB", "cumulative_ends", "expected_text", "render_events", "token"]

# 16 tokens, ~3.6 characters each: non-ASCII (é, 🙂), a quote, a backslash and a newline,
# so every client's UTF-8 and JSON-escape path is exercised and checked.
VOCAB = (
    "Hello",
    " world",
    ",",
    " caf\u00e9",
    " \U0001f642",
    ' "q"',
    " a\\b",
    "\n",
    " the",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " é",
    ".",
)

_OBFUSCATION = "Qz8xR2kP4mW9vT1s"


def token(i: int) -> str:
    """The text of content chunk ``i``."""
    return VOCAB[i % len(VOCAB)]


def expected_text(n: int) -> str:
    """The whole answer of an ``n``-chunk stream."""
    whole, rest = divmod(n, len(VOCAB))
    return "".join(VOCAB) * whole + "".join(VOCAB[:rest])


def cumulative_ends(n: int) -> List[int]:
    """For each chunk, the length of the answer (in characters) once that chunk has arrived."""
    out, total = [], 0
    for i in range(n):
        total += len(token(i))
        out.append(total)
    return out


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _openai_chunk(delta: dict, finish: str | None = None, obf: str = "") -> str:
    obj = {
        "id": "chatcmpl-BENCH0123456789abcdefghijk",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_bench01234",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if obf:
        obj["obfuscation"] = obf
    return "data: " + _dumps(obj) + "\n\n"


def _anthropic_event(obj: dict) -> str:
    return "event: " + obj["type"] + "\ndata: " + _dumps(obj) + "\n\n"


def render_events(wire: str, n: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(preamble events, one event per content chunk, trailer events) of an ``n``-chunk answer.

    OpenAI: a role chunk, ``n`` content chunks (with the ``obfuscation`` padding field the API
    adds), a finish chunk, ``data: [DONE]``. Anthropic: ``message_start``,
    ``content_block_start``, ``ping``, ``n`` ``text_delta`` events, ``content_block_stop``,
    ``message_delta``, ``message_stop``.
    """
    if wire == "openai":
        pre = [_openai_chunk({"role": "assistant", "content": "", "refusal": None}, obf="x")]
        body = [
            _openai_chunk({"content": token(i)}, obf=_OBFUSCATION[: max(1, 12 - len(token(i)))]) for i in range(n)
        ]
        post = [_openai_chunk({}, "stop", obf="Qz8x"), "data: [DONE]\n\n"]
    elif wire == "anthropic":
        pre = [
            _anthropic_event(
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_bench0123456789",
                        "type": "message",
                        "role": "assistant",
                        "model": "claude-sonnet-4-6",
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 12, "output_tokens": 1},
                    },
                }
            ),
            _anthropic_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            _anthropic_event({"type": "ping"}),
        ]
        body = [
            _anthropic_event(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token(i)}}
            )
            for i in range(n)
        ]
        post = [
            _anthropic_event({"type": "content_block_stop", "index": 0}),
            _anthropic_event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": n},
                }
            ),
            _anthropic_event({"type": "message_stop"}),
        ]
    else:
        raise ValueError(f"unknown wire {wire!r}")
    enc = [e.encode() for e in pre], [e.encode() for e in body], [e.encode() for e in post]
    return enc
