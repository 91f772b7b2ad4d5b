"""The interop environment holds the pinned server versions, and the README names them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .servers import interop_venv, missing

HERE = Path(__file__).resolve().parent


def _pins() -> dict[str, str]:
    """Distribution name -> version, from requirements.txt (extras dropped)."""
    pins = {}
    for line in (HERE / "requirements.txt").read_text().splitlines():
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if found:
            pins[found.group(1)] = found.group(2)
    return pins


def test_servers_are_the_pinned_versions() -> None:
    """Every server package in the interop environment is the version requirements.txt pins."""
    python = interop_venv() / "bin" / "python"
    if not python.exists():
        missing("the interop environment")
    pins = _pins()
    script = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    done = subprocess.run([str(python), "-c", script, *pins], capture_output=True, timeout=60, check=True)
    assert json.loads(done.stdout) == pins


def test_readme_names_the_pinned_versions() -> None:
    """tests/interop/README.md states the version of every pinned server package."""
    readme = (HERE / "README.md").read_text()
    assert set(_pins()) == {"llmock", "litellm", "llama-cpp-python", "gguf"}
    for name, version in _pins().items():
        assert f"{name} {version}" in readme, name
