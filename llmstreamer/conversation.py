"""`Conversation`: a history of messages for one streamer, kept across turns, in memory or in a store."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import attrs

from ._options import coerce_messages
from ._sessions._base import Commit
from ._turn import Turn, TurnHandle, message_id
from .errors import ConfigurationError
from .models import Message, TextPart
from .sessions import Branch, Session, SessionMessage, estimate_tokens

if TYPE_CHECKING:
    from ._engine import StreamHandle
    from ._sessions._base import Lease, SessionStore
    from .provider import Streamer

__all__ = ["Conversation"]

_RUNTIME_ONLY = ("tools", "confirm_tool")  # options that hold functions: kept in memory, tools stored by name


def _chain(messages: Iterable[Message]) -> tuple[SessionMessage, ...]:
    nodes: list[SessionMessage] = []
    for message in messages:
        nodes.append(SessionMessage(message_id(), nodes[-1].id if nodes else None, message, estimate_tokens(message)))
    return tuple(nodes)


def _storable(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a session can keep: JSON values, and tools by name."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "tools" and value is not None:
            from .tools import Toolbox

            out[key] = list(Toolbox.of(value).names)
        elif key not in _RUNTIME_ONLY and value is not None:
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise ConfigurationError(f"the option {key!r} cannot be stored in a session: {value!r}") from None
            out[key] = value
    return out


class Conversation:
    """A multi-turn chat with one streamer: each `send` adds the user's message and, when the
    answer is complete, the assistant's (thinking and tool calls kept).

    Messages form a tree: `retry` answers the last user message again and `edit` rewrites an
    earlier one, each on a new branch, so nothing is overwritten; `branches` lists them and
    `switch` moves between them. The model always sees exactly the current branch.

    With a ``store`` (see `llmstreamer.open_session_store`) the conversation is a stored session:
    every finished turn is written with its metadata (provider, model, finish reason, usage,
    time to first token, duration, request id) before ``on_finish`` fires, and a turn holds the
    session (a lease, renewed while it streams) so turns from other threads or processes wait
    for it, up to ``lock_timeout`` seconds, then raise `SessionBusyError`. Without a store it
    lives in memory only.

    A failed or cancelled turn stores nothing and leaves the history as it was, so it can be
    sent again; its partial answer is on the error's ``partial``. With ``keep_partial=True``
    the user's message and the partial answer are kept instead (the answer's ``finish_reason``
    in its metadata says ``cancelled`` or ``error``).

    Args:
        streamer: Who answers.
        messages: A history to start from.
        store: Where the session lives; None keeps it in memory.
        name: A unique name to find the session by (stored sessions).
        labels: Identifier keys to text values, for `SessionStore.list` filters.
        system: A system prompt for every turn.
        options: Options for every turn (``temperature``, ``reasoning``, ``response_format``,
            ``tools``...); a turn's own options win. Tools are stored by name: pass them again
            after `load`.
        lock_timeout: Seconds a turn waits for another turn on the same session.
        lease_ttl: Seconds a turn's hold lasts without renewal (a crashed process's hold ends then).
        keep_partial: Keep the user's message and partial answer of failed turns.

    Example::

        chat = Conversation(llmstreamer.streamer("eliza"))
        chat.send("I am sad about my mother", StreamCallbacks(on_content=print)).wait()
        chat.send("She never listens").wait()
        saved = json.dumps(chat.to_list())

        store = llmstreamer.open_session_store("sqlite:///chats.db")
        chat = Conversation(llmstreamer.streamer("eliza"), store=store, name="demo")
        chat = Conversation.load(store, "demo")      # later, anywhere
    """

    def __init__(
        self,
        streamer: Streamer,
        messages: Iterable[Message | Mapping[str, Any]] = (),
        *,
        store: SessionStore | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        lock_timeout: float = 30.0,
        lease_ttl: float = 30.0,
        keep_partial: bool = False,
    ) -> None:
        items = list(messages)
        nodes = _chain(coerce_messages(items)) if items else ()
        given = dict(options or {})
        tree = Session(
            name=name, labels=labels, provider=streamer.provider, model=streamer.model, system=system,
            options=_storable(given), nodes=nodes, head=nodes[-1].id if nodes else None,
        )  # fmt: skip
        if store is None and (name is not None or labels):
            raise ConfigurationError("name and labels need a store: pass store=open_session_store(...)")
        if store is not None:
            store.create(tree)
        self._setup(streamer, store, tree, given, lock_timeout, lease_ttl, keep_partial)

    def _setup(
        self,
        streamer: Streamer,
        store: SessionStore | None,
        tree: Session,
        options: dict[str, Any],
        lock_timeout: float,
        lease_ttl: float,
        keep_partial: bool,
    ) -> None:
        self.streamer = streamer
        self.store = store
        self.lock_timeout = lock_timeout
        self.lease_ttl = lease_ttl
        self.keep_partial = keep_partial
        self._runtime = {k: options[k] for k in _RUNTIME_ONLY if options.get(k) is not None}
        self._tree = tree
        self._lock = threading.Lock()
        self._busy = False
        self._state = streamer.open_state()  # the provider's own state (a ModelSocket sequence)
        self._provider_head: str | None = tree.head  # the message the provider session continues from

    @classmethod
    def load(
        cls,
        store: SessionStore,
        id_or_name: str,
        streamer: Streamer | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        lock_timeout: float = 30.0,
        lease_ttl: float = 30.0,
        keep_partial: bool = False,
    ) -> Conversation:
        """Continue a stored session.

        Args:
            store: The store that holds it.
            id_or_name: Its id or name.
            streamer: Who answers; by default the session's own provider and model, through the
                registry.
            options: Options for every turn that cannot be stored, such as the ``tools`` again.
            lock_timeout: As for `Conversation`.
            lease_ttl: As for `Conversation`.
            keep_partial: As for `Conversation`.

        Raises:
            ConfigurationError: there is no such session.
        """
        tree = store.get(id_or_name)
        if streamer is None:
            from .registry import streamer as make

            streamer = make(f"{tree.provider}:{tree.model}" if tree.model else tree.provider)
        self = cls.__new__(cls)
        self._setup(streamer, store, tree, dict(options or {}), lock_timeout, lease_ttl, keep_partial)
        return self

    # --- what it holds --------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The session as this object last saw it (after its last turn, `refresh` or `load`)."""
        with self._lock:
            return self._tree

    @property
    def id(self) -> str:
        """The session id."""
        return self.session.id

    @property
    def name(self) -> str | None:
        """The session name."""
        return self.session.name

    @property
    def messages(self) -> tuple[Message, ...]:
        """The history so far: the messages of the current branch."""
        return self.session.messages

    @property
    def tokens(self) -> int:
        """Tokens of the current branch: provider counts where known, else estimates, plus the overhead."""
        return self.session.tokens

    def refresh(self) -> Session:
        """Read the session again from the store (other workers may have added turns)."""
        if self.store is not None:
            tree = self.store.get(self.id)
            with self._lock:
                self._tree = tree
        return self.session

    def branches(self) -> list[Branch]:
        """Every branch (by its leaf), oldest first; ``current`` marks the one the model sees."""
        return self.refresh().branches()

    # --- turns ------------------------------------------------------------------------------------

    def send(self, text: str | Message, callbacks: Any = None, **options: Any) -> TurnHandle:
        """Send the next user message and stream the answer; see `Streamer.stream_chat`.

        Raises:
            ConfigurationError: bad options, or (without a store) the previous turn has not
                finished yet.
            SessionBusyError: another turn held the stored session for all of ``lock_timeout``.
        """
        message = text if isinstance(text, Message) else Message.user(text)
        return self._begin(lambda tree: (tree.head, message), callbacks, options)

    def retry(self, callbacks: Any = None, **options: Any) -> TurnHandle:
        """Answer the last user message again, on a new branch beside the previous answer."""

        def choose(tree: Session) -> tuple[str | None, Message | None]:
            users = [n for n in tree.path() if n.message.role == "user"]
            if not users:
                raise ConfigurationError("there is no user message to answer again")
            return users[-1].id, None

        return self._begin(choose, callbacks, options)

    def edit(self, message_id: str, text: str, callbacks: Any = None, **options: Any) -> TurnHandle:
        """Replace an earlier user message (by id, or a unique prefix of it) on a new branch, and answer it.

        The edited message keeps its images; the original and its answers stay on their branch.
        """

        def choose(tree: Session) -> tuple[str | None, Message | None]:
            node = tree.node(message_id)
            if node.message.role != "user":
                raise ConfigurationError(f"message {node.id} is the {node.message.role}'s: only user messages can be edited")
            others = [p for p in node.message.content if not isinstance(p, TextPart)]
            return node.parent, Message("user", [TextPart(text), *others] if text else others)

        return self._begin(choose, callbacks, options)

    def _options(self, tree: Session, options: Mapping[str, Any]) -> dict[str, Any]:
        merged = {k: v for k, v in tree.options.items() if k not in _RUNTIME_ONLY}
        if tree.system is not None:
            merged["system"] = tree.system
        return {**merged, **self._runtime, **options}

    def _hold(self) -> Lease | None:
        """Take the stored session's lease (waiting up to lock_timeout); None without a store."""
        if self.store is None:
            return None
        return self.store.lease(self._tree.id, timeout=self.lock_timeout, ttl=self.lease_ttl)

    def _begin(
        self, choose: Callable[[Session], tuple[str | None, Message | None]], callbacks: Any, options: Mapping[str, Any]
    ) -> TurnHandle:
        lease = self._hold()
        turn: Turn | None = None
        try:
            tree = self.store.get(self._tree.id) if self.store is not None else None
            with self._lock:
                if lease is None and self._busy:
                    raise ConfigurationError("the previous turn has not finished: wait for it before sending")
                tree = tree if tree is not None else self._tree
                self._tree = tree
                parent, user = choose(tree)
                turn = Turn(tree, parent, user, lease, self._finished, callbacks, keep_partial=self.keep_partial)
                if user is None or parent != self._provider_head:
                    self._reset_provider()  # not a continuation: the provider must see the whole branch
                merged = self._options(tree, options)
                turn.begin()
                self._busy = True
                try:
                    handle = self._start(turn, merged)
                except BaseException:
                    self._busy = False
                    raise
        except BaseException:
            if turn is not None:
                turn.abandon()
            elif lease is not None:
                lease.release()
            raise
        return TurnHandle(handle, turn)

    def _start(self, turn: Turn, options: dict[str, Any]) -> StreamHandle:
        """Start the turn's stream: through `Streamer.stream_chat` (so a subclass that wraps it
        sees every turn), or, for a provider that keeps state across turns (a ModelSocket
        sequence), through the engine with that state as the stream's ``context.state``."""
        if self._state is None:
            return self.streamer.stream_chat(turn.history, turn, **options)
        from . import _engine  # on first use: import llmstreamer stays cheap

        return _engine.launch(_engine.prepare(self.streamer, turn.history, options, self._state), turn)

    def _finished(self, tree: Session | None, ok: bool) -> None:
        with self._lock:
            if tree is not None:
                self._tree = tree
            self._provider_head = tree.head if ok and tree is not None else None
            self._busy = False

    def _reset_provider(self) -> None:
        close = getattr(self._state, "close", None)
        if close is not None:
            close()  # a stateful provider's server-side sequence is not needed any more
        self._state = self.streamer.open_state()
        self._provider_head = None

    def _move(self, pick: Callable[[Session], str | None]) -> None:
        """Point the current branch at ``pick(tree)``, in the store too."""
        lease = self._hold()
        try:
            tree = self.store.get(self._tree.id) if self.store is not None else self._tree
            with self._lock:
                if lease is None and self._busy:
                    raise ConfigurationError("a turn is running: wait for it first")
                head = pick(tree)
                path = tree.path(head) if head is not None else ()
                commit = Commit((), head, None, len(path), tree.overhead + sum(n.tokens for n in path))
                if lease is not None:
                    lease.commit(commit)
                self._tree = attrs.evolve(tree, head=head, modified=commit.modified)
                self._reset_provider()
        finally:
            if lease is not None:
                lease.release()

    def switch(self, leaf_id: str) -> None:
        """Make the branch ending at ``leaf_id`` (an id or a unique prefix; any message works) current."""
        self._move(lambda tree: tree.node(leaf_id).id)

    def reset(self) -> None:
        """Start over with an empty history (and a fresh provider session); stored messages stay
        in the session as a branch of their own."""
        self._move(lambda tree: None)

    def fork(self) -> Conversation:
        """An independent copy of the current branch: same streamer, same store (a new, unnamed
        session there), a forked provider session."""
        with self._lock:
            tree = self._tree
            path = tree.path()
            copy = attrs.evolve(tree, id=Session().id, name=None, nodes=path)
            if self.store is not None:
                self.store.create(copy)
            other = Conversation.__new__(Conversation)
            other._setup(self.streamer, self.store, copy, dict(self._runtime), self.lock_timeout, self.lease_ttl,
                         self.keep_partial)  # fmt: skip
            if self._state is not None and self._provider_head == tree.head:
                other._state = self._state.fork()
            return other

    # --- plain history ----------------------------------------------------------------------------

    def to_list(self) -> list[dict[str, Any]]:
        """The history as JSON-ready dicts."""
        return [m.to_dict() for m in self.messages]

    @classmethod
    def from_list(cls, streamer: Streamer, data: Iterable[Mapping[str, Any]], **kwargs: Any) -> Conversation:
        """A conversation with the history read back from `to_list` output."""
        return cls(streamer, [Message.from_dict(d) for d in data], **kwargs)

    def to_json(self) -> str:
        """The history as a JSON document."""
        return json.dumps(self.to_list())

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        where = f" session={self.name or self.id}" if self.store is not None else ""
        return f"<Conversation {self.streamer!r}{where} messages={len(self)}>"
