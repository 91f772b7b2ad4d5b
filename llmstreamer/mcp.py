"""A synchronous client for Model Context Protocol servers, whose tools the model can then call.

`MCPClient` talks to one server, over Streamable HTTP (give its URL) or stdio (give the command
that starts it), and `MCPClient.tools` turns the server's tools into `Tool`\\ s that work in
``tools=`` on every provider::

    from llmstreamer.mcp import MCPClient

    with MCPClient("http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer ..."},
                   namespace="files") as files, MCPClient(["python", "server.py"]) as local:
        tools = files.tools() + local.tools()
        streamer.stream_chat(messages, callbacks, tools=tools, confirm_tool=approve).wait()

MCP tools run code elsewhere, so their permission is ``exec`` unless configured: each call runs
only after ``confirm_tool`` approves it. A call's failure (``isError``, a JSON-RPC error, a dead
server, the timeout) becomes an error result for the model, never a failed stream; a call the
stream is cancelled during stops at once, and the server is sent ``notifications/cancelled``
(as after a timeout). The client
connects on first use (``initialize``, version negotiation, ``notifications/initialized``), is
safe to share between threads, and starts a new session by itself when an HTTP server forgets
it (404).
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import shlex
import threading
import time
from typing import Any, Callable, Mapping, Sequence, Union

from . import __version__
from . import _mcp_wire as wire
from ._cancel import CancelToken
from ._cancel import current as current_token
from ._mcp_wire import CallResult, MCPError
from .errors import ConfigurationError, LLMStreamError, StreamError
from .models import ToolResult
from .retry import RetryPolicy, Timeout
from .tools import PERMISSIONS, Tool

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGES", "CallResult", "MCPClient", "MCPError"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = Timeout(connect=10.0, read=60.0)
MAX_PAGES = 100  # tools/list pages followed at most (a server that loops its cursor stops here)
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
Permission = Union[str, Mapping[str, str]]


class MCPClient:
    """One MCP server: its tools as `Tool`\\ s, and direct calls.

    Args:
        url_or_command: An ``http://`` or ``https://`` endpoint URL (Streamable HTTP), or the
            command that starts a stdio server: a list of arguments, or one string split like a
            shell would (no shell runs it).
        headers: HTTP headers for every message (e.g. ``Authorization``); they go only to the
            server's origin: a redirect elsewhere drops credentials.
        namespace: Put in front of every tool name (``files`` makes ``read`` into
            ``files_read``), made canonical: lowercase, ``-`` and ``.`` become ``_``.
        timeout: Seconds or a `Timeout`: ``connect`` (for stdio: starting the server and its
            ``initialize``), and ``read`` as the longest wait for one answer (``total``, when
            set, wins). Default: connect 10 s, answers 60 s.
        permission: The permission of the server's tools: ``exec`` (the default), ``write`` or
            ``read`` (runs without asking), or a ``{tool name: permission}`` dict (others ``exec``).
        retry: Retries of failed connects and of ``initialize`` / ``tools/list`` (never of a tool
            call the server may have started): a `RetryPolicy` or a number.
        env: Environment variables for a stdio server. It inherits only a few of this process's
            (``PATH``, ``HOME``, locale, ...; see ``_mcp_stdio.INHERITED``), never API keys:
            give it what it needs here.
        cwd: The working directory of a stdio server.
        verify: TLS verification for HTTPS servers: True, False, or a CA bundle path.
    """

    def __init__(
        self,
        url_or_command: str | Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        namespace: str | None = None,
        timeout: Timeout | float | None = None,
        permission: Permission = "exec",
        retry: RetryPolicy | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        verify: bool | str = True,
    ) -> None:
        if isinstance(url_or_command, str) and url_or_command.startswith(("http://", "https://")):
            self.url: str | None = url_or_command
            self.command: list[str] | None = None
        else:
            command = shlex.split(url_or_command) if isinstance(url_or_command, str) else list(url_or_command)
            if not command or not all(isinstance(a, str) for a in command):
                raise ConfigurationError("MCPClient needs an http(s):// URL or a command to start the server")
            self.url, self.command = None, command
        if headers and self.command is not None:
            raise ConfigurationError("headers= applies to HTTP servers; a stdio server gets env= instead")
        self.namespace = wire.canonical_namespace(namespace) if namespace else None
        if namespace and not self.namespace:
            raise ConfigurationError(f"namespace {namespace!r} has no letters or digits left once made canonical")
        self.timeout = DEFAULT_TIMEOUT if timeout is None else Timeout.of(timeout)
        self._permission = _check_permission(permission)
        self.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy(retries=2 if retry is None else int(retry))
        self._headers = dict(headers or {})
        self._env, self._cwd, self._verify = env, cwd, verify
        self._lock = threading.Lock()
        self._channel: Any = None
        self._ids = itertools.count(1)
        self.server_info: Mapping[str, Any] = {}
        self.capabilities: Mapping[str, Any] = {}
        self.instructions: str | None = None
        self.protocol_version: str | None = None
        self._tools: tuple[Tool, ...] | None = None

    def __repr__(self) -> str:
        target = self.url or " ".join(self.command or ())
        return f"MCPClient({target!r}{f', namespace={self.namespace!r}' if self.namespace else ''})"

    # --- the session --------------------------------------------------------------------------

    def connect(self) -> MCPClient:
        """Start the session now (it starts on first use otherwise); returns the client.

        Raises:
            LLMStreamError: the server cannot be reached or started, refuses to initialize, or
                speaks no protocol revision this client knows.
        """
        with self._lock:
            if self._channel is None:
                self._open()
        return self

    def _open(self) -> None:
        if self.url is not None:
            from ._mcp_http import HTTPChannel

            channel: Any = HTTPChannel(self.url, self._headers, self.timeout, self._verify)
        else:
            from ._mcp_stdio import StdioChannel

            assert self.command is not None
            channel = StdioChannel(self.command, env=self._env, cwd=self._cwd)
        channel.on_notification = self._notified
        try:
            self._initialize(channel)
        except BaseException:
            channel.close()
            raise
        self._channel = channel

    def _notified(self, message: Mapping[str, Any]) -> None:
        if message.get("method") == "notifications/tools/list_changed":
            self._tools = None  # the next tools() lists them again

    def _initialize(self, channel: Any) -> None:
        params = {
            "protocolVersion": wire.LATEST_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "llmstreamer", "version": __version__},
        }
        # starting a stdio server is its "connect": initialize may take the longer of the two waits
        wait = max(self.timeout.connect, self._wait())
        result = self._retrying(lambda: self._exchange(channel, "initialize", params, wait), "initialize")
        if not isinstance(result, Mapping):
            raise StreamError(f"{channel.where} answered initialize without a result object", provider="mcp")
        version = result.get("protocolVersion")
        if version not in wire.SUPPORTED_VERSIONS:
            raise StreamError(
                f"{channel.where} speaks MCP {version!r}; this client speaks {', '.join(wire.SUPPORTED_VERSIONS)}",
                provider="mcp",
            )
        channel.version = version
        self.protocol_version = version
        self.server_info = dict(result.get("serverInfo") or {})
        self.capabilities = dict(result.get("capabilities") or {})
        self.instructions = result.get("instructions")
        channel.notify(wire.notification("notifications/initialized"))

    def _exchange(
        self,
        channel: Any,
        method: str,
        params: Mapping[str, Any] | None,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        message = wire.request(next(self._ids), method, params)
        response = channel.request(message, timeout if timeout is not None else self._wait(), cancel)
        return wire.read_result(response, method, channel.where)

    def _wait(self) -> float:
        return self.timeout.total if self.timeout.total is not None else self.timeout.read

    def _retrying(self, attempt: Callable[[], Any], method: str) -> Any:
        for number in itertools.count():
            try:
                return attempt()
            except MCPError:
                raise
            except LLMStreamError as err:
                if not self.retry.should_retry(err, number):
                    raise
                delay = self.retry.delay(number, err)
                log.debug("MCP %s failed (%s); retry %d in %.2f s", method, type(err).__name__, number + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Send any JSON-RPC request and return its ``result``; connects first if needed.

        An HTTP session the server has forgotten (404) is started again and the request sent
        once more (the server never saw it).

        Raises:
            MCPError: the server answered with a JSON-RPC error.
            LLMStreamError: the transport failed or timed out.
        """
        return self._request(method, params, timeout, None)

    def _request(
        self, method: str, params: Mapping[str, Any] | None, timeout: float | None, cancel: CancelToken | None
    ) -> Any:
        """`request`; ``cancel`` (a stream's token) stops the wait and sends ``notifications/cancelled``."""
        from ._mcp_http import SessionGone

        self.connect()
        channel = self._channel
        try:
            return self._exchange(channel, method, params, timeout, cancel)
        except SessionGone as gone:
            with self._lock:
                # the first thread to see the 404 starts a new session; the others just resend
                if self._channel is channel and channel.session_id == gone.session_id:
                    log.debug("%s forgot the session; starting a new one", channel.where)
                    self._initialize(channel)  # others keep the old id meanwhile: a 404 brings them here
            return self._exchange(channel, method, params, timeout, cancel)

    def close(self) -> None:
        """End the session (HTTP ``DELETE``; a stdio server's input is closed and the process ended)."""
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def __enter__(self) -> MCPClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- tools --------------------------------------------------------------------------------

    def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the server offers, as its ``tools/list`` entries, following every page."""
        tools: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            params = {"cursor": cursor} if cursor else None
            result = self._retrying(functools.partial(self.request, "tools/list", params), "tools/list")
            if not isinstance(result, Mapping) or not isinstance(result.get("tools"), list):
                raise StreamError("the MCP server answered tools/list without a list of tools", provider="mcp")
            tools.extend(dict(t) for t in result["tools"] if isinstance(t, Mapping) and isinstance(t.get("name"), str))
            cursor = result.get("nextCursor")
            if not cursor:
                return tools
        raise StreamError(f"the MCP server's tool list goes on past {MAX_PAGES} pages", provider="mcp")

    def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> CallResult:
        """Call the server's tool ``name`` (its own name, without the namespace) and return its result.

        A tool that ran and failed is a result with ``is_error=True``, not an exception.

        Raises:
            MCPError: the server refused the call (unknown tool, invalid arguments).
            LLMStreamError: the transport failed, the server died, or the timeout expired.
        """
        return self._call(name, arguments, timeout, None)

    def _call(
        self, name: str, arguments: Mapping[str, Any] | None, timeout: float | None, cancel: CancelToken | None
    ) -> CallResult:
        result = self._request("tools/call", {"name": name, "arguments": dict(arguments or {})}, timeout, cancel)
        return CallResult.from_wire(result, "the MCP server")

    def tools(self, *, refresh: bool = False) -> list[Tool]:
        """The server's tools as `Tool`\\ s for ``tools=``: namespaced names, the server's schemas.

        Calling one calls the server; its failures become error results for the model. The list
        is fetched once and kept (a web app can call this per request), until ``refresh=True``
        or the server says its tools changed (``notifications/tools/list_changed``).

        Raises:
            ConfigurationError: two tools end up with the same name once made safe.
            LLMStreamError: listing failed.
        """
        cached = self._tools
        if cached is not None and not refresh:
            return list(cached)
        made: dict[str, Tool] = {}
        for entry in self.list_tools():
            original = entry["name"]
            name = self._tool_name(original)
            if name in made:
                raise ConfigurationError(f"two MCP tools are both named {name!r} once made safe; set distinct names")
            schema = entry.get("inputSchema")
            parameters = dict(schema) if isinstance(schema, Mapping) else {}
            parameters.setdefault("type", "object")
            parameters.setdefault("properties", {})
            made[name] = Tool(
                name,
                str(entry.get("description") or entry.get("title") or ""),
                parameters,
                self._caller(original),
                self._permission_of(original),
            )
        self._tools = tuple(made.values())
        return list(self._tools)

    def _tool_name(self, original: str) -> str:
        safe = _UNSAFE.sub("_", original)
        name = f"{self.namespace}_{safe}" if self.namespace else safe
        return name[:64]

    def _permission_of(self, original: str) -> str:
        if isinstance(self._permission, str):
            return self._permission
        return self._permission.get(original, "exec")

    def _caller(self, original: str) -> Callable[..., ToolResult]:
        def call(**arguments: Any) -> ToolResult:
            try:
                # in a tool loop: the stream's cancel stops the wait and tells the server
                result = self._call(original, arguments, None, current_token())
            except LLMStreamError as err:
                return ToolResult("", original, f"error: {err.message}", is_error=True)
            return ToolResult("", original, result.text, is_error=result.is_error)

        call.__name__ = original
        return call


def _check_permission(value: Permission) -> Permission:
    values = [value] if isinstance(value, str) else list(value.values()) if isinstance(value, Mapping) else [None]
    for item in values:
        if item not in PERMISSIONS:
            raise ConfigurationError(f"permission must be one of {', '.join(PERMISSIONS)} (or a dict of them), got {item!r}")
    return value if isinstance(value, str) else dict(value)
