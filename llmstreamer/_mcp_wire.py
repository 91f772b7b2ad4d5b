"""The Model Context Protocol's JSON-RPC messages: building them, telling them apart, and reading results.

Shared by the Streamable HTTP and stdio channels (``_mcp_http``, ``_mcp_stdio``) and the client
(``mcp``). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any, Callable, Mapping

import attrs

from .errors import StreamError
from .models import ImagePart, TextPart

__all__ = [
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "CallResult",
    "MCPError",
    "answer",
    "canonical_namespace",
    "decode",
    "kind_of",
    "notice",
    "notification",
    "read_result",
    "request",
]

log = logging.getLogger(__name__)

LATEST_VERSION = "2025-06-18"  # what the client offers in initialize
# Revisions whose initialize handshake and tool messages this client speaks.
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
METHOD_NOT_FOUND = -32601


class MCPError(StreamError):
    """The MCP server answered a request with a JSON-RPC error.

    Attributes:
        code: The JSON-RPC error code (``-32601`` method not found, ``-32602`` invalid params, ...).
        data: The error's ``data`` member, if any.
    """

    def __init__(self, message: str, *, code: int = 0, data: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code
        self.data = data


def request(ident: int, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = dict(params)
    return message


def notification(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC notification (no id, no answer)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = dict(params)
    return message


def cancelled(ident: Any, reason: str) -> dict[str, Any]:
    """The ``notifications/cancelled`` that tells a server we stopped waiting for request ``ident``."""
    return notification("notifications/cancelled", {"requestId": ident, "reason": reason})


def stop_reason(token: Any) -> str:
    """Why a stream's token stopped a request, as a ``notifications/cancelled`` reason."""
    return "the stream ran out of time" if token.reason == "timeout" else "the stream was cancelled"


def decode(data: str | bytes, where: str) -> Any:
    """One JSON-RPC message (or batch) from the wire, or `StreamError` quoting its start."""
    try:
        return json.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise StreamError(f"{where} sent something that is not JSON: {text[:120]!r}", provider="mcp") from None


def kind_of(message: Any) -> str:
    """``"response"``, ``"request"`` (from the server), ``"notification"`` or ``"invalid"``."""
    if not isinstance(message, dict):
        return "invalid"
    if "method" in message:
        return "request" if "id" in message else "notification"
    if "id" in message and ("result" in message or "error" in message):
        return "response"
    return "invalid"


def answer(message: Mapping[str, Any]) -> dict[str, Any]:
    """The client's answer to a request from the server: ``ping`` is answered, everything else refused.

    This client declares no capabilities (no sampling, roots or elicitation), so the spec's
    answer to those requests is a "method not found" error.
    """
    method = message.get("method")
    if method == "ping":
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": {}}
    log.debug("MCP server asked for %r: refused (not supported by this client)", method)
    return {
        "jsonrpc": "2.0",
        "id": message.get("id"),
        "error": {"code": METHOD_NOT_FOUND, "message": f"llmstreamer's MCP client does not support {method!r}"},
    }


def read_result(response: Mapping[str, Any], method: str, where: str) -> Any:
    """The ``result`` of a response; a JSON-RPC ``error`` raises `MCPError`."""
    error = response.get("error")
    if error is not None:
        if not isinstance(error, Mapping):
            error = {"message": str(error)}
        code = error.get("code", 0)
        raise MCPError(
            f"{where} refused {method}: {error.get('message', 'no message')} (code {code})",
            code=code if isinstance(code, int) else 0,
            data=error.get("data"),
            provider="mcp",
        )
    return response.get("result")


_NAMESPACE_DROP = re.compile(r"[^a-z0-9_]")


def canonical_namespace(value: str) -> str:
    """A namespace as tool names carry it: lowercase, ``-`` and ``.`` become ``_``, other symbols dropped."""
    name = value.strip().lower().replace("-", "_").replace(".", "_")
    return _NAMESPACE_DROP.sub("", name)


@attrs.frozen
class CallResult:
    """What one ``tools/call`` returned.

    Attributes:
        content: The content items in order: `TextPart` for text, `ImagePart` for images (the
            decoded bytes), and the raw dict for anything else (audio, resources, links).
        structured: The ``structuredContent`` object, or None.
        is_error: The server's ``isError``: the tool ran and failed.
    """

    content: tuple[Any, ...] = attrs.field(converter=tuple)  # type: ignore[misc]
    structured: Any = None
    is_error: bool = False

    @property
    def text(self) -> str:
        """The result as text for a model: text items joined; images and others described in brackets.

        With no content at all, the structured result as JSON.
        """
        pieces = []
        for item in self.content:
            if isinstance(item, TextPart):
                pieces.append(item.text)
            elif isinstance(item, ImagePart):
                size = len(item.data) if item.data is not None else 0
                pieces.append(f"[image: {item.mime_type}, {size} bytes]")
            else:
                pieces.append(_describe(item))
        if not pieces and self.structured is not None:
            return json.dumps(self.structured, ensure_ascii=False)
        return "\n".join(pieces)

    @classmethod
    def from_wire(cls, result: Any, where: str) -> CallResult:
        """Read a ``tools/call`` result object."""
        if not isinstance(result, Mapping):
            raise StreamError(f"{where} answered tools/call with {type(result).__name__}, not an object", provider="mcp")
        items: list[Any] = []
        for item in result.get("content") or ():
            kind = item.get("type") if isinstance(item, Mapping) else None
            if kind == "text":
                items.append(TextPart(str(item.get("text", ""))))
            elif kind == "image":
                items.append(_image(item))
            else:
                items.append(item)
        return cls(items, result.get("structuredContent"), bool(result.get("isError")))


def _image(item: Mapping[str, Any]) -> Any:
    try:
        data = base64.b64decode(str(item.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        return dict(item)  # undecodable: kept as it came
    return ImagePart(data=data, mime_type=str(item.get("mimeType") or "application/octet-stream"))


def _describe(item: Any) -> str:
    if not isinstance(item, Mapping):
        return f"[{type(item).__name__}]"
    kind = item.get("type")
    if kind == "resource":
        resource = item.get("resource") or {}
        if isinstance(resource, Mapping) and isinstance(resource.get("text"), str):
            return str(resource["text"])
        return f"[resource: {resource.get('uri', '?') if isinstance(resource, Mapping) else '?'}]"
    if kind == "resource_link":
        return f"[resource link: {item.get('uri', '?')}]"
    return f"[{kind or 'unknown'} content]"


def notice(item: Mapping[str, Any], kind: str, where: str, on_notification: Callable[[Any], Any] | None) -> None:
    """A message that needs no answer: a notification goes to ``on_notification``; anything else
    (not valid JSON-RPC) is dropped. Both are logged at DEBUG."""
    if kind == "notification":
        log.debug("%s: notification %s", where, item.get("method"))
        if on_notification is not None:
            on_notification(item)
    else:
        log.debug("%s: an invalid JSON-RPC message was dropped", where)
