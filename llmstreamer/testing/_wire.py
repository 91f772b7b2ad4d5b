"""Renders a `Reply` in one provider's wire format; the flavor is chosen by the request path.

Each flavor lives in its own module (``_wire_<flavor>.py``) with the same small interface:
``CONTENT_TYPE``, ``SSE``, ``BASE_PATH``, ``events(reply, request) -> list[str]`` (each a
complete event with its framing, ``\\n`` line endings), ``error_body(status, error) -> dict``,
``headers(request_number) -> dict`` and ``models() -> (status, dict)``.
"""

from __future__ import annotations

import importlib
import itertools
import json
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

from . import _wire_embed

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

__all__ = ["BASE_PATHS", "FLAVORS", "Rendered", "flavor_of", "render", "status_line"]

# flavor name -> module; a flavor not listed here renders as OpenAI chat completions.
FLAVORS = {
    "openai": "_wire_openai",
    "anthropic": "_wire_anthropic",
    "gemini": "_wire_gemini",
    "mistral": "_wire_mistral",
    "ollama": "_wire_ollama",
    # OpenAI-compatible presets with quirks; the other presets render as openai
    "openrouter": "_wire_compat",
    "deepseek": "_wire_compat",
    "llamacpp": "_wire_compat",
    "pixigpt": "_wire_compat",
}

_request_ids = itertools.count(1)


def _module(flavor: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.{FLAVORS.get(flavor, FLAVORS['openai'])}")


def _base_paths() -> dict[str, str]:
    paths = {}
    for name in FLAVORS:
        try:
            paths[name] = _module(name).BASE_PATH.format(flavor=name)  # one module may serve several
        except ImportError:  # a flavor still being written
            continue
    return paths


class _BasePaths(dict):  # type: ignore[type-arg]
    """Lazy ``flavor -> base path`` mapping (imports the flavor modules on first use)."""

    def get(self, key: str, default: Any = None) -> Any:
        if not self:
            self.update(_base_paths())
        return super().get(key, default)


BASE_PATHS: dict[str, str] = _BasePaths()


def flavor_of(path: str) -> str:
    """The flavor a request path asks for: its first segment, else the endpoint's shape."""
    first = path.lstrip("/").split("/", 1)[0]
    if first and first != "v1" and "." not in first and first not in ("api", "v1beta", "chat"):
        return first
    if path.endswith("/messages") or "/v1/messages" in path:
        return "anthropic"
    if ":streamGenerateContent" in path or "/v1beta/" in path:
        return "gemini"
    if path.startswith("/api/"):
        return "ollama"
    return "openai"


@attrs.define
class Rendered:
    """What the server writes: status, headers, and the events (or one raw body)."""

    status: int
    headers: dict[str, str]
    content_type: str
    events: list[str] = attrs.Factory(list)
    body: bytes | None = None
    sse: bool = True


def render(flavor: str, reply: Reply, request: RecordedRequest) -> Rendered:
    """Render ``reply`` as the answer of ``flavor`` to ``request``."""
    module = _module(flavor)
    number = next(_request_ids)
    headers = {**module.headers(number), **reply.headers}
    kind = _wire_embed.kind_of(request.path)
    if kind is not None and reply.status < 300 and reply.body is None:
        vectors = json.dumps(_wire_embed.answer(kind, request)).encode()
        return Rendered(200, headers, "application/json", body=vectors)
    if request.method == "GET":
        status, payload = module.models()
        return Rendered(status, headers, "application/json", body=json.dumps(payload).encode())
    if reply.body is not None:
        body = reply.body
        if isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        ctype = reply.content_type or ("application/json" if not isinstance(body, (str, bytes)) else "text/plain")
        return Rendered(reply.status, headers, ctype, body=data)
    if reply.status >= 300 and reply.events is None:
        data = json.dumps(module.error_body(reply.status, reply.error)).encode()
        return Rendered(reply.status, headers, reply.content_type or "application/json", body=data)
    whole = getattr(module, "completion", None)
    answer = whole(reply, request) if whole is not None and reply.events is None else None
    if answer is not None:  # a server that does not stream (PixiGPT)
        return Rendered(reply.status, headers, reply.content_type or "application/json", body=json.dumps(answer).encode())
    events = list(reply.events) if reply.events is not None else module.events(reply, request)
    events.extend(reply.trailing)
    return Rendered(reply.status, headers, reply.content_type or module.CONTENT_TYPE, events, sse=module.SSE)


def status_line(status: int) -> str:
    """The HTTP/1.1 status line for ``status`` (529 is Anthropic's "Overloaded")."""
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Overloaded" if status == 529 else "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n"


def split_arguments(raw: str, parts: int = 3) -> list[str]:
    """Cut a JSON text into fragments at arbitrary places, as providers stream tool arguments."""
    if not raw:
        return []
    size = max(1, -(-len(raw) // parts))
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def sse(data: Any, event: str | None = None) -> str:
    """One SSE event with ``data`` as compact JSON (or text as is)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


def call_arguments(call: Any) -> Any:
    """The call's arguments as an object; arguments that are not JSON go as their raw text (a malformed call)."""
    if call.arguments or not call.raw_arguments:
        return dict(call.arguments)
    try:
        return json.loads(call.raw_arguments)
    except ValueError:
        return call.raw_arguments
