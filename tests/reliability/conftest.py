"""Fixtures of the reliability suite: every HTTP provider, scripted faults, and socket accounting."""

from __future__ import annotations

import select
import socket
import ssl
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import llmstreamer
from llmstreamer import Message, RetryPolicy
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, RecordedRequest, Reply
from llmstreamer.testing._wire import BASE_PATHS, flavor_of, render

from ..conftest import Recorder, socket_fds, wait_until

# Every HTTP provider, and one OpenAI-compatible preset with its own wire quirks.
PROVIDERS = ("openai", "anthropic", "gemini", "mistral", "ollama", "deepseek")
# flavor -> the header its key travels in
CREDENTIAL = {
    "openai": "authorization",
    "anthropic": "x-api-key",
    "gemini": "x-goog-api-key",
    "mistral": "authorization",
    "ollama": "authorization",
    "deepseek": "authorization",
}
KEY = "sk-reliability-SECRET-0123456789abcdef"
TEXT = ("Alpha", " Bravo", " Charlie", " Delta")
WHOLE = "".join(TEXT)
HI = [Message.user("Hi")]
# one quick retry: enough to see whether an error is retried, without a real backoff
QUICK_RETRY = RetryPolicy(retries=1, initial_delay=0.001, jitter=0)



def make(flavor: str, base_url: str, **kw: Any) -> HTTPStreamer:
    """The streamer of ``flavor`` at ``base_url`` with the test key and, unless told, no retries."""
    kw.setdefault("retry", 0)
    kw.setdefault("api_key", KEY)
    built = llmstreamer.streamer(f"{flavor}:some-model", base_url=base_url, **kw)
    assert isinstance(built, HTTPStreamer)
    return built


def url_for(flavor: str, root: str) -> str:
    """The base URL of ``flavor`` under ``root`` (a scheme, host and port), as the fake server lays it out."""
    return root + BASE_PATHS.get(flavor, f"/{flavor}/v1")


def stream(streamer: HTTPStreamer, recorder: Recorder, **options: Any) -> Recorder:
    """Run one stream into ``recorder`` and wait (bounded) for its terminal callback."""
    assert streamer.stream_chat(HI, recorder, **options).wait(60), "the stream did not end"
    return recorder


def edited(reply: Reply, edit: Callable[[list[str], bool], list[str]]) -> Callable[[RecordedRequest], Reply]:
    """A reply source: ``reply`` rendered for the request's provider, its events passed through
    ``edit(events, sse)`` (each event a complete SSE event or NDJSON line)."""

    def source(request: RecordedRequest) -> Reply:
        rendered = render(flavor_of(request.path), reply, request)
        return reply.evolve(events=edit(list(rendered.events), rendered.sse))

    return source


def upto(marker: str) -> Callable[[list[str]], int]:
    """How many events there are up to and including the first one that holds ``marker``."""

    def count(events: list[str]) -> int:
        return next(i for i, e in enumerate(events) if marker in e) + 1

    return count


def cut(reply: Reply, marker: str, **framing: Any) -> Callable[[RecordedRequest], Reply]:
    """``reply`` with each framing field given as ``"at"`` set to the count of events through ``marker``."""

    def source(request: RecordedRequest) -> Reply:
        events = render(flavor_of(request.path), reply, request).events
        n = upto(marker)(list(events))
        return reply.evolve(**{k: (n if v == "at" else v) for k, v in framing.items()})

    return source


@pytest.fixture(params=PROVIDERS)
def flavor(request: pytest.FixtureRequest) -> str:
    """Each HTTP provider in turn."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_socket_leaks() -> Iterator[None]:
    """Every reliability test ends with no more sockets open than it started with."""
    before = socket_fds()
    yield
    assert wait_until(lambda: socket_fds() <= before), f"sockets left open: {socket_fds()} > {before}"


@pytest.fixture
def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def backlogged_port() -> Iterator[int]:
    """A loopback port whose listener accepts nothing and whose backlog is full: a connect hangs.

    ``listen(0)`` and no ``accept``; connections are opened until one no longer completes
    (each check waits at most 0.2 s), so the next SYN is dropped and a client's connect times out.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(32):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                break
        else:
            pytest.fail("could not fill the listen backlog")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A private CA's certificate for 127.0.0.1 (a server context) and the CA's PEM file path."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    path = Path(tmp_path_factory.mktemp("tls")) / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return context, str(path)


@pytest.fixture
def tls_server(tls_ca: tuple[ssl.SSLContext, str]) -> Iterator[FakeLLMServer]:
    """A fake server speaking HTTPS with a certificate no public CA signed."""
    with FakeLLMServer(tls=tls_ca[0]) as srv:
        yield srv
