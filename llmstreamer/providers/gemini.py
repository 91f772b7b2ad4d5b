"""Google Gemini: ``POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse``.

Wire: data-only SSE with CRLF line endings. Each event is a whole ``GenerateContentResponse``:
``candidates[0].content.parts``, ``finishReason``, and ``usageMetadata`` repeated on every event
with cumulative counts (the last one wins). There is no terminator: the event that carries
``finishReason`` is the terminal event, so a body that ends before one was cut off. Events after
it (usage only) are still read.

Parts: ``text`` goes to ``on_content``, ``text`` with ``thought: true`` to ``on_thinking``.
A ``thoughtSignature`` is kept verbatim: on a thought part it signs that thinking; on a text part
(often an empty one) it signs the thinking streamed just before, or else becomes a `ThinkingPart`
with no text; on a ``functionCall`` part it is the `ToolCall.signature`. ``functionCall`` parts
arrive whole (arguments as an object); a call without an ``id`` gets one made here. Other parts
(``inlineData`` output, ``executableCode``, ``codeExecutionResult``) are skipped.

Errors: HTTP error bodies ``{"error": {"code", "message", "status", "details"}}`` map by status,
``RetryInfo.retryDelay`` becomes ``retry_after``; a 400 whose details name ``API_KEY_INVALID``
is an `AuthenticationError` (status code still 400). A prompt blocked by
``promptFeedback.blockReason`` (an event with no candidates) is a `BadRequestError` whose
``error_type`` is the block reason; it is not retried. An ``{"error": {...}}`` data event is an
in-band error mapped by its ``status``.

History sent back: system messages (and the ``system`` option) become ``systemInstruction``;
roles are ``user`` and ``model``; images are ``inlineData`` (bytes) or ``fileData`` (a URL or a
Files API URI); signed thinking goes back as ``{"text", "thought": true, "thoughtSignature"}``, a
signature without text as ``{"text": "", "thoughtSignature"}``, unsigned thinking (from another
provider) is left out; tool calls are ``functionCall`` parts, tool results ``functionResponse``
parts of a user turn with ``{"output": content}`` (``{"error": content}`` when it failed). Call
ids made here are not sent back, since Gemini never issued them.

Tools: ``tools: [{"functionDeclarations": [{name, description, parameters}]}]`` and
``toolConfig.functionCallingConfig.mode`` ``AUTO``, ``NONE`` or ``ANY`` (``required``; a tool
name is ``ANY`` with ``allowedFunctionNames``). ``response_format=<JSON Schema>`` sets
``generationConfig.responseMimeType`` to ``application/json`` and ``responseSchema``;
``{"type": "json_object"}`` sets the MIME type only. Gemini's ``Schema`` is a subset of OpenAPI
3.0, so schemas are converted (``_gemini_schema``): ``{"type": [X, "null"]}``, ``null`` branches
of ``anyOf`` and ``None`` in ``enum`` become ``nullable: true``; ``oneOf`` becomes ``anyOf``;
``const`` a one-value ``enum``; enum values become strings (the API takes no others); local
``$ref`` references are inlined; type names are upper case; keywords Gemini does not know
(``additionalProperties``, ``$schema``, ``patternProperties``...) are dropped, so a free-form
``dict`` parameter reaches the model as an ``OBJECT`` with no properties. For a schema this
cannot express, pass Gemini's ``responseJsonSchema`` through ``extra={"generationConfig":
{...}}`` (it merges into the one built here).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, ClassVar, Iterable, Iterator
from urllib.parse import quote

from .._cancel import CancelToken
from .._http import Request
from .._options import Options
from .._schema import response_schema
from .._wire_errors import error_from_event
from ..base import HTTPStreamer, loads
from ..errors import AuthenticationError, BadRequestError, ConfigurationError, StreamError
from ..models import Event, ImagePart, Message, Model, TextPart, ThinkingPart, ToolCall, ToolResult, Usage
from ._gemini_schema import gemini_schema

__all__ = ["GeminiStreamer"]

# finishReason -> normalized finish reason; anything else (OTHER, FINISH_REASON_UNSPECIFIED,
# reasons newer than this table) is "stop". STOP after a function call is "tool_calls".
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}

# reasoning option -> thinkingLevel (Gemini 3 models; Gemini 2.5 takes thinking_budget instead)
THINKING_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}

# tool_choice -> functionCallingConfig.mode (a tool name is ANY with allowedFunctionNames)
CALLING_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

_CALL_ID_PREFIX = "gemini_call_"  # ids made here; Gemini never saw them, so they are not sent back
_MAX_PAGES = 50
_EXCERPT = 500
_NOTHING: tuple[Event, ...] = ()


class GeminiStreamer(HTTPStreamer):
    """Streams from Google's Gemini API (key ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``).

    The key travels in the ``x-goog-api-key`` header, never in the URL. ``thinking_budget``
    sets ``thinkingConfig.thinkingBudget``; ``reasoning`` sets ``thinkingLevel`` (``"none"``
    sends a budget of 0); either also asks for thought summaries (``includeThoughts``).

    Example::

        s = GeminiStreamer(model="gemini-2.5-flash")
        print(s.chat([Message.user("Say hi")], system="Be brief.").text)
    """

    provider: ClassVar[str] = "gemini"
    api_key_env: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    requires_key: ClassVar[bool] = True
    base_url_env: ClassVar[str | None] = "GEMINI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://generativelanguage.googleapis.com"
    default_model: ClassVar[str | None] = "gemini-2.5-flash"
    supported_options: ClassVar[frozenset[str]] = frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "max_tokens",
            "stop",
            "seed",
            "reasoning",
            "thinking_budget",
            "tools",
            "tool_choice",
            "response_format",
        }
    )
    terminal: ClassVar[str] = "an event with a finishReason"

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key.value
        return {"x-goog-api-key": key} if key else {}

    def _model_path(self) -> str:
        model = self.model if "/" in self.model else f"models/{self.model}"
        return "/v1beta/" + quote(model, safe="/")

    def _request(self, messages: tuple[Message, ...], options: Options) -> Request:
        path = self._model_path() + ":streamGenerateContent?alt=sse"
        return self._post(path, self._body(messages, options), self._auth_headers())

    # --- request ------------------------------------------------------------------------------

    def _body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        system = [m.text for m in messages if m.role == "system" and m.text]
        if options.system:
            system.insert(0, options.system)
        contents: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "system":
                continue
            role = "model" if message.role == "assistant" else "user"
            parts = _parts(message)
            if not parts:
                continue
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)  # turns alternate between user and model
            else:
                contents.append({"role": role, "parts": parts})
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        config: dict[str, Any] = {}
        if options.temperature is not None:
            config["temperature"] = options.temperature
        if options.top_p is not None:
            config["topP"] = options.top_p
        if options.top_k is not None:
            config["topK"] = options.top_k
        if options.max_tokens is not None:
            config["maxOutputTokens"] = options.max_tokens
        if options.stop:
            config["stopSequences"] = list(options.stop)
        if options.seed is not None:
            config["seed"] = options.seed
        thinking = _thinking_config(options)
        if thinking:
            config["thinkingConfig"] = thinking
        if options.response_format is not None:
            config["responseMimeType"] = "application/json"
            schema = response_schema(options.response_format)
            if schema is not None:
                config["responseSchema"] = gemini_schema(schema)
        if config:
            body["generationConfig"] = config
        if options.tools is not None:
            body["tools"] = [{"functionDeclarations": [_declaration(t) for t in options.tools]}]
            choice = options.tool_choice
            if choice is not None:
                calling: dict[str, Any] = {"mode": CALLING_MODES.get(choice, "ANY")}
                if choice not in CALLING_MODES:
                    calling["allowedFunctionNames"] = [choice]
                body["toolConfig"] = {"functionCallingConfig": calling}
        if options.extra:
            _merge(body, options.extra)
        return body

    def _validate(self, messages: tuple[Message, ...], options: Options) -> None:
        if options.reasoning is not None and options.thinking_budget is not None:
            raise ConfigurationError(
                "give reasoning (thinkingLevel) or thinking_budget (thinkingBudget), not both", provider=self.provider
            )
        if options.response_format is not None:
            schema = response_schema(options.response_format)
            if schema is not None:
                gemini_schema(schema)  # a schema the dialect cannot hold fails here, before sending
        for found in options.tools or ():
            _declaration(found)
        for message in messages:
            if message.role == "system" and message.images:
                raise ConfigurationError("a system message holds text only", provider=self.provider)
            if message.role != "assistant" and any(isinstance(p, ThinkingPart) for p in message.content):
                raise ConfigurationError("thinking parts belong to assistant messages", provider=self.provider)

    # --- response -----------------------------------------------------------------------------

    # No terminal event on this wire: the stream ends with the body, after the finishReason.
    done_ends_body = False

    def _round(self, messages: tuple[Message, ...], options: Options, token: CancelToken) -> Iterator[Event]:
        try:
            yield from super()._round(messages, options, token)
        except BadRequestError as err:
            if not _bad_key(err):
                raise
            raise _auth_error(err) from None

    def _decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        state = _RoundState()

        def decode(name: str, data: str) -> Iterable[Event]:
            if not data:
                return _NOTHING
            obj = loads(data, provider)
            if type(obj) is not dict:
                return _NOTHING
            events: list[Event] = []
            if not state.started:
                state.started = True
                meta = {"model": obj.get("modelVersion"), "request_id": obj.get("responseId")}
                events.append(Event("meta", data={k: v for k, v in meta.items() if v}))
            candidates = obj.get("candidates")
            if candidates:
                candidate = candidates[0]
                parts = (candidate.get("content") or {}).get("parts")
                # the hot path: one plain text part and no finish reason
                if parts and len(parts) == 1 and len(parts[0]) == 1 and "finishReason" not in candidate:
                    text = parts[0].get("text")
                    if text:
                        events.append(Event("content", text))
                        state.last = "text"
                    elif text is None:
                        self._candidate(candidate, state, events)
                else:
                    self._candidate(candidate, state, events)
            elif obj.get("error"):
                raise error_from_event(obj, provider=provider)
            else:
                feedback = obj.get("promptFeedback")
                if feedback and feedback.get("blockReason"):
                    raise _blocked(feedback, data, provider)
            usage = obj.get("usageMetadata")
            if usage:
                events.append(Event("usage", data=_usage(usage)))
            if state.finished and not state.done:
                state.done = True
                events.append(Event("done"))
            return events

        return decode

    def _candidate(self, candidate: dict[str, Any], state: _RoundState, events: list[Event]) -> None:
        for part in (candidate.get("content") or {}).get("parts") or ():
            signature = part.get("thoughtSignature")
            call = part.get("functionCall")
            if call is not None:
                events.append(Event("tool_call", data=self._tool_call(call, signature)))
                state.calls += 1
                state.last = ""
                continue
            text = part.get("text")
            if part.get("thought"):
                if text:
                    events.append(Event("thinking", text))
                    state.last = "thinking"
                if signature:
                    events.append(Event("signature", signature))
                    state.last = ""
                continue
            if signature:
                if state.last == "text":
                    events.append(Event("block_end"))  # the signature follows the text it came after
                events.append(Event("signature", signature))
                state.last = ""
            if text:
                events.append(Event("content", text))
                state.last = "text"
        reason = candidate.get("finishReason")
        if reason and not state.finished:
            state.finished = True
            normalized = FINISH_REASONS.get(reason, "stop")
            if normalized == "stop" and state.calls:
                normalized = "tool_calls"
            events.append(Event("stop", normalized))

    def _tool_call(self, call: dict[str, Any], signature: str | None) -> ToolCall:
        name = call.get("name")
        if not name:
            raise StreamError(f"a functionCall part arrived without a name: {json.dumps(call)[:120]}", provider=self.provider)
        args = call.get("args")
        if args is None:
            args = {}
        raw = json.dumps(args)
        error = None if isinstance(args, dict) else f"the arguments must be a JSON object, got {type(args).__name__}"
        call_id = call.get("id") or _CALL_ID_PREFIX + uuid.uuid4().hex[:16]
        return ToolCall(call_id, name, args if error is None else {}, raw, error, signature or None)

    # --- models -------------------------------------------------------------------------------

    def list_models(self) -> list[Model]:
        """The models from ``GET {base_url}/v1beta/models`` (every page), ids without ``models/``."""
        found: list[Model] = []
        page = ""
        for _ in range(_MAX_PAGES):
            path = "/v1beta/models?pageSize=1000" + (f"&pageToken={quote(page, safe='')}" if page else "")
            try:
                data = self._get_json(path, self._auth_headers())
            except BadRequestError as err:
                if not _bad_key(err):
                    raise
                raise _auth_error(err) from None
            for item in data.get("models") or ():
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name:
                    found.append(Model(name[7:] if name.startswith("models/") else name, self.provider, None, "google"))
            page = data.get("nextPageToken") or ""
            if not page:
                break
        return found


class _RoundState:
    """What one round's decoder remembers between events."""

    __slots__ = ("calls", "done", "finished", "last", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False  # a finishReason arrived
        self.done = False  # "done" was emitted
        self.calls = 0
        self.last = ""  # "text" or "thinking": the kind of the open run of parts


def _usage(meta: dict[str, Any]) -> Usage:
    """``usageMetadata`` as `Usage`: thoughts count as output and as reasoning."""
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    thoughts = meta.get("thoughtsTokenCount") or 0
    output = (meta.get("candidatesTokenCount") or 0) + thoughts
    cached = meta.get("cachedContentTokenCount") or 0
    return Usage(prompt, output, cached, thoughts, meta.get("totalTokenCount") or prompt + output)


def _blocked(feedback: dict[str, Any], data: str, provider: str) -> BadRequestError:
    reason = str(feedback.get("blockReason"))
    detail = feedback.get("blockReasonMessage")
    message = f"the prompt was blocked ({reason})" + (f": {detail}" if detail else "")
    return BadRequestError(message, status_code=400, error_type=reason, body=data[:_EXCERPT], provider=provider)


def _bad_key(err: BadRequestError) -> bool:
    return "API_KEY_INVALID" in (err.body or "")


def _auth_error(err: BadRequestError) -> AuthenticationError:
    return AuthenticationError(
        err.message,
        status_code=err.status_code,
        error_type="API_KEY_INVALID",
        body=err.body,
        request_id=err.request_id,
        provider=err.provider,
    )


def _thinking_config(options: Options) -> dict[str, Any]:
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


def _declaration(tool: Any) -> dict[str, Any]:
    """A ``functionDeclaration``; a tool without parameters declares none (Gemini refuses an empty OBJECT)."""
    out: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.parameters.get("properties"):
        out["parameters"] = gemini_schema(tool.parameters)
    return out


def _merge(body: dict[str, Any], extra: Any) -> None:
    """Merge ``extra`` into the body; a dict value merges into a dict already there (one level)."""
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value


def _parts(message: Message) -> list[dict[str, Any]]:
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
        elif isinstance(part, ThinkingPart):
            if not part.signature:
                continue  # unsigned (or another provider's redacted) thinking cannot be sent back
            if part.text:
                parts.append({"text": part.text, "thought": True, "thoughtSignature": part.signature})
            else:
                parts.append({"text": "", "thoughtSignature": part.signature})
        elif isinstance(part, ToolCall):
            call: dict[str, Any] = {"name": part.name, "args": dict(part.arguments)}
            if part.id and not part.id.startswith(_CALL_ID_PREFIX):
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
            if part.call_id and not part.call_id.startswith(_CALL_ID_PREFIX):
                result["id"] = part.call_id
            parts.append({"functionResponse": result})
    return parts
