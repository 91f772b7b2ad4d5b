"""`SessionStore`, the one protocol every session store implements, and `Lease`, a turn's hold on a session.

A store subclass implements the private primitives (``_find``, ``_create``, ``_list``,
``_update``, ``_delete``, ``_try_lease``, ``_renew_lease``, ``_release_lease``, ``_commit``);
this base validates arguments, resolves ids and names, and waits for leases.
"""

from __future__ import annotations

import abc
import builtins
import time
import uuid
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .._closing import Closing
from ..errors import ConfigurationError, LLMStreamError, SessionBusyError

if TYPE_CHECKING:
    from ._values import Session, SessionInfo, SessionMessage

__all__ = ["SETTINGS", "Commit", "Lease", "SessionStore"]

# The fields `SessionStore.update` may change.
SETTINGS = frozenset({"name", "labels", "provider", "model", "system", "options"})
_POLL_MIN = 0.002
_POLL_MAX = 0.05


@attrs.frozen
class Commit:
    """What one turn (or a branch switch) writes to a session, atomically.

    Attributes:
        nodes: New messages to append (parents before children).
        head: The new current leaf.
        overhead: The new overhead, or None to keep it.
        message_count: Messages on the new current branch (for listings).
        tokens: Tokens of the new current branch, overhead included (for listings).
        modified: The new modification time.
    """

    nodes: tuple[SessionMessage, ...]
    head: str | None
    overhead: int | None
    message_count: int
    tokens: int
    modified: float = attrs.field(factory=time.time)


class Lease:
    """A turn's exclusive hold on one session, in the store, across threads and processes.

    It expires ``ttl`` seconds after it was taken or last renewed, so a crashed process cannot
    hold a session for ever. Use it as a context manager, or call `release`.
    """

    def __init__(self, store: SessionStore, session_id: str, token: str, ttl: float) -> None:
        self.store = store
        self.session_id = session_id
        self.token = token
        self.ttl = ttl
        self.released = False

    def renew(self) -> bool:
        """Extend the lease by ``ttl``; False if it was lost (it expired and another turn took it)."""
        return self.store._renew_lease(self.session_id, self.token, self.ttl)

    def commit(self, commit: Commit) -> None:
        """Write ``commit`` to the session if this lease still holds it.

        Raises:
            SessionBusyError: the lease was lost; nothing was written.
        """
        self.store._commit(self.session_id, self.token, commit)

    def release(self) -> None:
        """Give the session up (idempotent)."""
        if not self.released:
            self.released = True
            self.store._release_lease(self.session_id, self.token)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<Lease {self.session_id} {'released' if self.released else 'held'}>"


