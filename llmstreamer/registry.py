"""The provider registry: ``streamer("provider:model")``, ``providers()``, presets and plug-ins.

A provider is a `Streamer` subclass, found by name: built-in ones are listed here and imported
only when used; OpenAI-compatible services are presets (a base URL, a key variable and quirks
on `OpenAICompatibleStreamer`); third-party ones register through the entry-point group
``llmstreamer.providers`` (``name = "package.module:StreamerClass"``).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .base import Streamer

__all__ = ["ENTRY_POINT_GROUP", "ProviderInfo", "providers", "resolve", "streamer"]

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

# name -> (provider name, constructor defaults): presets of another provider.
PRESETS: dict[str, tuple[str, Mapping[str, Any]]] = {}


@attrs.frozen
class ProviderInfo:
    """A provider the registry knows: its name, its key variables and whether a key is set."""

    name: str
    key_env: tuple[str, ...]
    configured: bool
    requires_key: bool


def _load(target: str) -> type[Streamer]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found = entry_points()
    group = found.select(group=ENTRY_POINT_GROUP) if hasattr(found, "select") else found.get(ENTRY_POINT_GROUP, ())
    return {ep.name: ep for ep in group}


def _names() -> list[str]:
    return sorted({*BUILTIN, *PRESETS, *_plugins()})


def resolve(name: str) -> tuple[type[Streamer], dict[str, Any]]:
    """The streamer class and constructor defaults for a provider name."""
    if name in PRESETS:
        base, defaults = PRESETS[name]
        cls, more = resolve(base)
        return cls, {**more, **defaults}
    if name in BUILTIN:
        return _load(BUILTIN[name]), {}
    plugin = _plugins().get(name)
    if plugin is not None:
        return plugin.load(), {}
    raise ConfigurationError(f"unknown provider {name!r}; known providers: {', '.join(_names())}")


def streamer(spec: str, **kwargs: Any) -> Streamer:
    """Build a streamer from ``"provider:model"`` (or just ``"provider"`` for its default model).

    Example::

        s = llmstreamer.streamer("anthropic:claude-sonnet-4-5", timeout=30)
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigurationError(f"a model spec is 'provider:model', got {spec!r}")
    name, _, model = spec.partition(":")
    cls, defaults = resolve(name.strip().lower())
    options = {**defaults, **kwargs}
    if model:
        options["model"] = model
    return cls(**options)


def providers() -> list[ProviderInfo]:
    """Every provider the registry knows, with whether its API key is configured."""
    out = []
    for name in _names():
        try:
            cls, defaults = resolve(name)
        except Exception:  # a broken plug-in must not hide the others
            continue
        env = tuple(defaults.get("api_key_env", ())) or tuple(getattr(cls, "api_key_env", ()))
        configured = any(os.environ.get(v) for v in env)
        requires = bool(getattr(cls, "requires_key", False)) and defaults.get("requires_key") is not False
        out.append(ProviderInfo(name, env, configured or not requires, requires))
    return out
