"""The fault matrix: every network and wire fault, against every HTTP provider.

Each case checks the whole callback list (so exactly one terminal callback, last), the error
class, what ``.partial`` holds, and that the connection is gone (no pooled dirty socket, no
socket or thread left: the fixtures check the process after each test).
"""

from __future__ import annotations

from typing import Any

import pytest

from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    LLMStreamError,
    StreamError,
    Timeout,
)
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder, wait_until
from .conftest import HI, QUICK_RETRY, TEXT, WHOLE, cut, edited, make, stream, upto, url_for

ALPHA_BRAVO = [("content", "Alpha"), ("content", " Bravo")]
ALL_CONTENT = [("content", t) for t in TEXT]
FINISHED = [*ALL_CONTENT, ("usage", 10, 4), ("finish", WHOLE)]


def failed(recorder: Recorder, cls: type[LLMStreamError], before: list[tuple[Any, ...]]) -> LLMStreamError:
    """Assert the stream delivered ``before`` then failed with exactly ``cls``; return the error."""
    assert recorder.calls == [*before, ("error", cls.__name__)]
    error = recorder.error
    assert type(error) is cls
    assert error.partial is not None and error.partial.finish_reason == "error"
    assert error.partial.text == "".join(c[1] for c in before if c[0] == "content")
    return error


def closed(server: FakeLLMServer) -> None:
    """Assert the client closed its connection (a failed stream's socket is never pooled)."""
    assert server.wait_for(lambda: server.open_connections == 0), "the client kept the connection open"


# --- connecting ----------------------------------------------------------------------------------


def test_connection_refused(flavor: str, refused_port: int, recorder: Recorder) -> None:
    """A refused connection is retried once, then reported as APIConnectionError naming the address."""
    with make(flavor, url_for(flavor, f"http://127.0.0.1:{refused_port}"), retry=QUICK_RETRY) as s:
        stream(s, recorder)
    assert recorder.calls == [("retry", "APIConnectionError", 1), ("error", "APIConnectionError")]
    assert type(recorder.error) is APIConnectionError
    assert f"127.0.0.1:{refused_port}" in str(recorder.error) and recorder.error.partial.text == ""


def test_host_that_does_not_resolve(flavor: str, recorder: Recorder) -> None:
    """A host under the reserved .invalid TLD fails with APIConnectionError saying it cannot be resolved."""
    with make(flavor, url_for(flavor, "http://llmstreamer-fault.invalid:9")) as s:
        stream(s, recorder)
    error = failed(recorder, APIConnectionError, [])
    assert "cannot resolve host 'llmstreamer-fault.invalid'" in str(error)


def test_any_resolver_failure_is_named_as_such() -> None:
    """A resolver that cannot answer (EAI_AGAIN: no DNS server, as on an offline machine) is reported
    as "cannot resolve host" too, not as a generic connect failure (the check used to read the text)."""
    import socket

    import requests
    import urllib3

    from llmstreamer._boundary import CONNECTING, translate

    connection = urllib3.connection.HTTPConnection("offline.invalid", 80)
    failed = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    inner = urllib3.exceptions.NameResolutionError("offline.invalid", connection, failed)
    wrapped = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v1", inner))  # type: ignore[arg-type]
    error = translate(wrapped, provider="openai", url="http://offline.invalid/v1", doing=CONNECTING)
    assert type(error) is APIConnectionError and "cannot resolve host 'offline.invalid'" in str(error)


def test_self_signed_certificate_is_refused_then_trusted(flavor: str, tls_server: FakeLLMServer, tls_ca: Any) -> None:
    """TLS verification is on by default (the error says how to trust a private CA); verify=<CA path> works."""
    refused, trusted = Recorder(), Recorder()
    with make(flavor, tls_server.base_url(flavor)) as s:
        stream(s, refused)
    error = failed(refused, APIConnectionError, [])
    assert "CERTIFICATE_VERIFY_FAILED" in str(error) and "verify='/path/to/ca.pem'" in str(error)
    assert tls_server.requests == []  # nothing, the key included, went over the unverified connection
    tls_server.add(Reply(text=TEXT))
    with make(flavor, tls_server.base_url(flavor), verify=tls_ca[1]) as s:
        stream(s, trusted)
    assert trusted.calls == FINISHED


