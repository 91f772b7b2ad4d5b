"""Users' code type-checks: mypy --strict on a script of the README's examples passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "user_code" / "readme_examples.py"


@pytest.mark.slow
def test_the_readme_examples_pass_mypy_strict() -> None:
    """llmstreamer.list_providers(), streams, conversations, tools and a plug-in all type-check in user code.

    (``--follow-imports=silent``: as for an installed package, errors inside llmstreamer are the
    package's own check, ``mypy`` with setup.cfg, not the user's.)
    """
    pytest.importorskip("mypy")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", "--config-file", "/dev/null", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
