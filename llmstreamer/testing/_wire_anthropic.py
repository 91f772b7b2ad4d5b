"""Anthropic Messages as the fake server speaks it: named SSE events ending in ``message_stop``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import split_arguments, sse

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SSE = True
BASE_PATH = "/anthropic"

FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    422: ("invalid_request_error", "Unprocessable request."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    503: ("api_error", "Service unavailable."),
    529: ("overloaded_error", "Overloaded"),
}


def headers(number: int) -> dict[str, str]:
    return {"request-id": f"req_fake_{number}", "anthropic-organization-id": "org-fake"}


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    kind, message = ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}"))
    body = {"type": kind, "message": message}
    body.update(error or {})
    return {"type": "error", "error": body, "request_id": "req_fake"}


def models() -> tuple[int, dict[str, Any]]:
    data = [
        {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
        {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-15T00:00:00Z"},
    ]
    return 200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    body = request.json or {}
    usage = reply.usage
    start: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": reply.model or body.get("model", "claude-sonnet-4-5"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": (usage.input_tokens - usage.cached_input_tokens) if usage else 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_input_tokens if usage else 0,
            "output_tokens": 1,
        },
    }
    out = [sse({"type": "message_start", "message": start}, "message_start")]
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        out.append(sse({"type": "content_block_start", "index": index, "content_block": content_block}, "content_block_start"))
        if index == 0:
            out.append(sse({"type": "ping"}, "ping"))
        for delta in deltas:
            out.append(sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"))
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1

    if reply.thinking:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in reply.thinking]
        deltas.append({"type": "signature_delta", "signature": reply.signature or "sig-fake"})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if reply.text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in reply.text])
    for call in reply.tool_calls:
        raw = call.raw_arguments or json.dumps(dict(call.arguments))
        fragments = ["", *split_arguments(raw)]
        block(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": f} for f in fragments],
        )
    if reply.error is not None:
        return [*out, sse({"type": "error", "error": error_body(529, reply.error)["error"]}, "error")]
    delta = {"stop_reason": FINISH.get(reply.finish_reason, reply.finish_reason), "stop_sequence": None}
    out.append(
        sse(
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage.output_tokens if usage else 0}},
            "message_delta",
        )
    )
    if not reply.truncate:
        out.append(sse({"type": "message_stop"}, "message_stop"))
    return out