def test_connect_timeout(flavor: str, backlogged_port: int, recorder: Recorder) -> None:
    """A server that never completes the handshake ends in APITimeoutError(kind="connect")."""
    with make(flavor, url_for(flavor, f"http://127.0.0.1:{backlogged_port}"), timeout=Timeout(connect=0.2, read=5)) as s:
        stream(s, recorder)
    error = failed(recorder, APITimeoutError, [])
    assert error.kind == "connect" and "timed out connecting" in str(error)


def test_total_timeout_while_connecting(flavor: str, backlogged_port: int, recorder: Recorder) -> None:
    """The total timeout cuts a hanging connect short instead of waiting out the connect timeout."""
    timeout = Timeout(connect=30, read=30, total=0.2)
    with make(flavor, url_for(flavor, f"http://127.0.0.1:{backlogged_port}"), timeout=timeout) as s:
        handle = s.stream_chat(HI, recorder)
        assert handle.wait(10), "the total timeout did not interrupt the connect"
    error = failed(recorder, APITimeoutError, [])
    assert error.kind == "total"


def test_cancel_while_connecting(flavor: str, backlogged_port: int, recorder: Recorder) -> None:
    """cancel() during a hanging connect ends the stream at once with StreamCancelled."""
    with make(flavor, url_for(flavor, f"http://127.0.0.1:{backlogged_port}"), timeout=30) as s:
        handle = s.stream_chat(HI, recorder)
        # the socket being connected registers its abort with the stream's token: cancel then
        assert wait_until(lambda: bool(handle._stream.token._aborts)), "the connect never started"
        assert not handle.done()
        handle.cancel()
        assert handle.wait(10), "cancel did not interrupt the connect"
    assert recorder.calls == [("error", "StreamCancelled")]
    assert recorder.error.partial.finish_reason == "cancelled"


# --- waiting -------------------------------------------------------------------------------------


