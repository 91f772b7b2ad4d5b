"""Google Gemini as the fake server speaks it: data-only SSE with CRLF, no terminator.

Every event is a whole ``GenerateContentResponse`` with the cumulative ``usageMetadata``; the
last one carries ``finishReason`` (``Reply.truncate`` leaves it out). Thoughts are
``thought: true`` parts; their signature rides on the first text part after them (as Gemini 2.5
sends it), or on an empty text part when no text follows. Tool calls are whole
``functionCall`` parts, with the call's ``signature`` as ``thoughtSignature``; a call whose
``raw_arguments`` are not JSON sends them as a string in ``args`` (a malformed call).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ._wire import call_arguments

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

CONTENT_TYPE = "text/event-stream"
SSE = True
BASE_PATH = "/gemini"

# normalized finish reason -> finishReason; other values are sent as they are (e.g. "RECITATION")
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    413: ("INVALID_ARGUMENT", "Request payload size exceeds the limit."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}

RESPONSE_ID = "fake-response-id"


def headers(number: int) -> dict[str, str]:
    return {"content-disposition": "attachment", "server": "scaffolding on HTTPServer2"}


def error_body(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    name, message = ERRORS.get(status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT", f"HTTP {status}"))
    body: dict[str, Any] = {"code": status, "message": message, "status": name}
    if status == 429:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}],
            },
            {"@type": RETRY_INFO, "retryDelay": "1s"},
        ]
    body.update(error or {})
    return {"error": body}


def models() -> tuple[int, dict[str, Any]]:
    data = [
        {
            "name": "models/gemini-2.5-flash",
            "version": "001",
            "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "thinking": True,
        },
        {
            "name": "models/gemini-2.5-pro",
            "version": "2.5",
            "displayName": "Gemini 2.5 Pro",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "thinking": True,
        },
    ]
    return 200, {"models": data}


def model_of(path: str) -> str:
    """The model named in a ``.../models/{model}:streamGenerateContent`` path."""
    name = path.split("?", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0] or "gemini-2.5-flash"


def events(reply: Reply, request: RecordedRequest) -> list[str]:
    # Gemini ends lines with CRLF; when the reply asks for other line endings, write "\n" and let
    # the server rewrite them.
    newline = "\r\n" if reply.line_ending == "\n" else "\n"
    model = reply.model or model_of(request.path)

    steps: list[list[dict[str, Any]]] = [[{"text": t, "thought": True}] for t in reply.thinking]
    signature = reply.signature or ("sig-fake" if reply.thinking else None)
    for number, text in enumerate(reply.text):
        part: dict[str, Any] = {"text": text}
        if number == 0 and signature:
            part["thoughtSignature"] = signature
            signature = None
        steps.append([part])
    if signature:
        steps.append([{"text": "", "thoughtSignature": signature}])
    for call in reply.tool_calls:
        args = call_arguments(call)
        function: dict[str, Any] = {"name": call.name, "args": args}
        if call.id:
            function["id"] = call.id
        wire: dict[str, Any] = {"functionCall": function}
        if call.signature:
            wire["thoughtSignature"] = call.signature
        steps.append([wire])

    total_steps = len(steps) + 1

    def usage(step: int) -> dict[str, Any] | None:
        u = reply.usage
        if u is None:
            return None
        answer = max(u.output_tokens - u.reasoning_tokens, 0)
        so_far = answer * (step + 1) // total_steps
        meta: dict[str, Any] = {"promptTokenCount": u.input_tokens, "candidatesTokenCount": so_far}
        if u.cached_input_tokens:
            meta["cachedContentTokenCount"] = u.cached_input_tokens
        if u.reasoning_tokens:
            meta["thoughtsTokenCount"] = u.reasoning_tokens
        last = step == total_steps - 1
        meta["totalTokenCount"] = u.total_tokens if last else u.input_tokens + so_far + u.reasoning_tokens
        meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.input_tokens}]
        return meta

    def event(step: int, parts: list[dict[str, Any]], finish: str | None = None) -> str:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        obj: dict[str, Any] = {"candidates": [candidate]}
        meta = usage(step)
        if meta is not None:
            obj["usageMetadata"] = meta
        obj["modelVersion"] = model
        obj["responseId"] = RESPONSE_ID
        return f"data: {json.dumps(obj)}{newline}{newline}"

    out = [event(step, parts) for step, parts in enumerate(steps)]
    if reply.error is not None:
        err = error_body(500, reply.error)
        return [*out, f"data: {json.dumps(err)}{newline}{newline}"]
    if not reply.truncate:
        finish = FINISH.get(reply.finish_reason, reply.finish_reason)
        out.append(event(total_steps - 1, [{"text": ""}], finish))
    return out
