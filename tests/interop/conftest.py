"""Session fixtures that start the third-party servers once, on free loopback ports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from .servers import ServerProcess, free_port, interop_venv, missing

HERE = Path(__file__).resolve().parent

# LiteLLM: the master keys of the two proxies, and the texts their mock models answer.
LITELLM_KEY = "sk-interop-front"
UPSTREAM_KEY = "sk-interop-upstream"
SHORT_TEXT = "Hello from the LiteLLM mock."
# LiteLLM streams a mock answer three characters at a time and stops a stream that repeats one
# chunk a hundred times, so the long answers count instead of repeating.
LONG_TEXT = " ".join(str(i) for i in range(6500))  # 10,600 chunks
UPSTREAM_LONG_TEXT = " ".join(str(i) for i in range(12000))  # 20,300 chunks: seconds of streaming


def _executable(name: str) -> str:
    path = interop_venv() / "bin" / name
    if not path.exists():
        missing(name)
    return str(path)


def _started(server: ServerProcess, timeout: float) -> ServerProcess:
    server.start()
    server.wait_ready(timeout)
    return server


@pytest.fixture(scope="session")
def llmock() -> Iterator[ServerProcess]:
    """llmock on a free port for the whole session (scenarios are reset by each test)."""
    port = free_port()
    server = ServerProcess(
        "llmock",
        [_executable("llmock"), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        port=port,
        ready_path="/health",
    )
    try:
        yield _started(server, 60)
    finally:
        server.cleanup()


def _litellm_config(models: dict[str, dict[str, object]], key: str) -> str:
    """A LiteLLM proxy config (JSON is YAML): the models, a master key, no database."""
    return json.dumps(
        {
            "model_list": [{"model_name": name, "litellm_params": params} for name, params in models.items()],
            "general_settings": {"master_key": key},
            # /v1/messages for an OpenAI-wire model goes through chat/completions, which the
            # upstream proxy streams (its Responses API bridge does not stream mock answers)
            "litellm_settings": {"use_chat_completions_url_for_anthropic_messages": True},
            # LiteLLM retries a failed call twice by itself, with backoff: the tests want the failure
            "router_settings": {"num_retries": 0},
        }
    )


def _litellm(name: str, port: int, config: str) -> ServerProcess:
    server = ServerProcess(
        name,
        [
            _executable("litellm"),
            "--config",
            "config.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--telemetry",
            "False",
        ],
        port=port,
        ready_path="/health/liveliness",
        # the bundled model price list, instead of fetching it from GitHub at start-up
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
    )
    (server.dir / "config.yaml").write_text(config)
    return server


class LiteLLM:
    """The two proxies: ``front`` (what the tests talk to) and ``upstream`` (behind the bridge)."""

    def __init__(self) -> None:
        self.upstream = _litellm(
            "litellm-upstream",
            free_port(),
            _litellm_config(
                {
                    "upstream-text": {"model": "openai/upstream-text", "mock_response": "Hello through the bridge."},
                    "upstream-long": {"model": "openai/upstream-long", "mock_response": UPSTREAM_LONG_TEXT},
                },
                UPSTREAM_KEY,
            ),
        )
        upstream_v1 = self.upstream.url + "/v1"
        self.front = _litellm(
            "litellm-front",
            free_port(),
            _litellm_config(
                {
                    "mock-text": {"model": "openai/mock-text", "mock_response": SHORT_TEXT},
                    "mock-long": {"model": "openai/mock-long", "mock_response": LONG_TEXT},
                    "mock-overloaded": {
                        "model": "openai/mock-overloaded",
                        "mock_response": "Exception: mock_streaming_error",
                    },
                    "bridge-text": {"model": "openai/upstream-text", "api_base": upstream_v1, "api_key": UPSTREAM_KEY},
                    "bridge-long": {"model": "openai/upstream-long", "api_base": upstream_v1, "api_key": UPSTREAM_KEY},
                },
                LITELLM_KEY,
            ),
        )

    @property
    def url(self) -> str:
        """The front proxy's URL."""
        return self.front.url

    def ensure_upstream(self) -> None:
        """Start the upstream proxy again if a test killed it."""
        if not self.upstream.alive():
            self.upstream.start()
            self.upstream.wait_ready(120)


@pytest.fixture(scope="session")
def litellm() -> Iterator[LiteLLM]:
    """Two LiteLLM proxies for the session; the front one bridges some models to the upstream one."""
    proxies = LiteLLM()
    try:
        proxies.upstream.start()
        proxies.front.start()  # both boot at once: LiteLLM takes seconds to import
        proxies.upstream.wait_ready(120)
        proxies.front.wait_ready(120)
        yield proxies
    finally:
        proxies.front.cleanup()
        proxies.upstream.cleanup()


LLAMA_CONTEXT = 2048


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic llama model, generated by ``tinyllama.py`` with the gguf package."""
    python = _executable("python")
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    done = subprocess.run([python, str(HERE / "tinyllama.py"), str(path)], capture_output=True, timeout=120)
    if done.returncode != 0:
        missing(f"gguf ({done.stderr.decode(errors='replace')[-300:]})")
    return path


@pytest.fixture(scope="session")
def llama(tiny_gguf: Path) -> Iterator[ServerProcess]:
    """llama-cpp-python's server running the tiny model (one model, one request at a time)."""
    python = _executable("python")
    check = subprocess.run([python, "-c", "import llama_cpp.server"], capture_output=True, timeout=120)
    if check.returncode != 0:
        missing("llama-cpp-python[server]")
    port = free_port()
    args = [python, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--model_alias", "tiny"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(LLAMA_CONTEXT), "--n_threads", "1"]
    args += ["--verbose", "False"]
    server = ServerProcess("llama-cpp", args, port=port, ready_path="/v1/models")
    try:
        yield _started(server, 60)
    finally:
        server.cleanup()


@pytest.fixture
def scenario(llmock: ServerProcess) -> Iterator[object]:
    """Queue llmock behaviours for the next requests: ``scenario(behaviour, ...)``; reset around each test."""

    def queue(*behaviors: dict[str, object]) -> None:
        answer = requests.post(llmock.url + "/_llmock/scenario", json={"behaviors": list(behaviors)}, timeout=5)
        answer.raise_for_status()

    requests.post(llmock.url + "/_llmock/reset", timeout=5).raise_for_status()
    yield queue
    requests.post(llmock.url + "/_llmock/reset", timeout=5).raise_for_status()
