"""Mistral chat completions as the fake server speaks it: OpenAI-shaped chunks with Mistral's ways.

Tool calls come whole in one delta (``id`` and ``function``, no ``index``, no ``type``) on the
last chunk; usage rides on the last chunk without ``stream_options``; with thinking, ``content``
is a list of typed pieces (``thinking`` holding ``text`` pieces, then ``text``), as Magistral
sends it; the stream ends with ``data: [DONE]``. Error bodies are ``{"object": "error", ...}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import sse
from ._wire_compat import chunk

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "text/event-stream"
SSE = True
BASE_PATH = "/mistral/v1"

# normalized -> wire; anything else (model_length, error) is sent as given
FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}

ERRORS: dict[int, tuple[str, Any]] = {
    400: ("invalid_request_error", "Invalid request."),
    403: ("invalid_request_error", "Forbidden"),
    404: ("invalid_request_error", "Invalid model: no-such-model"),
    413: ("invalid_request_error", "Request too large."),
    422: ("invalid_request_error", {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]}),
    429: ("rate_limited", "Requests rate limit exceeded"),
    500: ("internal_server_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}


def headers(number: int) -> dict[str, str]:
    return {
        "mistral-correlation-id": f"corr-fake-{number}",
        "x-ratelimit-limit-req-minute": "60",
        "x-ratelimit-remaining-req-minute": "59",
    }


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    if status == 401 and not error:
        return {"message": "Unauthorized", "request_id": "req-fake"}  # Mistral's 401 is this terse
    kind, message = ERRORS.get(status, ("internal_server_error" if status >= 500 else "invalid_request_error", f"HTTP {status}"))
    body: dict[str, Any] = {"object": "error", "message": message, "type": kind, "param": None, "code": None}
    body.update(error or {})
    return body


def models() -> tuple[int, dict[str, Any]]:
    capabilities = {"completion_chat": True, "function_calling": True, "vision": False}
    data = [
        {"id": "mistral-small-latest", "object": "model", "created": 1731000000, "owned_by": "mistralai",
         "capabilities": capabilities, "aliases": ["mistral-small-2503"]},
        {"id": "magistral-medium-latest", "object": "model", "created": 1749000000, "owned_by": "mistralai",
         "capabilities": capabilities, "aliases": []},
    ]
    return 200, {"object": "list", "data": data}


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    body = request.json or {}
    model = reply.model or body.get("model", "mistral-small-latest")
    out = [chunk(model, {"role": "assistant", "content": ""})]
    thinking = bool(reply.thinking)
    for t in reply.thinking:
        out.append(chunk(model, {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": t}]}]}))
    for t in reply.text:
        out.append(chunk(model, {"content": [{"type": "text", "text": t}] if thinking else t}))
    if reply.error is not None:
        error = error_body(500, None)
        error.update(reply.error)
        return [*out, sse(error)]
    delta: dict[str, Any] = {"content": ""}
    if reply.tool_calls:
        delta["tool_calls"] = [
            {"id": c.id, "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(dict(c.arguments))}}
            for c in reply.tool_calls
        ]
    u = reply.usage
    usage = {"usage": {"prompt_tokens": u.input_tokens, "total_tokens": u.total_tokens, "completion_tokens": u.output_tokens}} if u else {}
    out.append(chunk(model, delta, FINISH.get(reply.finish_reason, reply.finish_reason), **usage))
    if not reply.truncate:
        out.append(sse("[DONE]"))
    return out
