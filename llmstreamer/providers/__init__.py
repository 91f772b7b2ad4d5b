"""Provider modules: each translates llmstreamer's messages and options to one provider's wire.

They are imported lazily (``llmstreamer.OpenAIStreamer`` loads ``providers.openai`` on first
use), so ``import llmstreamer`` stays cheap. ``modelsocket`` is a subpackage.

Deprecated: calling the package, ``llmstreamer.providers()``, lists the providers for one more
release (with a `DeprecationWarning`); use ``llmstreamer.list_providers()``. Importing a
submodule binds this package to the attribute ``llmstreamer.providers``, which would hide a
function of that name, so until then the package itself stays callable.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registry import ProviderInfo


class _CallablePackage(types.ModuleType):
    def __call__(self) -> list[ProviderInfo]:
        """Deprecated: `llmstreamer.list_providers`."""
        import warnings

        from ..registry import list_providers

        warnings.warn("llmstreamer.providers() is deprecated: use llmstreamer.list_providers()", DeprecationWarning, stacklevel=2)
        return list_providers()


sys.modules[__name__].__class__ = _CallablePackage
