"""The hot path's JSON decoder: jiter (the ``fast`` extra) must agree with the standard library.

Both paths are tested in this process (`loads_fast` and `loads_std` directly), and a fresh
interpreter with jiter blocked checks that the plain install picks the standard library.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmstreamer import _json
from llmstreamer.errors import StreamError

pytest.importorskip("jiter")


def _canon(value: Any) -> Any:
    """A comparable form: NaN equal to NaN, the sign of zero kept, types and key order kept."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, dict):
        return ("dict", [(k, _canon(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_canon(v) for v in value])
    return (type(value).__name__, value)


def _outcome(load: Any, data: str) -> tuple[Any, ...]:
    """What ``load`` does with ``data``: its value, or its error's class and message."""
    try:
        return ("ok", _canon(load(data, "openai")))
    except StreamError as exc:
        return ("error", type(exc).__name__, str(exc), exc.provider, exc.__cause__ is None)
    except RecursionError as exc:
        return ("error", type(exc).__name__)


def _same(data: str) -> None:
    assert _outcome(_json.loads_fast, data) == _outcome(_json.loads_std, data)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)

# Pieces of JSON syntax (and near-misses), glued at random into mostly malformed documents.
TOKENS = st.sampled_from(
    [
        "{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude42", "\\x",
        "NaN", "Infinity", "-Infinity", "nan", "inf", "-", "+", "0", "01", "1", "1.", ".5", "1e", "1e400",
        "-0", "1E+2", "true", "false", "null", "tru", " ", "\t", "\n", "\r", "\x0c", "\x00", "\x1f",
        "\u00a0", "\ud800", "\udfff", "é", "🙂", '"a"', '"a":1', "9" * 30,
    ]
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.booleans(), st.sampled_from(["", " ", "\n", "\t\r\n "]))
def test_valid_documents_decode_the_same(value: Any, ascii_only: bool, pad: str) -> None:
    """Any document the standard library writes decodes to the same value (NaN, big ints, floats, escapes, padding)."""
    _same(pad + json.dumps(value, ensure_ascii=ascii_only) + pad)


@settings(max_examples=600, deadline=None)
@given(st.lists(TOKENS, max_size=12).map("".join))
@example('{"a":1,"a":2}')  # duplicate keys: the last one wins, at the first one's position
@example('{"a":1,"b":2,"a":3}')
@example("1 2")  # trailing data
@example('"\\ud800"')  # a lone surrogate escape
@example('"\ud800"')  # a lone surrogate in the str itself (not encodable as UTF-8)
@example("NaN")
@example("-Infinity")
@example("123456789012345678901234567890123456789")
@example("1.0000000000000002")
@example("2.2250738585072011e-308")
@example("1e400")
@example("[1,]")
@example("")
def test_adversarial_text_gives_the_same_value_or_error(data: str) -> None:
    """Random glued syntax, mostly malformed, gives the same value or the same error class and message."""
    _same(data)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters() | st.integers(0xD800, 0xDFFF).map(chr) | st.sampled_from('{}[]",:0123456789.eE+-\\'), max_size=40))
def test_random_text_gives_the_same_value_or_error(data: str) -> None:
    """Arbitrary text, including surrogates and control characters, behaves the same on both paths."""
    _same(data)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True))
def test_numbers_decode_to_the_same_value(number: str) -> None:
    """Integers and floats of any precision and exponent decode to the same Python value."""
    _same(number)
    _same('{"n":' + number + "}")


@pytest.mark.parametrize("depth", [1, 199, 200, 201, 500, 5000])
def test_deep_nesting_behaves_like_the_standard_library(depth: int) -> None:
    """Nesting past jiter's limit falls back to the standard library (which decodes it, or raises RecursionError)."""
    _same("[" * depth + "]" * depth)
    _same('{"a":' * depth + "1" + "}" * depth)


def test_too_many_digits_falls_back() -> None:
    """An integer past the interpreter's digit limit fails with the standard library's StreamError."""
    data = "9" * 5000
    assert _outcome(_json.loads_fast, data) == _outcome(_json.loads_std, data)
    assert _outcome(_json.loads_std, data)[:2] == ("error", "StreamError")


def test_malformed_input_raises_the_stream_error() -> None:
    """Malformed JSON raises the same StreamError, quoting the start of the event, on both paths."""
    for load in (_json.loads_fast, _json.loads_std):
        with pytest.raises(StreamError) as info:
            load('{"choices": [', "anthropic")
        assert str(info.value) == "anthropic: malformed JSON in the stream: '{\"choices\": ['"
        assert info.value.provider == "anthropic"


def test_jiter_is_picked_when_importable() -> None:
    """With jiter installed the hot path is the fast one."""
    assert _json.FAST is True
    assert _json.loads is _json.loads_fast


def test_plain_install_uses_the_standard_library() -> None:
    """With jiter not importable, the module picks the standard library once, at import, and decodes the same."""
    code = (
        "import sys; sys.modules['jiter'] = None\n"
        "from llmstreamer import _json\n"
        "from llmstreamer.provider import loads\n"
        "assert _json.FAST is False and _json.loads is _json.loads_std and loads is _json.loads_std\n"
        "assert loads('{\"a\": [1, 2.5, NaN]}', 'openai')['a'][:2] == [1, 2.5]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


def _parse_outcome(parse: Any, data: bytes) -> tuple[Any, ...]:
    try:
        return ("ok", _canon(parse(data)))
    except ValueError as exc:
        return ("error", type(exc).__name__, str(exc))
    except RecursionError as exc:
        return ("error", type(exc).__name__)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=60),
        st.lists(TOKENS, max_size=12).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
        JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    )
)
@example(b'{"event":"seq_text","text":"\\ud800"}')
@example(b'{"a":"\xff"}')  # invalid UTF-8: replaced, as the frame decoding always did
@example(b"\xed\xa0\x80")  # an encoded surrogate: invalid UTF-8
def test_frame_parsing_is_the_standard_librarys(data: bytes) -> None:
    """WebSocket frame bytes parse to json.loads(data.decode("utf-8", "replace"))'s value or error, on both paths."""
    assert _parse_outcome(_json._parse_utf8_fast, data) == _parse_outcome(_json._parse_utf8_std, data)