class SessionStore(abc.ABC, Closing):
    """Where sessions live: ``create``, ``get``, ``list``, ``update``, ``delete``, and leases for turns.

    Open one with `llmstreamer.open_session_store`. Every method is safe to call from many
    threads; stores other than ``memory://`` are shared by processes too.
    """

    url: str = ""

    # --- the public protocol --------------------------------------------------------------------

    def create(self, session: Session) -> Session:
        """Store a new session and return it.

        Raises:
            ConfigurationError: its name or id is taken.
        """
        from ._values import Session

        if not isinstance(session, Session):
            raise ConfigurationError(f"create() takes a Session, got {type(session).__name__}")
        self._create(session)
        return session

    def find(self, id_or_name: str) -> Session | None:
        """The session with this id or name, or None."""
        return self._find(self._key(id_or_name))

    def get(self, id_or_name: str) -> Session:
        """The session with this id or name.

        Raises:
            ConfigurationError: there is none.
        """
        session = self.find(id_or_name)
        if session is None:
            raise ConfigurationError(f"no session {id_or_name!r} in {self.url}")
        return session

    def list(
        self, labels: Mapping[str, str] | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[SessionInfo], int]:
        """A page of sessions, newest modified first, and how many match in all.

        Args:
            labels: Only sessions that carry every one of these labels.
            offset: How many matching sessions to skip.
            limit: At most this many in the page.
        """
        from ._values import check_labels

        wanted = check_labels(labels)
        if not isinstance(offset, int) or not isinstance(limit, int) or offset < 0 or limit < 0:
            raise ConfigurationError(f"offset and limit must be integers >= 0, got {offset!r}, {limit!r}")
        return self._list(wanted, offset, limit)

    def update(self, id_or_name: str, **changes: Any) -> Session:
        """Change a session's ``name``, ``labels``, ``provider``, ``model``, ``system`` or ``options``.

        Raises:
            ConfigurationError: no such session, an unknown field, or the new name is taken.
        """
        from ._values import check_labels, check_name

        unknown = set(changes) - SETTINGS
        if unknown:
            raise ConfigurationError(f"update() cannot change {', '.join(sorted(unknown))}")
        if "name" in changes:
            changes["name"] = check_name(changes["name"])
        if "labels" in changes:
            changes["labels"] = check_labels(changes["labels"])
        if "options" in changes:
            changes["options"] = dict(changes["options"] or {})
        session = self.get(id_or_name)
        self._update(session.id, changes, time.time())
        return self.get(session.id)

    def delete(self, id_or_name: str) -> None:
        """Remove a session and all its messages.

        Raises:
            ConfigurationError: there is no such session.
        """
        from ._values import is_session_id

        key = self._key(id_or_name)
        try:
            session = self._find(key)
        except LLMStreamError as exc:  # a corrupt session can still be deleted by its id
            if isinstance(exc, ConfigurationError) or not is_session_id(key):
                raise
            self._delete(key)
            return
        if session is None:
            raise ConfigurationError(f"no session {id_or_name!r} in {self.url}")
        self._delete(session.id)

    def lease(self, session_id: str, *, timeout: float = 30.0, ttl: float = 30.0) -> Lease:
        """Hold the session for a turn: wait up to ``timeout`` seconds for other turns to finish.

        Raises:
            SessionBusyError: another turn held it for all of ``timeout``.
        """
        from ._values import is_session_id

        if not is_session_id(session_id):
            raise ConfigurationError(f"not a session id: {session_id!r}")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        delay = _POLL_MIN
        while not self._try_lease(session_id, token, ttl):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionBusyError(f"session {session_id} is busy with another turn (waited {timeout:g} s)")
            time.sleep(min(delay, remaining))  # another process may hold it: nothing to wait on but time
            delay = min(delay * 2, _POLL_MAX)
        return Lease(self, session_id, token, ttl)

    def close(self) -> None:
        """Release connections and files (the store is not usable afterwards)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def _key(self, id_or_name: str) -> str:
        if not isinstance(id_or_name, str) or not id_or_name or "\x00" in id_or_name:
            raise ConfigurationError(f"a session id or name must be non-empty text without NUL, got {id_or_name!r}")
        return id_or_name

    # --- what a store implements ------------------------------------------------------------------

    @abc.abstractmethod
    def _find(self, key: str) -> Session | None:
        """The session whose id (when ``key`` is shaped like one) or name is ``key``."""

    @abc.abstractmethod
    def _create(self, session: Session) -> None:
        """Store a new session; `ConfigurationError` if its id or name is taken."""

    @abc.abstractmethod
    def _list(self, labels: dict[str, str], offset: int, limit: int) -> tuple[builtins.list[SessionInfo], int]:
        """A page of summaries, newest modified first, and the total count."""

    @abc.abstractmethod
    def _update(self, session_id: str, changes: dict[str, Any], modified: float) -> None:
        """Apply validated setting changes; `ConfigurationError` if a new name is taken."""

    @abc.abstractmethod
    def _delete(self, session_id: str) -> None:
        """Remove the session, its messages and its lease."""

    @abc.abstractmethod
    def _try_lease(self, session_id: str, token: str, ttl: float) -> bool:
        """Take the lease if it is free or expired; never block."""

    @abc.abstractmethod
    def _renew_lease(self, session_id: str, token: str, ttl: float) -> bool:
        """Extend the lease if ``token`` still holds it."""

    @abc.abstractmethod
    def _release_lease(self, session_id: str, token: str) -> None:
        """Drop the lease if ``token`` holds it."""

    @abc.abstractmethod
    def _commit(self, session_id: str, token: str, commit: Commit) -> None:
        """Append nodes and move the head atomically; `SessionBusyError` unless ``token`` holds the lease."""
