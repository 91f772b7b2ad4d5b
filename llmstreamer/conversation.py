"""`Conversation`: a history of messages for one streamer, kept across turns."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ._options import coerce_messages
from .errors import ConfigurationError
from .models import Message, Response

if TYPE_CHECKING:
    from ._engine import StreamHandle
    from .provider import Streamer

__all__ = ["Conversation"]


class Conversation:
    """A multi-turn chat with one streamer: each `send` adds the user's message and, when the
    answer is complete, the assistant's (thinking and tool calls kept).

    A failed or cancelled turn leaves the history as it was before it, so it can be sent again;
    its partial answer is on the error's ``partial``.

    Example::

        chat = Conversation(llmstreamer.streamer("eliza"))
        chat.send("I am sad about my mother", StreamCallbacks(on_content=print)).wait()
        chat.send("She never listens").wait()
        saved = json.dumps(chat.to_list())
    """

    def __init__(self, streamer: Streamer, messages: Iterable[Message | Mapping[str, Any]] = ()) -> None:
        self.streamer = streamer
        items = list(messages)
        self._messages: list[Message] = list(coerce_messages(items)) if items else []
        self._lock = threading.Lock()
        self._busy = False
        self._state = streamer.open_state()

    @property
    def messages(self) -> tuple[Message, ...]:
        """The history so far."""
        with self._lock:
            return tuple(self._messages)

    def send(self, text: str | Message, callbacks: Any = None, **options: Any) -> StreamHandle:
        """Send the next user message and stream the answer; see `Streamer.stream_chat`.

        Raises:
            ConfigurationError: the previous turn has not finished yet, or bad options.
        """
        message = text if isinstance(text, Message) else Message.user(text)
        with self._lock:
            if self._busy:
                raise ConfigurationError("the previous turn has not finished: wait for it before sending")
            from . import _engine  # on first use: import llmstreamer stays cheap

            history = (*self._messages, message)
            run = _engine.prepare(self.streamer, history, options, self._state)
            self._messages.append(message)
            self._busy = True
        return _engine.launch(run, callbacks, on_end=lambda outcome: self._end_turn(message, outcome))

    def _end_turn(self, message: Message, outcome: object) -> None:
        """Keep the answer of a finished turn; forget the message of a failed one (before the terminal callback)."""
        with self._lock:
            if isinstance(outcome, Response):
                self._messages.extend(outcome.messages)
            elif self._messages and self._messages[-1] is message:
                self._messages.pop()
            self._busy = False

    def reset(self) -> None:
        """Forget the history (and start a fresh provider session)."""
        with self._lock:
            self._messages.clear()
            close = getattr(self._state, "close", None)
            if close is not None:
                close()  # a stateful provider's server-side sequence is not needed any more
            self._state = self.streamer.open_state()

    def fork(self) -> Conversation:
        """An independent copy: same streamer, a copy of the history (a forked provider session)."""
        with self._lock:
            copy = Conversation(self.streamer)
            copy._messages = list(self._messages)
            if self._state is not None:
                copy._state = self._state.fork()
            return copy

    def to_list(self) -> list[dict[str, Any]]:
        """The history as JSON-ready dicts."""
        return [m.to_dict() for m in self.messages]

    @classmethod
    def from_list(cls, streamer: Streamer, data: Iterable[Mapping[str, Any]]) -> Conversation:
        """A conversation with the history read back from `to_list` output."""
        return cls(streamer, [Message.from_dict(d) for d in data])

    def to_json(self) -> str:
        """The history as a JSON document."""
        return json.dumps(self.to_list())

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return f"<Conversation {self.streamer!r} messages={len(self)}>"
