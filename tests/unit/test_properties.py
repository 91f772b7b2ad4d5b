"""Property-based tests (hypothesis): split invariance through the engine, and the SSE parser
against a small reference model of the WHATWG rules.
"""

from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import llmstreamer
from llmstreamer import Message, ToolCall, Usage
from llmstreamer._sse import NDJSONParser, SSEParser
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import RecordedRequest, Reply
from llmstreamer.testing._wire import flavor_of, render

from ..conftest import Recorder

HI = [Message.user("Hi")]
PROVIDERS = ("openai", "anthropic", "gemini", "mistral", "ollama", "deepseek")

# --- any split of any valid stream gives the same callbacks --------------------------------------


def _streamer(flavor: str) -> HTTPStreamer:
    base_url = f"http://127.0.0.1:9/{flavor}"  # never contacted: the round replays bytes
    built = llmstreamer.streamer(f"{flavor}:m", api_key="k-test", base_url=base_url, retry=0)
    assert isinstance(built, HTTPStreamer)
    return built


def _wire(streamer: HTTPStreamer, reply: Reply, line_ending: str) -> bytes:
    """The body the fake server would send for ``reply`` to this streamer's request."""
    from llmstreamer._options import make_options

    request = streamer.build_request(tuple(HI), make_options(streamer.provider, streamer.supported_options, {}))
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    recorded = RecordedRequest("POST", path, {k.lower(): v for k, v in request.headers.items()}, request.body or b"")
    events = render(flavor_of(path), reply, recorded).events
    return "".join(events).replace("\n", line_ending).encode("utf-8")


def _callbacks(streamer: HTTPStreamer, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """Run the real engine (worker thread, accumulator, callbacks) over a round that replays ``chunks``."""

    def replay(messages: Any, options: Any, token: Any) -> Iterator[Any]:
        return streamer.decode_body(iter(chunks))

    streamer.stream_round = replay  # type: ignore[method-assign]
    recorder = Recorder()
    assert streamer.stream_chat(HI, recorder).wait(10)
    return recorder.calls


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_calls = st.lists(
    st.builds(
        lambda i, name, value: ToolCall(f"call_{i}", name, {"value": value}),
        st.integers(0, 99),
        st.sampled_from(["lookup", "get_weather", "t"]),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
    ),
    max_size=2,
    unique_by=lambda c: c.id,
)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[str, Reply, str]:
    flavor = draw(st.sampled_from(PROVIDERS))
    calls = draw(_calls)
    reply = Reply(
        text=draw(st.lists(_text, max_size=6)),
        thinking=draw(st.lists(_text, max_size=3)),
        signature=draw(st.sampled_from([None, "sig-EpcC"])),
        tool_calls=calls,
        finish_reason="tool_calls" if calls else draw(st.sampled_from(["stop", "length"])),
        usage=Usage(draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))),
        bom=False,
    )
    endings = ["\n", "\r\n"] if flavor == "ollama" else ["\n", "\r\n", "\r"]
    return flavor, reply, draw(st.sampled_from(endings))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams(), cuts=st.lists(st.integers(0, 10**6), max_size=12), data=st.data())
def test_any_split_of_a_valid_stream_gives_the_same_callbacks(stream: tuple[str, Reply, str], cuts: list[int], data: Any) -> None:
    """Splitting a provider's stream at any byte positions (empty reads too) never changes the callbacks."""
    flavor, reply, line_ending = stream
    streamer = _streamer(flavor)
    wire = _wire(streamer, reply, line_ending)
    whole = _callbacks(streamer, [wire])
    assert whole[-1] == ("finish", "".join(reply.text))
    assert "".join(c[1] for c in whole if c[0] == "thinking") == "".join(reply.thinking)
    assert [c[1] for c in whole if c[0] == "tool_call"] == [c.name for c in reply.tool_calls]
    positions = sorted(c % (len(wire) + 1) for c in cuts)
    pieces = [wire[a:b] for a, b in zip([0, *positions], [*positions, len(wire)])]
    assert _callbacks(_streamer(flavor), pieces) == whole
    singles = [wire[i : i + 1] for i in range(len(wire))]
    if data.draw(st.booleans(), label="also byte by byte"):
        assert _callbacks(_streamer(flavor), singles) == whole


# --- the SSE parser against a reference model of the WHATWG rules ---------------------------------


def whatwg_events(wire: bytes) -> list[tuple[str, str, str]]:
    """The HTML Standard's event-stream interpretation (§9.2.6), written for clarity, not speed.

    Decode as UTF-8 (one leading BOM dropped, invalid bytes as U+FFFD); split at CRLF, LF or CR;
    a blank line dispatches; ``:`` starts a comment; ``field: value`` (one space stripped);
    ``data`` lines are joined with LF; an event without data is not dispatched; ``id`` without
    NUL sets the last event id, which persists; an unterminated event at EOF is dropped.
    """
    text = wire.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[str] = []  # complete lines only: a last line without its end is never seen
    current = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\r":
            lines.append(current)
            current = ""
            if text[i + 1 : i + 2] == "\n":
                i += 1
        elif char == "\n":
            lines.append(current)
            current = ""
        else:
            current += char
        i += 1
    events: list[tuple[str, str, str]] = []
    data, event_type, last_id = "", "", ""
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append((event_type or "message", data, last_id))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id" and "\0" not in value:
            last_id = value
    return events


