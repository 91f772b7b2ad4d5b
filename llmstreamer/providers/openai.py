"""OpenAI Chat Completions: ``POST {base_url}/chat/completions`` streamed as data-only SSE.

Wire: each event is ``data: <chat.completion.chunk>``; the stream ends with ``data: [DONE]``.
With ``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
Refusals (structured outputs) stream in ``delta.refusal``: their text goes to ``on_content``
and the finish reason becomes ``content_filter``. ``delta.reasoning_content`` /
``delta.reasoning`` (sent by OpenAI-compatible servers) go to ``on_thinking``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar, Iterable

from .._http import Request, error_from_event
from .._options import Options
from ..base import HTTPStreamer, loads
from ..errors import ConfigurationError
from ..models import Event, ImagePart, Message, Model, TextPart, ThinkingPart, ToolResult, Usage

__all__ = ["OpenAIStreamer"]

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}

_DONE = (Event("done"),)
_NOTHING: tuple[Event, ...] = ()


def usage_of(data: dict[str, Any]) -> Usage:
    """Normalize an OpenAI-style ``usage`` object."""
    prompt = data.get("prompt_tokens") or 0
    completion = data.get("completion_tokens") or 0
    cached = (data.get("prompt_tokens_details") or {}).get("cached_tokens") or data.get("prompt_cache_hit_tokens") or 0
    reasoning = (data.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(prompt, completion, cached, reasoning, data.get("total_tokens") or prompt + completion)


class OpenAIStreamer(HTTPStreamer):
    """Streams from OpenAI's Chat Completions API (key ``OPENAI_API_KEY``).

    Example::

        s = OpenAIStreamer(model="gpt-4o-mini")
        print(s.chat([Message.user("Say hi")]).text)
    """

    provider: ClassVar[str] = "openai"
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    requires_key: ClassVar[bool] = True
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    default_model: ClassVar[str | None] = "gpt-4o-mini"
    supported_options: ClassVar[frozenset[str]] = frozenset({"temperature", "top_p", "max_tokens", "stop", "seed"})
    terminal: ClassVar[str] = "data: [DONE]"
    # OpenAI wants max_completion_tokens; most compatible servers only know max_tokens.
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key.value
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _request(self, messages: tuple[Message, ...], options: Options) -> Request:
        return self._post("/chat/completions", self._body(messages, options), self._auth_headers())

    def _body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        wire: list[dict[str, Any]] = []
        if options.system:
            wire.append({"role": "system", "content": options.system})
        for message in messages:
            wire.extend(self._message(message))
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.top_p is not None:
            body["top_p"] = options.top_p
        if options.max_tokens is not None:
            body[self.max_tokens_field] = options.max_tokens
        if options.stop:
            body["stop"] = list(options.stop)
        if options.seed is not None:
            body["seed"] = options.seed
        if options.extra:
            body.update(options.extra)
        return body

    def _message(self, message: Message) -> list[dict[str, Any]]:
        role = message.role
        if role == "tool":
            return [
                {"role": "tool", "tool_call_id": r.call_id, "content": r.content}
                for r in message.content
                if isinstance(r, ToolResult)
            ]
        if role == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            calls = message.tool_calls
            if calls:
                out["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(dict(c.arguments))},
                    }
                    for c in calls
                ]
            return [out]
        if not message.images:
            return [{"role": role, "content": message.text}]
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                url = part.url or f"data:{part.mime_type};base64,{part.base64}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
        return [{"role": role, "content": parts}]

    def _validate(self, messages: tuple[Message, ...], options: Options) -> None:
        for message in messages:
            if message.role != "user" and message.images:
                raise ConfigurationError(f"{self.provider} takes images only in user messages", provider=self.provider)
            if any(isinstance(p, ThinkingPart) for p in message.content) and message.role != "assistant":
                raise ConfigurationError("thinking parts belong to assistant messages", provider=self.provider)

    def _decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        state = {"model": None, "refused": False}

        def decode(name: str, data: str) -> Iterable[Event]:
            if data[:6] == "[DONE]":
                return _DONE
            if not data:
                return _NOTHING
            obj = loads(data, provider)
            if type(obj) is not dict:
                return _NOTHING
            choices = obj.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                # the hot path: a chunk carrying only a content fragment
                if delta and choice.get("finish_reason") is None and obj.get("usage") is None and state["model"]:
                    content = delta.get("content")
                    if content and len(delta) == 1:
                        return (Event("content", content),)
            return self._slow(obj, state)

        return decode

    def _slow(self, obj: dict[str, Any], state: dict[str, Any]) -> list[Event]:
        if obj.get("error") or obj.get("object") == "error":
            raise error_from_event(obj, provider=self.provider)
        events: list[Event] = []
        if state["model"] is None:
            state["model"] = obj.get("model") or ""
            events.append(Event("meta", data={"model": state["model"]}))
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: only the first choice is streamed
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if thinking:
                events.append(Event("thinking", thinking))
            content = delta.get("content")
            if isinstance(content, str) and content:
                events.append(Event("content", content))
            refusal = delta.get("refusal")
            if refusal:
                state["refused"] = True
                events.append(Event("content", refusal))
            for position, call in enumerate(delta.get("tool_calls") or ()):
                fn = call.get("function") or {}
                key = call.get("index", position)
                events.append(Event("tool_call_delta", data=(key, call.get("id"), fn.get("name"), fn.get("arguments"))))
            reason = choice.get("finish_reason")
            if reason:
                normalized = FINISH_REASONS.get(reason, "stop")
                if state["refused"] and normalized == "stop":
                    normalized = "content_filter"
                events.append(Event("stop", normalized))
        usage = obj.get("usage")
        if usage:
            events.append(Event("usage", data=usage_of(usage)))
        return events

    def list_models(self) -> list[Model]:
        """The models from ``GET {base_url}/models``."""
        data = self._get_json("/models", self._auth_headers())
        return [
            Model(m["id"], self.provider, m.get("created"), m.get("owned_by"))
            for m in data.get("data", ())
            if isinstance(m, dict) and "id" in m
        ]
