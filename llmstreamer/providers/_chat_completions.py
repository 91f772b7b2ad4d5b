"""The Chat Completions wire shared by OpenAI, Mistral and every OpenAI-compatible server.

``POST {base_url}/chat/completions`` with ``"stream": true`` answers in data-only SSE: each
event is ``data: <chat.completion.chunk>`` and the stream ends with ``data: [DONE]``. The
servers differ in small ways, and `ChatCompletionsStreamer` has one hook for each:

- ``max_tokens_field`` / ``seed_field``: where ``max_tokens`` and ``seed`` go in the body.
- ``include_usage``: ask for the usage chunk with ``stream_options`` (Mistral always sends
  usage on its last chunk and does not take the field).
- ``_finish_is_terminal``: a chunk with a ``finish_reason`` ends the round, for servers that
  never send ``[DONE]`` (some llama.cpp versions).
- ``_reasoning_details``: OpenRouter's ``delta.reasoning_details`` are kept verbatim on a
  `ThinkingPart` (``data``) of the assistant message and sent back on the next turn.
- ``_choice_reasoning``: ``reasoning_content`` may sit on the choice instead of the delta
  (PixiGPT).
- ``_extra``: fields merged into every request body (before the per-call ``extra=``).
- ``required_choice``: the wire value of ``tool_choice="required"`` (Mistral says ``"any"``).
- ``_reasoning_fields`` / ``_effort``: how ``reasoning=`` (and ``thinking_budget=``) reach the
  body; by default ``reasoning_effort`` with the level as is, ``xhigh`` sent as ``high`` unless
  ``_takes_xhigh()`` (OpenAI decides it by model family).
- ``_reasoning_content_back``: the thinking of an assistant message with tool calls goes back
  as ``reasoning_content`` (DeepSeek's thinking mode requires it within a tool loop).
- ``dimensions_field``: where ``embed(dimensions=)`` goes in ``POST {base_url}/embeddings``
  (Mistral says ``output_dimension``).

Tools go out as ``tools: [{"type": "function", "function": {name, description, parameters}}]``
and ``tool_choice`` as ``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function",
"function": {"name"}}``. ``response_format`` (a JSON Schema) becomes ``{"type": "json_schema",
"json_schema": {"name": "response", "schema": S, "strict": true}}``; a dict whose ``type`` is
already ``json_schema``, ``json_object`` or ``text`` is sent as it is. Strict mode is OpenAI's
rule set: every object needs ``"additionalProperties": false`` and every property listed in
``required``; pass the full ``{"type": "json_schema", ...}`` dict with ``"strict": false`` for
a looser schema.

The decoder reads what every server may send: ``delta.reasoning_content`` (DeepSeek, vLLM) and
``delta.reasoning`` (OpenRouter, Ollama) as thinking, ``delta.content`` as a string or a list of
typed pieces (Mistral: ``text`` and ``thinking``), refusals, tool calls with or without an
``index``, usage on any chunk, and in-band errors (``{"error": ...}`` or ``{"object": "error"}``).
"""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar, Iterable, Mapping

from .._embed import Batch, EmbedOptions, model_for, openai_decode, post_json
from .._fields import sampling
from .._http import Request
from .._options import COMMON_OPTIONS, Options
from .._wire_errors import error_from_event
from ..errors import ConfigurationError
from ..models import DocumentPart, Event, ImagePart, Message, Model, TextPart, ThinkingPart, ToolResult, Usage
from ..provider import HTTPStreamer, ProviderSpec, loads

__all__ = ["FINISH_REASONS", "ChatCompletionsStreamer", "usage_of"]

# wire finish_reason -> normalized; anything else counts as "stop"
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "abort": "error",
}

_DONE = (Event("done"),)
_NOTHING: tuple[Event, ...] = ()


