"""Ollama's native chat API: ``POST {base_url}/api/chat`` streamed as NDJSON.

Wire: one JSON object per line (``application/x-ndjson``): ``{"model", "created_at",
"message": {"role", "content", "thinking"?, "tool_calls"?}, "done": false}``, and a last line
with ``"done": true``, ``done_reason`` (``stop``, ``length``, ``load``, ``unload``) and the
counts ``prompt_eval_count`` / ``eval_count``. That last line is the terminal event. Tool calls
arrive whole (``function.name``, ``function.arguments`` as an object, optional ``id``); a call
without an ``id`` gets one made here. An ``{"error": "..."}`` line inside a 200 stream ends it
with the error mapped by its message (``not found`` → `NotFoundError`, ...; anything else is a
`StreamError`); it never waits for a ``done`` that will not come.

Where: ``base_url``, else ``OLLAMA_HOST`` (as Ollama reads it: ``host``, ``host:port`` or a
URL; without a scheme it is ``http`` and the port defaults to 11434), else
``http://localhost:11434``. No key is needed; an ``api_key`` (or ``OLLAMA_API_KEY``) is sent as
``Authorization: Bearer`` for Ollama's cloud.

Options go in ``options`` (``temperature``, ``top_p``, ``top_k``, ``num_predict`` from
``max_tokens``, ``stop``, ``seed``). ``reasoning`` sets ``think``: ``"none"`` sends false; other
levels send true, except for ``gpt-oss`` models, which take a level string (``low``,
``medium``, ``high``; ``minimal`` is sent as ``low`` and ``xhigh`` as ``high``). Tools go out
in OpenAI's shape (``tools: [{"type": "function", "function": {name, description,
parameters}}]``); Ollama has no ``tool_choice``, so anything but ``"auto"`` is refused.
``response_format=<JSON Schema>`` is sent as ``format`` (the schema; ``"json"`` for ``{"type":
"json_object"}``). Anything else (``keep_alive``, more ``options``) goes through ``extra=``; an
``options`` dict there is merged into the one built here.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Callable, Iterable

from .._accumulate import parse_arguments
from .._embed import Batch, EmbedOptions, model_for, post_json
from .._fields import EXCERPT, epoch, merge_extra, sampling
from .._http import Request
from .._options import COMMON_OPTIONS, Options
from .._schema import response_schema
from .._wire_errors import error_from_event
from ..errors import ConfigurationError, LLMStreamError, StreamError, error_for_status
from ..models import Event, Message, Model, ThinkingPart, ToolCall, ToolResult, Usage
from ..provider import HTTPStreamer, ProviderSpec, loads

__all__ = ["OllamaStreamer"]

DEFAULT_PORT = 11434

DONE_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}

# In-band error text -> the HTTP status it stands for (checked in order, lower case).
ERROR_HINTS = (
    ("not found", 404),
    ("unauthorized", 401),
    ("forbidden", 403),
    ("too many requests", 429),
    ("rate limit", 429),
    ("server busy", 503),
)

_LEVELS = {"minimal": "low", "xhigh": "high"}
_CALL_ID_PREFIX = "ollama_call_"
_NOTHING: tuple[Event, ...] = ()
# option -> field of the request's "options"
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_tokens": "num_predict", "stop": "stop", "seed": "seed"}


def _host_url(value: str) -> str:
    """Normalize an ``OLLAMA_HOST``-style address into a base URL.

    ``"localhost"`` → ``http://localhost:11434``, ``":8080"`` → ``http://127.0.0.1:8080``,
    ``"[::1]:9"`` → ``http://[::1]:9``; a value with a scheme is a URL and is kept as it is.
    """
    value = value.strip().rstrip("/")
    if "://" in value:
        return value
    hostport, _, path = value.partition("/")
    host, port = hostport, ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    elif hostport.count(":") > 1:
        host = f"[{hostport}]"  # a bare IPv6 address
    if not port.isdigit() or not 0 < int(port) < 65536:
        port = str(DEFAULT_PORT)
    return f"http://{host or '127.0.0.1'}:{port}" + (f"/{path}" if path else "")


class OllamaStreamer(HTTPStreamer):
    """Streams from a local (or cloud) Ollama server's native ``/api/chat``.

    Example::

        s = OllamaStreamer(model="llama3.2")
        print(s.chat([Message.user("Say hi")], temperature=0).text)
    """

    spec = ProviderSpec(
        name="ollama",
        api_key_env="OLLAMA_API_KEY",
        base_url_env="OLLAMA_HOST",
        default_base_url=f"http://localhost:{DEFAULT_PORT}",
        default_model="llama3.2",
        supported_options=COMMON_OPTIONS | {"top_k", "seed", "response_format"},
        terminal='a line with "done": true',
        framing="ndjson",
        chat_path="/api/chat",
        has_embeddings=True,
        default_embedding_model="nomic-embed-text",
        embed_options={"dimensions"},
    )

    def __init__(self, model: str | None = None, *, base_url: str | None = None, **kwargs: Any) -> None:
        url = base_url or os.environ.get("OLLAMA_HOST") or None
        super().__init__(model, base_url=_host_url(url) if url else None, **kwargs)

    def build_embed_request(self, texts: tuple[str, ...], options: EmbedOptions) -> Request:
        """``POST {base_url}/api/embed`` with ``input`` (a list) and ``dimensions``."""
        body: dict[str, Any] = {"model": model_for(self), "input": list(texts)}
        if options.dimensions is not None:
            body["dimensions"] = options.dimensions
        return post_json(self, "/api/embed", body)

    def decode_embeddings(self, payload: Any, texts: tuple[str, ...]) -> Batch:
        counted = payload.get("prompt_eval_count")
        usage = Usage(input_tokens=counted) if isinstance(counted, int) else None
        return Batch([[float(x) for x in v] for v in payload["embeddings"]], payload.get("model"), usage)

    # --- request ------------------------------------------------------------------------------

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        wire: list[dict[str, Any]] = []
        if options.system:
            wire.append({"role": "system", "content": options.system})
        for message in messages:
            wire.extend(_message(message))
        body: dict[str, Any] = {"model": self.model, "messages": wire, "stream": True}
        opts = sampling(options, _SAMPLING)
        if opts:
            body["options"] = opts
        if options.reasoning is not None:
            body["think"] = self._think(options.reasoning)
        if options.tools is not None:
            body["tools"] = [{"type": "function", "function": d} for d in options.tools.definitions()]
        if options.response_format is not None:
            schema = response_schema(options.response_format)
            body["format"] = "json" if schema is None else schema
        merge_extra(body, options.extra)
        return body

    def _think(self, level: str) -> bool | str:
        if level == "none":
            return False
        family = self.model.rsplit("/", 1)[-1]
        if family.startswith("gpt-oss"):
            return _LEVELS.get(level, level)
        return True

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        if options.tool_choice not in (None, "auto"):
            raise ConfigurationError(
                f"ollama has no tool_choice: only 'auto' can be honoured, got {options.tool_choice!r}",
                provider=self.provider,
            )
        if options.response_format is not None:
            response_schema(options.response_format)  # a malformed wrapper fails here, before sending
        for message in messages:
            if any(image.url for image in message.images):
                raise ConfigurationError(
                    "ollama takes images as bytes only: load the image first (ImagePart.load(path))",
                    provider=self.provider,
                )
            if message.role != "assistant" and any(isinstance(p, ThinkingPart) for p in message.content):
                raise ConfigurationError("thinking parts belong to assistant messages", provider=self.provider)

    # --- response -----------------------------------------------------------------------------

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        state = {"started": False, "calls": 0}

        def decode(name: str, data: str) -> Iterable[Event]:
            obj = loads(data, self.provider)
            if type(obj) is not dict:
                return _NOTHING
            message = obj.get("message")
            # the hot path: a line carrying only a content fragment
            if message and state["started"] and not obj.get("done") and "error" not in obj:
                content = message.get("content")
                if content and not message.get("thinking") and not message.get("tool_calls"):
                    return (Event("content", content),)
            return self._slow(obj, message, data, state)

        return decode

    def _slow(self, obj: dict[str, Any], message: Any, data: str, state: dict[str, Any]) -> list[Event]:
        if "error" in obj:
            raise _inband_error(obj["error"], data, self.provider)
        events: list[Event] = []
        if not state["started"]:
            state["started"] = True
            if obj.get("model"):
                events.append(Event("meta", data={"model": obj["model"]}))
        if isinstance(message, dict):
            thinking = message.get("thinking")
            if thinking:
                events.append(Event("thinking", thinking))
            content = message.get("content")
            if content:
                events.append(Event("content", content))
            for call in message.get("tool_calls") or ():
                events.append(Event("tool_call", data=self._tool_call(call)))
                state["calls"] += 1
        if obj.get("done"):
            reason = DONE_REASONS.get(obj.get("done_reason") or "stop", "stop")
            if reason == "stop" and state["calls"]:
                reason = "tool_calls"
            events.append(Event("stop", reason))
            prompt, output = obj.get("prompt_eval_count") or 0, obj.get("eval_count") or 0
            events.append(Event("usage", data=Usage(prompt, output)))
            events.append(Event("done"))
        return events

    def _tool_call(self, call: Any) -> ToolCall:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise StreamError(f"a tool call arrived without a name: {json.dumps(call)[:120]}", provider=self.provider)
        args = fn.get("arguments")
        if isinstance(args, str):  # some models put the JSON text there
            raw = args
            arguments, error = parse_arguments(args)
        elif isinstance(args, dict) or args is None:
            arguments, error = args or {}, None
            raw = json.dumps(arguments)
        else:
            arguments, error = {}, f"the arguments must be a JSON object, got {type(args).__name__}"
            raw = json.dumps(args)
        call_id = call.get("id") or _CALL_ID_PREFIX + uuid.uuid4().hex[:16]
        return ToolCall(call_id, fn["name"], arguments, raw, error)

    # --- models -------------------------------------------------------------------------------

    def list_models(self) -> list[Model]:
        """The models pulled on the server, from ``GET {base_url}/api/tags``."""
        data = self.get_json("/api/tags")
        return [
            Model(m["name"], self.provider, epoch(m.get("modified_at")), None)
            for m in data.get("models") or ()
            if isinstance(m, dict) and isinstance(m.get("name"), str)
        ]


def _message(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"role": "tool", "content": r.content, "tool_name": r.name}
            for r in message.content
            if isinstance(r, ToolResult)
        ]
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    images = [image.base64 for image in message.images]
    if images:
        out["images"] = images
    if message.role == "assistant":
        if message.thinking:
            out["thinking"] = message.thinking
        calls = message.tool_calls
        if calls:
            out["tool_calls"] = [
                {
                    **({"id": c.id} if not c.id.startswith(_CALL_ID_PREFIX) else {}),
                    "type": "function",
                    "function": {"index": i, "name": c.name, "arguments": dict(c.arguments)},
                }
                for i, c in enumerate(calls)
            ]
    return [out]


def _inband_error(error: Any, line: str, provider: str) -> LLMStreamError:
    """The error for an ``{"error": ...}`` line, its class chosen by the message.

    An error object (a proxy's OpenAI-shaped ``{"message", "type", "code"}``) maps by its type
    or numeric code, as on the other wires.
    """
    if isinstance(error, dict):
        found = error_from_event({"error": error}, provider=provider)
        if not isinstance(found, StreamError):
            return found
    text = error if isinstance(error, str) else json.dumps(error)
    lower = text.lower()
    for hint, status in ERROR_HINTS:
        if hint in lower:
            return error_for_status(status)(text, status_code=status, body=line[:EXCERPT], provider=provider)
    return StreamError(text or "the server reported an error in the stream", provider=provider)