def _parse(wire: bytes, cuts: list[int]) -> list[tuple[str, str, str]]:
    parser = SSEParser()
    positions = sorted(c % (len(wire) + 1) for c in cuts)
    out: list[tuple[str, str, str]] = []
    for a, b in zip([0, *positions], [*positions, len(wire)]):
        out += parser.feed(wire[a:b])
    return out + parser.close()


_EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])
_VALUE = st.one_of(
    st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=6),  # invalid UTF-8 included
    st.sampled_from([b"", b" ", b"  x", b":", b"\xef\xbb\xbf", b"\x00", b"\xe2\x82", b"\xff"]),
)
_FIELD = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"dat", b"Data", b"data ", b"x"])


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "colon-less", "comment", "blank", "raw"]))
    if kind == "field":
        sep = draw(st.sampled_from([b":", b": ", b":  "]))
        body = draw(_FIELD) + sep + draw(_VALUE)
    elif kind == "colon-less":
        body = draw(_FIELD)
    elif kind == "comment":
        body = b":" + draw(_VALUE)
    elif kind == "blank":
        body = b""
    else:
        body = draw(st.binary(max_size=10))
    return body + draw(_EOL)


@st.composite
def _sse_wires(draw: st.DrawFn) -> bytes:
    wire = b"".join(draw(st.lists(_lines(), max_size=20)))
    if draw(st.booleans()):
        wire = b"\xef\xbb\xbf" + wire
    if draw(st.booleans()):
        wire += draw(st.binary(max_size=8))  # an unterminated tail
    return wire


@settings(max_examples=600, deadline=None)
@given(wire=_sse_wires(), cuts=st.lists(st.integers(0, 10**6), max_size=10))
@example(wire=b"data: a\r\ndata: b\n\n", cuts=[8, 8])  # an empty read between the CR and LF of a CRLF
@example(wire=b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", cuts=[1])  # a second BOM is content
@example(wire=b"data:\xe2\x82\ndata:\xe2\x82\xac\n\n", cuts=[7])
def test_sse_parser_agrees_with_the_whatwg_reference(wire: bytes, cuts: list[int]) -> None:
    """On random lines (CR/LF/CRLF, BOM, comments, fields, invalid UTF-8) under random splits, the
    parser dispatches exactly the events of the reference model."""
    assert _parse(wire, cuts) == whatwg_events(wire)


@st.composite
def _common_events(draw: st.DrawFn) -> bytes:
    """One event in the shapes the parser takes in runs (``data: `` alone or after ``event: ``)."""
    data = b"data: " + draw(_VALUE) + b"\n\n"
    return draw(st.sampled_from([b"", b"event: x\n", b"event: ", b"event: message_stop\n"])) + data


@settings(max_examples=400, deadline=None)
@given(
    units=st.lists(st.one_of(_common_events(), _lines()), max_size=24),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
@example(units=[b"event: x\n", b"data: a\n\n", b"event: y\ndata: b\n\n", b"data: c\n\n"], cuts=[5])
@example(units=[b"data: a\n\n", b"id: 7\n", b"data: b\n\n", b"event: y\ndata: c\n\n"], cuts=[])
def test_sse_parser_agrees_on_runs_of_common_events(units: list[bytes], cuts: list[int]) -> None:
    """Runs of common-shape events (the fast path) mixed with random lines, under random splits,
    give exactly the events of the reference model, last event ids included."""
    wire = b"".join(units)
    assert _parse(wire, cuts) == whatwg_events(wire)


@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=200), cuts=st.lists(st.integers(0, 10**6), max_size=10))
def test_sse_parser_agrees_on_arbitrary_bytes(wire: bytes, cuts: list[int]) -> None:
    """On arbitrary bytes the parser still agrees with the reference model (and never raises)."""
    assert _parse(wire, cuts) == whatwg_events(wire)


@settings(max_examples=300, deadline=None)
@given(
    wire=st.lists(
        st.tuples(st.one_of(st.binary(max_size=12), st.sampled_from([b"", b" ", b"\t", b'{"a":1}'])), st.sampled_from([b"\n", b"\r\n"])),
        max_size=15,
    ).map(lambda items: b"".join(a + b for a, b in items)),
    tail=st.binary(max_size=6),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_ndjson_splitter_any_split(wire: bytes, tail: bytes, cuts: list[int]) -> None:
    """The NDJSON splitter returns the same non-blank lines (CR stripped) under any split, the last
    one without a newline included."""
    body = wire + tail
    expected = [line[:-1] if line.endswith("\r") else line for line in body.decode("utf-8", "replace").split("\n")]
    expected = [line for line in expected if line.strip()]
    parser = NDJSONParser()
    positions = sorted(c % (len(body) + 1) for c in cuts)
    got: list[str] = []
    for a, b in zip([0, *positions], [*positions, len(body)]):
        got += [data for _, data, _ in parser.feed(body[a:b])]
    got += [data for _, data, _ in parser.close()]
    assert got == expected


@pytest.mark.parametrize("wire", [b"data: {}\n\n", json.dumps({"a": 1}).encode() + b"\n"])
def test_reference_model_sanity(wire: bytes) -> None:
    """The reference model itself reads a plain event (and nothing from a line that is not SSE)."""
    assert whatwg_events(wire) == ([("message", "{}", "")] if wire.startswith(b"data") else [])
