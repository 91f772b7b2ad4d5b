"""``sqlite:///path.db``: sessions in one SQLite file (stdlib ``sqlite3``, WAL), the embedded default.

Every write is one ``BEGIN IMMEDIATE`` transaction, so writers queue for the file lock instead of
failing half-way; a busy timeout makes them wait, and a lock that outlasts it becomes
`SessionBusyError`, never a raw ``database is locked``. Connections are pooled: each is used by
one thread at a time, and never across a fork. Messages are rows, so appending a turn writes a few rows and one
summary update, not the whole conversation.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ConfigurationError, LLMStreamError, SessionBusyError
from ._base import Commit, SessionStore

if TYPE_CHECKING:
    from ._values import Session, SessionInfo

__all__ = ["SQLiteStore"]

BUSY_TIMEOUT = 10.0  # seconds a writer waits for the file lock before SessionBusyError
POOL_SIZE = 8  # idle connections kept for reuse, per kind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, name TEXT UNIQUE, labels TEXT NOT NULL, provider TEXT NOT NULL,
    model TEXT NOT NULL, system TEXT, options TEXT NOT NULL, created REAL NOT NULL,
    modified REAL NOT NULL, overhead INTEGER NOT NULL, head TEXT, message_count INTEGER NOT NULL,
    tokens INTEGER NOT NULL, node_count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_modified ON sessions (modified DESC, created DESC);
CREATE TABLE IF NOT EXISTS labels (
    session_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (session_id, key));
CREATE INDEX IF NOT EXISTS labels_by_value ON labels (key, value);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (session_id, seq));
CREATE TABLE IF NOT EXISTS leases (session_id TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL);
"""

_COLUMNS = "id, name, labels, provider, model, system, options, created, modified, overhead, head"
_INFO = "id, name, labels, provider, model, created, modified, message_count, tokens"


