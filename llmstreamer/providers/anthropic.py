"""Anthropic Messages: ``POST {base_url}/v1/messages`` streamed as named SSE events.

Wire: ``message_start`` → per content block ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``thinking_delta``, ``signature_delta``, ``input_json_delta``) /
``content_block_stop`` → ``message_delta`` (stop reason, cumulative usage) → ``message_stop``.
``ping`` may come anywhere; ``event: error`` is an in-band error mapped by its type.

Requests: tools are ``[{name, description, input_schema}]``; ``tool_choice`` is ``{"type":
"auto" | "none" | "any"}`` (``required`` → ``any``) or ``{"type": "tool", "name"}``.

Thinking: ``thinking_budget=N`` sends ``thinking: {"type": "enabled", "budget_tokens": N}``
(at least 1024; 0 means no thinking). ``reasoning=`` derives a budget from the level (minimal
1024, low 2048, medium 8192, high 16384, xhigh 32000), except on models that think adaptively
(Claude 4.6 and later, told by the version in the model name), where it sends ``thinking:
{"type": "adaptive"}`` and ``output_config.effort`` (minimal/low → ``low``, medium, high, and
xhigh → ``max`` on Opus, ``high`` elsewhere); ``"none"`` sends no thinking at all. The budget
counts against ``max_tokens``: without ``max_tokens`` the request asks for the budget plus 4096
(16384 with adaptive thinking); a ``max_tokens`` at or below the budget is refused. The API
refuses thinking together with a forced tool (``tool_choice`` ``required`` or a name), a
``temperature`` other than 1, ``top_k``, or ``top_p`` below 0.95: those are refused here, before
sending. Signed thinking (and redacted thinking) goes back verbatim, before the text and the
``tool_use`` blocks of its turn, as the API requires in a tool loop.

Structured output: ``response_format=<JSON Schema>`` uses the API's own structured outputs,
``output_config.format = {"type": "json_schema", "schema": S}`` (Claude 4.5 models and later);
the answer streams as text, so ``Response.text`` is the JSON and ``Response.parsed`` decodes
it. Every object in the schema gets ``"additionalProperties": false`` (the API requires it).
``{"type": "json_object"}`` (JSON without a schema) has no equivalent and is refused.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from .._fields import epoch, sampling
from .._options import COMMON_OPTIONS, Options
from .._schema import response_schema
from .._wire_errors import error_from_event
from ..errors import ConfigurationError
from ..models import DocumentPart, Event, ImagePart, Message, Model, TextPart, ThinkingPart, ToolCall, ToolResult, Usage
from ..provider import HTTPStreamer, ProviderSpec, loads
from ._turns import alternating_turns, system_texts

__all__ = ["AnthropicStreamer"]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
ADAPTIVE_MAX_TOKENS = 16384
MIN_THINKING_BUDGET = 1024

# reasoning level -> budget_tokens (models with a fixed thinking budget)
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32000}
# reasoning level -> output_config.effort (models that think adaptively; xhigh is "max" on Opus)
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}

# "claude-sonnet-4-5-20250929", "claude-3-7-sonnet-latest", "claude-opus-5": the version after "claude-"
_VERSION = re.compile(r"claude-(?:[a-z]+-)?(\d+)(?:-(\d)(?!\d))?")

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
# Most of a stream: a text delta as the API writes it. When its text has nothing escaped (no
# quote, backslash or control character) the characters between the quotes are the value, so
# it is read without parsing JSON; anything else (escapes, spaces, other keys, an index past 18
# digits) is parsed.
_TEXT_DELTA = re.compile(
    r'\{"type":"content_block_delta","index":(?:0|[1-9][0-9]{0,17}),"delta":\{"type":"text_delta","text":"([^"\\\x00-\x1f]*)"\}\}'
)
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})  # name -> schema
_VALUES = frozenset({"enum", "const", "default", "example", "examples"})  # data, not schemas


# option -> request field (max_tokens is always sent: the API requires it)
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop": "stop_sequences"}


class AnthropicStreamer(HTTPStreamer):
    """Streams from Anthropic's Messages API (key ``ANTHROPIC_API_KEY``).

    ``max_tokens`` is required by the API; it defaults to 4096 when not given.

    Example::

        s = AnthropicStreamer(model="claude-sonnet-4-5")
        print(s.chat([Message.user("Say hi")], system="Be brief.").text)
    """

    spec = ProviderSpec(
        name="anthropic",
        api_key_env="ANTHROPIC_API_KEY",
        requires_key=True,
        base_url_env="ANTHROPIC_BASE_URL",
        default_base_url="https://api.anthropic.com",
        default_model="claude-sonnet-4-5",
        supported_options=COMMON_OPTIONS | {"top_k", "thinking_budget", "response_format"},
        terminal="message_stop",
        document_types={"application/pdf", "text/plain"},
        chat_path="/v1/messages",
        auth_header="x-api-key",
        auth_prefix="",
    )

    def _blocks(self, message: Message) -> list[dict[str, Any]]:
        return [b for b in (self._block(p) for p in message.content) if b is not None]

    def auth_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION, **super().auth_headers()}

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        system = system_texts(messages, options, keep_empty=True)
        wire = alternating_turns(messages, "assistant", "content", self._blocks, skip_empty=False)
        thinking, effort = self._thinking(options)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire,
            "max_tokens": options.max_tokens or _default_max_tokens(thinking),
            "stream": True,
        }
        if system:
            body["system"] = "\n\n".join(system)
        body.update(sampling(options, _SAMPLING))
        if options.tools is not None:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in options.tools
            ]
            if options.tool_choice is not None:
                body["tool_choice"] = _tool_choice(options.tool_choice)
        if thinking is not None:
            body["thinking"] = thinking
        output: dict[str, Any] = {}
        if effort is not None:
            output["effort"] = effort
        if options.response_format is not None:
            schema = response_schema(options.response_format)
            assert schema is not None  # json_object is refused in _validate
            output["format"] = {"type": "json_schema", "schema": _closed(schema)}
        if output:
            body["output_config"] = output
        if options.extra:
            body.update(options.extra)
        return body

    def _adaptive(self) -> bool:
        """Whether the model thinks adaptively (Claude 4.6 and later) rather than to a fixed budget."""
        match = _VERSION.search(self.model)
        return match is not None and (int(match.group(1)), int(match.group(2) or 0)) >= (4, 6)

    def _thinking(self, options: Options) -> tuple[dict[str, Any] | None, str | None]:
        """The ``thinking`` field and the ``output_config.effort`` for the options (None: leave out)."""
        if options.thinking_budget is not None:
            if options.thinking_budget == 0:
                return None, None
            return {"type": "enabled", "budget_tokens": options.thinking_budget}, None
        level = options.reasoning
        if level is None or level == "none":
            return None, None
        if self._adaptive():
            effort = "max" if level == "xhigh" and "opus" in self.model else EFFORTS[level]
            return {"type": "adaptive"}, effort
        return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[level]}, None

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        def refuse(message: str) -> None:
            raise ConfigurationError(message, provider=self.provider)

        budget = options.thinking_budget
        if budget is not None and options.reasoning is not None:
            refuse("give reasoning or thinking_budget, not both")
        if budget is not None and 0 < budget < MIN_THINKING_BUDGET:
            refuse(f"thinking_budget must be 0 (no thinking) or at least {MIN_THINKING_BUDGET}, got {budget}")
        thinking, _ = self._thinking(options)
        if thinking is not None:
            budget = thinking.get("budget_tokens")
            if budget is not None and options.max_tokens is not None and options.max_tokens <= budget:
                refuse(f"max_tokens ({options.max_tokens}) must be larger than the thinking budget ({budget})")
            if options.tool_choice not in (None, "auto", "none"):
                refuse("thinking cannot be combined with a forced tool_choice: use 'auto' or turn thinking off")
            if options.temperature not in (None, 1.0):
                refuse("thinking needs temperature 1 (or none given)")
            if options.top_k is not None:
                refuse("thinking cannot be combined with top_k")
            if options.top_p is not None and options.top_p < 0.95:
                refuse("thinking needs top_p between 0.95 and 1 (or none given)")
        fmt = options.response_format
        if fmt is not None and response_schema(fmt) is None:
            refuse('anthropic has no JSON mode without a schema: pass the JSON Schema as response_format')

    @staticmethod
    def _block(part: Any) -> dict[str, Any] | None:
        if isinstance(part, TextPart):
            return {"type": "text", "text": part.text} if part.text else None
        if isinstance(part, ImagePart):
            if part.url:
                return {"type": "image", "source": {"type": "url", "url": part.url}}
            return {"type": "image", "source": {"type": "base64", "media_type": part.mime_type, "data": part.base64}}
        if isinstance(part, DocumentPart):
            if part.mime_type == "text/plain":
                source = {"type": "text", "media_type": "text/plain", "data": part.text}
            else:
                source = {"type": "base64", "media_type": part.mime_type, "data": part.base64}
            return {"type": "document", "source": source, "title": part.name}
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

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        usage: dict[str, int] = {}
        blocks: dict[int, str] = {}
        text_delta = _TEXT_DELTA.fullmatch

        def decode(name: str, data: str) -> Iterable[Event]:
            plain = text_delta(data)
            if plain is not None:
                text = plain[1]
                return (Event("content", text),) if text else _NOTHING
            if not data:  # an empty event, like a non-object, is skipped
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
                index = obj.get("index", 0)
                btype = blocks.get(index)
                if btype == "tool_use":  # the call's input is complete (a max_tokens cut never sends this)
                    return (Event("block_end", data=index),)
                return (Event("block_end"),) if btype in ("text", "thinking") else _NOTHING
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
        data = self.get_json("/v1/models")
        return [
            Model(m["id"], self.provider, epoch(m.get("created_at")), "anthropic")
            for m in data.get("data", ())
            if isinstance(m, dict) and "id" in m
        ]


def _default_max_tokens(thinking: dict[str, Any] | None) -> int:
    if thinking is None:
        return DEFAULT_MAX_TOKENS
    budget = thinking.get("budget_tokens")
    return budget + DEFAULT_MAX_TOKENS if isinstance(budget, int) else ADAPTIVE_MAX_TOKENS


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _closed(schema: Any) -> Any:
    """A copy of ``schema`` where every object schema says ``"additionalProperties": false``."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _closed(sub) for name, sub in value.items()}
        elif key in _VALUES:
            out[key] = value
        else:
            out[key] = _closed(value)
    if (out.get("type") == "object" or "properties" in out) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _usage(counts: dict[str, int]) -> Usage:
    cached = counts.get("cache_read_input_tokens", 0)
    created = counts.get("cache_creation_input_tokens", 0)
    return Usage(input_tokens=counts.get("input_tokens", 0) + cached + created, output_tokens=counts.get("output_tokens", 0), cached_input_tokens=cached)
