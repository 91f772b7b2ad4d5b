"""The provider API: `Streamer`, `HTTPStreamer` and the hooks a provider implements.

A provider (built in, or a plug-in) subclasses a base, states its facts in a `ProviderSpec` and
implements a few public hooks; threads, retries, callbacks and cancellation live in the engine.

Hooks of every `Streamer` (the engine calls them, in this order, for each stream):

- ``validate(messages, options)``: raise `ConfigurationError` for what the provider cannot
  honour, before anything is sent;
- ``stream_round(messages, options, context)``: one round, as normalized `Event`\\ s ending with
  ``done`` (see ``_accumulate`` for the event types);
- ``open_state()``: what a `Conversation` keeps across turns (it reaches ``stream_round`` as
  ``context.state``); None for a stateless provider.

An `HTTPStreamer` implements ``stream_round`` already; it asks instead for
``build_body(messages, options)`` (the JSON body), ``new_decoder()`` (a fresh function per
round turning one wire event ``(event_type, data)`` into events), and optionally
``build_request`` (a path other than ``spec.chat_path``) and ``auth_headers()``.

Example (a complete third-party provider)::

    class EchoStreamer(HTTPStreamer):
        spec = ProviderSpec(name="echo", default_model="echo-1", chat_path="/chat", framing="ndjson")

        def build_body(self, messages, options):
            return {"model": self.model, "text": messages[-1].text}

        def new_decoder(self):
            def decode(event_type, data):
                obj = loads(data, self.provider)
                if obj.get("done"):
                    return [Event("stop", "stop"), Event("done")]
                return [Event("content", obj["text"])]
            return decode
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import Executor
from typing import Any, Callable, Generator, Iterable, Iterator, Mapping

import attrs

from . import _embed, _engine
from ._cancel import CancelToken
from ._closing import Closing
from ._embed import Batch, Embeddings, EmbedOptions
from ._engine import RoundContext, StreamHandle
from ._fields import loads
from ._http import Request, Transport, is_json
from ._options import Options
from ._secret import Secret
from ._spec import LEGACY_FACTS, ProviderSpec
from ._sse import NDJSONParser, SSEParser
from ._wire_errors import decoding, request_id_of
from .errors import ConfigurationError, StreamError
from .hooks import check_hooks
from .models import Event, Message, Model, Response
from .retry import RetryPolicy, Timeout

__all__ = [
    "CancelToken",
    "HTTPStreamer",
    "Options",
    "ProviderSpec",
    "Request",
    "RoundContext",
    "StreamHandle",
    "Streamer",
    "loads",
]


class Streamer(Closing):
    """The base of every provider: one synchronous, callback-style interface to stream a chat.

    Args:
        model: The model to use (the provider's default if it has one).
        api_key: The API key; else the provider's usual environment variable.
        base_url: Where the API lives; else the provider's environment variable or default.
        timeout: Seconds (connect and idle read) or a `Timeout`.
        retry: A `RetryPolicy`, or an int: the number of retries.
        headers: Extra HTTP headers sent with every request.
        pool_size: How many idle connections to keep for reuse.
        executor: Run streams on this `concurrent.futures.Executor` instead of a new thread each.
        verify: TLS verification: True, False, or the path of a CA bundle.
        max_event_bytes: Fail a stream whose single event grows past this size (default: no cap).
        hooks: An observer (or a list): an object with any of the `llmstreamer.hooks` methods.

    Example::

        s = llmstreamer.OpenAIStreamer(model="gpt-4o-mini")
        h = s.stream_chat([Message.user("Hello")], StreamCallbacks(on_content=print))
        h.wait()
    """

    #: The provider's facts; a subclass sets its own (a preset, an evolved copy per instance).
    spec: ProviderSpec = ProviderSpec(name="custom")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Turn the facts of an old-style plug-in (``provider = "x"`` class attributes) into its spec."""
        super().__init_subclass__(**kwargs)
        given = {k: v for k, v in vars(cls).items() if k in LEGACY_FACTS and not isinstance(v, property)}
        if not given:
            return
        warnings.warn(
            f"{cls.__name__}: provider facts as class attributes ({', '.join(sorted(given))}) are deprecated; "
            "set spec = ProviderSpec(...) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        cls.spec = attrs.evolve(cls.spec, **{LEGACY_FACTS[k]: v for k, v in given.items()})
        for name in given:
            if isinstance(getattr(Streamer, name, None), property):
                delattr(cls, name)  # the property reads the spec

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
        headers: Mapping[str, str] | None = None,
        pool_size: int = 32,
        executor: Executor | None = None,
        verify: bool | str = True,
        max_event_bytes: int | None = None,
        hooks: Any = None,
    ) -> None:
        spec = self.spec
        self.model = model or spec.default_model or ""
        if not self.model:
            raise ConfigurationError(f"{self.provider} needs a model: pass model=...")
        if api_key is None:
            api_key = next((os.environ[v] for v in spec.api_key_env if os.environ.get(v)), None)
        if spec.requires_key and not api_key:
            names = " or ".join(spec.api_key_env) or "an API key"
            raise ConfigurationError(f"no API key for {self.provider}: pass api_key=... or set {names}")
        self.api_key = Secret(api_key)
        url = base_url or (os.environ.get(spec.base_url_env) if spec.base_url_env else None) or spec.default_base_url
        self.base_url = (url or "").rstrip("/")
        self.timeout = Timeout.of(timeout)
        if isinstance(retry, RetryPolicy):
            self.retry = retry
        elif retry is None:
            self.retry = RetryPolicy()
        elif isinstance(retry, int) and not isinstance(retry, bool) and retry >= 0:
            self.retry = RetryPolicy(retries=retry)
        else:
            raise ConfigurationError(f"retry must be a RetryPolicy or a number of retries, got {retry!r}")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError(f"pool_size must be a positive integer, got {pool_size!r}")
        if executor is not None and not hasattr(executor, "submit"):
            raise ConfigurationError("executor must be a concurrent.futures.Executor")
        self.headers = dict(headers or {})
        self.pool_size = pool_size
        self.executor = executor
        self.verify = verify
        self.max_event_bytes = max_event_bytes
        self.hooks = check_hooks(hooks)

    # --- the facts of the spec, as the engine reads them ---------------------------------------

    @property
    def provider(self) -> str:
        """The provider's name (``spec.name``): in errors, thread names and ``Response.provider``."""
        return self.spec.name

    @property
    def supported_options(self) -> frozenset[str]:
        """The options this provider honours beyond the engine's own."""
        return self.spec.supported_options

    @property
    def terminal(self) -> str:
        """How the provider's terminal event is named in `IncompleteStreamError` messages."""
        return self.spec.terminal

    @property
    def runs_tools(self) -> bool:
        """True for providers that run tool calls inside a round themselves (ModelSocket)."""
        return self.spec.runs_tools

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{type(self).__name__}(model={self.model!r}{where})"

    # --- the public interface -----------------------------------------------------------------

    def stream_chat(self, messages: Iterable[Message | Mapping[str, Any]], callbacks: Any = None, **options: Any) -> StreamHandle:
        """Start streaming an answer on a worker thread; callbacks fire as it arrives.

        Args:
            messages: The conversation: `Message`\\ s or ``{"role", "content"}`` dicts.
            callbacks: A `StreamCallbacks`, or any object with ``on_*`` methods, or None.
            **options: ``system``, ``temperature``, ``top_p``, ``top_k``, ``max_tokens``,
                ``stop``, ``seed``, ``tools``, ``tool_choice``, ``max_iterations``,
                ``confirm_tool``, ``parallel_tools`` (default on: the calls of one round run
                concurrently, results in call order), ``reasoning``, ``thinking_budget``,
                ``response_format``, ``extra``.

        Raises:
            ConfigurationError: bad messages or options, before any request is sent.
        """
        return _engine.launch(_engine.prepare(self, messages, options), callbacks)

    def chat(self, messages: Iterable[Message | Mapping[str, Any]], **options: Any) -> Response:
        """Stream the answer in the calling thread and return the final `Response`."""
        response: Response | None = None
        for event in self.stream(messages, **options):
            if event.type == "finish":
                response = event.data
        assert response is not None
        return response

    def stream(self, messages: Iterable[Message | Mapping[str, Any]], **options: Any) -> Iterator[Event]:
        """Iterate over the stream's `Event`\\ s in the calling thread; the last is ``finish``.

        Breaking out of the loop or closing the iterator cancels the request. A failure raises
        its `LLMStreamError` from the loop.

        Example::

            for event in streamer.stream([Message.user("Hi")]):
                if event.type == "content":
                    print(event.text, end="")
        """
        return _engine.events(_engine.prepare(self, messages, options))

    def embed(self, texts: Any, *, dimensions: int | None = None, task_type: str | None = None, normalize: bool | None = None) -> Embeddings:
        """Embed a text or a list of texts: one vector per text, in order (see ``_embed``).

        Raises:
            ConfigurationError: the provider has no embeddings, or cannot honour an option.
        """
        return _embed.embed(self, texts, dimensions=dimensions, task_type=task_type, normalize=normalize)

    def list_models(self) -> list[Model]:
        """The models this provider offers."""
        raise ConfigurationError(f"{self.provider} cannot list its models")

    def close(self) -> None:
        """Release pooled connections. The streamer stays usable; the pool is rebuilt on use."""

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (errors and logs never show a key)."""
        return self.api_key.redact(text)

    # --- the hooks a provider implements -------------------------------------------------------

    def open_state(self) -> Any:
        """What a `Conversation` keeps for this provider across turns (None: stateless).

        A stateful provider (ModelSocket keeps a server-side sequence) returns an object with
        ``fork()`` and ``close()``; it reaches `stream_round` as ``context.state``.
        """
        return None

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        """Raise `ConfigurationError` for a request this provider cannot honour (before sending)."""

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        """Stream one round: yield normalized events (see ``_accumulate``), ending with ``done``."""
        raise NotImplementedError

    def embed_batch(self, texts: tuple[str, ...], options: EmbedOptions) -> Batch:
        """Embed one batch (at most ``spec.embed_batch_size`` texts); by default an HTTP provider's
        ``build_embed_request`` / ``decode_embeddings`` sent with retries (see ``_embed``)."""
        return _embed.default_batch(self, texts, options)


class HTTPStreamer(Streamer):
    """The base of providers that stream over HTTP as server-sent events or NDJSON.

    A subclass implements `build_body` (the JSON body of one round) and `new_decoder` (a fresh
    per-round function turning one wire event ``(event_type, data)`` into normalized events);
    `build_request` posts the body to ``spec.chat_path`` unless overridden.
    """

    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if not self.base_url:
            raise ConfigurationError(f"{self.provider} needs a base_url")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        self.transport = Transport(provider=self.provider, pool_size=self.pool_size, verify=self.verify, secret=self.api_key)

    def close(self) -> None:
        self.transport.close()

    # --- hooks --------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """The headers that carry the key: ``spec.auth_header: spec.auth_prefix + key`` (none without a key)."""
        key = self.api_key.value
        return {self.spec.auth_header: self.spec.auth_prefix + key} if key else {}

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        """The JSON body of one round."""
        raise NotImplementedError

    def build_request(self, messages: tuple[Message, ...], options: Options) -> Request:
        """The HTTP request of one round: `build_body` posted to ``spec.chat_path``."""
        return self.post(self.spec.chat_path, self.build_body(messages, options))

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        """A fresh decoder for one round: ``decode(event_type, data) -> events``."""
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------------------

    def post(self, path: str, body: Mapping[str, Any]) -> Request:
        """A JSON POST to ``base_url + path`` with the auth headers and the user's headers on top."""
        merged = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if self.spec.framing == "sse" else "application/x-ndjson",
            "Accept-Encoding": "identity",
            **self.auth_headers(),
            **self.headers,
        }
        return Request("POST", self.base_url + path, merged, json.dumps(body).encode())

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        token = context.token
        if token.reason is not None:
            raise token.error(self.provider)
        req = self.build_request(messages, options)
        transport = self.transport
        rec = token.recorder
        if rec is not None:
            rec.request(req)
        resp = transport.send(req, token, self.timeout)
        reuse = False
        try:
            if rec is not None:
                rec.response(resp)
            if resp.status_code >= 300 or is_json(resp.headers.get("content-type", "")):
                raise transport.status_error(resp, token)
            request_id = request_id_of(resp.headers)
            if request_id:
                yield Event("meta", data={"request_id": request_id})
            body = transport.body(resp, token, self.timeout)
            if rec is None:
                ended = yield from self.decode_body(body)
            else:
                ended = yield from self.decode_body(rec.count(body), rec.observe(self.new_decoder()))
            # After the terminal event the rest of the body is not ours to wait for: a server
            # that keeps the connection open (or sends junk) gets a short drain, then a close.
            reuse = transport.drain(resp, body) if ended else True
        finally:
            transport.release(resp, token, reuse=reuse)

    def decode_body(
        self, chunks: Iterable[bytes], decode: Callable[[str, str], Iterable[Event]] | None = None
    ) -> Generator[Event, None, bool]:
        """One round's body, as it arrives in ``chunks`` (any split), framed and decoded into events.

        Returns True when the terminal event ended the round before the body ended (see
        ``spec.done_ends_body``): nothing after it is decoded. A decoder that trips over the
        data (a missing key, a wrong type) ends the stream with `StreamError` ("malformed
        stream"): the one place where builtin exceptions are caught. ``decode`` replaces a fresh
        `new_decoder` (the hooks' recorder passes one that shows each wire event first).
        """
        if decode is None:
            decode = self.new_decoder()
        framer = SSEParser(self.max_event_bytes) if self.spec.framing == "sse" else NDJSONParser(self.max_event_bytes)
        feed = framer.feed
        stop_at_done = self.spec.done_ends_body
        with decoding(self.provider):
            for chunk in chunks:
                for name, data, _ in feed(chunk):
                    for event in decode(name, data):
                        yield event
                        if stop_at_done and event.type == "done":
                            return True
            for name, data, _ in framer.close():
                yield from decode(name, data)
        return False

    def get_json(self, path: str) -> Any:
        """GET ``base_url + path`` with the auth headers and decode its JSON (for `list_models`)."""
        token = CancelToken()
        req = Request("GET", self.base_url + path, {"Accept": "application/json", **self.auth_headers(), **self.headers})
        transport = self.transport
        resp = transport.send(req, token, self.timeout)
        try:
            if resp.status_code >= 300:
                raise transport.status_error(resp, token)
            raw = b"".join(transport.body(resp, token, self.timeout))
        finally:
            transport.release(resp, token, reuse=True)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise StreamError(f"{path} did not return JSON: {raw[:120]!r}", provider=self.provider) from exc
