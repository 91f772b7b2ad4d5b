"""`ModelSocketClient`: one connection to a ModelSocket server, and the sequences opened on it."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Mapping

from ..._cancel import CancelToken
from ..._closing import Closing
from ...errors import APIConnectionError, ConfigurationError, StreamError
from ...hooks import check_hooks
from ...retry import Timeout
from ._connection import Connection, open_connection
from ._generation import toolbox_of
from ._sequence import Seq
from ._wire import PROVIDER

if TYPE_CHECKING:
    from ...tools import Toolbox

__all__ = ["DEFAULT_URL", "ModelSocketClient"]

DEFAULT_URL = "wss://models.mixlayer.ai/ws"


class ModelSocketClient(Closing):
    """A connection to a ModelSocket server, for working with sequences directly.

    Make one with `connect`; close it (or use ``with``) to close its sequences and its reader thread.

    Example::

        with ModelSocketClient.connect() as client:            # MODELSOCKET_URL, MODELSOCKET_API_KEY
            seq = client.open("meta/llama3.1-8b-instruct-free")
            seq.append("Write a haiku about the sea.")
            print(seq.generate(temperature=0.7).result().text)
            other = seq.fork()                                  # shares the context so far
    """

    def __init__(self, connection: Connection, hooks: tuple[Any, ...] = ()) -> None:
        self._conn = connection
        self.hooks = hooks  # given to every stream of its sequences (generate, tool_return)
        self._lock = threading.Lock()
        self._seqs: dict[str, Seq] = {}
        self._closed = False

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: Timeout | float | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        keepalive: float | None = None,
        hooks: Any = None,
    ) -> ModelSocketClient:
        """Open the WebSocket (``url`` else ``MODELSOCKET_URL`` else the public endpoint).

        The key (else ``MODELSOCKET_API_KEY``) is sent as ``Authorization: Bearer`` on the
        handshake, only when there is one. ``timeout`` is seconds or a `Timeout`: ``connect``
        bounds the handshake, ``read`` the wait for each event. ``keepalive`` (seconds, off by
        default): after that long without a frame from the server, send a ping; if nothing comes
        back within as long again, the connection is given up and every pending command fails.
        Pings from the server are always answered. ``hooks`` (one object or a list, as a
        streamer's ``hooks=``) observe every stream of the client's sequences (`Seq.generate`,
        `Seq.tool_return`), after the process's default hooks (`llmstreamer.set_default_hooks`).

        Raises:
            APIConnectionError: the server cannot be reached, or redirected the handshake.
            APIStatusError: the server refused the handshake (401, 429...).
        """
        url = url or os.environ.get("MODELSOCKET_URL") or DEFAULT_URL
        if api_key is None:
            api_key = os.environ.get("MODELSOCKET_API_KEY") or None
        if keepalive is not None and (isinstance(keepalive, bool) or not (isinstance(keepalive, (int, float)) and keepalive > 0)):
            raise ConfigurationError(f"keepalive must be a positive number of seconds, got {keepalive!r}", provider=PROVIDER)
        found = check_hooks(hooks)  # a bad hooks object fails before the connection opens
        conn = open_connection(
            url, api_key, timeout=Timeout.of(timeout), headers=headers, verify=verify, keepalive=keepalive
        )
        return cls(conn, found)

    @property
    def url(self) -> str:
        """The server's WebSocket URL."""
        return self._conn.url

    @property
    def closed(self) -> bool:
        """True once `close` was called or the connection dropped."""
        return self._closed or not self._conn.alive

    def open(self, model: str, *, toolbox: Any = None, tool_prompt: str | None = None, skip_prelude: bool = False) -> Seq:
        """Open a sequence on ``model``.

        Args:
            model: The model id, e.g. ``"meta/llama3.1-8b-instruct-free"``.
            toolbox: Tools the model may call (a `Toolbox`, tools or functions, or a mapping
                name -> function); their definitions are appended as a system message.
            tool_prompt: The server-side instructions on how to format tool calls.
            skip_prelude: Skip the model author's default system prompt.
        """
        return self._open(model, toolbox_of(toolbox), tool_prompt, skip_prelude, CancelToken())

    def _open(self, model: str, box: Toolbox | None, tool_prompt: str | None, skip_prelude: bool, token: CancelToken) -> Seq:
        if self._closed:
            raise APIConnectionError("the client is closed", provider=PROVIDER)
        data: dict[str, Any] = {"model": model}
        if box is not None:
            data["tools_enabled"] = True
        if tool_prompt:
            data["tool_prompt"] = tool_prompt
        if skip_prelude:
            data["skip_prelude"] = True
        event = self._conn.wait_for(self._conn.command(data), token, "seq_opened")
        seq_id = event.get("seq_id")
        if not isinstance(seq_id, str) or not seq_id:
            raise StreamError("seq_opened came without a seq_id", provider=PROVIDER)
        seq = self._adopt(seq_id, model, box)
        if box is not None:
            from ...tools import tool_prompt as definitions

            try:
                seq._append(definitions(box), "system", False, token)
            except BaseException:
                seq._discard()
                raise
        return seq

    def _adopt(self, seq_id: str, model: str, box: Toolbox | None) -> Seq:
        seq = Seq(self, seq_id, model, box)
        with self._lock:
            closed = self._closed
            if not closed:
                self._seqs[seq_id] = seq
        if closed:  # the client closed while the sequence was opening
            seq._discard()
            raise APIConnectionError("the client is closed", provider=PROVIDER)
        return seq

    def _forget(self, seq: Seq) -> None:
        """Stop tracking a closed sequence."""
        with self._lock:
            if self._seqs.get(seq.id) is seq:
                del self._seqs[seq.id]

    def close(self) -> None:
        """Close every open sequence, fail pending streams (once each) and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            seqs = list(self._seqs.values())
            self._seqs.clear()
        self._conn.close([seq.id for seq in seqs if seq._mark_closed()])

    def __repr__(self) -> str:
        return f"<ModelSocketClient {self.url} {'closed' if self.closed else 'open'}>"
