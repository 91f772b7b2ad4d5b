"""Provider modules: each translates llmstreamer's messages and options to one provider's wire.

They are imported lazily (``llmstreamer.OpenAIStreamer`` loads ``providers.openai`` on first
use), so ``import llmstreamer`` stays cheap.

This package is also the public function ``llmstreamer.providers()``: importing a submodule
makes Python bind the package to the attribute ``llmstreamer.providers``, which would hide a
function of the same name, so the package itself is callable and delegates to the registry.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registry import ProviderInfo


class _CallablePackage(types.ModuleType):
    def __call__(self) -> list[ProviderInfo]:
        """Every provider the registry knows, with whether its API key is configured."""
        from ..registry import providers

        return providers()


sys.modules[__name__].__class__ = _CallablePackage
