"""OpenAI Chat Completions as the fake server speaks it: data-only SSE ending in ``[DONE]``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import split_arguments, sse

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SSE = True
BASE_PATH = "/openai/v1"

FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}

ERRORS = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: ("permission_error", "You are not allowed to use this model.", None),
    404: ("invalid_request_error", "The model does not exist.", "model_not_found"),
    413: ("invalid_request_error", "Request too large.", None),
    422: ("invalid_request_error", "Unprocessable request.", None),
    429: ("requests", "Rate limit reached. Please try again later.", "rate_limit_exceeded"),
    500: ("server_error", "The server had an error.", None),
    503: ("server_error", "Slow Down.", None),
}


def headers(number: int) -> dict[str, str]:
    return {"x-request-id": f"req_fake_{number}", "openai-processing-ms": "1"}


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    kind, message, code = ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", f"HTTP {status}", None))
    body = {"message": message, "type": kind, "param": None, "code": code}
    body.update(error or {})
    return {"error": body}


def models() -> tuple[int, dict[str, Any]]:
    data = [
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    ]
    return 200, {"object": "list", "data": data}


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    body = request.json or {}
    model = reply.model or body.get("model", "gpt-4o-mini")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [choice],
            }
        )

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"reasoning_content": t}) for t in reply.thinking]
    out += [chunk({"content": t}) for t in reply.text]
    for index, call in enumerate(reply.tool_calls):
        raw = call.raw_arguments or json.dumps(dict(call.arguments))
        first = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        out.append(chunk({"tool_calls": [first]}))
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in split_arguments(raw)]
    if reply.error is not None:
        return [*out, sse({"error": error_body(500, reply.error)["error"]})]
    out.append(chunk({}, FINISH.get(reply.finish_reason, reply.finish_reason)))
    if reply.usage is not None and (body.get("stream_options") or {}).get("include_usage"):
        u = reply.usage
        usage = {
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "audio_tokens": 0},
        }
        out.append(
            sse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 1700000000,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        )
    if not reply.truncate:
        out.append(sse("[DONE]"))
    return out
