"""The registry: streamer("provider:model"), providers(), presets, and entry-point plug-ins."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

import llmstreamer
from llmstreamer import (
    ConfigurationError,
    Message,
    MistralStreamer,
    OpenAICompatibleStreamer,
    OpenAIStreamer,
    ProviderInfo,
    Streamer,
    registry,
)
from llmstreamer.testing import FakeLLMServer

PLUGIN_MODULE = "llmstreamer_test_echo_plugin"

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A third-party provider: echoes the last user message, using only llmstreamer's public core."""
    from llmstreamer import Event, Usage
    from llmstreamer.provider import ProviderSpec, Streamer


    class EchoStreamer(Streamer):
        spec = ProviderSpec(name="myplugin", api_key_env="MYPLUGIN_API_KEY", requires_key=True, default_model="echo-1")

        def stream_round(self, messages, options, context):
            yield Event("meta", data={"model": self.model})
            for word in ("echo:", " ", messages[-1].text):
                yield Event("content", word)
            yield Event("usage", data=Usage(1, 3))
            yield Event("stop", "stop")
            yield Event("done")


    class NotAStreamer:
        pass
    '''
)


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tiny installed distribution in tmp_path declaring entry points in the llmstreamer.providers group."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    info = tmp_path / "llmstreamer_test_echo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llmstreamer-test-echo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[llmstreamer.providers]\n"
        f"myplugin = {PLUGIN_MODULE}:EchoStreamer\n"
        "broken = llmstreamer_no_such_module_xyz:Thing\n"
        f"notastreamer = {PLUGIN_MODULE}:NotAStreamer\n"
        f"openai = {PLUGIN_MODULE}:EchoStreamer\n"
        "\n[console_scripts]\n"
        f"echo-plugin = {PLUGIN_MODULE}:main\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(PLUGIN_MODULE, None)


# --- streamer() ------------------------------------------------------------------------------------


def test_streamer_builds_the_provider_with_the_model() -> None:
    """streamer("openai:gpt-4o") builds an OpenAIStreamer for that model, passing keywords on."""
    s = llmstreamer.streamer("openai:gpt-4o", api_key="k", timeout=5)
    assert isinstance(s, OpenAIStreamer)
    assert (s.model, s.timeout.connect, s.timeout.read) == ("gpt-4o", 5, 5)


def test_streamer_without_a_model_uses_the_default() -> None:
    """A bare provider name gives its default model; case and spaces in the name do not matter."""
    s = llmstreamer.streamer(" Mistral ", api_key="k")
    assert isinstance(s, MistralStreamer) and s.model == "mistral-small-latest"


def test_everything_after_the_first_colon_is_the_model() -> None:
    """A model name with colons of its own is kept whole."""
    s = llmstreamer.streamer("openai-compatible:llama3:8b-instruct", base_url="http://localhost:1/v1")
    assert s.model == "llama3:8b-instruct"


def test_keywords_win_over_preset_defaults_and_none_counts_as_unset() -> None:
    """A base_url keyword replaces the preset's; base_url=None keeps it."""
    assert llmstreamer.streamer("vllm:m", base_url="http://gpu:9000/v1").base_url == "http://gpu:9000/v1"
    assert llmstreamer.streamer("vllm:m", base_url=None, api_key=None).base_url == "http://localhost:8000/v1"


def test_compatible_without_base_url_fails_clearly() -> None:
    """streamer("openai-compatible:m") without base_url says a base_url is needed."""
    with pytest.raises(ConfigurationError, match="needs a base_url"):
        llmstreamer.streamer("openai-compatible:my-model")


def test_unknown_provider_lists_the_known_ones() -> None:
    """An unknown provider is a ConfigurationError listing every known name."""
    with pytest.raises(ConfigurationError) as caught:
        llmstreamer.streamer("nosuchprovider:model")
    message = str(caught.value)
    assert message.startswith("unknown provider 'nosuchprovider'; known providers: ")
    for name in [*registry.BUILTIN, *registry.PRESETS]:
        assert name in message


@pytest.mark.parametrize("spec", ["", "   ", None, 42])
def test_bad_spec_is_a_configuration_error(spec: object) -> None:
    """A spec that is not a non-empty string is refused with the expected shape in the message."""
    with pytest.raises(ConfigurationError, match="provider:model"):
        llmstreamer.streamer(spec)  # type: ignore[arg-type]


# --- providers() -----------------------------------------------------------------------------------


def test_providers_lists_builtins_and_presets_with_key_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """list_providers() lists built-ins and presets, sorted, with key variables and whether a key is set."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk")
    infos = {p.name: p for p in llmstreamer.list_providers()}
    names = [p.name for p in llmstreamer.list_providers()]
    assert names == sorted(names)
    assert {"openai", "anthropic", "mistral", "openai-compatible", *registry.PRESETS} <= set(infos)
    assert infos["groq"] == ProviderInfo("groq", ("GROQ_API_KEY",), True, True, "preset", "https://api.groq.com/openai/v1")
    assert infos["openrouter"] == ProviderInfo(
        "openrouter", ("OPENROUTER_API_KEY",), False, True, "preset", "https://openrouter.ai/api/v1"
    )
    assert infos["lmstudio"] == ProviderInfo("lmstudio", (), True, False, "preset", "http://localhost:1234/v1")
    assert infos["mistral"] == ProviderInfo(
        "mistral", ("MISTRAL_API_KEY",), False, True, "builtin", "https://api.mistral.ai/v1"
    )
    assert infos["openai-compatible"] == ProviderInfo("openai-compatible", (), True, False, "builtin", None)


def test_the_deprecated_providers_call_still_lists_and_warns() -> None:
    """llmstreamer.providers() (kept one release) is list_providers() with a DeprecationWarning, even after provider imports."""
    import llmstreamer.providers.compatible  # binds the package attribute, which must stay callable

    with pytest.deprecated_call():
        listed = llmstreamer.providers()
    with pytest.deprecated_call():
        assert registry.providers() == listed == llmstreamer.list_providers()


# --- plug-ins --------------------------------------------------------------------------------------


def test_plugin_is_listed_and_built_from_its_entry_point(plugin_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution's entry point in llmstreamer.providers shows in list_providers() and streams via streamer()."""
    infos = {p.name: p for p in llmstreamer.list_providers()}
    assert infos["myplugin"] == ProviderInfo("myplugin", ("MYPLUGIN_API_KEY",), False, True, "plugin", None)
    monkeypatch.setenv("MYPLUGIN_API_KEY", "pk")
    assert {p.name: p.configured for p in llmstreamer.list_providers()}["myplugin"] is True
    s = llmstreamer.streamer("myplugin:m")
    assert type(s).__name__ == "EchoStreamer" and isinstance(s, Streamer) and s.model == "m"
    response = s.chat([Message.user("ping")])
    assert (response.text, response.provider, response.model) == ("echo: ping", "myplugin", "m")


def test_plugin_without_its_key_fails_like_a_builtin(plugin_dist: Path) -> None:
    """The plug-in's own key rules apply: without MYPLUGIN_API_KEY it fails, naming the variable."""
    with pytest.raises(ConfigurationError, match="MYPLUGIN_API_KEY"):
        llmstreamer.streamer("myplugin")


def test_broken_plugins_fail_alone(plugin_dist: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A plug-in that cannot load, or is not a Streamer, is left out of list_providers() and fails clearly by name."""
    with caplog.at_level(logging.WARNING, logger="llmstreamer.registry"):
        names = [p.name for p in llmstreamer.list_providers()]
    assert "myplugin" in names and "broken" not in names and "notastreamer" not in names
    assert any("'broken'" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigurationError, match=r"plug-in 'broken' .* failed to load: ModuleNotFoundError"):
        llmstreamer.streamer("broken:m")
    with pytest.raises(ConfigurationError, match=r"plug-in 'notastreamer' .* is not a Streamer subclass"):
        llmstreamer.streamer("notastreamer:m")


def test_builtin_names_win_over_plugins(plugin_dist: Path) -> None:
    """A plug-in cannot take over a built-in name: "openai" stays OpenAI."""
    assert isinstance(llmstreamer.streamer("openai:gpt-4o", api_key="k"), OpenAIStreamer)
    assert [p.source for p in llmstreamer.list_providers() if p.name == "openai"] == ["builtin"]


def test_unknown_provider_lists_plugins_too(plugin_dist: Path) -> None:
    """The unknown-provider message names installed plug-ins as well."""
    with pytest.raises(ConfigurationError, match="myplugin"):
        llmstreamer.streamer("nosuch:m")


def test_entry_points_as_a_dict_of_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.9's entry_points() (a dict of group -> entry points) is read as well."""
    ep = importlib.metadata.EntryPoint(
        name="dictplug", value="llmstreamer.providers.compatible:OpenAICompatibleStreamer", group=registry.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda: {registry.ENTRY_POINT_GROUP: (ep,), "other": ()})
    assert "dictplug" in [p.name for p in llmstreamer.list_providers()]
    s = llmstreamer.streamer("dictplug:m", base_url="http://localhost:1/v1")
    assert isinstance(s, OpenAICompatibleStreamer)


def test_preset_built_by_the_registry_streams(server: FakeLLMServer) -> None:
    """A keyless preset built by name streams from the server it is pointed at."""
    s = llmstreamer.streamer("lmstudio:qwen", base_url=server.base_url("lmstudio"))
    assert s.chat([Message.user("Hi")]).text == "Hello from the fake server."
    assert server.requests[0].path == "/lmstudio/v1/chat/completions"
