"""Decode one wire event's JSON on the hot path: jiter when it is importable, else the standard library.

The choice is made once, at import. jiter (the ``fast`` extra) only ever answers for documents it
decodes; anything it refuses (malformed input, lone surrogates, nesting past its limit of 200,
integers past 4,300 digits) is handed to the standard-library path, so the result, the error
class and the error message are the standard library's whenever the two would differ.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .errors import StreamError

__all__ = ["FAST", "loads", "loads_fast", "loads_std", "parse_utf8"]

# The C scanner itself: json.loads adds two regex calls per document around it.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads_std(data: str, provider: str) -> Any:
    """Decode ``data`` with the standard library, or raise `StreamError` quoting its start."""
    try:
        value, end = _scan(data, 0)
        if end == len(data):
            return value
    except (StopIteration, ValueError):
        pass  # leading or trailing whitespace, or an error: json.loads says which
    try:
        return json.loads(data)
    except ValueError:
        raise StreamError(f"malformed JSON in the stream: {data[:120]!r}", provider=provider) from None


def _jiter() -> Callable[[bytes], Any] | None:
    """jiter's decoder, or None when the ``fast`` extra is not installed."""
    try:
        import jiter
    except ImportError:  # the plain install: nothing changes
        return None
    return jiter.from_json  # type: ignore[no-any-return]


_from_json = _jiter()


def loads_fast(data: str, provider: str) -> Any:
    """Decode ``data`` with jiter, falling back to `loads_std` for anything jiter refuses."""
    try:
        return _from_json(data.encode())  # type: ignore[misc]  # only chosen when it is set
    except ValueError:  # includes UnicodeEncodeError (a lone surrogate in the str)
        return loads_std(data, provider)


FAST = _from_json is not None
loads: Callable[[str, str], Any] = loads_fast if FAST else loads_std


def _parse_utf8_fast(data: bytes) -> Any:
    """`_parse_utf8_std` through jiter: anything jiter refuses (bad UTF-8 included) goes the standard way."""
    try:
        return _from_json(data)  # type: ignore[misc]  # only chosen when it is set
    except ValueError:
        return json.loads(data.decode("utf-8", "replace"))


def _parse_utf8_std(data: bytes) -> Any:
    """``json.loads(data.decode("utf-8", "replace"))``: a value, or json's ValueError."""
    return json.loads(data.decode("utf-8", "replace"))


parse_utf8: Callable[[bytes], Any] = _parse_utf8_fast if FAST else _parse_utf8_std
