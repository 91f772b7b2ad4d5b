"""The provider registry: ``streamer("provider:model")``, ``list_providers()``, presets and plug-ins.

A provider is a `Streamer` subclass, found by name: built-in ones are listed here and imported
only when used; OpenAI-compatible services are presets (a base URL, a key variable and quirks
on `OpenAICompatibleStreamer`); third-party ones register through the entry-point group
``llmstreamer.providers`` (``name = "package.module:StreamerClass"``). Built-in names and
presets win over a plug-in of the same name.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .provider import Streamer

log = logging.getLogger(__name__)

__all__ = ["ENTRY_POINT_GROUP", "PRESETS", "Preset", "ProviderInfo", "list_providers", "providers", "resolve", "streamer"]

ENTRY_POINT_GROUP = "llmstreamer.providers"

# name -> "module:Class" of the built-in providers.
BUILTIN: dict[str, str] = {
    "openai": "llmstreamer.providers.openai:OpenAIStreamer",
    "anthropic": "llmstreamer.providers.anthropic:AnthropicStreamer",
    "gemini": "llmstreamer.providers.gemini:GeminiStreamer",
    "mistral": "llmstreamer.providers.mistral:MistralStreamer",
    "ollama": "llmstreamer.providers.ollama:OllamaStreamer",
    "openai-compatible": "llmstreamer.providers.compatible:OpenAICompatibleStreamer",
    "modelsocket": "llmstreamer.providers.modelsocket:ModelSocketStreamer",
    "eliza": "llmstreamer.providers.eliza:ElizaStreamer",
}


@attrs.frozen(kw_only=True)
class Preset:
    """A named configuration of another provider (an OpenAI-compatible service, mostly).

    Attributes:
        name: The preset's name, also the provider name its streamers report.
        base_url: Where the service lives.
        key_env: The environment variable of its key (None: it takes none).
        requires_key: Refuse to start without a key.
        quirks: Names from ``providers.compatible.QUIRKS``: where the service strays from the wire.
        provider: The provider it configures.
    """

    name: str
    base_url: str
    key_env: str | None
    requires_key: bool = True
    quirks: tuple[str, ...] = ()
    provider: str = "openai-compatible"

    def defaults(self) -> dict[str, Any]:
        """The constructor keywords the preset stands for."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "api_key_env": (self.key_env,) if self.key_env else (),
            "requires_key": self.requires_key,
            "quirks": self.quirks,
        }


# name -> the preset of that name (a declarative list; the quirks are documented in
# llmstreamer.providers.compatible.QUIRKS).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="openrouter",
            base_url="https://openrouter.ai/api/v1",
            key_env="OPENROUTER_API_KEY",
            quirks=("reasoning_details", "reasoning_object", "file_parts"),
        ),
        Preset(name="groq", base_url="https://api.groq.com/openai/v1", key_env="GROQ_API_KEY", quirks=("no_embeddings",)),
        Preset(
            name="deepseek",
            base_url="https://api.deepseek.com",
            key_env="DEEPSEEK_API_KEY",
            quirks=("thinking_toggle", "reasoning_content_back", "no_images", "json_object_only", "no_embeddings"),
        ),
        Preset(name="together", base_url="https://api.together.xyz/v1", key_env="TOGETHER_API_KEY"),
        Preset(name="vllm", base_url="http://localhost:8000/v1", key_env="VLLM_API_KEY", requires_key=False),
        Preset(
            name="lmstudio", base_url="http://localhost:1234/v1", key_env=None, requires_key=False, quirks=("image_data_only",)
        ),
        Preset(
            name="llamacpp", base_url="http://localhost:8080/v1", key_env="LLAMA_API_KEY", requires_key=False, quirks=("no_done",)
        ),
        Preset(
            name="pixigpt",
            base_url="https://pixigpt.com/v1",
            key_env="PIXIGPT_API_KEY",
            quirks=("choice_reasoning", "no_stream", "enable_thinking"),
        ),
    )
}


@attrs.frozen
class ProviderInfo:
    """A provider the registry knows.

    Attributes:
        name: The name to use in ``streamer("name:model")``.
        key_env: The environment variables its API key is read from.
        configured: True when a key is set in one of them, or when the provider needs none.
        requires_key: Whether the provider refuses to start without a key.
        source: ``"builtin"``, ``"preset"`` (an OpenAI-compatible service) or ``"plugin"``.
        base_url: Where it connects by default, when it has a fixed address.
    """

    name: str
    key_env: tuple[str, ...]
    configured: bool
    requires_key: bool
    source: str = "builtin"
    base_url: str | None = None


