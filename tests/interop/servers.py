"""Third-party servers for the interop suite, each a subprocess of the interop environment.

The servers (llmock, the LiteLLM proxy, llama-cpp-python's server) live in their own virtual
environment, ``.venv-interop`` at the top of the repository unless ``LLMSTREAMER_INTEROP_VENV``
names another one: their dependency pins are theirs, not the test environment's. ``.ci/run``
builds it from ``tests/interop/requirements.txt``. Without it the interop tests skip locally with
the reason, and fail in CI (``CI`` set), like the Redis tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import pytest
import requests

__all__ = ["ROOT", "ServerProcess", "free_port", "interop_venv", "missing"]

ROOT = Path(__file__).resolve().parents[2]
VENV_VARIABLE = "LLMSTREAMER_INTEROP_VENV"


def interop_venv() -> Path:
    """The interop servers' virtual environment (it may not exist)."""
    return Path(os.environ.get(VENV_VARIABLE) or ROOT / ".venv-interop")


def missing(what: str) -> None:
    """Skip (locally) or fail (in CI) because ``what`` is not installed."""
    reason = (
        f"{what} is not installed in {interop_venv()}: build it with "
        f"`python3 -m venv .venv-interop && .venv-interop/bin/pip install -r tests/interop/requirements.txt` "
        f"(or point {VENV_VARIABLE} at such an environment)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, so no server outlives a killed run."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _server_env(extra: dict[str, str]) -> dict[str, str]:
    """A small environment for a server: no API keys or proxies of the developer leak into it."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", NO_PROXY="*")
    env.update(extra)
    return env


class ServerProcess:
    """One server subprocess on 127.0.0.1, its log in a file, ready once a URL answers."""

    def __init__(
        self, name: str, args: Sequence[str], *, port: int, ready_path: str, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = list(args)
        self.port = port
        self.ready_path = ready_path
        self.env = _server_env(env or {})
        self.dir = Path(tempfile.mkdtemp(prefix=f"llmstreamer-{name}-"))
        self.log_path = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (in its own process group); `wait_ready` waits for it."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.dir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float) -> None:
        """Poll the ready URL until it answers 200 (bounded); fail with the log's tail otherwise."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash would (its connections drop mid-stream)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after a bounded wait."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
