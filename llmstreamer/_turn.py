"""One turn of a `Conversation`: its callbacks, the stored messages it makes, and its lease.

The turn's callbacks wrap the user's: before the terminal callback fires, the turn stores what
it produced (the user's message and the answer, with metadata and token counts) and lets the
session go, so when ``handle.wait()`` returns the turn is already in the store.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable

from .callbacks import CALLBACK_NAMES
from .errors import LLMStreamError
from .models import Message, Response, Usage
from .sessions import SessionMessage, estimate_tokens

if TYPE_CHECKING:
    from ._engine import StreamHandle
    from ._sessions._base import Lease
    from .sessions import Session

log = logging.getLogger(__name__)

__all__ = ["Turn", "TurnHandle", "answer_nodes", "overhead_of"]

_renewers = itertools.count(1)


def message_id() -> str:
    """A fresh id for a stored message."""
    return uuid.uuid4().hex


def _usage_dict(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def answer_nodes(response: Response, parent: str | None) -> list[SessionMessage]:
    """The stored messages of an answer: one per message the turn added, chained from ``parent``.

    Each assistant message of round *i* counts the provider's output tokens of that round when
    the usage gives them; the final one carries the turn's metadata.
    """
    messages = response.messages or (response.message,)
    rounds = list(response.round_usage) or ([response.usage] if response.usage is not None else [])
    assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
    last = assistants[-1] if assistants else -1
    nodes = []
    for i, message in enumerate(messages):
        tokens = estimate_tokens(message)
        meta: dict[str, Any] = {}
        if message.role == "assistant":
            nth = assistants.index(i)
            usage = rounds[nth] if nth < len(rounds) else None
            if usage is not None and usage.output_tokens > 0:
                tokens = usage.output_tokens
            meta = {"provider": response.provider, "model": response.model, "request_id": response.request_id}
            if i == last:
                meta.update(
                    finish_reason=response.finish_reason,
                    usage=_usage_dict(response.usage),
                    time_to_first_token=response.time_to_first_token,
                    duration=response.duration,
                )
            else:
                meta.update(finish_reason="tool_calls", usage=_usage_dict(usage))
        node = SessionMessage(message_id(), parent, message, tokens, meta)
        nodes.append(node)
        parent = node.id
    return nodes


def overhead_of(response: Response, sent: list[SessionMessage]) -> int | None:
    """Input tokens of the first round beyond the messages sent (system prompt, tool schemas)."""
    first = response.round_usage[0] if response.round_usage else response.usage
    if first is None or first.input_tokens <= 0:
        return None
    return max(0, first.input_tokens - sum(n.tokens for n in sent))


class _Renewer:
    """A thread that renews a lease every third of its ttl until stopped."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name=f"llmstreamer-lease-{next(_renewers)}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.lease.ttl / 3):
            try:
                if not self.lease.renew():
                    self.lost = True
                    return
            except LLMStreamError as exc:  # the store is unreachable for now: try again next time
                log.debug("could not renew the lease of session %s: %s", self.lease.session_id, exc)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not threading.current_thread():
            self.thread.join()


