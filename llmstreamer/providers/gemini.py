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
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote

from .._embed import Batch, EmbedOptions, model_for, post_json
from .._fields import EXCERPT, merge_extra, sampling
from .._http import Request
from .._options import COMMON_OPTIONS, Options
from .._schema import response_schema
from .._wire_errors import error_from_event
from ..errors import AuthenticationError, BadRequestError, ConfigurationError, StreamError
from ..models import Event, Message, Model, ThinkingPart, ToolCall, Usage
from ..provider import HTTPStreamer, ProviderSpec, RoundContext, loads
from ._gemini_parts import CALL_ID_PREFIX, declaration, message_parts, thinking_config
from ._gemini_schema import gemini_schema
from ._turns import alternating_turns, system_texts

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

# tool_choice -> functionCallingConfig.mode (a tool name is ANY with allowedFunctionNames)
# option -> generationConfig field
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "stop": "stopSequences",
    "seed": "seed",
}
CALLING_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

_MAX_PAGES = 50
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

    spec = ProviderSpec(
        name="gemini",
        api_key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        requires_key=True,
        base_url_env="GEMINI_BASE_URL",
        default_base_url="https://generativelanguage.googleapis.com",
        default_model="gemini-2.5-flash",
        supported_options=COMMON_OPTIONS | {"top_k", "seed", "thinking_budget", "response_format"},
        terminal="an event with a finishReason",
        done_ends_body=False,  # no terminal event on this wire: the stream ends with the body
        auth_header="x-goog-api-key",
        auth_prefix="",
        has_embeddings=True,
        document_types={"application/pdf", "text/*"},
        default_embedding_model="gemini-embedding-001",
        embed_batch_size=100,  # requests per batchEmbedContents
        embed_options={"dimensions", "task_type"},
    )

    def _model_path(self) -> str:
        model = self.model if "/" in self.model else f"models/{self.model}"
        return "/v1beta/" + quote(model, safe="/")

    def build_request(self, messages: tuple[Message, ...], options: Options) -> Request:
        path = self._model_path() + ":streamGenerateContent?alt=sse"
        return self.post(path, self.build_body(messages, options))

    def build_embed_request(self, texts: tuple[str, ...], options: EmbedOptions) -> Request:
        """``POST .../models/{model}:batchEmbedContents`` with one request per text; ``task_type``
        goes as ``taskType`` in capitals (``RETRIEVAL_QUERY``), ``dimensions`` as ``outputDimensionality``."""
        model = model_for(self)
        name = model if "/" in model else f"models/{model}"
        extra: dict[str, Any] = {}
        if options.task_type is not None:
            extra["taskType"] = options.task_type.upper()
        if options.dimensions is not None:
            extra["outputDimensionality"] = options.dimensions
        body = {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in texts]}
        return post_json(self, "/v1beta/" + quote(name, safe="/") + ":batchEmbedContents", body)

    def decode_embeddings(self, payload: Any, texts: tuple[str, ...]) -> Batch:
        return Batch([[float(x) for x in item["values"]] for item in payload["embeddings"]])

    # --- request ------------------------------------------------------------------------------

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        system = system_texts(messages, options, keep_empty=False)
        contents = alternating_turns(messages, "model", "parts", message_parts, skip_empty=True)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        config = sampling(options, _SAMPLING)
        thinking = thinking_config(options)
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
            body["tools"] = [{"functionDeclarations": [declaration(t) for t in options.tools]}]
            choice = options.tool_choice
            if choice is not None:
                calling: dict[str, Any] = {"mode": CALLING_MODES.get(choice, "ANY")}
                if choice not in CALLING_MODES:
                    calling["allowedFunctionNames"] = [choice]
                body["toolConfig"] = {"functionCallingConfig": calling}
        if options.extra:
            merge_extra(body, options.extra)
        return body

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        if options.reasoning is not None and options.thinking_budget is not None:
            raise ConfigurationError(
                "give reasoning (thinkingLevel) or thinking_budget (thinkingBudget), not both", provider=self.provider
            )
        if options.response_format is not None:
            schema = response_schema(options.response_format)
            if schema is not None:
                gemini_schema(schema)  # a schema the dialect cannot hold fails here, before sending
        for found in options.tools or ():
            declaration(found)
        for message in messages:
            if message.role == "system" and message.images:
                raise ConfigurationError("a system message holds text only", provider=self.provider)
            if message.role != "assistant" and any(isinstance(p, ThinkingPart) for p in message.content):
                raise ConfigurationError("thinking parts belong to assistant messages", provider=self.provider)

    # --- response -----------------------------------------------------------------------------

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        try:
            yield from super().stream_round(messages, options, context)
        except BadRequestError as err:
            if not _bad_key(err):
                raise
            raise _auth_error(err) from None

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        provider = self.provider
        state = _RoundState()

        def decode(name: str, data: str) -> Iterable[Event]:
            obj = loads(data, provider) if data else None  # an empty event, like a non-object, is skipped
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
        call_id = call.get("id") or CALL_ID_PREFIX + uuid.uuid4().hex[:16]
        return ToolCall(call_id, name, args if error is None else {}, raw, error, signature or None)

    # --- models -------------------------------------------------------------------------------

    def list_models(self) -> list[Model]:
        """The models from ``GET {base_url}/v1beta/models`` (every page), ids without ``models/``."""
        found: list[Model] = []
        page = ""
        for _ in range(_MAX_PAGES):
            path = "/v1beta/models?pageSize=1000" + (f"&pageToken={quote(page, safe='')}" if page else "")
            try:
                data = self.get_json(path)
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
    return BadRequestError(message, status_code=400, error_type=reason, body=data[:EXCERPT], provider=provider)


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
