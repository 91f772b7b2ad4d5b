"""Stored conversations: `Session` values, their message tree, and `open_session_store`.

A session is one conversation kept in a store: its settings (provider, model, system prompt,
options), a name and labels to find it by, and its messages as a **tree**. Each stored message
has an id and a parent; ``head`` is the last message of the current branch, and the model always
sees exactly the path from the root to ``head``. `Conversation.retry` and `Conversation.edit`
add siblings instead of overwriting, so no answer is ever lost.

Example::

    store = llmstreamer.open_session_store("sqlite:///chats.db")
    chat = llmstreamer.Conversation(llmstreamer.streamer("eliza"), store=store, name="demo")
    chat.send("I am sad").wait()
    later = llmstreamer.Conversation.load(store, "demo")     # another process, another day
    sessions, total = store.list(labels={"user": "ada"})
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._sessions._base import Lease, SessionStore
from ._sessions._values import (
    FORMAT_VERSION,
    IMAGE_TOKENS,
    MAX_NAME,
    Branch,
    Session,
    SessionInfo,
    SessionMessage,
    check_labels,
    check_name,
    estimate_tokens,
    is_session_id,
    new_id,
)
from .errors import ConfigurationError

__all__ = [
    "FORMAT_VERSION",
    "IMAGE_TOKENS",
    "MAX_NAME",
    "Branch",
    "Lease",
    "Session",
    "SessionInfo",
    "SessionMessage",
    "SessionStore",
    "check_labels",
    "check_name",
    "estimate_tokens",
    "is_session_id",
    "new_id",
    "open_session_store",
]


def open_session_store(url: str, *, prefix: str = "llmstreamer") -> SessionStore:
    """Open the session store at ``url``.

    ``memory://`` keeps sessions in this process; ``file:///dir`` keeps one JSON document per
    session in ``dir`` (written to a temporary file, fsynced and renamed); ``sqlite:///rel.db``
    and ``sqlite:////abs/path.db`` (as in SQLAlchemy) use the stdlib's SQLite in WAL mode;
    ``redis://host:port/db`` (or ``rediss://``) shares sessions between every worker and machine
    (the ``redis`` extra), under keys that start with ``prefix``.

    Raises:
        ConfigurationError: an unknown scheme, or a URL the store cannot use.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a session store URL must be text, got {type(url).__name__}")
    scheme = url.partition(":")[0].lower()
    if scheme == "memory":
        from ._sessions.memory import MemoryStore

        return MemoryStore()
    if scheme == "file":
        try:
            from ._sessions.files import FileStore
        except ImportError as exc:  # no fcntl: not a POSIX system
            raise ConfigurationError("the file:// session store needs POSIX file locks; use sqlite:///") from exc

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigurationError(f"a file store URL is file:///absolute/dir, got {url!r}")
        return FileStore(parts.path)
    if scheme == "sqlite":
        from ._sessions.sqlite import SQLiteStore

        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///") or ":memory:" in url:
            raise ConfigurationError(
                f"a SQLite store URL is sqlite:///relative.db or sqlite:////absolute/path.db, got {url!r}"
            )
        return SQLiteStore(url[len("sqlite:///") :])
    if scheme in ("redis", "rediss", "unix"):
        from ._sessions.redis import RedisStore

        return RedisStore(url, prefix=prefix)
    raise ConfigurationError(
        f"unknown session store {url!r}: use memory://, file:///dir, sqlite:///path.db or redis://host"
    )
