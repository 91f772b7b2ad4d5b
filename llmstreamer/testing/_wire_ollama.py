"""Ollama's native ``/api/chat`` as the fake server speaks it: NDJSON ending in a ``done`` line.

Each line is a compact JSON object and a ``\\n``; thinking comes in ``message.thinking``, text
in ``message.content``, tool calls whole in one line's ``message.tool_calls`` (arguments that
are not JSON go as their raw text, as some models send them); the last line has
``"done": true``, ``done_reason`` and the token counts (``Reply.truncate`` leaves it out). An
in-band error is an ``{"error": "..."}`` line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import call_arguments

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "application/x-ndjson"
SSE = False
BASE_PATH = "/ollama"

# normalized finish reason -> done_reason; other values are sent as they are (e.g. "load")
FINISH = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}

ERRORS = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "unknown" not found, try pulling it first',
    413: "request entity too large",
    429: "too many requests",
    500: "an internal error occurred",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}

CREATED_AT = "2025-06-01T12:00:00.123456789Z"


def headers(number: int) -> dict[str, str]:
    return {}


def _message(error: Mapping[str, Any] | None, default: str) -> str:
    if not error:
        return default
    text = error.get("message") or error.get("error")
    return text if isinstance(text, str) else default


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"error": _message(error, ERRORS.get(status, f"HTTP {status}"))}


def models() -> tuple[int, dict[str, Any]]:
    def model(name: str, size: int, family: str, params: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-05-01T10:20:30.123456789-07:00",
            "size": size,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": params,
                "quantization_level": "Q4_K_M",
            },
        }

    return 200, {"models": [model("llama3.2:latest", 2019393189, "llama", "3.2B"), model("qwen3:8b", 5225388164, "qwen3", "8.2B")]}


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    body = request.json or {}
    model = reply.model or body.get("model", "llama3.2")

    def chunk(message: dict[str, Any], **more: Any) -> str:
        obj = {"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", "content": "", **message}}
        obj["done"] = False
        obj.update(more)
        return _line(obj)

    out = [chunk({"thinking": t}) for t in reply.thinking]
    out += [chunk({"content": t}) for t in reply.text]
    if reply.tool_calls:
        calls = []
        for index, call in enumerate(reply.tool_calls):
            args = call_arguments(call)
            wire: dict[str, Any] = {"function": {"index": index, "name": call.name, "arguments": args}}
            if call.id:
                wire = {"id": call.id, **wire}
            calls.append(wire)
        out.append(chunk({"tool_calls": calls}))
    if reply.error is not None:
        return [*out, _line({"error": _message(reply.error, "an error occurred")})]
    if not reply.truncate:
        final: dict[str, Any] = {"done": True, "done_reason": FINISH.get(reply.finish_reason, reply.finish_reason)}
        final["total_duration"] = 512345678
        final["load_duration"] = 12345678
        if reply.usage is not None:
            final["prompt_eval_count"] = reply.usage.input_tokens
            final["prompt_eval_duration"] = 23456789
            final["eval_count"] = reply.usage.output_tokens
            final["eval_duration"] = 456789012
        out.append(chunk({}, **final))
    return out
