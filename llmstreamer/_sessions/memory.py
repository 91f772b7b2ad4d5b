"""``memory://``: sessions in a dict of this process (tests, scripts, one-worker servers)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError, SessionBusyError
from ._base import Commit, SessionStore

if TYPE_CHECKING:
    from ._values import Session, SessionInfo

__all__ = ["MemoryStore"]


class MemoryStore(SessionStore):
    """Sessions kept in this process's memory; lost when it exits."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._names: dict[str, str] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    def _find(self, key: str) -> Session | None:
        with self._lock:
            found = self._sessions.get(key)
            if found is None and key in self._names:
                found = self._sessions.get(self._names[key])
            return found

    def _create(self, session: Session) -> None:
        with self._lock:
            if session.id in self._sessions:
                raise ConfigurationError(f"a session with id {session.id} exists")
            if session.name is not None:
                if session.name in self._names:
                    raise ConfigurationError(f"a session named {session.name!r} exists")
                self._names[session.name] = session.id
            self._sessions[session.id] = session

    def _list(self, labels: dict[str, str], offset: int, limit: int) -> tuple[list[SessionInfo], int]:
        with self._lock:
            sessions = list(self._sessions.values())
        found = [s for s in sessions if all(s.labels.get(k) == v for k, v in labels.items())]
        found.sort(key=lambda s: (s.modified, s.created), reverse=True)
        return [s.info for s in found[offset : offset + limit]], len(found)

    def _update(self, session_id: str, changes: dict[str, Any], modified: float) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise ConfigurationError(f"no session {session_id!r} in {self.url}")
            name = changes.get("name", session.name)
            if name != session.name:
                if name is not None and name in self._names:
                    raise ConfigurationError(f"a session named {name!r} exists")
                self._names.pop(session.name or "", None)
                if name is not None:
                    self._names[name] = session_id
            self._sessions[session_id] = attrs.evolve(session, modified=modified, **changes)

    def _delete(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None and session.name is not None:
                self._names.pop(session.name, None)
            self._leases.pop(session_id, None)

    def _try_lease(self, session_id: str, token: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(session_id)
            if held is not None and held[0] != token and held[1] > now:
                return False
            self._leases[session_id] = (token, now + ttl)
            return True

    def _renew_lease(self, session_id: str, token: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != token:
                return False
            self._leases[session_id] = (token, now + ttl)
            return True

    def _release_lease(self, session_id: str, token: str) -> None:
        with self._lock:
            held = self._leases.get(session_id)
            if held is not None and held[0] == token:
                del self._leases[session_id]

    def _commit(self, session_id: str, token: str, commit: Commit) -> None:
        with self._lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != token:
                raise SessionBusyError(f"session {session_id}: the turn lost its lease; nothing was stored")
            session = self._sessions.get(session_id)
            if session is None:
                raise ConfigurationError(f"session {session_id} was deleted during the turn")
            overhead = session.overhead if commit.overhead is None else commit.overhead
            self._sessions[session_id] = attrs.evolve(
                session,
                nodes=session.nodes + commit.nodes,
                head=commit.head,
                overhead=overhead,
                modified=commit.modified,
            )
