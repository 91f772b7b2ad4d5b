"""The ModelSocket transport edge: the WebSocket handshake, and foreign exceptions made ours.

`boundary` names the transport layer's one boundary (`llmstreamer._boundary`, which the HTTP
transport uses too) for ModelSocket: websocket-client, ``json`` and socket exceptions become
llmstreamer errors there (``raise ... from exc``). `dial` sends the API key only in the handshake's
``Authorization`` header, to the configured origin: a redirected handshake is refused, never
followed (websocket-client would follow it and send the header again). `event_error` maps an
in-band ``error`` event to the error class of its ``code``.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any, Callable, ContextManager, Mapping

import websocket

from ... import _boundary
from ..._boundary import CONNECTING, where
from ..._fields import EXCERPT
from ..._http import REDIRECTS
from ..._secret import Secret
from ...errors import (
    APIConnectionError,
    ConfigurationError,
    LLMStreamError,
    StreamError,
    error_for_status,
    status_for_type,
)
from ...retry import Timeout

__all__ = ["PROVIDER", "SUBPROTOCOL", "boundary", "closed_error", "dial", "event_error", "where"]

log = logging.getLogger("llmstreamer.providers.modelsocket")

PROVIDER = "modelsocket"
SUBPROTOCOL = "modelsocket.v0"


def boundary(url: str, doing: str, redact: Callable[[str], str], timeout: Timeout | None = None) -> ContextManager[None]:
    """The transport layer's foreign-exception boundary for a ModelSocket connection to ``url``.

    ``doing`` completes "while ..." in messages (``"connecting to"``, ``"reading from"``).
    """
    return _boundary.boundary(PROVIDER, url, doing, redact, timeout)


def _sslopt(verify: bool | str) -> dict[str, Any]:
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if isinstance(verify, str):
        return {"ca_certs": verify}
    return {}


def dial(
    url: str, api_key: str | None, *, timeout: Timeout, headers: Mapping[str, str] | None, verify: bool | str
) -> Any:
    """Open the WebSocket with the bearer key and the ``modelsocket.v0`` subprotocol; the connected socket.

    Raises:
        ConfigurationError: the URL is not a ``ws://`` or ``wss://`` URL.
        APIConnectionError: the server cannot be reached, or redirected the handshake.
        APIStatusError: the server refused the handshake with an HTTP status (401, 429...).
    """
    if not url.startswith(("ws://", "wss://")):
        raise ConfigurationError(f"a ModelSocket URL starts with ws:// or wss://, got {url!r}", provider=PROVIDER)
    redact = Secret(api_key).redact
    # The subprotocol goes in as a plain header: websocket-client would otherwise insist that the
    # server echoes it, which the reference servers do not promise (it is checked below instead).
    header = [f"Sec-WebSocket-Protocol: {SUBPROTOCOL}"]
    header += [f"{k}: {v}" for k, v in (headers or {}).items() if not (api_key and k.lower() == "authorization")]
    if api_key:
        header.append(f"Authorization: Bearer {api_key}")
    ws: Any = websocket.WebSocket(sslopt=_sslopt(verify), skip_utf8_validation=True, enable_multithread=True)
    log.debug("modelsocket: connecting to %s", where(url))
    try:
        with boundary(url, CONNECTING, redact, timeout):
            ws.connect(url, header=header, timeout=timeout.connect, redirect_limit=0, suppress_origin=True)
    except APIConnectionError:
        answer = ws.handshake_response
        if answer is not None and answer.status in REDIRECTS:
            raise APIConnectionError(
                f"{where(url)} answered the WebSocket handshake with a redirect ({answer.status}); "
                "llmstreamer does not follow handshake redirects, so the API key is never sent to "
                "another origin: configure the final URL",
                provider=PROVIDER,
            ) from None
        raise
    chosen = {str(k).lower(): str(v) for k, v in (ws.getheaders() or {}).items()}.get("sec-websocket-protocol")
    if chosen is not None and chosen.strip().lower() != SUBPROTOCOL:
        ws.shutdown()
        raise APIConnectionError(f"{where(url)} chose the subprotocol {chosen!r}, not {SUBPROTOCOL!r}", provider=PROVIDER)
    ws.settimeout(None)  # the reader waits for events as long as the connection lives
    return ws


def event_error(event: Mapping[str, Any]) -> LLMStreamError:
    """The error for an ``error`` event: its ``code`` picks the class, ``details.retry_after_ms`` the wait.

    ``rate_limit_exceeded`` is a `RateLimitError`; a numeric code (``500`` or ``"500"``) maps like
    that HTTP status; an unknown or missing code is a `StreamError`.
    """
    message = event.get("message")
    message = message if isinstance(message, str) and message else "the server reported an error"
    code = event.get("code")
    status = None
    if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
        status, code = code, None
    elif isinstance(code, str) and code.strip().isdigit() and int(code) >= 400:
        status, code = int(code), None  # a status written as a string ("500")
    code = code if isinstance(code, str) else None
    status = status or status_for_type(code)
    if status is None:
        return StreamError(f"{code}: {message}" if code else message, provider=PROVIDER)
    details = event.get("details")
    wait = details.get("retry_after_ms") if isinstance(details, dict) else None
    retry_after = None
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait >= 0:
        retry_after = wait / 1000.0
    return error_for_status(status)(
        message,
        status_code=status,
        error_type=code,
        body=json.dumps(dict(event))[:EXCERPT],
        retry_after=retry_after,
        provider=PROVIDER,
    )


def closed_error(event: Mapping[str, Any]) -> LLMStreamError:
    """The error for a command whose sequence was closed under it (``seq_closed``)."""
    reason = event.get("error")
    why = f": {reason}" if isinstance(reason, str) and reason else ""
    return StreamError(f"the server closed sequence {event.get('seq_id')}{why}", provider=PROVIDER)
