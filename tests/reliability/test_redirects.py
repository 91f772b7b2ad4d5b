"""Credential headers never follow a redirect to another host, port or scheme: HTTP on every
provider, and the ModelSocket WebSocket handshake (which refuses every redirect)."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Any, Callable, Iterator

import pytest

from llmstreamer import APIConnectionError, ModelSocketStreamer
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply

from ..conftest import Recorder
from .conftest import CREDENTIAL, HI, KEY, make, stream

STATUSES = (301, 302, 303, 307, 308)
# every credential header a user might add, dropped along with the provider's own
USER_CREDENTIALS = {"api-key": KEY, "x-api-key": KEY, "x-goog-api-key": KEY, "authorization": f"Bearer {KEY}"}


def moved(status: int, root: str) -> Callable[[RecordedRequest], Reply]:
    """A reply redirecting to the same path under ``root``."""
    return lambda request: Reply(status=status, headers={"location": root + request.path}, body="")


@pytest.fixture(params=["host", "port", "scheme"])
def elsewhere(request: pytest.FixtureRequest, server: FakeLLMServer, tls_ca: tuple[ssl.SSLContext, str]) -> Iterator[tuple[str, FakeLLMServer]]:
    """Another origin (root URL) and the server behind it: the same server under another host
    name, another server on another port, or a TLS server (https: another scheme)."""
    if request.param == "host":
        yield f"http://localhost:{server.port}", server
    elif request.param == "port":
        with FakeLLMServer() as other:
            yield other.url, other
    else:
        with FakeLLMServer(tls=tls_ca[0]) as other:
            yield other.url, other


def test_credentials_never_follow_a_redirect_to_another_origin(
    flavor: str, server: FakeLLMServer, elsewhere: tuple[str, FakeLLMServer], tls_ca: tuple[ssl.SSLContext, str]
) -> None:
    """On 301/302/303/307/308 to another host, port or scheme, no credential header reaches the
    new origin (the provider's own or one the user added), while the body and other headers do."""
    root, other = elsewhere
    headers = {"x-trace": "t-1", "api-key": KEY}
    for status in STATUSES:
        server.add(moved(status, root))
        other.add(Reply(text=["moved"]))
        recorder = Recorder()
        with make(flavor, server.base_url(flavor), verify=tls_ca[1], headers=headers) as s:
            stream(s, recorder)
        assert recorder.calls[-1] == ("finish", "moved"), (status, recorder.calls)
        first = next(r for r in reversed(server.requests) if r.headers.get("host", "").startswith("127.0.0.1"))
        last = other.requests[-1]
        assert KEY in first.headers[CREDENTIAL[flavor]]
        assert not any(KEY in value for value in last.headers.values()), (status, last.headers)
        assert last.headers["x-trace"] == "t-1" and last.json == first.json


def test_user_credential_headers_are_dropped_too(flavor: str, server: FakeLLMServer) -> None:
    """Every credential header a user adds (api-key, x-api-key, x-goog-api-key, authorization) is
    dropped on a cross-origin redirect as well."""
    with FakeLLMServer() as other:
        server.add(moved(307, other.url))
        with make(flavor, server.base_url(flavor), headers=USER_CREDENTIALS) as s:
            assert s.chat(HI).text == "Hello from the fake server."
    sent = other.requests[-1].headers
    assert not any(KEY in value for value in sent.values())
    assert not {"api-key", "x-api-key", "x-goog-api-key", "authorization"} & set(sent)


def test_credentials_stay_on_a_redirect_within_the_origin(flavor: str, server: FakeLLMServer) -> None:
    """A redirect within the same origin is followed with the credential header still sent."""
    server.add(moved(307, server.url))
    with make(flavor, server.base_url(flavor)) as s:
        assert s.chat(HI).text == "Hello from the fake server."
    assert len(server.requests) == 2
    assert all(KEY in r.headers[CREDENTIAL[flavor]] for r in server.requests)


def test_a_redirect_loop_is_bounded(flavor: str, server: FakeLLMServer) -> None:
    """A redirect loop ends in APIConnectionError after five hops (six requests), not forever."""
    server.default = moved(307, server.url)
    with make(flavor, server.base_url(flavor)) as s, pytest.raises(APIConnectionError, match="more than 5 redirects"):
        s.chat(HI)
    assert len(server.requests) == 6


# --- the WebSocket handshake --------------------------------------------------------------------


class _Redirector:
    """A loopback server answering every WebSocket handshake with ``status`` and a Location on
    another port, where a listener notes whether anyone ever connects."""

    def __init__(self, status: int) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.target = socket.socket()
        self.target.bind(("127.0.0.1", 0))
        self.target.listen(4)
        self.status = status
        self.handshakes: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, name="ws-redirector", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.listener.getsockname()[1]}/ws"

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.handshakes.append(data)
            location = f"ws://127.0.0.1:{self.target.getsockname()[1]}/ws"
            conn.sendall(f"HTTP/1.1 {self.status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    def target_was_contacted(self) -> bool:
        readable, _, _ = select.select([self.target], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)
        self.target.close()


@pytest.mark.parametrize("status", STATUSES)
def test_websocket_handshake_redirects_are_refused(status: int, recorder: Recorder) -> None:
    """ModelSocket refuses a redirected handshake (every redirect status): one clear error, and the
    key never reaches the other origin."""
    redirector = _Redirector(status)
    try:
        s: Any = ModelSocketStreamer(api_key=KEY, base_url=redirector.url, retry=0)
        try:
            assert s.stream_chat(HI, recorder).wait(15)
        finally:
            s.close()
        assert recorder.calls == [("error", "APIConnectionError")]
        error = recorder.error
        assert type(error) is APIConnectionError and f"redirect ({status})" in str(error) and KEY not in str(error)
        assert len(redirector.handshakes) == 1 and KEY.encode() in redirector.handshakes[0]
        assert not redirector.target_was_contacted()
    finally:
        redirector.close()
