"""Shared fixtures: no real keys, a fake server per test, a recorder of callbacks, leak checks."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from llmstreamer.testing import CallbackRecorder, FakeLLMServer

# Variables that could point a test at a real service, or change a default behind its back.
_ENV = (
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY",
    "OLLAMA_HOST",
    "MODELSOCKET_URL",
    "LLMSTREAMER_MODEL",
    "LLMSTREAMER_STORE",
)


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every provider key and endpoint variable, so no test can reach a real service."""
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name in _ENV:
            monkeypatch.delenv(name, raising=False)


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """getaddrinfo that answers loopback names and fails every other name locally."""
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name in _LOOPBACK_NAMES or name.startswith("127.") or not name:
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved (the test suite allows no DNS traffic)")


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may send a DNS query: names other than loopback fail at once, like an unknown host.

    The resolver would otherwise ask the machine's DNS server even for reserved names such as
    ``*.invalid``; the tests need the failure, not the traffic.
    """
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fresh fake LLM server on 127.0.0.1."""
    with FakeLLMServer() as srv:
        yield srv


# the package's own recorder: the tests use what users get
Recorder = CallbackRecorder


@pytest.fixture
def recorder() -> Recorder:
    """A fresh `Recorder`."""
    return Recorder()


def llm_threads() -> list[threading.Thread]:
    """Worker and deadline threads of llmstreamer that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("llmstreamer-")]


def socket_fds() -> int:
    """How many sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` expires (bounded, for leak checks)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Every test must leave no llmstreamer thread behind."""
    yield
    assert wait_until(lambda: not llm_threads()), f"threads left behind: {llm_threads()}"


class Serving:
    """A WSGI app on a real werkzeug server thread on 127.0.0.1."""

    """A WSGI app on a real threaded werkzeug server in a thread."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server  # werkzeug comes with flask, a test extra

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-wsgi", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start WSGI apps on real server threads; all are stopped after the test."""
    started: list[Serving] = []

    def start(app: Any) -> Serving:
        started.append(Serving(app))
        return started[-1]

    yield start
    for serving in started:
        serving.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real redis-server on a free loopback port for the whole session (see tests/redisserver.py)."""
    from tests.redisserver import redis_server_fixture

    yield from redis_server_fixture()


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    """The URL of the session's redis-server, emptied before each test; restarted if a test stopped it."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.flush()
    yield redis_server.url
