"""The `Streamer` base every provider implements, `HTTPStreamer` for HTTP providers, and `StreamHandle`.

A provider subclass only translates: it builds the request from `Message`\\ s and `Options`,
and turns wire events into normalized `Event`\\ s. Threads, retries, timeouts, callbacks,
accumulation and cancellation live here and in ``_run``, once for every provider.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from concurrent.futures import Executor
from typing import Any, Callable, ClassVar, Generator, Iterable, Iterator, Mapping

import attrs

from . import _embed, _run
from ._cancel import CancelToken
from ._documents import prepare
from ._embed import Embeddings
from ._http import Request, Transport
from ._json import loads as loads  # re-exported: the providers' decoders import it from here
from ._options import Options, check_contents, coerce_messages, make_options
from ._secret import Secret
from ._sse import NDJSONParser, SSEParser
from ._wire_errors import request_id_of
from .callbacks import resolve
from .errors import ConfigurationError, LLMStreamError, StreamError
from .hooks import _check as _check_hooks
from .models import Event, Message, Model, Response
from .retry import RetryPolicy, Timeout

__all__ = ["HTTPStreamer", "StreamHandle", "Streamer"]

_thread_ids = itertools.count(1)


class StreamHandle:
    """The running stream of one `Streamer.stream_chat` call.

    Example::

        handle = streamer.stream_chat(messages, StreamCallbacks(on_content=print))
        handle.wait(timeout=60)
        response = handle.result()   # raises the stream's error, if it failed
    """

    def __init__(self, run: _run.Run) -> None:
        self._run = run
        self._done = threading.Event()
        self._outcome: Response | LLMStreamError | None = None
        self._thread: threading.Thread | None = None

    def _work(self, callbacks: dict[str, Callable[..., Any]]) -> None:
        try:
            rec = self._run.token.recorder
            self._outcome = _run.dispatch(self._run, callbacks) if rec is None else rec.dispatch(_run.dispatch, self._run, callbacks)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the terminal callback has returned; False if ``timeout`` expired first."""
        if not self._done.wait(timeout):
            return False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return True

    def result(self, timeout: float | None = None) -> Response:
        """The final `Response`; raises the stream's `LLMStreamError` if it failed.

        Raises:
            TimeoutError: the stream did not end within ``timeout`` seconds.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"the stream did not end within {timeout} s")
        outcome = self._outcome
        if isinstance(outcome, LLMStreamError):
            raise outcome
        assert outcome is not None
        return outcome

    def cancel(self) -> None:
        """Stop the stream from any thread: the connection is shut down at once and the stream
        ends with ``on_error(StreamCancelled)`` (unless it had already ended)."""
        self._run.token.cancel()

    def done(self) -> bool:
        """True once the terminal callback has returned."""
        return self._done.is_set()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<StreamHandle {self._run.streamer.provider}:{self._run.streamer.model} {state}>"


class Streamer:
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

    provider: ClassVar[str] = "custom"
    api_key_env: ClassVar[tuple[str, ...]] = ()
    requires_key: ClassVar[bool] = False
    base_url_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    default_model: ClassVar[str | None] = None
    supported_options: ClassVar[frozenset[str]] = frozenset()
    terminal: ClassVar[str] = "its terminal event"
    # True for providers that run tool calls inside a round themselves (ModelSocket).
    runs_tools: ClassVar[bool] = False
    # Embeddings (``_embed``): inputs per request, options taken, model used on the default model.
    has_embeddings: bool = False  # a class fact; an OpenAI-compatible preset may turn it off
    embed_batch_size: ClassVar[int] = 256
    embed_options: ClassVar[frozenset[str]] = frozenset()
    default_embedding_model: ClassVar[str | None] = None
    # MIME types taken as documents (``_documents``); other text is inlined, other PDFs refused.
    document_types: ClassVar[frozenset[str]] = frozenset()

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
        self.model = model or self.default_model or ""
        if not self.model:
            raise ConfigurationError(f"{self.provider} needs a model: pass model=...")
        if api_key is None:
            api_key = next((os.environ[v] for v in self.api_key_env if os.environ.get(v)), None)
        if self.requires_key and not api_key:
            names = " or ".join(self.api_key_env) or "an API key"
            raise ConfigurationError(f"no API key for {self.provider}: pass api_key=... or set {names}")
        self._api_key = Secret(api_key)
        url = base_url or (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.default_base_url
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
        self._hooks = _check_hooks(hooks)

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
        return self._start(self._run(messages, options), callbacks)

    def _start(self, run: _run.Run, callbacks: Any) -> StreamHandle:
        found = resolve(callbacks)
        handle = StreamHandle(run)
        if self.executor is not None:
            self.executor.submit(handle._work, found)
        else:
            name = f"llmstreamer-{self.provider}-{next(_thread_ids)}"
            thread = threading.Thread(target=handle._work, args=(found,), name=name)
            handle._thread = thread
            thread.start()
        return handle

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
        run = self._run(messages, options)
        return run.events() if run.token.recorder is None else run.token.recorder.events(run)

    def embed(self, texts: Any, *, dimensions: int | None = None, task_type: str | None = None, normalize: bool | None = None) -> Embeddings:
        """Embed a text or a list of texts: one vector per text, in order (see ``_embed``).

        Raises:
            ConfigurationError: the provider has no embeddings, or cannot honour an option.
        """
        return _embed.embed(self, texts, dimensions=dimensions, task_type=task_type, normalize=normalize)

    def _embed_batch(self, texts: tuple[str, ...], options: _embed.EmbedOptions) -> _embed.Batch:
        return _embed.default_batch(self, texts, options)

    def list_models(self) -> list[Model]:
        """The models this provider offers."""
        raise ConfigurationError(f"{self.provider} cannot list its models")

    def close(self) -> None:
        """Release pooled connections. The streamer stays usable; the pool is rebuilt on use."""

    def __enter__(self) -> Streamer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what a provider implements ------------------------------------------------------------

    def _run(self, messages: Any, options: Mapping[str, Any], session: Any = None) -> _run.Run:
        msgs = prepare(coerce_messages(messages), self.document_types, self.provider)
        opts = make_options(self.provider, self.supported_options, options)
        if session is not None:
            opts = attrs.evolve(opts, session=session)
        check_contents(msgs)
        self._validate(msgs, opts)
        return _run.Run(self, msgs, opts)

    def _open_session(self) -> Any:
        """State a `Conversation` keeps for this provider across turns (None: stateless).

        A stateful provider (ModelSocket keeps a server-side sequence) returns an object with a
        ``fork()`` method; it reaches `_round` as ``options.session``.
        """
        return None

    def _validate(self, messages: tuple[Message, ...], options: Options) -> None:
        """Raise `ConfigurationError` for a request this provider cannot honour (before sending)."""

    def _round(self, messages: tuple[Message, ...], options: Options, token: CancelToken) -> Iterator[Event]:
        """Stream one round: yield normalized events (see ``_accumulate``), ending with ``done``."""
        raise NotImplementedError


class HTTPStreamer(Streamer):
    """The base of providers that stream over HTTP as server-sent events or NDJSON.

    A subclass implements `_request` (the HTTP request of one round) and `_decoder` (a fresh
    per-round function turning one wire event ``(event_type, data)`` into normalized events).
    """

    framing: ClassVar[str] = "sse"  # or "ndjson"
    # True: the decoder's ``done`` is the wire's terminal event ([DONE], message_stop, Ollama's
    # done line), so the round ends there and whatever follows is never read. False for wires
    # whose stream ends only with the body (Gemini), where ``done`` marks a stated finish.
    done_ends_body: bool = True

    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if not self.base_url:
            raise ConfigurationError(f"{self.provider} needs a base_url")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        self._transport = Transport(
            provider=self.provider,
            pool_size=self.pool_size,
            verify=self.verify,
            secret=self._api_key,
        )

    def close(self) -> None:
        self._transport.close()

    def _request(self, messages: tuple[Message, ...], options: Options) -> Request:
        """The HTTP request for one round."""
        raise NotImplementedError

    def _decoder(self) -> Callable[[str, str], Iterable[Event]]:
        """A fresh decoder for one round: ``decode(event_type, data) -> events``."""
        raise NotImplementedError

    def _post(self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> Request:
        """A JSON POST to ``base_url + path`` with the user's extra headers on top."""
        merged = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if self.framing == "sse" else "application/x-ndjson",
            "Accept-Encoding": "identity",
            **headers,
            **self.headers,
        }
        return Request("POST", self.base_url + path, merged, json.dumps(body).encode())

    def _round(self, messages: tuple[Message, ...], options: Options, token: CancelToken) -> Iterator[Event]:
        if token.reason is not None:
            raise token.error(self.provider)
        req = self._request(messages, options)
        transport = self._transport
        rec = token.recorder
        if rec is not None:
            rec.request(req)
        resp = transport.send(req, token, self.timeout)
        reuse = False
        try:
            if rec is not None:
                rec.response(resp)
            if resp.status_code >= 300 or _is_json(resp.headers.get("content-type", "")):
                raise transport.status_error(resp, token)
            request_id = request_id_of(resp.headers)
            if request_id:
                yield Event("meta", data={"request_id": request_id})
            body = transport.body(resp, token, self.timeout)
            if rec is None:
                ended = yield from self._decode(body)
            else:
                ended = yield from self._decode(rec.count(body), rec.observe(self._decoder()))
            # After the terminal event the rest of the body is not ours to wait for: a server
            # that keeps the connection open (or sends junk) gets a short drain, then a close.
            reuse = transport.drain(resp, body) if ended else True
        finally:
            transport.release(resp, token, reuse=reuse)

    def _decode(self, chunks: Iterable[bytes], decode: Callable[[str, str], Iterable[Event]] | None = None) -> Generator[Event, None, bool]:
        """One round's body, as it arrives in ``chunks`` (any split), framed and decoded into events.

        Returns True when the terminal event ended the round before the body ended (see
        ``done_ends_body``): nothing after it is decoded. ``decode`` replaces a fresh `_decoder`
        (the hooks' recorder passes one that shows each wire event to ``on_event`` first).
        """
        if decode is None:
            decode = self._decoder()
        framer = SSEParser(self.max_event_bytes) if self.framing == "sse" else NDJSONParser(self.max_event_bytes)
        feed = framer.feed
        stop_at_done = self.done_ends_body
        for chunk in chunks:
            for name, data, _ in feed(chunk):
                for event in decode(name, data):
                    yield event
                    if stop_at_done and event.type == "done":
                        return True
        for name, data, _ in framer.close():
            yield from decode(name, data)
        return False

    def _get_json(self, path: str, headers: Mapping[str, str]) -> Any:
        """GET ``base_url + path`` and decode its JSON (for `list_models`)."""
        token = CancelToken()
        req = Request("GET", self.base_url + path, {"Accept": "application/json", **headers, **self.headers})
        transport = self._transport
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


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")
