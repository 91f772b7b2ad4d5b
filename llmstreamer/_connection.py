"""Connections that a stream's cancel token can abort: from connect() on, and while reading.

`Transport` sets ``local.token`` (this thread's stream) around a request; each connection
registers an abort function with that token as soon as its socket exists (before connect(), so
a cancel or the total timeout interrupts even a hanging connect) and leaves it in
``local.abort`` for the transport to detach when the response is released. The pools close a
connection they have no room for quietly instead of warning.
"""

from __future__ import annotations

import functools
import socket
import sys
import threading
from typing import Any, Sequence

import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util.connection

from ._cancel import CancelToken

__all__ = ["Adapter", "local"]

local = threading.local()


def _abort_connection(conn: urllib3.connection.HTTPConnection, connecting: Sequence[socket.socket] = ()) -> None:
    sock = conn.sock if conn.sock is not None else (connecting[0] if connecting else None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _connect(conn: Any, connecting: list[socket.socket], token: CancelToken) -> socket.socket:
    """Open ``conn``'s socket as urllib3's ``create_connection`` does, but show each socket to
    ``connecting`` before it connects, so a cancel (or the total timeout) can shut it down."""
    host = conn._dns_host.strip("[]")
    try:
        found = socket.getaddrinfo(host, conn.port, urllib3.util.connection.allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    error: OSError = OSError("getaddrinfo returned no address")
    for family, kind, proto, _, address in found:
        sock = socket.socket(family, kind, proto)
        connecting[:] = [sock]
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(conn.timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            if token.reason is not None:
                raise OSError("the stream was cancelled")
            sock.connect(address)
            sys.audit("http.client.connect", conn, conn.host, conn.port)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if token.reason is not None:
                break
    if isinstance(error, socket.timeout):
        message = f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        raise urllib3.exceptions.ConnectTimeoutError(conn, message) from error
    raise urllib3.exceptions.NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


class _Attach:
    """Mixin: hand the stream's token a way to abort this connection, from its connect on."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        token: CancelToken | None = getattr(local, "token", None)
        if token is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        # Attached before connect(): a cancel or the total timeout shuts the socket down at once
        # instead of waiting out the connect timeout (urllib3 shows the socket to no one earlier).
        connecting: list[socket.socket] = []
        abort = functools.partial(_abort_connection, self, connecting)  # type: ignore[arg-type]
        token.attach(abort)
        try:
            sock = _connect(self, connecting, token)
        except BaseException:
            token.detach(abort)
            raise
        local.abort = abort
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = super().request(*args, **kwargs)  # type: ignore[misc]
        token: CancelToken | None = getattr(local, "token", None)
        if token is not None and getattr(local, "abort", None) is None:  # a pooled connection
            # Attached once the request is sent: from here on the socket exists, and a cancel
            # that came earlier aborts it at once (attach runs the abort when already cancelled).
            abort = local.abort = functools.partial(_abort_connection, self)  # type: ignore[arg-type]
            token.attach(abort)
        return result


class _HTTPConnection(_Attach, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Attach, urllib3.connection.HTTPSConnection):
    pass


class _QuietPoolMixin:
    """A pool that closes an extra connection silently when it is full, instead of warning.

    More concurrent streams than ``pool_size`` is normal for a server; keeping at most
    ``pool_size`` idle connections is the point, and the warning would only be noise.
    """

    pool: Any

    def _put_conn(self, conn: Any) -> None:
        if conn is not None and self.pool is not None and self.pool.full():
            conn.close()
            return
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_QuietPoolMixin, urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_QuietPoolMixin, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with pools of cancel-aware connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