def test_idle_timeout_mid_stream(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A server that goes silent mid-stream ends in APITimeoutError(kind="read"), not retried, text kept."""
    server.add(cut(Reply(text=TEXT, stall_for=10), " Bravo", stall_after="at"))
    with make(flavor, server.base_url(flavor), timeout=Timeout(connect=5, read=0.2), retry=2) as s:
        stream(s, recorder)
        closed(server)
    error = failed(recorder, APITimeoutError, ALPHA_BRAVO)
    assert error.kind == "read" and len(server.requests) == 1


def test_total_timeout_mid_stream(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """The total timeout ends a stream that is still open, with what arrived kept."""
    server.add(cut(Reply(text=TEXT, stall_for=10), " Bravo", stall_after="at"))
    with make(flavor, server.base_url(flavor), timeout=Timeout(connect=5, read=5, total=0.3), retry=2) as s:
        stream(s, recorder)
        closed(server)
    error = failed(recorder, APITimeoutError, ALPHA_BRAVO)
    assert error.kind == "total" and len(server.requests) == 1


# --- dropped connections -------------------------------------------------------------------------


def test_reset_before_the_first_byte_is_retried(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A reset before any response byte is retried, and the retry's answer arrives whole."""
    server.add(Reply(silent=True, reset=True, stall_for=0), Reply(text=TEXT))
    with make(flavor, server.base_url(flavor), retry=QUICK_RETRY) as s:
        stream(s, recorder)
    assert recorder.calls == [("retry", "APIConnectionError", 1), *FINISHED]
    assert len(server.requests) == 2


def test_reset_mid_stream_is_not_retried(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A reset after output arrived is reported (never retried: no duplicate output), the text kept."""
    server.add(cut(Reply(text=TEXT, reset=True), " Bravo", disconnect_after="at"))
    with make(flavor, server.base_url(flavor), retry=2) as s:
        stream(s, recorder)
        closed(server)
    error = failed(recorder, APIConnectionError, ALPHA_BRAVO)
    assert "dropped mid-stream" in str(error) and len(server.requests) == 1


def test_fin_without_the_terminal_event(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A body that ends cleanly but without the terminal event is an IncompleteStreamError with the text."""
    server.add(Reply(text=TEXT, truncate=True))
    with make(flavor, server.base_url(flavor), retry=2) as s:
        stream(s, recorder)
    failed(recorder, IncompleteStreamError, ALL_CONTENT)


def test_close_delimited_fin_mid_stream(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A close-delimited body cut by a FIN mid-stream is an IncompleteStreamError with the text so far."""
    server.add(cut(Reply(text=TEXT, transfer="close"), " Bravo", disconnect_after="at"))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder)
        closed(server)
    failed(recorder, IncompleteStreamError, ALPHA_BRAVO)


@pytest.mark.parametrize(
    "ending",
    [
        {"disconnect_after": 999},  # a FIN where the chunked body's last chunk should be
        {"disconnect_after": 999, "reset": True},
        {"stall_after": 999, "stall_for": 10},
    ],
    ids=["fin", "reset", "stall"],
)
def test_drop_after_the_terminal_event_keeps_the_answer(
    flavor: str, server: FakeLLMServer, recorder: Recorder, ending: dict[str, Any]
) -> None:
    """Once the terminal event has arrived, a drop, reset or stall before the body's end still finishes."""
    server.add(Reply(text=TEXT, **ending))
    with make(flavor, server.base_url(flavor), timeout=Timeout(connect=5, read=0.2)) as s:
        stream(s, recorder)
        closed(server)
    assert recorder.calls == FINISHED


# --- what the stream carries ---------------------------------------------------------------------


def _malformed(events: list[str], sse: bool) -> list[str]:
    at = upto(" Bravo")(events)
    return [*events[:at], "data: {not json\n\n" if sse else "{not json\n", *events[at:]]


def test_malformed_json_event(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """An event that is not JSON ends in StreamError quoting it, with the text before it kept."""
    server.add(edited(Reply(text=TEXT), _malformed))
    with make(flavor, server.base_url(flavor), retry=2) as s:
        stream(s, recorder)
        closed(server)
    error = failed(recorder, StreamError, ALPHA_BRAVO)
    assert "{not json" in str(error)


_UNKNOWN_SSE = [
    ": a comment\nid: 7\nretry: 100\nmystery-field: 1\n\n",
    'event: mystery\ndata: {"type":"mystery","object":"mystery.event","value":[1,2]}\n\n',
    'data: {"object":"mystery.event","new":{"nested":true}}\n\n',
]
_UNKNOWN_NDJSON = ['{"type":"mystery","new":{"nested":true}}\n', '{"object":"mystery.event"}\n']


def test_unknown_event_types_are_ignored(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """Event types, fields and SSE lines the client does not know are skipped; the answer is whole."""

    def add_unknown(events: list[str], sse: bool) -> list[str]:
        unknown = _UNKNOWN_SSE if sse else _UNKNOWN_NDJSON
        return [events[0], *unknown, *events[1:-1], *unknown, events[-1]]

    server.add(edited(Reply(text=TEXT), add_unknown))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder)
    assert recorder.calls == FINISHED


BIG = "y" * (8 << 20)


def test_an_8_mib_event_arrives_whole(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """One 8 MiB content event arrives whole (the parser is linear: see test_limits for the timing)."""
    server.add(Reply(text=["Alpha", BIG]))
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder)
    assert recorder.calls == [("content", "Alpha"), ("content", BIG), ("usage", 10, 2), ("finish", "Alpha" + BIG)]


def test_max_event_bytes_ends_an_oversized_event(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """With max_event_bytes=1 MiB the 8 MiB event ends in StreamError instead of unbounded memory."""
    server.add(Reply(text=["Alpha", BIG]))
    with make(flavor, server.base_url(flavor), max_event_bytes=1 << 20) as s:
        stream(s, recorder)
        closed(server)
    error = failed(recorder, StreamError, [("content", "Alpha")])
    assert "max_event_bytes" in str(error)


@pytest.mark.slow
def test_100000_tiny_events(flavor: str, server: FakeLLMServer) -> None:
    """100,000 one-character events arrive as 100,000 on_content calls, in order, then one finish."""
    server.add(Reply(text=["x"] * 100_000, writes="whole"))
    recorder = Recorder()
    with make(flavor, server.base_url(flavor)) as s:
        stream(s, recorder)
    assert recorder.calls == [*[("content", "x")] * 100_000, ("usage", 10, 100_000), ("finish", "x" * 100_000)]


@pytest.mark.slow
def test_trickle_of_one_byte_every_10_ms(flavor: str, server: FakeLLMServer, recorder: Recorder) -> None:
    """A body trickled one byte every 10 ms for 1.5 s passes a 0.25 s idle timeout: it is per read."""
    server.add(Reply(text=TEXT, trickle=150, delay=0.01))
    with make(flavor, server.base_url(flavor), timeout=Timeout(connect=5, read=0.25)) as s:
        stream(s, recorder)
    assert recorder.calls == FINISHED
    assert recorder.response is not None and recorder.response.duration > 1.0  # far past the idle timeout
