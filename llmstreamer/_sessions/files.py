"""``file:///dir``: one JSON document per session in a directory (POSIX: it locks with ``flock``).

Safety rules, each against a fault seen in stores of other projects:

- A document is never written in place: it goes to a temporary file that is fsynced, renamed over
  the old one with ``os.replace``, and the directory is fsynced, so a crash leaves the old
  version or the new one, never half of each.
- A read-modify-write of a session holds ``{id}.lock`` (``flock``), and a turn holds a lease in
  ``{id}.lease``, so two workers never overwrite each other's turns.
- File names are built only from session ids (checked UUIDs) and SHA-256 digests of names, so no
  id or name can point outside the directory. The directory is 0700 and the files 0600.
- A document that cannot be read is reported with its path, never skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ConfigurationError, LLMStreamError, SessionBusyError
from ._base import Commit, SessionStore

if TYPE_CHECKING:
    from ._values import Session, SessionInfo

__all__ = ["FileStore"]


class FileStore(SessionStore):
    """Sessions as ``{id}.json`` documents in ``directory`` (created 0700 if missing)."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.url = "file://" + self.directory
        self._names = os.path.join(self.directory, "names")
        try:
            for path in (self.directory, self._names):
                if not os.path.isdir(path):
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    os.chmod(path, 0o700)
        except OSError as exc:
            raise ConfigurationError(f"cannot use {self.directory} as a session store: {exc.strerror}") from exc
        self._cache_lock = threading.Lock()
        self._infos: dict[str, tuple[int, int, SessionInfo]] = {}  # id -> (mtime_ns, size, info)

    # --- files -------------------------------------------------------------------------------------

    def _file(self, session_id: str, suffix: str) -> str:
        from ._values import is_session_id

        if not is_session_id(session_id):  # the only way a name reaches a path; checked again here
            raise ConfigurationError(f"not a session id: {session_id!r}")
        return os.path.join(self.directory, session_id + suffix)

    def _name_file(self, name: str) -> str:
        return os.path.join(self._names, hashlib.sha256(name.encode("utf-8")).hexdigest())

    @contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``path`` (between threads and processes alike)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the lock

    def _write(self, path: str, data: bytes) -> None:
        """Replace ``path`` atomically and durably: temporary file, fsync, rename, fsync the directory."""
        tmp = os.path.join(self.directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _read(self, session_id: str) -> Session | None:
        from ._values import Session

        path = self._file(session_id, ".json")
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        try:
            session = Session.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, LLMStreamError) as exc:
            raise LLMStreamError(f"the session file {path} is corrupt ({exc}); delete or repair it") from exc
        if session.id != session_id:
            raise LLMStreamError(f"the session file {path} holds session {session.id}; delete or repair it")
        return session

    def _save(self, session: Session) -> None:
        data = json.dumps(session.to_dict(), separators=(",", ":"), ensure_ascii=False)
        self._write(self._file(session.id, ".json"), data.encode("utf-8"))

    # --- the store -----------------------------------------------------------------------------------

    def _find(self, key: str) -> Session | None:
        from ._values import is_session_id

        if is_session_id(key):
            return self._read(key)
        try:
            with open(self._name_file(key), encoding="utf-8") as fh:
                session_id = fh.read().strip()
        except FileNotFoundError:
            return None
        if not is_session_id(session_id):
            return None
        session = self._read(session_id)
        return session if session is not None and session.name == key else None  # a stale name file

    def _list(self, labels: dict[str, str], offset: int, limit: int) -> tuple[list[SessionInfo], int]:
        from ._values import is_session_id

        infos = []
        seen = set()
        with os.scandir(self.directory) as entries:
            for entry in entries:
                session_id = entry.name[:-5]
                if not entry.name.endswith(".json") or not is_session_id(session_id):
                    continue
                seen.add(session_id)
                info = self._info(session_id, entry.stat())
                if info is not None and all(info.labels.get(k) == v for k, v in labels.items()):
                    infos.append(info)
        with self._cache_lock:
            for gone in set(self._infos) - seen:
                del self._infos[gone]
        infos.sort(key=lambda i: (i.modified, i.created), reverse=True)
        return infos[offset : offset + limit], len(infos)

    def _info(self, session_id: str, stat: os.stat_result) -> SessionInfo | None:
        """The summary of a session document, cached while its mtime and size stay the same."""
        with self._cache_lock:
            cached = self._infos.get(session_id)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2]
        session = self._read(session_id)
        if session is None:  # deleted while listing
            return None
        info = session.info
        with self._cache_lock:
            self._infos[session_id] = (stat.st_mtime_ns, stat.st_size, info)
        return info

    def _claim_name(self, name: str, session_id: str) -> None:
        """Point ``name`` at ``session_id``, unless a live session has it (the store lock is held)."""
        path = self._name_file(name)
        owner = self._find(name)
        if owner is not None and owner.id != session_id:
            raise ConfigurationError(f"a session named {name!r} exists")
        self._write(path, session_id.encode())

    def _create(self, session: Session) -> None:
        with self._locked(os.path.join(self.directory, ".lock")):
            if os.path.exists(self._file(session.id, ".json")):
                raise ConfigurationError(f"a session with id {session.id} exists")
            if session.name is not None:
                self._claim_name(session.name, session.id)
            self._save(session)

    def _update(self, session_id: str, changes: dict[str, Any], modified: float) -> None:
        import attrs

        with self._locked(os.path.join(self.directory, ".lock")), self._locked(self._file(session_id, ".lock")):
            session = self._read(session_id)
            if session is None:
                raise ConfigurationError(f"no session {session_id!r} in {self.url}")
            name = changes.get("name", session.name)
            if name is not None and name != session.name:
                self._claim_name(name, session_id)
            self._save(attrs.evolve(session, modified=modified, **changes))
            if session.name is not None and name != session.name:
                os.unlink(self._name_file(session.name))

    def _delete(self, session_id: str) -> None:
        with self._locked(os.path.join(self.directory, ".lock")), self._locked(self._file(session_id, ".lock")):
            try:
                session = self._read(session_id)
            except LLMStreamError:
                session = None  # a corrupt session can still be deleted
            for path in (self._file(session_id, ".json"), self._file(session_id, ".lease")):
                if os.path.exists(path):
                    os.unlink(path)
            if session is not None and session.name is not None and os.path.exists(self._name_file(session.name)):
                os.unlink(self._name_file(session.name))
        os.unlink(self._file(session_id, ".lock"))

    # --- leases and turns ------------------------------------------------------------------------------

    def _lease_holder(self, session_id: str) -> tuple[str, float] | None:
        try:
            with open(self._file(session_id, ".lease"), encoding="utf-8") as fh:
                data = json.load(fh)
            return str(data["token"]), float(data["expires"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None  # a lease cut short by a crash: as good as expired

    def _put_lease(self, session_id: str, token: str, ttl: float) -> None:
        # Readers hold the session lock too, and a lease need not survive a crash: no fsync.
        data = json.dumps({"token": token, "expires": time.time() + ttl}).encode()
        fd = os.open(self._file(session_id, ".lease"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _try_lease(self, session_id: str, token: str, ttl: float) -> bool:
        with self._locked(self._file(session_id, ".lock")):
            held = self._lease_holder(session_id)
            if held is not None and held[0] != token and held[1] > time.time():
                return False
            self._put_lease(session_id, token, ttl)
            return True

    def _renew_lease(self, session_id: str, token: str, ttl: float) -> bool:
        with self._locked(self._file(session_id, ".lock")):
            held = self._lease_holder(session_id)
            if held is None or held[0] != token:
                return False
            self._put_lease(session_id, token, ttl)
            return True

    def _release_lease(self, session_id: str, token: str) -> None:
        with self._locked(self._file(session_id, ".lock")):
            held = self._lease_holder(session_id)
            if held is not None and held[0] == token:
                os.unlink(self._file(session_id, ".lease"))

    def _commit(self, session_id: str, token: str, commit: Commit) -> None:
        import attrs

        with self._locked(self._file(session_id, ".lock")):
            held = self._lease_holder(session_id)
            if held is None or held[0] != token:
                raise SessionBusyError(f"session {session_id}: the turn lost its lease; nothing was stored")
            session = self._read(session_id)
            if session is None:
                raise ConfigurationError(f"session {session_id} was deleted during the turn")
            overhead = session.overhead if commit.overhead is None else commit.overhead
            self._save(
                attrs.evolve(
                    session,
                    nodes=session.nodes + commit.nodes,
                    head=commit.head,
                    overhead=overhead,
                    modified=commit.modified,
                )
            )