class Turn:
    """The bookkeeping of one turn; its callbacks wrap the user's.

    Args:
        tree: The session as it was when the turn started (under the lease).
        parent: The id of the message the answer follows (the new user message's parent, or
            for a retry the user message itself).
        user: The new user message, or None (a retry answers an existing one).
        lease: The turn's hold on the stored session, or None without a store.
        finished: Called with the new tree (None when nothing was stored) and whether the turn
            succeeded, once it is settled, before the user's terminal callback.
        inner: The user's callbacks.
        keep_partial: Store the user's message and the partial answer of a failed turn.
    """

    def __init__(
        self,
        tree: Session,
        parent: str | None,
        user: Message | None,
        lease: Lease | None,
        finished: Callable[[Session | None, bool], None],
        inner: Any,
        *,
        keep_partial: bool = False,
    ) -> None:
        self.tree = tree
        self.sent = list(tree.path(parent)) if parent is not None else []
        self.user = SessionMessage(message_id(), parent, user, estimate_tokens(user)) if user is not None else None
        self.parent = self.user.id if self.user is not None else parent
        self.lease = lease
        self.finished = finished
        self.inner = inner
        self.keep_partial = keep_partial
        self.error: LLMStreamError | None = None
        self.renewer: _Renewer | None = None

    def begin(self) -> None:
        """Keep the lease alive while the stream runs (call once the stream is about to start)."""
        if self.lease is not None:
            self.renewer = _Renewer(self.lease)

    @property
    def history(self) -> tuple[Message, ...]:
        """The messages the model sees: the path to the parent, and the new user message."""
        user = (self.user.message,) if self.user is not None else ()
        return tuple(n.message for n in self.sent) + user

    def __getattr__(self, name: str) -> Any:
        if name in CALLBACK_NAMES:
            return getattr(self.inner, name, None)
        raise AttributeError(name)

    def _store(self, answer: list[SessionMessage], overhead: int | None) -> Session:
        """Write the turn's messages, then let the session go; the new tree."""
        import attrs

        from ._sessions._base import Commit

        nodes = ([self.user] if self.user is not None else []) + answer
        tree = self.tree
        new_overhead = tree.overhead if overhead is None else overhead
        head = nodes[-1].id if nodes else tree.head
        path = self.sent + nodes
        commit = Commit(tuple(nodes), head, overhead, len(path), new_overhead + sum(n.tokens for n in path))
        try:
            if self.lease is not None:
                self.lease.commit(commit)
        finally:
            if self.lease is not None:
                self.lease.release()
        return attrs.evolve(tree, nodes=tree.nodes + commit.nodes, head=head, overhead=new_overhead,
                            modified=commit.modified)  # fmt: skip

    def _stop_renewing(self) -> None:
        if self.renewer is not None:
            self.renewer.close()

    def on_finish(self, response: Response) -> None:
        self._stop_renewing()
        try:
            answer = answer_nodes(response, self.parent)
            tree = self._store(answer, overhead_of(response, self.sent + ([self.user] if self.user else [])))
        except LLMStreamError as exc:
            exc.partial = response
            self.error = exc
            self.finished(None, False)
            fn = getattr(self.inner, "on_error", None)
            if fn is not None:
                fn(exc)
            return
        self.finished(tree, True)
        fn = getattr(self.inner, "on_finish", None)
        if fn is not None:
            fn(response)

    def on_error(self, error: LLMStreamError) -> None:
        self._stop_renewing()
        tree = None
        try:
            partial = error.partial if isinstance(error.partial, Response) else None
            kept = partial is not None and (partial.text or partial.thinking or partial.tool_calls)
            if self.keep_partial and (kept or self.user is not None):
                answer = answer_nodes(partial, self.parent) if kept and partial is not None else []
                tree = self._store(answer, None)
            else:
                self._store_nothing()
        except LLMStreamError as exc:
            log.warning("the partial turn of session %s was not stored: %s", self.tree.id, exc)
        self.finished(tree, False)
        fn = getattr(self.inner, "on_error", None)
        if fn is not None:
            fn(error)

    def _store_nothing(self) -> None:
        self._stop_renewing()
        if self.lease is not None:
            self.lease.release()

    def abandon(self) -> None:
        """Let the session go when the stream could not even start."""
        self._store_nothing()


class TurnHandle:
    """The running turn of `Conversation.send`: a `StreamHandle` whose ``result()`` also reports
    a failure to store the answer (`SessionBusyError` when the turn lost its lease)."""

    def __init__(self, handle: StreamHandle, turn: Turn) -> None:
        self._handle = handle
        self._turn = turn

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn is stored and its terminal callback has returned."""
        return self._handle.wait(timeout)

    def result(self, timeout: float | None = None) -> Response:
        """The final `Response`; raises the stream's error, or the error that kept it from the store."""
        response = self._handle.result(timeout)
        if self._turn.error is not None:
            raise self._turn.error
        return response

    def cancel(self) -> None:
        """Stop the turn from any thread; nothing is stored (unless ``keep_partial``)."""
        self._handle.cancel()

    def done(self) -> bool:
        """True once the terminal callback has returned."""
        return self._handle.done()

    def __repr__(self) -> str:
        return repr(self._handle).replace("<StreamHandle", "<TurnHandle", 1)
