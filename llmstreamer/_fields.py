"""Small helpers for the wire that several providers share: event JSON, extra fields, timestamps, excerpts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

from . import _json

__all__ = ["EXCERPT", "epoch", "loads", "merge_extra", "sampling"]

#: How many characters of a body or event an error keeps (``err.body``).
EXCERPT = 500

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any] | None) -> None:
    """Merge ``extra`` into ``body``; a dict value merges into a dict already there (one level)."""
    for key, value in (extra or {}).items():
        current = body.get(key)
        body[key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value


def sampling(options: Any, fields: Mapping[str, str]) -> dict[str, Any]:
    """The sampling options that are set, under the wire's names: ``fields`` maps an option
    (``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``stop``, ``seed``) to its field;
    ``stop`` goes as a list."""
    out: dict[str, Any] = {}
    for option, field in fields.items():
        value = getattr(options, option)
        if option == "stop":
            if value:
                out[field] = list(value)
        elif value is not None:
            out[field] = value
    return out


def epoch(stamp: Any) -> int | None:
    """Whole seconds since the epoch of an RFC 3339 time (any fraction, ``Z`` or an offset; UTC
    when none), or None when ``stamp`` is not one."""
    match = _STAMP.match(stamp) if isinstance(stamp, str) else None
    if match is None:
        return None
    zone = match.group(2) or "+00:00"
    when = datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    return int(when.timestamp())


# Event JSON: jiter when the ``fast`` extra is installed, else the standard library (`_json`).
loads = _json.loads
