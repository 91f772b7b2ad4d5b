"""OpenAI-compatible presets with quirks, as the fake server speaks them (one module, several flavors).

The flavor is the first segment of the request path (``/openrouter/v1/chat/completions``):

- ``openrouter``: a ``: OPENROUTER PROCESSING`` comment first; thinking in ``delta.reasoning``
  with ``delta.reasoning_details`` (a signature detail after it); ``role`` on every delta; a
  usage chunk when asked for; in-band errors as a chunk with ``error`` and
  ``finish_reason: "error"``.
- ``deepseek``: thinking in ``delta.reasoning_content`` (``content: null`` meanwhile); usage on
  the finish chunk with ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``.
- ``llamacpp``: no ``data: [DONE]``: the finish chunk (with usage and timings) is the last.
- ``pixigpt``: one whole ``chat.completion`` JSON (PixiGPT does not stream) unless the request
  asks for ``stream: true``; ``reasoning_content`` on the choice, not the message or delta.

Error bodies are OpenRouter-shaped: ``{"error": {"code": <status>, "message", "metadata"}}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import split_arguments, sse

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SSE = True
BASE_PATH = "/{flavor}/v1"

MESSAGES = {
    400: "Invalid request.",
    401: "No auth credentials found",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "No endpoints found for this model.",
    408: "Timed out",
    413: "Request too large.",
    422: "Unprocessable request.",
    429: "Rate limit exceeded.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available provider.",
}


def headers(number: int) -> dict[str, str]:
    return {"x-request-id": f"req_fake_{number}"}


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": MESSAGES.get(status, f"HTTP {status}"), "metadata": {}}
    body.update(error or {})
    return {"error": body}


def models() -> tuple[int, dict[str, Any]]:
    data = [
        {"id": "fake/model-a", "object": "model", "created": 1700000000, "owned_by": "fake"},
        {"id": "fake/model-b", "object": "model", "created": 1700000100, "owned_by": "fake"},
    ]
    return 200, {"object": "list", "data": data}


def chunk(model: str, delta: Mapping[str, Any], finish: str | None = None, **fields: Any) -> str:
    """One ``chat.completion.chunk`` event; ``fields`` go on the chunk, ``choice_*`` ones on the choice."""
    choice: dict[str, Any] = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
    body: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    for name, value in fields.items():
        if name.startswith("choice_"):
            choice[name[7:]] = value
        else:
            body[name] = value
    body["choices"] = [choice]
    return sse(body)


def usage_json(reply: Reply, flavor: str) -> dict[str, Any] | None:
    """The reply's usage in OpenAI's shape, with the flavor's extra counters."""
    u = reply.usage
    if u is None:
        return None
    usage: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }
    if flavor == "deepseek":
        usage["prompt_cache_hit_tokens"] = u.cached_input_tokens
        usage["prompt_cache_miss_tokens"] = u.input_tokens - u.cached_input_tokens
    else:
        usage["prompt_tokens_details"] = {"cached_tokens": u.cached_input_tokens}
    return usage


def _tool_call_chunks(reply: Reply, model: str, role: dict[str, Any]) -> list[str]:
    out = []
    for index, call in enumerate(reply.tool_calls):
        raw = call.raw_arguments or json.dumps(dict(call.arguments))
        first = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        out.append(chunk(model, {**role, "tool_calls": [first]}))
        out += [
            chunk(model, {**role, "tool_calls": [{"index": index, "function": {"arguments": f}}]})
            for f in split_arguments(raw)
        ]
    return out


def completion(reply: Reply, request: RecordedRequest) -> dict[str, Any] | None:
    """PixiGPT's whole ``chat.completion`` (it does not stream), or None for a streamed answer.

    ``reasoning_content`` sits on the choice; an in-band ``error`` is the whole body.
    """
    body = request.json or {}
    if request.path.lstrip("/").split("/", 1)[0] != "pixigpt" or body.get("stream") is True:
        return None
    if reply.error is not None:
        return error_body(500, reply.error)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.text)}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(dict(c.arguments))}}
            for c in reply.tool_calls
        ]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
    if reply.thinking:
        choice["reasoning_content"] = "".join(reply.thinking)
    out: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000}
    out.update(model=reply.model or body.get("model", "fake/model-a"), choices=[choice])
    usage = usage_json(reply, "pixigpt")
    if usage:
        out["usage"] = usage
    return out


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    flavor = request.path.lstrip("/").split("/", 1)[0]
    body = request.json or {}
    model = reply.model or body.get("model", "fake/model-a")
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    usage = usage_json(reply, flavor)
    finish = reply.finish_reason
    out: list[str] = []
    role: dict[str, Any] = {}  # fields some servers repeat on every delta

    if flavor == "openrouter":
        out.append(": OPENROUTER PROCESSING\n\n")
        role = {"role": "assistant"}
        out.append(chunk(model, {"role": "assistant", "content": ""}))
        for t in reply.thinking:
            detail = {"type": "reasoning.text", "text": t, "format": "anthropic-claude-v1", "index": 0}
            out.append(chunk(model, {**role, "content": "", "reasoning": t, "reasoning_details": [detail]}))
        if reply.thinking and reply.signature:
            detail = {"type": "reasoning.text", "signature": reply.signature, "format": "anthropic-claude-v1", "index": 0}
            out.append(chunk(model, {**role, "content": "", "reasoning": "", "reasoning_details": [detail]}))
    elif flavor == "deepseek":
        out.append(chunk(model, {"role": "assistant", "content": None, "reasoning_content": ""}))
        out += [chunk(model, {"content": None, "reasoning_content": t}) for t in reply.thinking]
        role = {"reasoning_content": None}
    elif flavor == "pixigpt":
        out.append(chunk(model, {"role": "assistant", "content": ""}))
        out += [chunk(model, {}, choice_reasoning_content=t) for t in reply.thinking]
    else:  # llamacpp
        out.append(chunk(model, {"role": "assistant", "content": None}))
        out += [chunk(model, {"reasoning_content": t}) for t in reply.thinking]

    out += [chunk(model, {**role, "content": t}) for t in reply.text]
    out += _tool_call_chunks(reply, model, role)

    if reply.error is not None:
        if flavor == "openrouter":
            error = error_body(502, reply.error)["error"]
            out.append(chunk(model, {"content": ""}, "error", error=error, choice_native_finish_reason="error"))
        else:
            out.append(sse(error_body(500, reply.error)))
        return out

    if flavor in ("deepseek", "llamacpp"):
        if reply.truncate and flavor == "llamacpp":
            return out  # the finish chunk is this server's terminal event
        extra: dict[str, Any] = {"usage": usage} if usage else {}
        if flavor == "llamacpp":
            extra["timings"] = {"prompt_n": 10, "predicted_n": len(reply.text), "predicted_per_second": 50.0}
        out.append(chunk(model, {**role, "content": ""}, finish, **extra))
    else:
        native = {"choice_native_finish_reason": finish} if flavor == "openrouter" else {}
        out.append(chunk(model, {**role, "content": ""}, finish, **native))
        if usage and wants_usage:
            last = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
            out.append(sse({**last, "choices": [], "usage": usage}))
    if flavor != "llamacpp" and not reply.truncate:
        out.append(sse("[DONE]"))
    return out
