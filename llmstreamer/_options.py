"""The options of ``stream_chat``: checked once, before any request, into a frozen `Options`."""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs

from .errors import ConfigurationError
from .models import ImagePart, Message, TextPart, ToolCall, ToolResult

__all__ = [
    "COMMON_OPTIONS",
    "ENGINE_OPTIONS",
    "OPTION_NAMES",
    "REASONING_LEVELS",
    "Options",
    "check_contents",
    "coerce_messages",
    "make_options",
]

REASONING_LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh")

# Options the engine itself honours for every provider.
ENGINE_OPTIONS = frozenset({"system", "max_iterations", "confirm_tool", "extra", "parallel_tools"})
# Options nearly every provider takes (a ProviderSpec lists these plus its own).
COMMON_OPTIONS = frozenset({"temperature", "top_p", "max_tokens", "stop", "tools", "tool_choice", "reasoning"})


@attrs.frozen(kw_only=True)
class Options:
    """Every option of one ``stream_chat`` call, validated; None means "not given"."""

    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    tools: Any = None
    tool_choice: Any = None
    max_iterations: int = 10
    confirm_tool: Callable[..., Any] | None = None
    # None means on: the calls of one round run concurrently (False runs them one by one)
    parallel_tools: bool | None = None
    reasoning: str | None = None
    thinking_budget: int | None = None
    response_format: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None


OPTION_NAMES = frozenset(f.name for f in attrs.fields(Options))


def _number(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise ConfigurationError(f"{name} must be between {lo} and {hi}, got {value!r}")
    return number


def _integer(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ConfigurationError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check(name: str, value: Any) -> Any:
    if name == "system":
        if not isinstance(value, str):
            raise ConfigurationError(f"system must be text, got {type(value).__name__}")
        return value
    if name in ("temperature", "top_p"):
        return _number(name, value, 0.0, 2.0 if name == "temperature" else 1.0)
    if name in ("top_k", "max_tokens", "thinking_budget"):
        return _integer(name, value, 0 if name == "thinking_budget" else 1)
    if name == "max_iterations":
        return _integer(name, value, 1)
    if name == "seed":
        return _integer(name, value, -(2**63))
    if name == "stop":
        stops = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Sequence) else None
        if stops is None or not all(isinstance(s, str) and s for s in stops):
            raise ConfigurationError(f"stop must be a string or a list of non-empty strings, got {value!r}")
        return stops
    if name == "reasoning":
        if value not in REASONING_LEVELS:
            raise ConfigurationError(f"reasoning must be one of {', '.join(REASONING_LEVELS)}, got {value!r}")
        return value
    if name == "parallel_tools":
        if not isinstance(value, bool):
            raise ConfigurationError(f"parallel_tools must be True or False, got {value!r}")
        return value
    if name == "confirm_tool":
        if not callable(value):
            raise ConfigurationError("confirm_tool must be callable: confirm_tool(call) -> bool | (bool, reason)")
        return value
    if name == "tools":
        from .tools import Toolbox

        box = Toolbox.of(value)
        return box if len(box) else None
    if name in ("response_format", "extra"):
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{name} must be a dict, got {type(value).__name__}")
        return dict(value)
    return value


def make_options(provider: str, supported: Iterable[str], options: Mapping[str, Any]) -> Options:
    """Validate ``options`` for ``provider``, or raise `ConfigurationError` naming the problem.

    ``supported`` lists the options the provider honours beyond `ENGINE_OPTIONS`.
    """
    allowed = ENGINE_OPTIONS | frozenset(supported)
    values = {}
    for name, value in options.items():
        if name not in OPTION_NAMES:
            raise ConfigurationError(f"unknown option {name!r}; options are: {', '.join(sorted(OPTION_NAMES))}")
        if value is None:
            continue
        if name not in allowed:
            raise ConfigurationError(f"{provider} does not support the option {name!r}")
        values[name] = _check(name, value)
    choice = values.get("tool_choice")
    if choice is not None:
        values["tool_choice"] = _tool_choice(choice, values.get("tools"))
    return Options(**values)


def _tool_choice(choice: Any, tools: Any) -> str:
    """Normalize ``tool_choice``: ``auto``, ``none``, ``required``, or the name of a given tool."""
    name = getattr(choice, "name", choice)
    if not isinstance(name, str):
        raise ConfigurationError(f"tool_choice must be 'auto', 'none', 'required' or a tool name, got {choice!r}")
    if tools is None:
        raise ConfigurationError("tool_choice needs tools=")
    if name in ("auto", "none", "required") or name in tools:
        return name
    raise ConfigurationError(f"tool_choice names {name!r}, which is not among the tools: {', '.join(tools.names)}")


def coerce_messages(messages: Any) -> tuple[Message, ...]:
    """Accept a list of `Message` or ``{"role", "content"}`` dicts; anything else is a clear error."""
    if isinstance(messages, (str, bytes, Message, Mapping)) or not isinstance(messages, Iterable):
        raise ConfigurationError(
            "messages must be a list of Message or {'role', 'content'} dicts, "
            f"got {type(messages).__name__}; for one question pass [Message.user(text)]"
        )
    out = []
    for i, item in enumerate(messages):
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(Message.from_dict(item))
            except ConfigurationError as exc:
                raise ConfigurationError(f"messages[{i}]: {exc.message}") from None
        else:
            raise ConfigurationError(
                f"messages[{i}] must be a Message or a {{'role', 'content'}} dict, got {type(item).__name__}"
            )
    if not out:
        raise ConfigurationError("messages is empty: give at least one message")
    return tuple(out)


def check_contents(messages: Sequence[Message]) -> None:
    """Refuse, before any request, a message that says nothing.

    Every message needs text, an image, a tool call or a tool result; thinking alone does not
    count. Servers refuse an empty message with a 400 (or, worse, answer as if it were not
    there), so it is caught here with its place in the list.

    Raises:
        ConfigurationError: naming the first empty message by index and role.
    """
    for i, message in enumerate(messages):
        for part in message.content:
            if isinstance(part, (ImagePart, ToolCall, ToolResult)) or (type(part) is TextPart and part.text):
                break
        else:
            calls = " or tool calls" if message.role == "assistant" else ""
            raise ConfigurationError(f"messages[{i}] ({message.role}) has no content: give it text{calls}")
