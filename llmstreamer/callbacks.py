"""Callbacks a stream fires: `StreamCallbacks` (a value of functions) and `StreamHandler` (a base class).

Every callback of one stream runs on that stream's worker thread, one at a time, in wire order;
exactly one of ``on_finish`` / ``on_error`` fires, once, and last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import attrs

if TYPE_CHECKING:
    from .errors import LLMStreamError
    from .models import Response, ToolCall, ToolResult, Usage

__all__ = ["CALLBACK_NAMES", "StreamCallbacks", "StreamHandler"]

CALLBACK_NAMES = (
    "on_content",
    "on_thinking",
    "on_tool_call",
    "on_tool_result",
    "on_usage",
    "on_retry",
    "on_finish",
    "on_error",
)

_Fn = Optional[Callable[..., Any]]


def _callable_or_none(_inst: object, attr: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if value is not None and not callable(value):
        from .errors import ConfigurationError

        raise ConfigurationError(f"{attr.name} must be callable, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class StreamCallbacks:
    """The functions a stream calls as the answer arrives; all optional.

    Example::

        StreamCallbacks(on_content=lambda t: print(t, end="", flush=True),
                        on_finish=lambda r: print(), on_error=lambda e: print("failed:", e))

    Signatures: ``on_content(text)``, ``on_thinking(text)``, ``on_tool_call(ToolCall)``,
    ``on_tool_result(ToolResult)``, ``on_usage(Usage)``, ``on_retry(error, attempt, delay)``,
    ``on_finish(Response)``, ``on_error(LLMStreamError)``.
    """

    on_content: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_thinking: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_tool_call: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_tool_result: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_usage: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_retry: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_finish: _Fn = attrs.field(default=None, validator=_callable_or_none)
    on_error: _Fn = attrs.field(default=None, validator=_callable_or_none)


class StreamHandler:
    """A base class whose ``on_*`` methods do nothing: override the ones you need.

    Any object with some of these methods works as callbacks; this base only saves typing.
    """

    def on_content(self, text: str) -> None:
        """A fragment of the answer's text."""

    def on_thinking(self, text: str) -> None:
        """A fragment of the model's visible reasoning."""

    def on_tool_call(self, call: ToolCall) -> None:
        """The model asked for a tool call (fired once the call is complete)."""

    def on_tool_result(self, result: ToolResult) -> None:
        """A tool call ran (or was refused); this result goes back to the model."""

    def on_usage(self, usage: Usage) -> None:
        """Token counts of the turn so far, once per round."""

    def on_retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
        """The request failed before any output and will be tried again after ``delay`` s."""

    def on_finish(self, response: Response) -> None:
        """The stream ended well; the last callback."""

    def on_error(self, error: LLMStreamError) -> None:
        """The stream failed; the last callback. ``error.partial`` holds what arrived."""


def resolve(callbacks: Any) -> dict[str, Callable[..., Any]]:
    """Turn a callbacks argument (None, `StreamCallbacks` or any object) into bound functions.

    Only the callbacks that are set appear in the result, so the hot path can skip the rest.
    """
    if callbacks is None:
        return {}
    found: dict[str, Callable[..., Any]] = {}
    for name in CALLBACK_NAMES:
        fn = getattr(callbacks, name, None)
        if fn is None:
            continue
        if not callable(fn):
            from .errors import ConfigurationError

            raise ConfigurationError(f"callbacks.{name} must be callable, got {type(fn).__name__}")
        if isinstance(callbacks, StreamHandler) and getattr(type(callbacks), name) is getattr(StreamHandler, name):
            continue  # an inherited no-op: skipping it is free speed
        found[name] = fn
    return found
