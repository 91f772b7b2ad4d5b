"""The JSON payloads of stream events, shared by every web bridge (SSE, WebSocket, resumable logs).

One function per event kind turns a callback's value into a JSON-ready dict; `_dumps` writes it
compactly and safe for line-based framing. The table of fields is in `llmstreamer.web`'s docstring.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from ._secret import Secret
from .errors import APIStatusError, LLMStreamError
from .models import Response, ToolCall, ToolResult, Usage

if TYPE_CHECKING:
    from .base import Streamer

# Characters that str.splitlines() and other careless line splitters break on, but JSON leaves raw.
_LINE_SAFE = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _call_json(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
    if call.error is not None:
        out["error"] = call.error
    return out


def _usage_json(usage: Usage | None) -> dict[str, Any] | None:
    return None if usage is None else attrs.asdict(usage)


def _response_json(response: Response) -> dict[str, Any]:
    return {
        "text": response.text,
        "thinking": response.thinking,
        "tool_calls": [_call_json(c) for c in response.tool_calls],
        "finish_reason": response.finish_reason,
        "usage": _usage_json(response.usage),
        "model": response.model,
        "provider": response.provider,
        "request_id": response.request_id,
        "time_to_first_token": response.time_to_first_token,
        "duration": response.duration,
        "messages": [m.to_dict() for m in response.messages],
    }


def _error_json(error: LLMStreamError, secret: Secret) -> dict[str, Any]:
    message = secret.redact(error.message)  # the engine already redacts; never trust one layer
    out: dict[str, Any] = {"error": type(error).__name__, "message": message, "provider": error.provider}
    if isinstance(error, APIStatusError):
        out["status_code"] = error.status_code
    return out


def _payload(kind: str, value: Any, secret: Secret) -> dict[str, Any]:
    if kind == "content" or kind == "thinking":
        return {"text": value}
    if kind == "done":
        return _response_json(value)
    if kind == "error":
        return _error_json(value, secret)
    if kind == "tool_call":
        return _call_json(value)
    if kind == "usage":
        return attrs.asdict(value)
    result: ToolResult = value
    return {"call_id": result.call_id, "name": result.name, "content": result.content, "is_error": result.is_error}


def _dumps(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\u2028" in text or "\u2029" in text or "\x85" in text:  # rare: skip the per-character pass
        text = text.translate(_LINE_SAFE)
    return text


def _secret_of(streamer: Streamer) -> Secret:
    return getattr(streamer, "_api_key", None) or Secret(None)