def _load(target: str) -> type[Streamer]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _plugins() -> dict[str, Any]:
    """The entry points of the ``llmstreamer.providers`` group, by name (Python 3.9 and later)."""
    from importlib.metadata import entry_points

    found = entry_points()
    # 3.10+ selects by group; 3.9 returns a dict of group -> entry points
    group = found.select(group=ENTRY_POINT_GROUP) if hasattr(found, "select") else found.get(ENTRY_POINT_GROUP, ())
    return {ep.name.lower(): ep for ep in group}


def _names(plugins: Mapping[str, Any] | None = None) -> list[str]:
    return sorted({*BUILTIN, *PRESETS, *(_plugins() if plugins is None else plugins)})


def _load_plugin(name: str, entry_point: Any) -> type[Streamer]:
    from .provider import Streamer

    try:
        cls = entry_point.load()
    except Exception as exc:
        raise ConfigurationError(
            f"the provider plug-in {name!r} ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Streamer)):
        raise ConfigurationError(f"the provider plug-in {name!r} ({entry_point.value}) is not a Streamer subclass")
    return cls


def resolve(name: str) -> tuple[type[Streamer], dict[str, Any]]:
    """The streamer class and constructor defaults for a provider name.

    Raises:
        ConfigurationError: the name is unknown (the message lists the known ones), or its
            plug-in cannot be loaded.
    """
    return _resolve(name, None)


def _resolve(name: str, plugins: Mapping[str, Any] | None) -> tuple[type[Streamer], dict[str, Any]]:
    preset = PRESETS.get(name)
    if preset is not None:
        cls, more = _resolve(preset.provider, plugins)
        return cls, {**more, **preset.defaults()}
    if name in BUILTIN:
        return _load(BUILTIN[name]), {}
    if plugins is None:
        plugins = _plugins()
    plugin = plugins.get(name)
    if plugin is not None:
        return _load_plugin(name, plugin), {}
    raise ConfigurationError(f"unknown provider {name!r}; known providers: {', '.join(_names(plugins))}")


def streamer(spec: str, **kwargs: Any) -> Streamer:
    """Build a streamer from ``"provider:model"`` (or just ``"provider"`` for its default model).

    Everything after the first colon is the model (``"ollama:llama3:8b"``). Keyword arguments
    go to the streamer's constructor and win over a preset's defaults; a None value counts as
    not given.

    Example::

        s = llmstreamer.streamer("anthropic:claude-sonnet-4-5", timeout=30)
        s = llmstreamer.streamer("groq:llama-3.3-70b-versatile")              # key from GROQ_API_KEY
        s = llmstreamer.streamer("openai-compatible:my-model", base_url="http://localhost:9000/v1")

    Raises:
        ConfigurationError: an unknown provider, a missing key, or a bad argument.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"a model spec is 'provider:model', got {spec!r}")
    name, _, model = spec.partition(":")
    cls, defaults = resolve(name.strip().lower())
    options = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    if model.strip():
        options["model"] = model.strip()
    return cls(**options)


def providers() -> list[ProviderInfo]:
    """Deprecated: use `list_providers` (this name is kept for one release)."""
    warnings.warn("llmstreamer.providers() is deprecated: use llmstreamer.list_providers()", DeprecationWarning, stacklevel=2)
    return list_providers()


def list_providers() -> list[ProviderInfo]:
    """Every provider the registry knows, sorted by name, with whether its API key is configured.

    A provider whose module or plug-in cannot be imported is left out (and logged).

    Example::

        for info in llmstreamer.list_providers():
            print(info.name, "ready" if info.configured else f"set {' or '.join(info.key_env)}")
    """
    plugins = _plugins()
    out = []
    for name in _names(plugins):
        try:
            cls, defaults = _resolve(name, plugins)
        except Exception as exc:  # a broken plug-in must not hide the others
            log.warning("llmstreamer: provider %r is unavailable: %s", name, exc)
            continue
        source = "preset" if name in PRESETS else "builtin" if name in BUILTIN else "plugin"
        spec = cls.spec
        env = tuple(defaults.get("api_key_env", ())) if "api_key_env" in defaults else spec.api_key_env
        requires = bool(defaults.get("requires_key", spec.requires_key))
        configured = any(os.environ.get(v) for v in env)
        base_url = defaults.get("base_url") or spec.default_base_url
        out.append(ProviderInfo(name, env, configured or not requires, requires, source, base_url))
    return out
