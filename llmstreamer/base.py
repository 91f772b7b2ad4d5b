"""Deprecated: the old home of `Streamer`, `HTTPStreamer` and `StreamHandle`; use ``llmstreamer.provider``.

Kept for one release so that ``from llmstreamer.base import Streamer`` keeps working.
"""

from __future__ import annotations

import warnings

from .provider import HTTPStreamer, Streamer, StreamHandle, loads

__all__ = ["HTTPStreamer", "StreamHandle", "Streamer", "loads"]

warnings.warn(
    "llmstreamer.base is deprecated: import Streamer, HTTPStreamer and StreamHandle from llmstreamer.provider",
    DeprecationWarning,
    stacklevel=2,
)
