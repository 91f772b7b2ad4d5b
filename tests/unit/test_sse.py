"""The SSE parser and the NDJSON splitter: WHATWG rules, any split, linear time, size caps."""

from __future__ import annotations

import io
import time

import pytest

from llmstreamer._sse import NDJSONParser, SSEParser
from llmstreamer.errors import StreamError


def parse(data: bytes, *, split: int | None = None, close: bool = True) -> list[tuple[str, str, str]]:
    parser = SSEParser()
    out = []
    if split is None:
        out += parser.feed(data)
    else:
        for i in range(0, len(data), split):
            out += parser.feed(data[i : i + split])
    if close:
        out += parser.close()
    return out


def every_split(data: bytes) -> list[list[tuple[str, str, str]]]:
    """Feed ``data`` cut once at every offset, and one byte at a time."""
    results = []
    for cut in range(len(data) + 1):
        parser = SSEParser()
        results.append(parser.feed(data[:cut]) + parser.feed(data[cut:]) + parser.close())
    results.append(parse(data, split=1))
    return results


def types_and_data(events: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(e, d) for e, d, _ in events]


CASES = [
    # (name, wire bytes, expected (type, data) list)
    ("simple", b"data: hello\n\n", [("message", "hello")]),
    ("two events", b"data: a\n\ndata: b\n\n", [("message", "a"), ("message", "b")]),
    ("named", b"event: ping\ndata: {}\n\n", [("ping", "{}")]),
    ("no space", b"data:x\n\n", [("message", "x")]),
    ("only one space stripped", b"data:  two\n\n", [("message", " two")]),
    ("tab kept", b"data:\tx\n\n", [("message", "\tx")]),
    ("multi-line data", b"data: a\ndata: b\n\n", [("message", "a\nb")]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [("message", "a"), ("message", "b")]),
    ("cr only", b"data: a\r\rdata: b\r\r", [("message", "a"), ("message", "b")]),
    ("lf then crlf blank", b"data: a\n\r\ndata: b\n\n", [("message", "a"), ("message", "b")]),
    ("crlf then cr blank", b"data: a\r\n\rdata: b\r\n\r\n", [("message", "a"), ("message", "b")]),
    ("bom", b"\xef\xbb\xbfevent: x\ndata: first\n\n", [("x", "first")]),
    ("comments", b": ping\n:\ndata: a\n: inside\n\n", [("message", "a")]),
    ("event without data", b"event: ping\n\n", []),
    ("bare data", b"data\n\n", [("message", "")]),
    ("empty data", b"data:\n\n", [("message", "")]),
    ("data data", b"data\ndata\n\n", [("message", "\n")]),
    ("wrong case", b"Data: x\n\n", []),
    ("unknown field", b"foo: bar\ndata: x\n\n", [("message", "x")]),
    ("empty event name", b"event:\ndata: x\n\n", [("message", "x")]),
    ("leading blank lines", b"\n\n\ndata: x\n\n", [("message", "x")]),
    ("unterminated last", b"data: a\n\ndata: trunc", [("message", "a")]),
    ("one lf at eof", b"data: a\n", []),
    ("utf8", "data: héllo 🎉 中文\n\n".encode(), [("message", "héllo 🎉 中文")]),
    ("u2028 kept", "data: a\u2028b\u0085c\n\n".encode(), [("message", "a\u2028b\u0085c")]),
    ("invalid byte", b"data: \xff!\n\n", [("message", "\ufffd!")]),
    ("late bom is content", b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [("message", "a")]),
]


@pytest.mark.parametrize(("name", "wire", "expected"), CASES, ids=[c[0] for c in CASES])
def test_whatwg_cases_under_every_split(name: str, wire: bytes, expected: list[tuple[str, str]]) -> None:
    """Each case gives exactly the spec's events, whole, cut at every offset and byte by byte."""
    for events in every_split(wire):
        assert types_and_data(events) == expected


def test_last_event_id_persists_and_nul_is_ignored() -> None:
    """The id buffer persists across events; an id containing NUL is ignored; an empty id resets."""
    events = parse(b"id: 7\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n")
    assert [i for _, _, i in events] == ["7", "7", "7", ""]


def test_retry_field_needs_ascii_digits() -> None:
    """retry takes only ASCII digits; anything else is ignored."""
    parser = SSEParser()
    parser.feed(b"retry: 1500\n\nretry: abc\n\nretry: \xd9\xa3\n\n")
    assert parser.retry == 1500


def test_cr_at_read_end_dispatches_without_waiting() -> None:
    """An event terminated by CR CR is dispatched at once, and a following LF is swallowed."""
    parser = SSEParser()
    assert types_and_data(parser.feed(b"data: a\r\r")) == [("message", "a")]
    assert parser.feed(b"\ndata: b\n\n") == [("message", "b", "")]


def test_split_crlf_does_not_make_an_empty_line() -> None:
    """A CRLF split across reads is one line end, so the event name survives."""
    parser = SSEParser()
    out = parser.feed(b"event: x\r") + parser.feed(b"\ndata: y\r\n\r\n")
    assert types_and_data(out) == [("x", "y")]


def test_bom_split_byte_by_byte() -> None:
    """A BOM delivered one byte at a time is still stripped once."""
    assert types_and_data(parse(b"\xef\xbb\xbfevent: e\ndata: 1\n\n", split=1)) == [("e", "1")]


def test_many_tiny_events_in_one_read() -> None:
    """100,000 events in one read all arrive, in order."""
    wire = b"".join(b"data: %d\n\n" % i for i in range(100_000))
    events = SSEParser().feed(wire)
    assert len(events) == 100_000
    assert events[0][1] == "0" and events[-1][1] == "99999"


