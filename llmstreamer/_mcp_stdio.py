"""The MCP stdio transport: the server is a subprocess speaking newline-delimited JSON-RPC.

Messages go to the child's stdin one per line; a reader thread takes its stdout line by line,
hands each response to the request waiting for it (by id), answers the server's own requests,
and drops notifications. The child's stderr is its log: another thread drains it to this
module's logger at DEBUG, so a chatty server never blocks on a full pipe. When the child exits,
every waiting request fails at once with `APIConnectionError`.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import threading
from typing import IO, Any, Callable, Mapping, Sequence

from . import _mcp_wire as wire
from ._cancel import CancelToken
from .errors import APIConnectionError, APITimeoutError

__all__ = ["INHERITED", "StdioChannel", "base_environment"]

# What a server inherits from this process's environment (as the official SDKs do): enough to
# find programs and a home, not the API keys and tokens the rest of the environment may hold.
INHERITED = (
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    "VIRTUAL_ENV", "SYSTEMROOT", "APPDATA", "USERPROFILE", "TEMP", "TMP", "PATHEXT", "COMSPEC",
)  # fmt: skip

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024 * 1024  # bytes of one message at most
_ids = itertools.count(1)


class _Slot:
    """Where the reader leaves the response to one request."""

    __slots__ = ("event", "response")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.response: dict[str, Any] | None = None


class StdioChannel:
    """One MCP server as a child process; thread-safe (many requests may wait at once)."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.command = list(command)
        self.where = f"the MCP server {_short(self.command)!r}"
        self._lock = threading.Lock()  # guards _pending and _dead
        self._write_lock = threading.Lock()  # one message on stdin at a time
        self._pending: dict[Any, _Slot] = {}
        self._dead: str | None = None
        self.on_notification: Callable[[dict[str, Any]], None] | None = None
        full_env = {**base_environment(), **(env or {})}
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                cwd=cwd,
            )
        except OSError as exc:
            raise APIConnectionError(f"cannot start {self.where}: {exc}", provider="mcp") from exc
        number = next(_ids)
        self._reader = threading.Thread(target=self._read, name=f"llmstreamer-mcp-stdio-{number}", daemon=True)
        self._logger = threading.Thread(target=self._drain, name=f"llmstreamer-mcp-stderr-{number}", daemon=True)
        self._reader.start()
        self._logger.start()

    # --- sending ------------------------------------------------------------------------------

    def _write(self, message: Mapping[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"  # never a raw newline inside
        stdin = self._proc.stdin
        assert stdin is not None
        if self._dead is not None:
            raise APIConnectionError(f"{self.where} is gone: {self._dead}", provider="mcp")
        # Its own lock: a write blocked on a full pipe must not stop the reader from handing out
        # responses (the reader needs ``_lock``), or a busy child and this client wait on each other.
        with self._write_lock:
            try:
                stdin.write(line)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                raise APIConnectionError(f"{self.where} stopped reading its input: {exc}", provider="mcp") from None

    def request(self, message: dict[str, Any], timeout: float, cancel: CancelToken | None = None) -> dict[str, Any]:
        """Send a request and wait up to ``timeout`` seconds (or until ``cancel`` fires) for its response.

        On a timeout or a cancel the server is told (``notifications/cancelled``); then
        `APITimeoutError` or the token's error (`StreamCancelled`) is raised.
        """
        ident = message["id"]
        slot = _Slot()
        with self._lock:
            self._pending[ident] = slot
        wake = slot.event.set
        try:
            self._write(message)
            if cancel is not None:
                cancel.attach(wake)
            try:
                answered = slot.event.wait(timeout)
            finally:
                if cancel is not None:
                    cancel.detach(wake)
            if slot.response is None and cancel is not None and cancel.reason is not None:
                self._cancel_quietly(ident, wire.stop_reason(cancel))
                raise cancel.error("mcp")
            if not answered:
                self._cancel_quietly(ident, "timed out")
                raise APITimeoutError(
                    f"{self.where} did not answer {message.get('method')} within {timeout:g} s", kind="total", provider="mcp"
                )
        finally:
            with self._lock:
                self._pending.pop(ident, None)
        if slot.response is None:
            raise APIConnectionError(f"{self.where} exited while {message.get('method')} was running: {self._dead}", provider="mcp")
        return slot.response

    def notify(self, message: dict[str, Any]) -> None:
        """Send a notification or a response."""
        self._write(message)

    def _cancel_quietly(self, ident: Any, reason: str) -> None:
        try:
            self._write(wire.cancelled(ident, reason))
        except APIConnectionError:
            pass

    # --- receiving ----------------------------------------------------------------------------

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            for line in _lines(stdout):
                try:
                    item = json.loads(line)
                except ValueError:
                    log.debug("%s: a line that is not JSON was dropped: %r", self.where, line[:120])
                    continue
                self._handle(item)
        except (OSError, ValueError) as exc:
            log.debug("%s: reading its output failed: %s", self.where, exc)
        code = self._proc.wait()
        self._fail_all(f"the process exited with code {code}")

    def _handle(self, item: Any) -> None:
        kind = wire.kind_of(item)
        if kind == "response":
            with self._lock:
                slot = self._pending.get(item.get("id"))
            if slot is not None:
                slot.response = item
                slot.event.set()
            else:
                log.debug("%s: a response to an unknown id %r was dropped", self.where, item.get("id"))
        elif kind == "request":
            try:
                self._write(wire.answer(item))
            except APIConnectionError:
                pass
        else:
            wire.notice(item, kind, self.where, self.on_notification)

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = reason
            slots = list(self._pending.values())
        for slot in slots:
            slot.event.set()  # response stays None: the waiter reports the exit

    def _drain(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        try:
            for line in _lines(stderr):
                log.debug("%s stderr: %s", self.where, line.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    # --- closing ------------------------------------------------------------------------------

    def close(self, grace: float = 1.0) -> None:
        """Close stdin, wait ``grace`` seconds for the child to exit, then terminate (and kill) it."""
        proc = self._proc
        with self._lock:
            if self._dead is None:
                self._dead = "the client closed it"
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        for stop in (None, proc.terminate, proc.kill):
            if stop is not None:
                stop()
            try:
                proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(grace)
        self._logger.join(grace)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid


def _lines(stream: IO[bytes]) -> Any:
    """Lines of ``stream`` (without the newline), each at most `MAX_LINE` bytes."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            raise ValueError(f"a message longer than {MAX_LINE} bytes")
        yield line.rstrip(b"\r\n")


def _short(command: Sequence[str]) -> str:
    """The command as one line for messages, program names without their folders, cut at 60 characters."""
    text = " ".join([os.path.basename(command[0]), *command[1:]])
    return text if len(text) <= 60 else text[:57] + "..."


def base_environment() -> dict[str, str]:
    """The variables of `INHERITED` that are set here (functions, like ``BASH_FUNC_*``, never are)."""
    return {name: os.environ[name] for name in INHERITED if name in os.environ and not os.environ[name].startswith("()")}
