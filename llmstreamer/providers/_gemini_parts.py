"""Gemini's request pieces: message parts, the thinking config and function declarations."""

from __future__ import annotations

from typing import Any

from .._options import Options
from ..models import DocumentPart, ImagePart, Message, TextPart, ThinkingPart, ToolCall, ToolResult
from ._gemini_schema import gemini_schema

__all__ = ["CALL_ID_PREFIX", "THINKING_LEVELS", "declaration", "message_parts", "thinking_config"]

THINKING_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
CALL_ID_PREFIX = "gemini_call_"  # ids made here; Gemini never saw them, so they are not sent back


def thinking_config(options: Options) -> dict[str, Any]:
    """The ``thinkingConfig`` for ``reasoning=`` / ``thinking_budget=`` (empty when neither is given)."""
    config: dict[str, Any] = {}
    if options.thinking_budget is not None:
        config["thinkingBudget"] = options.thinking_budget
    if options.reasoning == "none":
        config.setdefault("thinkingBudget", 0)
    elif options.reasoning is not None:
        config["thinkingLevel"] = THINKING_LEVELS[options.reasoning]
    if config and config.get("thinkingBudget") != 0:
        config["includeThoughts"] = True
    return config


def declaration(tool: Any) -> dict[str, Any]:
    """A ``functionDeclaration``; a tool without parameters declares none (Gemini refuses an empty OBJECT)."""
    out: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.parameters.get("properties"):
        out["parameters"] = gemini_schema(tool.parameters)
    return out


def message_parts(message: Message) -> list[dict[str, Any]]:
    """A message's parts in Gemini's shapes; unsigned thinking is left out."""
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            if part.url:
                parts.append({"fileData": {"mimeType": part.mime_type, "fileUri": part.url}})
            else:
                parts.append({"inlineData": {"mimeType": part.mime_type, "data": part.base64}})
        elif isinstance(part, DocumentPart):
            parts.append({"inlineData": {"mimeType": part.mime_type, "data": part.base64}})
        elif isinstance(part, ThinkingPart):
            if not part.signature:
                continue  # unsigned (or another provider's redacted) thinking cannot be sent back
            if part.text:
                parts.append({"text": part.text, "thought": True, "thoughtSignature": part.signature})
            else:
                parts.append({"text": "", "thoughtSignature": part.signature})
        elif isinstance(part, ToolCall):
            call: dict[str, Any] = {"name": part.name, "args": dict(part.arguments)}
            if part.id and not part.id.startswith(CALL_ID_PREFIX):
                call["id"] = part.id
            wire: dict[str, Any] = {"functionCall": call}
            if part.signature:
                wire["thoughtSignature"] = part.signature
            parts.append(wire)
        elif isinstance(part, ToolResult):
            result: dict[str, Any] = {
                "name": part.name,
                "response": {"error" if part.is_error else "output": part.content},
            }
            if part.call_id and not part.call_id.startswith(CALL_ID_PREFIX):
                result["id"] = part.call_id
            parts.append({"functionResponse": result})
    return parts
