"""A real ``redis-server`` on a free loopback port, for the tests of the Redis-backed features.

The server is the Debian package's binary (``.ci/run`` installs it); nothing is mocked. Without
the binary the tests that need it skip locally with a clear reason, and fail in CI (``CI`` set).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Iterator

import pytest

__all__ = ["RedisServer", "redis_binary", "redis_server_fixture"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, with no persistence, that can be stopped and restarted."""

    def __init__(self, binary: str, *, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.extra_args = extra_args  # e.g. ("--appendonly", "yes") for a server that keeps its data
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="llmstreamer-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait (bounded) until it accepts connections."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--protected-mode", "yes", *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def stop(self) -> None:
        """Stop the server (SIGKILL after a bounded wait)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port (all data is lost, unless ``extra_args`` turn persistence on)."""
        self.stop()
        self.start()

    def flush(self) -> None:
        """Remove every key (between tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)


def redis_binary() -> str:
    """The redis-server binary; skips the test locally (fails it in CI) when it is not installed."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs the Debian package)")
        pytest.skip("redis-server is not installed: apt-get install redis-server to run these tests")
    return binary


def redis_server_fixture(*, extra_args: tuple[str, ...] = ()) -> Iterator[RedisServer]:
    """Body of a fixture: a started server, stopped (and its directory removed) at the end."""
    server = RedisServer(redis_binary(), extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
