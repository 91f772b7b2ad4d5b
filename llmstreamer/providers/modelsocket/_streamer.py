"""`ModelSocketStreamer`: ``stream_chat`` over ModelSocket sequences, one-shot or kept by a `Conversation`."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any, Iterator

from ..._cancel import CancelToken
from ..._embed import Batch, EmbedOptions
from ..._options import Options
from ...errors import ConfigurationError, LLMStreamError
from ...models import Event, Message
from ...provider import ProviderSpec, RoundContext, Streamer
from ._client import DEFAULT_URL, ModelSocketClient
from ._embed import embed_batch
from ._generation import Outcome, check_options, toolbox_of
from ._sequence import SEQ_OPTIONS, Seq
from ._wire import PROVIDER

if TYPE_CHECKING:
    from ...tools import Toolbox

__all__ = ["ModelSocketStreamer"]

log = logging.getLogger(__name__)

_GENERATED = frozenset({"assistant", "tool"})


class ModelSocketStreamer(Streamer):
    """Streams from a ModelSocket server (key ``MODELSOCKET_API_KEY``, URL ``MODELSOCKET_URL``).

    One WebSocket is shared by every stream of the streamer: it is opened on first use and
    closed by `close`. ``base_url`` is the ``ws://`` or ``wss://`` URL. Extra constructor
    keywords: ``tool_prompt`` (the server-side tool-call instructions), ``skip_prelude`` and
    ``keepalive`` (seconds of silence before a ping; see `ModelSocketClient.connect`).

    Options: ``system``, ``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``stop``,
    ``seed``, ``tools`` (run here when the model calls them; their definitions are appended as a
    system message; a call of a tool without a function ends the stream with ``finish_reason``
    ``"tool_calls"``, as on the HTTP providers), ``max_iterations``, ``confirm_tool``, ``extra`` (raw ``gen`` fields such as
    ``repeat_penalty``). Text only: images raise `ConfigurationError`. Tool calls and results
    found in the history are appended as plain text. The server reports no finish reason:
    ``length`` is inferred when ``max_tokens`` was reached without the hidden end-of-text token.

    In a `Conversation`, ``system`` and the tools are given when the sequence opens (new tools
    open a new sequence); a turn that fails or is cancelled closes its sequence, and the next
    turn opens a fresh one and appends the whole history.

    Example::

        s = ModelSocketStreamer(model="meta/llama3.1-8b-instruct-free")
        chat = Conversation(s)
        chat.send("Hi, I am Ada.").wait()
        chat.send("What is my name?").wait()      # appends only this line to the sequence
    """

    spec = ProviderSpec(
        name=PROVIDER,
        api_key_env="MODELSOCKET_API_KEY",
        requires_key=True,
        base_url_env="MODELSOCKET_URL",
        default_base_url=DEFAULT_URL,
        default_model="meta/llama3.1-8b-instruct-free",
        supported_options=SEQ_OPTIONS | {"tools"},
        terminal="seq_gen_finish",
        has_embeddings=True,
        embed_batch_size=64,
        embed_options={"dimensions", "task_type"},
    )

    def __init__(
        self,
        model: str | None = None,
        *,
        tool_prompt: str | None = None,
        skip_prelude: bool = False,
        keepalive: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if keepalive is not None and (isinstance(keepalive, bool) or not (isinstance(keepalive, (int, float)) and keepalive > 0)):
            raise ConfigurationError(
                f"keepalive must be a positive number of seconds, got {keepalive!r}", provider=self.provider
            )
        self.keepalive = keepalive
        if not self.base_url.startswith(("ws://", "wss://")):
            raise ConfigurationError(
                f"base_url must start with ws:// or wss://, got {self.base_url!r}", provider=self.provider
            )
        self.tool_prompt = tool_prompt
        self.skip_prelude = skip_prelude
        self._client: ModelSocketClient | None = None
        self._client_lock = threading.Lock()

    def _connect(self) -> ModelSocketClient:
        """The shared client, connected on first use and again after its connection dropped."""
        with self._client_lock:
            client = self._client
            if client is not None and not client.closed:
                return client
            if client is not None:
                client.close()  # joins the reader of the dead connection
            client = self._client = ModelSocketClient.connect(
                self.base_url,
                self.api_key.value,
                timeout=self.timeout,
                headers=self.headers,
                verify=self.verify,
                keepalive=self.keepalive,
            )
            return client

    def close(self) -> None:
        """Close the shared connection (and its sequences); the next stream connects again."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def embed_batch(self, texts: tuple[str, ...], options: EmbedOptions) -> Batch:
        """The ``embed`` command on a sequence opened for it (``_embed``)."""
        return embed_batch(lambda token: self._open_seq(None, token), texts, options)

    def open_state(self) -> _Session:
        return _Session(self)

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        if any(m.images for m in messages):
            raise ConfigurationError("ModelSocket takes text only: remove the images", provider=self.provider)
        check_options(options)  # bad tools fail here, before any request

    def _open_seq(self, box: Toolbox | None, token: CancelToken) -> Seq:
        client = self._connect()
        return client._open(self.model, box, self.tool_prompt, self.skip_prelude, token)

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        state: _Session | None = context.state
        if state is not None:
            return state._turn(messages, options, context.token)
        return self._single(messages, options, context.token)

    def _single(self, messages: tuple[Message, ...], options: Options, token: CancelToken) -> Iterator[Event]:
        """A bare ``stream_chat``: open a sequence, append everything, generate, close."""
        seq = self._open_seq(toolbox_of(options.tools), token)
        closed = False
        outcome = Outcome()
        try:
            seq._append_messages(_with_system(messages, options), token)
            yield from seq._stream(options, token, outcome)
            if outcome.finished:
                usage = seq._close_for_usage(token)
                closed = True
                if usage is not None:
                    yield Event("usage", data=usage)
        finally:
            if outcome.paused is not None:  # tool calls for the caller: the next call re-sends the history
                seq._conn.forget(outcome.paused.inbox)
            if not closed:
                seq._discard()
        yield Event("done")


