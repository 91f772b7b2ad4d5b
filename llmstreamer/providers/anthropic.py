"""Anthropic Messages: ``POST {base_url}/v1/messages`` streamed as named SSE events.

Wire: ``message_start`` → per content block ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``thinking_delta``, ``signature_delta``, ``input_json_delta``) /
``content_block_stop`` → ``message_delta`` (stop reason, cumulative usage) → ``message_stop``.
``ping`` may come anywhere; ``event: error`` is an in-band error mapped by its type.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable

from .._http import Request, error_from_event
from .._options import Options
from ..base import HTTPStreamer, loads
from ..models import Event, ImagePart, Message, Model, TextPart, ThinkingPart, ToolCall, ToolResult, Usage

__all__ = ["AnthropicStreamer"]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_NOTHING: tuple[Event, ...] = ()


class AnthropicStreamer(HTTPStreamer):
    """Streams from Anthropic's Messages API (key ``ANTHROPIC_API_KEY``).

    ``max_tokens`` is required by the API; it defaults to 4096 when not given.

    Example::

        s = AnthropicStreamer(model="claude-sonnet-4-5")
        print(s.chat([Message.user("Say hi")], system="Be brief.").text)
    """

    provider: ClassVar[str] = "anthropic"
    api_key_env: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    requires_key: ClassVar[bool] = True
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    default_model: ClassVar[str | None] = "claude-sonnet-4-5"
    supported_options: ClassVar[frozenset[str]] = frozenset({"temperature", "top_p", "top_k", "max_tokens", "stop"})
    terminal: ClassVar[str] = "message_stop"

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key.value:
            headers["x-api-key"] = self._api_key.value
        return headers

    def _request(self, messages: tuple[Message, ...], options: Options) -> Request:
        return self._post("/v1/messages", self._body(messages, options), self._auth_headers())

    def _body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        system = [m.text for m in messages if m.role == "system"]
        if options.system:
            system.insert(0, options.system)
        wire: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "system":
                continue
            role = "assistant" if message.role == "assistant" else "user"
            blocks = [b for b in (self._block(p) for p in message.content) if b is not None]
            if wire and wire[-1]["role"] == role:
                wire[-1]["content"].extend(blocks)  # the API wants roles to alternate
            else:
                wire.append({"role": role, "content": blocks})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire,
            "max_tokens": options.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.top_p is not None:
            body["top_p"] = options.top_p
        if options.top_k is not None:
            body["top_k"] = options.top_k
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        if options.extra:
            body.update(options.extra)
        return body

    @staticmethod
    def _block(part: Any) -> dict[str, Any] | None:
        if isinstance(part, TextPart):
            return {"type": "text", "text": part.text} if part.text else None
        if isinstance(part, ImagePart):
            if part.url:
                return {"type": "image", "source": {"type": "url", "url": part.url}}
            return {"type": "image", "source": {"type": "base64", "media_type": part.mime_type, "data": part.base64}}
        if isinstance(part, ThinkingPart):
            if isinstance(part.data, str):  # Anthropic's own redacted thinking (other data is foreign)
                return {"type": "redacted_thinking", "data": part.data}
            if not part.signature:
                return None  # unsigned thinking (from another provider) cannot be sent back
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
        if isinstance(part, ToolCall):
            return {"type": "tool_use", "id": part.id, "name": part.name, "input": dict(part.arguments)}
        if isinstance(part, ToolResult):
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
            if part.is_error:
                block["is_error"] = True
            return block
        return None

    def _decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        usage: dict[str, int] = {}
        blocks: dict[int, str] = {}

        def decode(name: str, data: str) -> Iterable[Event]:
            if not data:
                return _NOTHING
            obj = loads(data, provider)
            if type(obj) is not dict:
                return _NOTHING
            kind = obj.get("type") or name
            if kind == "content_block_delta":
                delta = obj["delta"]
                dtype = delta.get("type")
                if dtype == "text_delta":
                    text = delta.get("text")
                    return (Event("content", text),) if text else _NOTHING
                if dtype == "thinking_delta":
                    text = delta.get("thinking")
                    return (Event("thinking", text),) if text else _NOTHING
                if dtype == "input_json_delta":
                    return (Event("tool_call_delta", data=(obj.get("index", 0), None, None, delta.get("partial_json"))),)
                if dtype == "signature_delta":
                    return (Event("signature", delta.get("signature") or ""),)
                return _NOTHING  # citations and future delta types
            if kind == "ping":
                return _NOTHING
            if kind == "message_start":
                message = obj.get("message") or {}
                usage.update({k: v for k, v in (message.get("usage") or {}).items() if isinstance(v, int)})
                meta = {"model": message.get("model") or ""}
                return (Event("meta", data=meta), Event("usage", data=_usage(usage)))
            if kind == "content_block_start":
                index = obj.get("index", 0)
                block = obj.get("content_block") or {}
                btype = blocks[index] = block.get("type", "")
                if btype == "tool_use":
                    return (Event("tool_call_delta", data=(index, block.get("id"), block.get("name"), "")),)
                if btype == "redacted_thinking":
                    return (Event("redacted_thinking", data=block.get("data")),)
                if btype == "text" and block.get("text"):
                    return (Event("content", block["text"]),)
                if btype == "thinking" and block.get("thinking"):
                    return (Event("thinking", block["thinking"]),)
                return _NOTHING
            if kind == "content_block_stop":
                return (Event("block_end"),) if blocks.get(obj.get("index", 0)) in ("text", "thinking") else _NOTHING
            if kind == "message_delta":
                out = []
                reason = (obj.get("delta") or {}).get("stop_reason")
                if reason:
                    out.append(Event("stop", STOP_REASONS.get(reason, "stop")))
                delta_usage = obj.get("usage")
                if delta_usage:
                    usage.update({k: v for k, v in delta_usage.items() if isinstance(v, int)})
                    out.append(Event("usage", data=_usage(usage)))
                return out
            if kind == "message_stop":
                return (Event("done"),)
            if kind == "error":
                raise error_from_event(obj, provider=provider)
            return _NOTHING  # unknown event types are ignored, as the API asks

        return decode

    def list_models(self) -> list[Model]:
        """The models from ``GET {base_url}/v1/models``."""
        data = self._get_json("/v1/models", self._auth_headers())
        return [
            Model(m["id"], self.provider, _epoch(m.get("created_at")), "anthropic")
            for m in data.get("data", ())
            if isinstance(m, dict) and "id" in m
        ]


def _usage(counts: dict[str, int]) -> Usage:
    cached = counts.get("cache_read_input_tokens", 0)
    created = counts.get("cache_creation_input_tokens", 0)
    return Usage(input_tokens=counts.get("input_tokens", 0) + cached + created, output_tokens=counts.get("output_tokens", 0), cached_input_tokens=cached)


def _epoch(stamp: Any) -> int | None:
    if not isinstance(stamp, str):
        return None
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
