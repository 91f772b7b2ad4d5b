"""Bad input gets a clear ConfigurationError before any request is sent."""

from __future__ import annotations

import pytest

import llmstreamer
from llmstreamer import AnthropicStreamer, ConfigurationError, Message, OpenAIStreamer, StreamCallbacks
from llmstreamer.testing import FakeLLMServer


def openai(server: FakeLLMServer) -> OpenAIStreamer:
    return OpenAIStreamer(api_key="k", base_url=server.base_url("openai"))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("Hello", "must be a list"),
        (Message.user("Hi"), "must be a list"),
        ({"role": "user", "content": "Hi"}, "must be a list"),
        ([], "empty"),
        ([42], r"messages\[0\] must be a Message"),
        ([{"role": "bot", "content": "x"}], r"messages\[0\]: unknown role 'bot'"),
        ([{"content": "x"}], r"messages\[0\]: a message dict needs 'role'"),
        ([Message.user("ok"), {"role": "user", "content": 5}], r"messages\[1\]"),
    ],
)
def test_bad_messages(server: FakeLLMServer, messages: object, match: str) -> None:
    """Messages that are not a list of Message or {role, content} dicts are refused, naming the problem."""
    with pytest.raises(ConfigurationError, match=match):
        openai(server).stream_chat(messages)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"temprature": 0.1}, "unknown option 'temprature'"),
        ({"top_k": 5}, "openai does not support the option 'top_k'"),
        ({"thinking_budget": 100}, "openai does not support the option 'thinking_budget'"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"temperature": 9}, "between"),
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"stop": [""]}, "stop must be"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"confirm_tool": 3}, "confirm_tool must be callable"),
    ],
)
def test_bad_options(server: FakeLLMServer, options: dict[str, object], match: str) -> None:
    """Unknown, unsupported or ill-typed options raise before any request, naming option and provider."""
    with pytest.raises(ConfigurationError, match=match):
        openai(server).stream_chat([Message.user("Hi")], **options)
    assert server.requests == []


def test_anthropic_refuses_seed(server: FakeLLMServer) -> None:
    """An option one provider supports and another does not is refused by the one that cannot."""
    s = AnthropicStreamer(api_key="k", base_url=server.base_url("anthropic"))
    with pytest.raises(ConfigurationError, match="anthropic does not support the option 'seed'"):
        s.chat([Message.user("Hi")], seed=1)


@pytest.mark.parametrize(("cls", "env"), [(OpenAIStreamer, "OPENAI_API_KEY"), (AnthropicStreamer, "ANTHROPIC_API_KEY")])
def test_missing_key_names_the_variable(cls: type, env: str) -> None:
    """A missing key is refused at construction, naming the environment variable to set."""
    with pytest.raises(ConfigurationError, match=f"set {env}"):
        cls()


def test_key_from_environment(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is read from the provider's usual variable, and the base URL from OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
    OpenAIStreamer().chat([Message.user("Hi")])
    assert server.requests[-1].headers["authorization"] == "Bearer from-env"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"retry": -1}, "retry"),
        ({"retry": "3"}, "retry"),
        ({"timeout": 0}, "timeout"),
        ({"pool_size": 0}, "pool_size"),
        ({"executor": object()}, "executor"),
        ({"base_url": "ftp://x"}, "http"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], match: str) -> None:
    """Bad constructor arguments are refused with a message naming them."""
    with pytest.raises(ConfigurationError, match=match):
        OpenAIStreamer(api_key="k", **kwargs)  # type: ignore[arg-type]


def test_bad_callbacks(server: FakeLLMServer) -> None:
    """A callback that is not callable is refused before the stream starts."""
    with pytest.raises(ConfigurationError, match="on_content must be callable"):
        StreamCallbacks(on_content="print")  # type: ignore[arg-type]

    class Odd:
        on_finish = 5

    with pytest.raises(ConfigurationError, match="on_finish must be callable"):
        openai(server).stream_chat([Message.user("Hi")], Odd())


def test_unknown_provider_lists_known_ones() -> None:
    """llmstreamer.streamer with an unknown provider names the known providers."""
    with pytest.raises(ConfigurationError, match="unknown provider 'nope'.*anthropic.*openai"):
        llmstreamer.streamer("nope:model")


def test_configuration_error_is_a_value_error() -> None:
    """ConfigurationError can be caught as ValueError."""
    assert issubclass(ConfigurationError, ValueError)
