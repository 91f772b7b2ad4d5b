"""The transport layer's one boundary: every foreign exception type becomes an llmstreamer error.

The fault matrix (``test_faults``) and the ModelSocket tests drive real sockets into these
failures; this table pins the classification itself, for the HTTP and the WebSocket phases alike,
so that no requests, urllib3, ``http.client``, socket, ssl or websocket-client type can reach
``on_error``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest
import requests
import urllib3
import websocket

from llmstreamer import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    LLMStreamError,
    StreamCancelled,
    StreamError,
    Timeout,
)
from llmstreamer._boundary import CLOSING, CONNECTING, DECODING, READING, SENDING, boundary
from llmstreamer._cancel import CancelToken

URL = "https://api.example.test/v1/chat?key=SECRET"
KEY = "SECRET"


def _json_error() -> ValueError:
    try:
        json.loads("{not json")
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


CASES = [
    (CONNECTING, requests.exceptions.ConnectTimeout("slow"), APITimeoutError, "timed out connecting to https://api.example.test:443"),
    (CONNECTING, urllib3.exceptions.ConnectTimeoutError("slow"), APITimeoutError, "timed out connecting"),
    (CONNECTING, requests.exceptions.ReadTimeout("slow"), APITimeoutError, "while waiting for the response"),
    (CONNECTING, websocket.WebSocketTimeoutException("slow"), APITimeoutError, "timed out connecting"),
    (CONNECTING, socket.gaierror(socket.EAI_NONAME, "Name or service not known"), APIConnectionError, "cannot resolve host 'api.example.test'"),
    (CONNECTING, ConnectionRefusedError(111, "Connection refused"), APIConnectionError, "cannot connect to https://api.example.test:443"),
    (CONNECTING, ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), APIConnectionError, "verify='/path/to/ca.pem'"),
    (CONNECTING, requests.exceptions.SSLError("bad certificate"), APIConnectionError, "TLS error with"),
    (CONNECTING, requests.exceptions.InvalidURL("no host"), APIConnectionError, "invalid URL"),
    (CONNECTING, websocket.WebSocketBadStatusException("refused %d %s", 401, "Unauthorized"), AuthenticationError, ""),
    (READING, urllib3.exceptions.ProtocolError("Connection broken"), APIConnectionError, "dropped mid-stream: Connection broken"),
    (READING, urllib3.exceptions.ReadTimeoutError(None, "/v1", "read timed out"), APITimeoutError, "while waiting for more of the stream"),  # type: ignore[arg-type]
    (READING, http.client.IncompleteRead(b"partial"), APIConnectionError, "dropped mid-stream"),
    (READING, ConnectionResetError(104, "Connection reset by peer"), APIConnectionError, "dropped mid-stream"),
    (READING, websocket.WebSocketConnectionClosedException("lost"), APIConnectionError, "dropped mid-stream: lost"),
    (SENDING, BrokenPipeError(32, "Broken pipe"), APIConnectionError, "failed while sending to it"),
    (CLOSING, websocket.WebSocketException("half closed"), APIConnectionError, "failed while closing it"),
    (DECODING, _json_error(), StreamError, "malformed frame from https://api.example.test:443"),
    (DECODING, UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), StreamError, "malformed frame"),
]


@pytest.mark.parametrize(("doing", "foreign", "cls", "text"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None)
def test_every_foreign_exception_becomes_an_llmstreamer_error(doing: str, foreign: Exception, cls: type[LLMStreamError], text: str) -> None:
    """Each foreign type, in each phase, is raised as exactly its llmstreamer class, chained, the key redacted."""
    edge = boundary("openai", URL, doing, lambda s: s.replace(KEY, "***"), Timeout(connect=2, read=3))
    with pytest.raises(LLMStreamError) as info, edge:
        raise foreign
    assert type(info.value) is cls and info.value.__cause__ is foreign
    assert text in str(info.value) and KEY not in str(info.value)
    assert info.value.provider == "openai"


def test_the_path_and_query_are_never_named() -> None:
    """Messages name the origin only, so a key or path in the URL never reaches an error."""
    with pytest.raises(APIConnectionError) as info, boundary("openai", URL, READING):
        raise ConnectionResetError(104, "reset")
    assert "/v1" not in str(info.value) and "key=" not in str(info.value)


def test_a_bug_is_not_disguised_as_a_network_failure() -> None:
    """An exception that no foreign library raises (a bug in llmstreamer) passes through unchanged."""
    with pytest.raises(KeyError), boundary("openai", URL, READING):
        raise KeyError("missing")


def test_after_cancel_any_failure_is_the_cancellation() -> None:
    """Once the stream is cancelled, whatever the aborted read raises is reported as the cancellation."""
    token = CancelToken()
    token.cancel()
    with pytest.raises(StreamCancelled) as info, boundary("openai", URL, READING, token=token):
        raise AttributeError("'NoneType' object has no attribute 'read'")
    assert isinstance(info.value.__cause__, AttributeError)


def test_llmstreamer_errors_pass_through() -> None:
    """An llmstreamer error raised inside the boundary is not wrapped again."""
    mine = StreamError("already ours", provider="openai")
    with pytest.raises(StreamError) as info, boundary("openai", URL, DECODING):
        raise mine
    assert info.value is mine