def test_large_event_is_linear() -> None:
    """An 8 MiB event fed in 128-byte pieces parses in linear time (well under sseclient-py's quadratic cost)."""
    payload = b"x" * (8 * 1024 * 1024)
    wire = b"data: " + payload + b"\n\n"

    def run(size: int) -> float:
        parser = SSEParser()
        start = time.perf_counter()
        out = []
        for i in range(0, len(wire), size):
            out += parser.feed(wire[i : i + size])
        assert len(out) == 1 and len(out[0][1]) == len(payload)
        return time.perf_counter() - start

    # Linear: halving the read size (doubling the number of reads) must not quadruple the time.
    coarse, fine = run(256), run(128)
    assert fine < coarse * 3 + 0.05


def test_max_event_bytes_caps_one_line() -> None:
    """A line past max_event_bytes raises StreamError instead of growing without bound."""
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(StreamError, match="max_event_bytes"):
        for _ in range(100):
            parser.feed(b"data: " + b"y" * 100)


def test_max_event_bytes_caps_many_data_lines() -> None:
    """An event made of many data lines past max_event_bytes raises StreamError."""
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(StreamError, match="max_event_bytes"):
        parser.feed(b"data: 0123456789\n" * 200)


def test_max_event_bytes_allows_many_small_events() -> None:
    """The cap is per event: many small events in one read pass."""
    parser = SSEParser(max_event_bytes=100)
    assert len(parser.feed(b"data: 0123456789\n\n" * 1000)) == 1000


def _sseclient_events(wire: bytes, split: int) -> list[tuple[str, str]]:
    sseclient = pytest.importorskip("sseclient")
    chunks = [wire[i : i + split] for i in range(0, len(wire), split)]
    client = sseclient.SSEClient(iter(chunks))
    return [(e.event, e.data) for e in client.events()]


# Streams on which sseclient-py follows the spec (no BOM, no truncation, no mixed endings).
AGREED = [c for c in CASES if c[0] not in {"bom", "unterminated last", "lf then crlf blank", "crlf then cr blank", "invalid byte", "one lf at eof", "late bom is content", "leading blank lines"}]


@pytest.mark.parametrize(("name", "wire", "expected"), AGREED, ids=[c[0] for c in AGREED])
@pytest.mark.parametrize("split", [1, 7, 4096])
def test_agrees_with_sseclient_py(name: str, wire: bytes, expected: list[tuple[str, str]], split: int) -> None:
    """Where sseclient-py follows the spec, our parser gives the same events."""
    assert types_and_data(parse(wire, split=split)) == _sseclient_events(wire, split)


def test_sseclient_py_fails_where_we_do_not() -> None:
    """The known sseclient-py deviations (BOM, truncated event) are real, and we handle them."""
    bom = b"\xef\xbb\xbfdata: first\n\n"
    assert _sseclient_events(bom, 4096) != [("message", "first")]
    assert types_and_data(parse(bom)) == [("message", "first")]
    trunc = b"data: a\n\ndata: {\"trunc"
    assert ("message", '{"trunc') in _sseclient_events(trunc, 4096)
    assert types_and_data(parse(trunc)) == [("message", "a")]


# --- NDJSON --------------------------------------------------------------------------------------


def ndjson(data: bytes, split: int) -> list[str]:
    parser = NDJSONParser()
    out = []
    for i in range(0, len(data), split):
        out += parser.feed(data[i : i + split])
    out += parser.close()
    return [d for _, d, _ in out]


@pytest.mark.parametrize("split", [1, 3, 1000])
def test_ndjson_lines_any_split_last_line_without_newline(split: int) -> None:
    """Lines split across reads, CRLF, blank lines and a last line without newline all come out right."""
    data = b'{"a": 1}\n\n{"b": "\xc3\xa9"}\r\n   \n{"c": 3}'
    assert ndjson(data, split) == ['{"a": 1}', '{"b": "é"}', '{"c": 3}']


def test_ndjson_cap() -> None:
    """An NDJSON line past max_event_bytes raises StreamError."""
    parser = NDJSONParser(max_event_bytes=10)
    with pytest.raises(StreamError):
        parser.feed(b"x" * 11)


def test_parsers_take_any_bytes_like_reads() -> None:
    """Feeding reads from a BytesIO of random sizes gives the same events as one read."""
    wire = b"".join(b"event: e%d\ndata: %d\n\n" % (i % 3, i) for i in range(500))
    buf = io.BytesIO(wire)
    parser = SSEParser()
    out = []
    size = 1
    while True:
        chunk = buf.read(size)
        if not chunk:
            break
        out += parser.feed(chunk)
        size = size * 3 % 97 + 1
    assert out == SSEParser().feed(wire)


# --- regressions found by the property tests and the fuzzer ------------------------------------


def _feed_many_lines(lines: int) -> float:
    wire = b"data: x\n" * lines + b"\n"
    parser = SSEParser(max_event_bytes=1 << 30)
    started = time.perf_counter()
    for i in range(0, len(wire), 65536):
        parser.feed(wire[i : i + 65536])
    return time.perf_counter() - started


def test_max_event_bytes_stays_linear_on_many_line_events() -> None:
    """With max_event_bytes set, an event of many data lines costs linear time (the cap used to re-sum
    every line on each append: 40,000 lines took 12 s); 4x the lines may cost at most 8x the time."""
    small = _feed_many_lines(5_000)
    large = _feed_many_lines(20_000)
    assert large < small * 8 + 0.05, (small, large)


def test_an_empty_read_between_cr_and_lf_is_not_a_blank_line() -> None:
    """An empty read between the CR and the LF of a CRLF does not turn the LF into a blank line."""
    parser = SSEParser()
    out = parser.feed(b"data: a\r") + parser.feed(b"") + parser.feed(b"\ndata: b\n\n")
    assert out == [("message", "a\nb", "")]
