"""The Anthropic decoder's text-delta shortcut must give exactly what parsing the JSON gives.

A text delta written compactly, with nothing escaped, is read without a JSON parse. Each test
runs the same data through a decoder with the shortcut and one without it (its pattern replaced
by one that never matches) and compares the events, or the error class and message.
"""

from __future__ import annotations

import json
import re
from typing import Any
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmstreamer import AnthropicStreamer
from llmstreamer.errors import StreamError
from llmstreamer.providers import anthropic

PREFIX = '{"type":"content_block_delta","index":'
MIDDLE = ',"delta":{"type":"text_delta","text":"'
SUFFIX = '"}}'


def _decoders() -> tuple[Any, Any]:
    """A decoder with the shortcut and one that always parses."""
    streamer = AnthropicStreamer(model="claude-sonnet-4-5", api_key="k", base_url="http://127.0.0.1:9")
    fast = streamer.new_decoder()
    with mock.patch.object(anthropic, "_TEXT_DELTA", re.compile(r"(?!)")):
        parsed = streamer.new_decoder()
    return fast, parsed


def _outcome(decode: Any, data: str) -> tuple[Any, ...]:
    """The events ``decode`` returns for ``data``, or its error's class and message (a builtin
    error, such as a KeyError for a missing field, becomes a StreamError in `decode_body`)."""
    try:
        return ("ok", list(decode("content_block_delta", data)))
    except (StreamError, LookupError, TypeError, AttributeError) as exc:
        return ("error", type(exc).__name__, str(exc))


def _same(data: str) -> tuple[Any, ...]:
    fast, parsed = _decoders()
    got = _outcome(fast, data)
    assert got == _outcome(parsed, data)
    return got


def test_a_plain_text_delta_takes_the_shortcut_and_gives_one_content_event() -> None:
    """The common event becomes one content event; an empty text gives none."""
    data = PREFIX + "0" + MIDDLE + " Hello" + SUFFIX
    assert anthropic._TEXT_DELTA.fullmatch(data) is not None
    assert _same(data) == ("ok", [anthropic.Event("content", " Hello")])
    assert _same(PREFIX + "3" + MIDDLE + SUFFIX) == ("ok", [])


@settings(max_examples=400, deadline=None)
@given(text=st.text(), index=st.integers(min_value=-5, max_value=10**25), ascii_only=st.booleans())
@example(text='a"b\\c\n\x00\x1f\x7f\u2028\ud800', index=0, ascii_only=False)
def test_any_text_and_index_give_the_same_events(text: str, index: int, ascii_only: bool) -> None:
    """Any text (quotes, backslashes, control characters, lone surrogates) and index, written the
    API's compact way, decode to the same events with the shortcut as by parsing."""
    obj = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}
    _same(json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only))


PIECES = st.sampled_from(
    [PREFIX, MIDDLE, SUFFIX, "0", "01", "-0", "7", "9" * 20, '"', "\\", "\\n", "\\u00e9", "\x00", "\x1f", "\n",
     " ", "}", "{", "é", "\ud800", "x", "text_delta", ",", ":"]
)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(PIECES, max_size=8), text=st.text(max_size=6))
@example(pieces=[PREFIX, "01", MIDDLE, "x", SUFFIX], text="")
@example(pieces=[PREFIX, "9" * 5000, MIDDLE, "x", SUFFIX], text="")
@example(pieces=[PREFIX, "0", MIDDLE, "\x01", SUFFIX], text="")
@example(pieces=[PREFIX, "0", MIDDLE, "x", SUFFIX, " "], text="")
def test_near_misses_give_the_same_events_or_error(pieces: list[str], text: str) -> None:
    """Near misses of the shape (leading zeros, huge indexes, raw control characters, trailing
    bytes, broken quoting) give the same events, or the same StreamError, as parsing."""
    _same(PREFIX + "".join(pieces) + text + SUFFIX)
    _same("".join(pieces) + text)
