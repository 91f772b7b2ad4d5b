"""The command line's stored sessions: ``chat --session``, ``sessions list|show|delete|export``, ``/retry``.

The default store is a SQLite file under the user's data directory; ``--store URL`` or the
``LLMSTREAMER_STORE`` variable choose another (any `llmstreamer.open_session_store` URL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .conversation import Conversation
    from .provider import Streamer
    from .sessions import Session, SessionStore

__all__ = ["add_chat_arguments", "add_commands", "default_store_url", "open_conversation", "slash"]

STORE_ENV = "LLMSTREAMER_STORE"
SLASH_HELP = "/retry answers again, /branches lists branches, /switch ID moves to one"


def default_store_url() -> str:
    """``$LLMSTREAMER_STORE``, else ``sessions.db`` in the user's data directory."""
    url = os.environ.get(STORE_ENV)
    if url:
        return url
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return "sqlite:///" + os.path.join(base, "llmstreamer", "sessions.db")


def _store(args: argparse.Namespace) -> SessionStore:
    from .sessions import open_session_store

    return open_session_store(args.store or default_store_url())


def add_chat_arguments(chat: argparse.ArgumentParser) -> None:
    """``--session`` and ``--store`` for ``llmstreamer chat``."""
    chat.add_argument("--session", metavar="NAME", help="create or continue the stored session NAME")
    chat.add_argument("--store", metavar="URL", help=f"where sessions live (default: ${STORE_ENV}, else SQLite in your data directory)")
    chat.add_argument(
        "--label", type=_label, action="append", default=[], metavar="KEY=VALUE", help="label a new session (repeatable)"
    )


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"a label is key=value with an identifier key, got {text!r}")
    return key, value


def add_commands(commands: Any) -> None:
    """The ``sessions`` command and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="URL", help=f"where sessions live (default: ${STORE_ENV}, else SQLite in your data directory)")
    sessions = commands.add_parser("sessions", help="list, show, delete or export stored sessions")
    sub = sessions.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", parents=[common], help="list sessions, newest first")
    listing.add_argument("--label", type=_label, action="append", default=[], metavar="KEY=VALUE", help="only sessions with this label (repeatable)")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N sessions (default 100)")
    listing.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)
    show = sub.add_parser("show", parents=[common], help="show a session's settings and current branch")
    show.add_argument("name", metavar="NAME", help="a session name or id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_show)
    delete = sub.add_parser("delete", parents=[common], help="delete a session")
    delete.add_argument("name", metavar="NAME", help="a session name or id")
    delete.set_defaults(run=_delete)
    export = sub.add_parser("export", parents=[common], help="print a whole session (every branch) as JSON")
    export.add_argument("name", metavar="NAME", help="a session name or id")
    export.set_defaults(run=_export)


def open_conversation(
    args: argparse.Namespace, spec: str | None, build: Callable[[str], Streamer], default: str
) -> Conversation | None:
    """The stored session ``args.session``: continued if it exists, else created with ``spec`` (or
    ``default``); None without ``--session``."""
    from .conversation import Conversation

    if not args.session:
        if args.store or args.label:
            raise ConfigurationError("--store and --label need --session NAME")
        return None
    store = _store(args)
    for _ in range(2):  # another process may create it between our look and our create
        found = store.find(args.session)
        if found is not None:
            model = spec or (f"{found.provider}:{found.model}" if found.model else found.provider)
            return Conversation.load(store, found.id, build(model))
        try:
            streamer = build(spec or default)
            return Conversation(streamer, store=store, name=args.session, labels=dict(args.label), system=args.system)
        except ConfigurationError:
            if store.find(args.session) is None:
                raise
    raise ConfigurationError(f"could not open the session {args.session!r}")


def slash(text: str, conversation: Conversation, turn: Callable[[Callable[[Any], Any]], int], options: dict[str, Any]) -> int | None:
    """Run an interactive slash command; its exit code, or None when it is not one of these."""
    command, _, rest = text.partition(" ")
    try:
        if command == "/retry":
            return turn(lambda callbacks: conversation.retry(callbacks, **options))
        if command == "/branches":
            for branch in conversation.branches():
                mark = "*" if branch.current else " "
                preview = " ".join(branch.text.split())[:60]
                _out(f"{mark} {branch.leaf_id[:8]}  {branch.length:>3} messages  {preview}")
            return 0
        if command == "/switch" and rest.strip():
            conversation.switch(rest.strip())
            _out(f"(now on the branch of {rest.strip()}: {len(conversation.messages)} messages)")
            return 0
    except ConfigurationError as err:
        _out(f"error: {err.message}")
        return 0
    return None


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        infos, total = store.list(labels=dict(args.label), offset=args.offset, limit=args.limit)
    if args.json:
        _out(json.dumps({"total": total, "sessions": [i.to_dict() for i in infos]}, indent=2))
        return 0
    for info in infos:
        labels = " ".join(f"{k}={v}" for k, v in sorted(info.labels.items()))
        _out(f"{info.name or info.id:<24} {info.message_count:>4} messages  {_when(info.modified)}  "
             f"{info.provider}:{info.model}  {labels}".rstrip())  # fmt: skip
    if total > len(infos):
        _out(f"({len(infos)} of {total}; --offset and --limit page through them)")
    return 0


def _show_dict(session: Session) -> dict[str, Any]:
    return {
        **session.info.to_dict(),
        "system": session.system,
        "options": dict(session.options),
        "overhead": session.overhead,
        "branches": len(session.branches()),
        "messages": [{**n.to_dict()} for n in session.path()],
    }


def _show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        session = store.get(args.name)
    if args.json:
        _out(json.dumps(_show_dict(session), indent=2))
        return 0
    info = session.info
    _out(f"session {session.id}" + (f" ({session.name})" if session.name else ""))
    _out(f"model {session.provider}:{session.model}, {info.message_count} messages on the current branch "
         f"of {len(session.branches())}, about {info.tokens} tokens, modified {_when(session.modified)}")  # fmt: skip
    if session.labels:
        _out("labels " + " ".join(f"{k}={v}" for k, v in sorted(session.labels.items())))
    if session.system:
        _out(f"system: {session.system}")
    for node in session.path():
        text = node.message.text or ", ".join(c.name for c in node.message.tool_calls) or "(no text)"
        _out(f"[{node.id[:8]}] {node.message.role}: {text}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.delete(args.name)
    return 0


def _export(args: argparse.Namespace) -> int:
    with _store(args) as store:
        session = store.get(args.name)
    _out(json.dumps(session.to_dict(), indent=2))
    return 0