class _Session:
    """The sequence a `Conversation` keeps open across turns (its ``context.state``).

    After a good turn the sequence holds the history; the next turn appends only the messages
    after it (the previous answer, already in the context, is skipped). A failed or cancelled
    turn closes the sequence, and the next one starts a fresh sequence with the whole history.
    """

    def __init__(self, streamer: ModelSocketStreamer) -> None:
        self._streamer = streamer
        self._lock = threading.Lock()
        self._seq: Seq | None = None
        self._history: tuple[Message, ...] = ()  # the messages the sequence holds (answers aside)
        self._tools: str | None = None  # the tool definitions the sequence was given
        self._busy = False

    def fork(self) -> _Session:
        """A session on a fork of the sequence (a fresh one if there is none to fork yet)."""
        child = _Session(self._streamer)
        with self._lock:
            seq = self._seq
            if seq is None or self._busy or seq.closed:
                return child
            try:
                forked = seq.fork()
            except LLMStreamError as exc:  # the child re-sends the history on its first turn
                log.debug("modelsocket: fork failed, the fork starts fresh: %s", exc)
                return child
            child._seq, child._history, child._tools = forked, self._history, self._tools
        return child

    def close(self) -> None:
        """Close the sequence now (it would otherwise stay open until the connection closes)."""
        with self._lock:
            seq, self._seq, self._history = self._seq, None, ()
        if seq is not None:
            seq._discard()

    def _turn(self, messages: tuple[Message, ...], options: Options, token: CancelToken) -> Iterator[Event]:
        with self._lock:
            seq, history, tools = self._seq, self._history, self._tools
            self._busy = True
        box = toolbox_of(options.tools)
        key = _tools_key(box)
        ok = False
        outcome = Outcome()
        try:
            known = len(history)
            if seq is None or seq.closed or tools != key or messages[:known] != history:
                if seq is not None:
                    seq._discard()
                seq = self._streamer._open_seq(box, token)
                new = _with_system(messages, options)
            else:
                seq.toolbox = box  # same definitions; run this turn's functions
                start = known
                while start < len(messages) and messages[start].role in _GENERATED:
                    start += 1  # the previous answer: generated into the context already
                new = list(messages[start:])
            seq._append_messages(new, token)
            yield from seq._stream(options, token, outcome)
            ok = outcome.finished
        finally:
            with self._lock:
                self._seq = seq if ok else None
                self._history = messages if ok else ()
                self._tools = key if ok else None
                self._busy = False
            if outcome.paused is not None and seq is not None:
                seq._conn.forget(outcome.paused.inbox)  # the next turn starts afresh with the results
            if not ok and seq is not None:
                seq._discard()
        yield Event("done")


def _with_system(messages: tuple[Message, ...], options: Options) -> list[Message]:
    return [Message.system(options.system), *messages] if options.system else list(messages)


def _tools_key(box: Toolbox | None) -> str | None:
    """What the sequence was told about the tools: their definitions, in their stable order."""
    return None if box is None else json.dumps(box.definitions(), sort_keys=True, default=str)