def usage_of(data: Mapping[str, Any]) -> Usage:
    """Normalize an OpenAI-style ``usage`` object (DeepSeek's ``prompt_cache_hit_tokens`` count as cached)."""
    prompt = data.get("prompt_tokens") or 0
    completion = data.get("completion_tokens") or 0
    cached = (data.get("prompt_tokens_details") or {}).get("cached_tokens") or data.get("prompt_cache_hit_tokens") or 0
    reasoning = (data.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(prompt, completion, cached, reasoning, data.get("total_tokens") or prompt + completion)


class _State:
    """What one round's decoder remembers between chunks."""

    __slots__ = ("details", "fast", "last_key", "model", "refused", "whole_calls")

    def __init__(self) -> None:
        self.model: str | None = None
        self.fast = False  # the hot path may be taken (see decode)
        self.refused = False
        self.details: list[Any] = []  # reasoning_details not yet emitted
        self.whole_calls = 0  # tool calls seen without an index
        self.last_key: Any = None


class ChatCompletionsStreamer(HTTPStreamer):
    """The base of providers speaking Chat Completions; subclasses set the facts and quirks."""

    spec = ProviderSpec(
        name="chat-completions",
        supported_options=COMMON_OPTIONS | {"seed", "response_format"},
        terminal="data: [DONE]",
        has_embeddings=True,
        embed_options={"dimensions"},
    )
    max_tokens_field: str = "max_tokens"  # OpenAI sets it per instance, by its base URL
    seed_field: ClassVar[str] = "seed"
    include_usage: bool = True  # a class fact, but a compatible server may turn it off
    tool_message_name: ClassVar[bool] = False  # send the tool's name on tool messages (Mistral)
    required_choice: ClassVar[str] = "required"  # tool_choice="required" on the wire

    _finish_is_terminal: bool = False
    _reasoning_details: bool = False
    _choice_reasoning: bool = False
    _reasoning_content_back: bool = False
    _extra: Mapping[str, Any] = {}

    dimensions_field: ClassVar[str] = "dimensions"  # Mistral says output_dimension

    def build_embed_request(self, texts: tuple[str, ...], options: EmbedOptions) -> Request:
        """``POST {base_url}/embeddings`` with ``input`` (a list), ``model`` and ``encoding_format``."""
        body: dict[str, Any] = {"model": model_for(self), "input": list(texts), "encoding_format": "float"}
        if options.dimensions is not None:
            body[self.dimensions_field] = options.dimensions
        return post_json(self, "/embeddings", body)

    def decode_embeddings(self, payload: Any, texts: tuple[str, ...]) -> Batch:
        return openai_decode(payload)

    # --- request ------------------------------------------------------------------------------

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        wire: list[dict[str, Any]] = []
        if options.system:
            wire.append({"role": "system", "content": options.system})
        for message in messages:
            wire.extend(self._message(message))
        body: dict[str, Any] = {"model": self.model, "messages": wire, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(
            sampling(
                options,
                {"temperature": "temperature", "top_p": "top_p", "max_tokens": self.max_tokens_field, "stop": "stop", "seed": self.seed_field},
            )
        )
        if options.tools is not None:
            body["tools"] = [{"type": "function", "function": d} for d in options.tools.definitions()]
            if options.tool_choice is not None:
                body["tool_choice"] = self._tool_choice(options.tool_choice)
        if options.reasoning is not None or options.thinking_budget is not None:
            body.update(self._reasoning_fields(options))
        if options.response_format is not None:
            body["response_format"] = _response_format(options.response_format)
        if self._extra:
            body.update(self._extra)
        if options.extra:
            body.update(options.extra)
        return body

    def _tool_choice(self, choice: str) -> Any:
        if choice == "required":
            return self.required_choice
        if choice in ("auto", "none"):
            return choice
        return {"type": "function", "function": {"name": choice}}

    def _reasoning_fields(self, options: Options) -> dict[str, Any]:
        """The body fields for ``reasoning=`` (and ``thinking_budget=``, where supported)."""
        return {} if options.reasoning is None else {"reasoning_effort": self._effort(options.reasoning)}

    def _effort(self, level: str) -> str:
        """``reasoning_effort`` for a level: as is, but ``xhigh`` only where the model takes it."""
        return "high" if level == "xhigh" and not self._takes_xhigh() else level

    def _takes_xhigh(self) -> bool:
        return False

    def _message(self, message: Message) -> list[dict[str, Any]]:
        role = message.role
        if role == "tool":
            out = []
            for result in message.content:
                if isinstance(result, ToolResult):
                    item = {"role": "tool", "tool_call_id": result.call_id, "content": result.content}
                    if self.tool_message_name:
                        item["name"] = result.name
                    out.append(item)
            return out
        if role == "assistant":
            return [self._assistant(message)]
        if not message.images and not message.documents:
            return [{"role": role, "content": message.text}]
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                url = part.url or f"data:{part.mime_type};base64,{part.base64}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif isinstance(part, DocumentPart):
                data = f"data:{part.mime_type};base64,{part.base64}"
                parts.append({"type": "file", "file": {"filename": part.name, "file_data": data}})
        return [{"role": role, "content": parts}]

    def _assistant(self, message: Message) -> dict[str, Any]:
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
            if self._reasoning_content_back:
                out["reasoning_content"] = message.thinking
        if self._reasoning_details:
            details = [
                d for p in message.content if isinstance(p, ThinkingPart) and isinstance(p.data, list) for d in p.data
            ]
            if details:
                out["reasoning_details"] = details
        return out

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        for message in messages:
            if message.role != "user" and message.images:
                raise ConfigurationError(f"{self.provider} takes images only in user messages", provider=self.provider)
            if any(isinstance(p, ThinkingPart) for p in message.content) and message.role != "assistant":
                raise ConfigurationError("thinking parts belong to assistant messages", provider=self.provider)

    # --- response -----------------------------------------------------------------------------

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        state = _State()
        slow = self._slow

        def decode(name: str, data: str) -> Iterable[Event]:
            if data[:6] == "[DONE]":
                if state.details:
                    return (self._flush_details(state), *_DONE)
                return _DONE
            obj = loads(data, provider) if data else None  # an empty event, like a non-object, is skipped
            if type(obj) is not dict:
                return _NOTHING
            choices = obj.get("choices")
            if choices and state.fast:
                choice = choices[0]
                delta = choice.get("delta")
                # the hot path: a chunk carrying only a content fragment
                if delta and choice.get("finish_reason") is None and obj.get("usage") is None:
                    content = delta.get("content")
                    if content and len(delta) == 1 and type(content) is str:
                        return (Event("content", content),)
            return slow(obj, state)

        return decode

    def _slow(self, obj: dict[str, Any], state: _State) -> list[Event]:
        if obj.get("error") or obj.get("object") == "error":
            raise error_from_event(obj, provider=self.provider)
        events: list[Event] = []
        if state.model is None:
            state.model = obj.get("model") or ""
            events.append(Event("meta", data={"model": state.model}))
        finished = False
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: only the first choice is streamed
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if not thinking and self._choice_reasoning:
                thinking = choice.get("reasoning_content")
            if thinking and type(thinking) is str:
                events.append(Event("thinking", thinking))
            if self._reasoning_details:
                details = delta.get("reasoning_details")
                if details and type(details) is list:
                    state.details.extend(details)
            content = delta.get("content")
            calls = delta.get("tool_calls")
            reason = choice.get("finish_reason")
            if state.details and (content or calls or reason):
                events.append(self._flush_details(state))
            if content:
                if type(content) is str:
                    events.append(Event("content", content))
                elif type(content) is list:
                    events.extend(_pieces(content))
            refusal = delta.get("refusal")
            if refusal:
                state.refused = True
                events.append(Event("content", refusal))
            if calls:
                events.extend(_tool_deltas(calls, state))
            if reason:
                normalized = FINISH_REASONS.get(reason, "stop")
                if state.refused and normalized == "stop":
                    normalized = "content_filter"
                events.append(Event("stop", normalized))
                finished = self._finish_is_terminal
        usage = obj.get("usage")
        if usage:
            events.append(Event("usage", data=usage_of(usage)))
        if finished:
            events.append(Event("done"))
        state.fast = not state.details and not self._choice_reasoning
        return events

    @staticmethod
    def _flush_details(state: _State) -> Event:
        details, state.details = state.details, []
        return Event("redacted_thinking", data=details)

    def list_models(self) -> list[Model]:
        """The models from ``GET {base_url}/models`` (the OpenAI list shape)."""
        data = self.get_json("/models")
        listed = data.get("data") if isinstance(data, dict) else None
        return [
            Model(m["id"], self.provider, m.get("created"), m.get("owned_by"))
            for m in listed or ()
            if isinstance(m, dict) and "id" in m
        ]


def _response_format(value: Mapping[str, Any]) -> dict[str, Any]:
    """``response_format`` on the wire: a JSON Schema wrapped for strict structured output."""
    if value.get("type") in ("json_schema", "json_object", "text"):
        return dict(value)
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": dict(value), "strict": True}}


def _pieces(content: list[Any]) -> list[Event]:
    """Events for a ``content`` list of typed pieces: ``text`` and ``thinking`` (Mistral)."""
    events = []
    for piece in content:
        if type(piece) is not dict:
            continue
        kind = piece.get("type")
        if kind == "text":
            text = piece.get("text")
            if text:
                events.append(Event("content", text))
        elif kind == "thinking":
            inner = piece.get("thinking")
            if isinstance(inner, str):
                inner = [{"text": inner}]
            for part in inner or ():
                text = part.get("text") if type(part) is dict else None
                if text:
                    events.append(Event("thinking", text))
    return events


def _tool_deltas(calls: list[Any], state: _State) -> list[Event]:
    """``tool_call_delta`` events; a call without ``index`` (Mistral sends whole calls) is keyed
    by its order: a fragment naming a tool starts a new call, one without a name continues the last."""
    events = []
    for call in calls:
        fn = call.get("function") or {}
        name = fn.get("name")
        key = call.get("index")
        if key is None:
            if name or state.last_key is None:
                key = state.last_key = ("whole", state.whole_calls)
                state.whole_calls += 1
            else:
                key = state.last_key
        arguments = fn.get("arguments")
        if arguments is not None and type(arguments) is not str:
            arguments = json.dumps(arguments)
        events.append(Event("tool_call_delta", data=(key, call.get("id"), name, arguments)))
    return events
