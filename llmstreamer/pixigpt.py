"""PixiGPT's REST API: assistants, threads, messages and runs, plus rerank, moderation and vision.

Chat and embeddings go through the ``pixigpt`` preset (``llmstreamer.streamer("pixigpt:...")``);
this client covers the rest, on the same transport, retries and error tree as the streamers::

    from llmstreamer.pixigpt import PixiGPTClient

    with PixiGPTClient() as pixi:                       # PIXIGPT_API_KEY, PIXIGPT_BASE_URL
        thread = pixi.create_thread()
        pixi.create_message(thread.id, "What is the capital of France?")
        handle = pixi.run(thread.id, "asst_123", StreamCallbacks(on_content=print),
                          on_status=lambda run: print("status:", run.status))
        run = handle.result(timeout=300)
        print(run.message.text, run.message.sources)

What it does differently from PixiGPT's own Go client: ids are escaped in paths; a temperature
of 0 is sent as 0; creates carry an ``Idempotency-Key`` and are sent again only when the failure
proves the server did not process them, or with the same key after a dropped connection, never
after a read timeout (see ``_rest``); 429 is retried after its ``retry-after``; following a run
always ends, in exactly one terminal callback, with the server's error detail when it failed
(see ``_pixigpt_run``).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, urlencode

from . import _pixigpt_run, _rest
from ._cancel import CancelToken
from ._closing import Closing
from ._http import Request, Transport
from ._pixigpt_types import (
    Assistant,
    CodeOutput,
    Media,
    Moderation,
    RerankResult,
    Run,
    Source,
    Thread,
    ThreadMessage,
    VisionResult,
    read,
)
from ._secret import Secret
from .errors import ConfigurationError, StreamError
from .models import Message
from .retry import RetryPolicy, Timeout

__all__ = [
    "Assistant",
    "CodeOutput",
    "Media",
    "Moderation",
    "PixiGPTClient",
    "RerankResult",
    "Run",
    "Source",
    "Thread",
    "ThreadMessage",
    "VisionResult",
]

DEFAULT_BASE_URL = "https://pixigpt.com/v1"
PROVIDER = "pixigpt"
_ROLES = frozenset({"user", "assistant", "system"})


class PixiGPTClient(Closing):
    """A client of PixiGPT's REST API (key ``PIXIGPT_API_KEY``, URL ``PIXIGPT_BASE_URL``).

    Args:
        api_key: The API key; else ``PIXIGPT_API_KEY``.
        base_url: The API root; else ``PIXIGPT_BASE_URL``, else ``https://pixigpt.com/v1``.
        timeout: Seconds (connect and read) or a `Timeout` for each request.
        retry: A `RetryPolicy` or a number of retries (default: 2, as for streams).
        headers: Extra headers sent with every request.
        pool_size: How many idle connections to keep.
        verify: TLS verification: True, False, or a CA bundle's path.
        poll_interval: The first wait between two polls of a run, in seconds.
        max_poll_interval: The longest wait between two polls.
        idempotency_keys: Send an ``Idempotency-Key`` with every create (default True); without
            one, a create whose connection dropped is never sent again.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
        headers: Mapping[str, str] | None = None,
        pool_size: int = 8,
        verify: bool | str = True,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        idempotency_keys: bool = True,
    ) -> None:
        key = api_key or os.environ.get("PIXIGPT_API_KEY")
        if not key:
            raise ConfigurationError("no API key for pixigpt: pass api_key=... or set PIXIGPT_API_KEY", provider=PROVIDER)
        url = (base_url or os.environ.get("PIXIGPT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}", provider=PROVIDER)
        if isinstance(retry, bool) or (isinstance(retry, int) and retry < 0):
            raise ConfigurationError(f"retry must be a RetryPolicy or a number of retries, got {retry!r}", provider=PROVIDER)
        for name, value in (("poll_interval", poll_interval), ("max_poll_interval", max_poll_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}", provider=PROVIDER)
        self.base_url = url
        self.timeout = Timeout.of(timeout)
        self.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy() if retry is None else RetryPolicy(retries=retry)
        self.headers = dict(headers or {})
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = max(float(max_poll_interval), self.poll_interval)
        self.idempotency_keys = idempotency_keys
        self._key = Secret(key)
        self._transport = Transport(provider=PROVIDER, pool_size=pool_size, verify=verify, secret=self._key)

    def __repr__(self) -> str:
        return f"PixiGPTClient(base_url={self.base_url!r})"

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _id(value: str) -> str:
        """An id as one path segment: ``/``, ``?``, ``#``, ``%`` and non-ASCII escaped."""
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"an id must be a non-empty string, got {value!r}", provider=PROVIDER)
        return quote(value, safe="")

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        create: bool = False,
        idempotency_key: str | None = None,
        token: CancelToken | None = None,
        on_retry: Callable[..., Any] | None = None,
    ) -> _rest.Answer:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._key.value}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if create and (idempotency_key or self.idempotency_keys):
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        request = Request(method, self.base_url + path, {**headers, **self.headers}, data)
        kind = _rest.CREATE if create else _rest.SAFE
        return _rest.call(
            self._transport, request, timeout=self.timeout, retry=self.retry, kind=kind, token=token, on_retry=on_retry
        )

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        value = self._call(method, path, body, **kw).value
        if not isinstance(value, dict):
            raise StreamError(f"{method} {path.split('?')[0]} did not answer a JSON object", provider=PROVIDER)
        return value

    def _list(self, path: str) -> list[Any]:
        data = self._json("GET", path).get("data")
        return [item for item in data or () if isinstance(item, Mapping)]

    def close(self) -> None:
        """Close pooled connections (the client stays usable)."""
        self._transport.close()

    # --- assistants ---------------------------------------------------------------------------

    def list_assistants(self) -> list[Assistant]:
        """Every assistant of the account."""
        return [read(Assistant, a) for a in self._list("/assistants")]

    def get_assistant(self, assistant_id: str) -> Assistant:
        """One assistant."""
        return read(Assistant, self._json("GET", f"/assistants/{self._id(assistant_id)}"))

    def create_assistant(
        self, name: str, instructions: str, *, tools_config: str | None = None, idempotency_key: str | None = None
    ) -> Assistant:
        """Create an assistant (an idempotent create: see the module docstring)."""
        body: dict[str, Any] = {"name": name, "instructions": instructions}
        if tools_config is not None:
            body["tools_config"] = tools_config
        return read(Assistant, self._json("POST", "/assistants", body, create=True, idempotency_key=idempotency_key))

    def update_assistant(
        self, assistant_id: str, *, name: str | None = None, instructions: str | None = None, tools_config: str | None = None
    ) -> Assistant:
        """Change an assistant's name, instructions or tools configuration (a PUT: safe to retry)."""
        body = {k: v for k, v in (("name", name), ("instructions", instructions), ("tools_config", tools_config)) if v is not None}
        return read(Assistant, self._json("PUT", f"/assistants/{self._id(assistant_id)}", body))

    def delete_assistant(self, assistant_id: str) -> None:
        """Delete an assistant."""
        self._call("DELETE", f"/assistants/{self._id(assistant_id)}")

    def list_assistant_threads(self, assistant_id: str, *, limit: int | None = None) -> list[Thread]:
        """The threads an assistant took part in."""
        query = f"?{urlencode({'limit': limit})}" if limit is not None else ""
        return [read(Thread, t) for t in self._list(f"/assistants/{self._id(assistant_id)}/threads{query}")]

    # --- threads ------------------------------------------------------------------------------

    def create_thread(self, *, metadata: Mapping[str, str] | None = None, idempotency_key: str | None = None) -> Thread:
        """Create a thread."""
        body = {"metadata": dict(metadata)} if metadata else {}
        return read(Thread, self._json("POST", "/threads", body, create=True, idempotency_key=idempotency_key))

    def list_threads(self) -> list[Thread]:
        """Every thread of the account."""
        return [read(Thread, t) for t in self._list("/threads")]

    def get_thread(self, thread_id: str) -> Thread:
        """One thread."""
        return read(Thread, self._json("GET", f"/threads/{self._id(thread_id)}"))

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and its messages."""
        self._call("DELETE", f"/threads/{self._id(thread_id)}")

    # --- messages -----------------------------------------------------------------------------

    def create_message(
        self, thread_id: str, content: str, *, role: str = "user", idempotency_key: str | None = None
    ) -> ThreadMessage:
        """Add a message to a thread."""
        body = _message(role, content)
        path = f"/threads/{self._id(thread_id)}/messages"
        return read(ThreadMessage, self._json("POST", path, body, create=True, idempotency_key=idempotency_key))

    def create_messages(
        self, thread_id: str, messages: Iterable[Message | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[ThreadMessage]:
        """Add several messages in one request (``/messages/bulk``): `Message`\\ s or ``{"role", "content"}``."""
        wire = []
        for m in messages:
            if isinstance(m, Message):
                wire.append(_message(m.role, m.text))
            elif isinstance(m, Mapping):
                wire.append(_message(m.get("role"), m.get("content")))
            else:
                raise ConfigurationError(f"messages must be Message or dict, got {type(m).__name__}", provider=PROVIDER)
        path = f"/threads/{self._id(thread_id)}/messages/bulk"
        data = self._json("POST", path, {"messages": wire}, create=True, idempotency_key=idempotency_key).get("data")
        return [read(ThreadMessage, m) for m in data or () if isinstance(m, Mapping)]

    def list_messages(self, thread_id: str, *, limit: int = 20) -> list[ThreadMessage]:
        """A thread's messages (the newest ``limit``, as the server orders them)."""
        path = f"/threads/{self._id(thread_id)}/messages?{urlencode({'limit': limit})}"
        return [read(ThreadMessage, m) for m in self._list(path)]

    # --- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        *,
        enable_thinking: bool | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        idempotency_key: str | None = None,
        _token: CancelToken | None = None,
        _on_retry: Callable[..., Any] | None = None,
    ) -> Run:
        """Start a run of ``assistant_id`` on a thread; it ends on the server (see `run` to follow it).

        ``temperature=0`` is sent as 0 (None leaves the server's default).
        """
        body: dict[str, Any] = {"assistant_id": assistant_id}
        if enable_thinking is not None:
            body["enable_thinking"] = bool(enable_thinking)
        if temperature is not None:
            if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
                raise ConfigurationError(f"temperature must be a number >= 0, got {temperature!r}", provider=PROVIDER)
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        path = f"/threads/{self._id(thread_id)}/runs"
        answer = self._json(
            "POST", path, body, create=True, idempotency_key=idempotency_key, token=_token, on_retry=_on_retry
        )
        return read(Run, answer)

    def get_run(self, thread_id: str, run_id: str) -> Run:
        """A run's current state."""
        return read(Run, self._json("GET", f"/threads/{self._id(thread_id)}/runs/{self._id(run_id)}"))

    def run(
        self,
        thread_id: str,
        assistant_id: str,
        callbacks: Any = None,
        *,
        on_status: Callable[[Run], Any] | None = None,
        timeout: float | None = 600.0,
        **options: Any,
    ) -> Any:
        """Create a run and follow it to its end on a worker thread; returns a `StreamHandle`.

        Callbacks: ``on_status(run)`` on every change of status (given here or as a method of
        ``callbacks``), ``on_retry``, then for a completed run ``on_thinking`` and
        ``on_content`` (the answer's reasoning and text) and ``on_finish(run)``; or else
        ``on_error(error)`` (see ``_pixigpt_run`` for which error each status gives).
        ``handle.result()`` is the completed `Run`; ``handle.cancel()`` stops following it.

        Args:
            timeout: The total time allowed, creation and polling included (None: no limit).
            **options: ``enable_thinking``, ``temperature``, ``max_tokens``, ``idempotency_key``.
        """
        unknown = sorted(set(options) - {"enable_thinking", "temperature", "max_tokens", "idempotency_key"})
        if unknown:
            raise ConfigurationError(f"run() does not take {', '.join(unknown)}", provider=PROVIDER)
        self._id(thread_id)
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}", provider=PROVIDER)
        found = _pixigpt_run.callbacks_of(callbacks, on_status)
        def get_run(run_id: str, **kw: Any) -> Any:
            return self._call("GET", f"/threads/{self._id(thread_id)}/runs/{self._id(run_id)}", **kw)

        follow = _pixigpt_run.Follow(self, get_run, thread_id, assistant_id, found, timeout, options)
        return _pixigpt_run.start(follow)

    # --- rerank, moderation, vision -----------------------------------------------------------

    def rerank(self, query: str, documents: Iterable[str], *, top_k: int | None = None) -> list[RerankResult]:
        """Order ``documents`` by relevance to ``query`` (the most relevant first)."""
        body: dict[str, Any] = {"query": query, "documents": list(documents)}
        if top_k is not None:
            body["top_k"] = top_k
        results = self._json("POST", "/rerank", body).get("results") or ()
        return [RerankResult(int(r["index"]), str(r.get("document", "")), float(r["relevance_score"])) for r in results]

    def moderate(self, text: str) -> Moderation:
        """Classify a text (``SAFE`` or a category) with a score."""
        return _moderation(self._json("POST", "/moderations", {"prompt": text}))

    def moderate_media(self, media_url: str, *, is_video: bool = False) -> Moderation:
        """Classify an image or video at ``media_url`` (the server fetches the URL you give)."""
        return _moderation(self._json("POST", "/moderations/media", {"media_url": media_url, "is_video": is_video}))

    def analyze_image(self, image_url: str, prompt: str | None = None) -> VisionResult:
        """Describe an image (optionally guided by ``prompt``)."""
        return self._vision("/vision/analyze", {"image_url": image_url}, prompt)

    def image_tags(self, image_url: str) -> VisionResult:
        """Tags for an image."""
        return self._vision("/vision/tags", {"image_url": image_url}, None)

    def ocr(self, image_url: str) -> VisionResult:
        """The text in an image."""
        return self._vision("/vision/ocr", {"image_url": image_url}, None)

    def analyze_video(self, video_url: str, prompt: str | None = None) -> VisionResult:
        """Describe a video (optionally guided by ``prompt``)."""
        return self._vision("/vision/video", {"video_url": video_url}, prompt)

    def _vision(self, path: str, body: dict[str, Any], prompt: str | None) -> VisionResult:
        if prompt is not None:
            body["user_prompt"] = prompt
        data = self._json("POST", path, body)
        return VisionResult(str(data.get("result") or ""), _total(data))


def _message(role: Any, content: Any) -> dict[str, Any]:
    if role not in _ROLES:
        raise ConfigurationError(f"role must be one of {', '.join(sorted(_ROLES))}, got {role!r}", provider=PROVIDER)
    if not isinstance(content, str):
        raise ConfigurationError(f"message content must be text, got {type(content).__name__}", provider=PROVIDER)
    return {"role": role, "content": content}


def _total(data: Mapping[str, Any]) -> int | None:
    usage = data.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, Mapping) else None
    return total if isinstance(total, int) else None


def _moderation(data: Mapping[str, Any]) -> Moderation:
    return Moderation(str(data.get("category") or ""), float(data.get("score") or 0.0), _total(data))

