"""llmstreamer without its ``fast`` extra: jiter is blocked before llmstreamer is imported.

The benchmark's environment has jiter (both SDKs pull it in), so the plain ``lls_*`` clients
decode JSON with it; these clients measure what a plain ``pip install llmstreamer`` does.
"""

from __future__ import annotations

import sys
from typing import Any, Dict

sys.modules["jiter"] = None  # type: ignore[assignment]  # an import of jiter now raises ImportError

from llmstreamer import _json  # noqa: E402

from .lls import CLIENTS as _LLS  # noqa: E402

assert not _json.FAST, "llmstreamer was imported before jiter was blocked"

CLIENTS: Dict[str, Dict[str, Any]] = {name + "_std": client for name, client in _LLS.items()}
