"""The JSON payloads of stream events, shared by every web bridge (SSE, WebSocket, resumable logs).

`payload` turns a callback's value into a JSON-ready dict: the values' own JSON form
(``to_dict``) for a response, tool call, tool result or usage, the text for a fragment, and a
redacted summary for an error. `dumps` writes it compactly and safe for line-based framing.
The table of fields is in `llmstreamer.web`'s docstring.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from .errors import APIStatusError, LLMStreamError

__all__ = ["dumps", "payload", "redactor"]

# Characters that str.splitlines() and other careless line splitters break on, but JSON leaves raw.
_LINE_SAFE = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _error_json(error: LLMStreamError, redact: Callable[[str], str]) -> dict[str, Any]:
    message = redact(error.message)  # the engine already redacts; never trust one layer
    out: dict[str, Any] = {"error": type(error).__name__, "message": message, "provider": error.provider}
    if isinstance(error, APIStatusError):
        out["status_code"] = error.status_code
    return out


def payload(kind: str, value: Any, redact: Callable[[str], str]) -> dict[str, Any]:
    """The JSON payload of one event: ``content``/``thinking`` text, an ``error``, or a value's ``to_dict``."""
    if kind == "content" or kind == "thinking":
        return {"text": value}
    if kind == "error":
        return _error_json(value, redact)
    # done (a Response), tool_call, tool_result, usage: the values' one JSON form
    return value.to_dict()  # type: ignore[no-any-return]


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON with the line separators JSON leaves raw escaped."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\u2028" in text or "\u2029" in text or "\x85" in text:  # rare: skip the per-character pass
        text = text.translate(_LINE_SAFE)
    return text


def redactor(streamer: Any) -> Callable[[str], str]:
    """The streamer's key redaction; anything shaped like a streamer (a stored turn) may lack one."""
    redact: Callable[[str], str] | None = getattr(streamer, "redact", None)
    return redact if redact is not None else str
