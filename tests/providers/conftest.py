"""Fixtures shared by the provider tests: a fake ModelSocket server and a streamer and client on it."""

from __future__ import annotations

from typing import Iterator

import pytest

from llmstreamer import ModelSocketClient, ModelSocketStreamer, RetryPolicy
from llmstreamer.testing.modelsocket import FakeModelSocketServer

MODELSOCKET_KEY = "ms-secret-key-0451"
MODELSOCKET_MODEL = "meta/llama3.1-8b-instruct-free"


@pytest.fixture
def ms() -> Iterator[FakeModelSocketServer]:
    """A fresh fake ModelSocket server that wants ``MODELSOCKET_KEY``."""
    with FakeModelSocketServer(api_key=MODELSOCKET_KEY) as srv:
        yield srv


@pytest.fixture
def streamer(ms: FakeModelSocketServer) -> Iterator[ModelSocketStreamer]:
    """A ModelSocket streamer on the fake server, closed afterwards."""
    s = ModelSocketStreamer(model=MODELSOCKET_MODEL, api_key=MODELSOCKET_KEY, base_url=ms.url, timeout=5, retry=RetryPolicy.none())
    yield s
    s.close()


@pytest.fixture
def client(ms: FakeModelSocketServer) -> Iterator[ModelSocketClient]:
    """A ModelSocket sequence client on the fake server, closed afterwards."""
    with ModelSocketClient.connect(ms.url, MODELSOCKET_KEY, timeout=5) as c:
        yield c