class SQLiteStore(SessionStore):
    """Sessions in the SQLite database at ``path`` (created 0600, its directory 0700 if new)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.url = "sqlite:///" + self.path
        self._pool_lock = threading.Lock()
        self._pools: dict[bool, list[sqlite3.Connection]] = {False: [], True: []}
        self._pid = os.getpid()
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise ConfigurationError(f"cannot open the session database {self.path}: {exc.strerror}") from exc
        with self._errors():
            with self._connection() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            with self._write() as c:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)

    # --- connections and errors -----------------------------------------------------------------

    @contextmanager
    def _connection(self, lease: bool = False) -> Iterator[sqlite3.Connection]:
        """An idle connection from the pool (a new one if none is idle), used by one thread at a time.

        Sessions are written with ``synchronous=FULL``; leases on connections with ``NORMAL``
        (a lease need not survive a power cut, so taking one costs no fsync). A forked child
        starts with an empty pool: a connection never crosses a fork.
        """
        with self._pool_lock:
            if self._pid != os.getpid():
                self._pools, self._pid = {False: [], True: []}, os.getpid()
            pool = self._pools[lease]
            conn = pool.pop() if pool else None
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL" if lease else "PRAGMA synchronous=FULL")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.close()  # an error left it unusable: do not hand it to the next caller
            else:
                with self._pool_lock:
                    keep = len(self._pools[lease]) < POOL_SIZE
                    if keep:
                        self._pools[lease].append(conn)
                if not keep:
                    conn.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The one boundary where sqlite3 errors become llmstreamer errors."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise SessionBusyError(f"the session database {self.path} stayed locked for {BUSY_TIMEOUT:g} s") from exc
            raise LLMStreamError(f"session database {self.path}: {text}") from exc
        except sqlite3.IntegrityError as exc:
            raise ConfigurationError(f"session database {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise LLMStreamError(f"session database {self.path} is unreadable: {exc}") from exc

    @contextmanager
    def _write(self, lease: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back if it raises."""
        with self._connection(lease) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in it sees the same state."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._pool_lock:
            pools, self._pools = self._pools, {False: [], True: []}
        for conn in pools[False] + pools[True]:
            conn.close()

    # --- reading -----------------------------------------------------------------------------------

    def _find(self, key: str) -> Session | None:
        from ._values import Session, SessionMessage, is_session_id

        column = "id" if is_session_id(key) else "name"
        with self._errors(), self._snapshot() as conn:  # one snapshot for the header and the messages
            row = conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE {column} = ?", (key,)).fetchone()
            bodies = []
            if row is not None:
                bodies = conn.execute("SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (row[0],)).fetchall()
        if row is None:
            return None
        try:
            header = dict(zip(_COLUMNS.split(", "), row))
            header["labels"] = json.loads(header["labels"])
            header["options"] = json.loads(header["options"])
            nodes = [SessionMessage.from_dict(json.loads(b)) for (b,) in bodies]
            return Session.from_dict(header, nodes)
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMStreamError(f"session {row[0]} in {self.path} is corrupt: {exc}") from exc

    def _list(self, labels: dict[str, str], offset: int, limit: int) -> tuple[list[SessionInfo], int]:
        from ._values import SessionInfo

        where = " AND ".join("id IN (SELECT session_id FROM labels WHERE key = ? AND value = ?)" for _ in labels)
        args: list[Any] = [x for kv in labels.items() for x in kv]
        clause = f" WHERE {where}" if where else ""
        with self._errors(), self._snapshot() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM sessions{clause}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_INFO} FROM sessions{clause} ORDER BY modified DESC, created DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        out = [SessionInfo(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]
        return out, int(total)

    # --- writing -----------------------------------------------------------------------------------

    def _create(self, session: Session) -> None:
        info = session.info
        with self._errors(), self._write() as conn:
            taken = conn.execute(
                "SELECT id FROM sessions WHERE id = ? OR (name IS NOT NULL AND name = ?)", (session.id, session.name)
            ).fetchone()
            if taken is not None:
                what = f"named {session.name!r}" if taken[0] != session.id else f"with id {session.id}"
                raise ConfigurationError(f"a session {what} exists")
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id, session.name, json.dumps(dict(session.labels)), session.provider, session.model,
                    session.system, json.dumps(dict(session.options)), session.created, session.modified,
                    session.overhead, session.head, info.message_count, info.tokens, len(session.nodes),
                ),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO labels VALUES (?, ?, ?)", [(session.id, k, v) for k, v in session.labels.items()]
            )
            conn.executemany(
                "INSERT INTO messages VALUES (?, ?, ?)",
                [(session.id, i, json.dumps(n.to_dict())) for i, n in enumerate(session.nodes)],
            )

    def _update(self, session_id: str, changes: dict[str, Any], modified: float) -> None:
        values = {k: json.dumps(v) if k in ("labels", "options") else v for k, v in changes.items()}
        values["modified"] = modified
        with self._errors(), self._write() as conn:
            if changes.get("name") is not None:
                taken = conn.execute(
                    "SELECT id FROM sessions WHERE name = ? AND id != ?", (changes["name"], session_id)
                ).fetchone()
                if taken is not None:
                    raise ConfigurationError(f"a session named {changes['name']!r} exists")
            sets = ", ".join(f"{k} = ?" for k in values)  # keys come from SETTINGS, never from users
            found = conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", [*values.values(), session_id])
            if found.rowcount == 0:
                raise ConfigurationError(f"no session {session_id!r} in {self.url}")
            if "labels" in changes:
                conn.execute("DELETE FROM labels WHERE session_id = ?", (session_id,))
                conn.executemany(
                    "INSERT INTO labels VALUES (?, ?, ?)", [(session_id, k, v) for k, v in changes["labels"].items()]
                )

    def _delete(self, session_id: str) -> None:
        with self._errors(), self._write() as conn:
            for table, column in (("sessions", "id"), ("labels", "session_id"), ("messages", "session_id"),
                                  ("leases", "session_id")):  # fmt: skip
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (session_id,))

    def _try_lease(self, session_id: str, token: str, ttl: float) -> bool:
        now = time.time()
        with self._errors(), self._write(lease=True) as conn:
            row = conn.execute("SELECT token, expires FROM leases WHERE session_id = ?", (session_id,)).fetchone()
            if row is not None and row[0] != token and row[1] > now:
                return False
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (session_id, token, now + ttl))
            return True

    def _renew_lease(self, session_id: str, token: str, ttl: float) -> bool:
        with self._errors(), self._write(lease=True) as conn:
            found = conn.execute(
                "UPDATE leases SET expires = ? WHERE session_id = ? AND token = ?", (time.time() + ttl, session_id, token)
            )
            return found.rowcount == 1

    def _release_lease(self, session_id: str, token: str) -> None:
        with self._errors(), self._write(lease=True) as conn:
            conn.execute("DELETE FROM leases WHERE session_id = ? AND token = ?", (session_id, token))

    def _commit(self, session_id: str, token: str, commit: Commit) -> None:
        with self._errors(), self._write() as conn:
            held = conn.execute("SELECT token FROM leases WHERE session_id = ?", (session_id,)).fetchone()
            if held is None or held[0] != token:
                raise SessionBusyError(f"session {session_id}: the turn lost its lease; nothing was stored")
            row = conn.execute("SELECT node_count FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise ConfigurationError(f"session {session_id} was deleted during the turn")
            start = int(row[0])
            conn.executemany(
                "INSERT INTO messages VALUES (?, ?, ?)",
                [(session_id, start + i, json.dumps(n.to_dict())) for i, n in enumerate(commit.nodes)],
            )
            conn.execute(
                "UPDATE sessions SET head = ?, overhead = COALESCE(?, overhead), modified = ?, message_count = ?,"
                " tokens = ?, node_count = ? WHERE id = ?",
                (commit.head, commit.overhead, commit.modified, commit.message_count, commit.tokens,
                 start + len(commit.nodes), session_id),
            )  # fmt: skip
