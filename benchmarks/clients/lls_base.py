"""llmstreamer as of another commit, for before/after pairs in one run.

Set ``BENCH_BASE_SRC`` to a directory holding that commit's ``llmstreamer/`` package (for
example ``git archive <commit> llmstreamer | tar -x -C /tmp/base``); its clients are the
``lls_*`` clients with a ``_base`` suffix, and are registered only when the variable is set.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict

sys.path.insert(0, os.environ["BENCH_BASE_SRC"])

import llmstreamer

from .lls import CLIENTS as _LLS

assert llmstreamer.__file__.startswith(os.environ["BENCH_BASE_SRC"]), llmstreamer.__file__

CLIENTS: Dict[str, Dict[str, Any]] = {name + "_base": client for name, client in _LLS.items()}
