"""Tools the model may call: `Tool`, `Toolbox`, the `@tool` decorator, permissions and `execute`.

A ``read`` tool runs whenever the model asks; a ``write`` or ``exec`` tool runs only when the
``confirm_tool(call)`` callback approves it. Example::

    @llmstreamer.tool(permission="write")
    def save_note(text: str, tags: Optional[list[str]] = None) -> str:
        ...  # a Google-style docstring gives the tool and parameter descriptions

    stream_chat(messages, callbacks, tools=[save_note], confirm_tool=lambda call: (True, "ok"))
"""

from __future__ import annotations

import copy
import enum
import functools
import inspect
import json
import logging
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, overload

import attrs

from . import _schema
from .errors import CallbackError, ConfigurationError, ToolError
from .models import ToolCall, ToolResult

__all__ = ["PERMISSIONS", "Tool", "Toolbox", "execute", "prepare", "tool", "tool_prompt"]

log = logging.getLogger(__name__)

PERMISSIONS = ("read", "write", "exec")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_PROMPT = "You have access to the following tools:\n\n{}\n\nTo use a tool, respond with a tool call in the appropriate format."


def _schema_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("type") != "object":
        raise ConfigurationError(f'tool parameters must be a JSON Schema dict with "type": "object", got {value!r}')
    return dict(value)


@attrs.frozen
class Tool:
    """A function the model may call: its name, description, JSON Schema and permission.

    A `Tool` without ``fn`` is a declaration only: the model sees it and the caller runs it.
    Calling a `Tool` calls ``fn``, so a function decorated with `tool` still works as a function.

    Attributes:
        name: 1 to 64 letters, digits, ``_`` or ``-``.
        description: What the tool does, for the model.
        parameters: A JSON Schema object: ``{"type": "object", "properties": {...}, "required": [...]}``.
        fn: The function to run with the decoded arguments as keywords, or None.
        permission: ``"read"`` runs without asking; ``"write"`` and ``"exec"`` need ``confirm_tool``.
    """

    name: str
    description: str
    parameters: Mapping[str, Any] = attrs.field(converter=_schema_dict, hash=False)
    fn: Callable[..., Any] | None = attrs.field(default=None, repr=False)
    permission: str = "read"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(f"invalid tool name {self.name!r}: use 1 to 64 letters, digits, '_' or '-'")
        if not isinstance(self.description, str):
            raise ConfigurationError(f"tool {self.name!r}: the description must be text")
        if self.permission not in PERMISSIONS:
            raise ConfigurationError(
                f"tool {self.name!r}: permission must be one of {', '.join(PERMISSIONS)}, got {self.permission!r}"
            )

    def definition(self) -> dict[str, Any]:
        """The tool as providers describe it: ``{"name", "description", "parameters"}`` (a copy)."""
        return {"name": self.name, "description": self.description, "parameters": copy.deepcopy(self.parameters)}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise ToolError(f"tool {self.name!r} is a declaration only: it has no function to run")
        return self.fn(*args, **kwargs)


_Decorator = Callable[[Callable[..., Any]], Tool]


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None, permission: str = "read") -> _Decorator: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    permission: str = "read",
) -> Tool | _Decorator:
    """Make a `Tool` from a typed function: ``@tool`` or ``@tool(name=..., description=..., permission=...)``.

    The JSON Schema comes from the type hints (str, int, float, bool, list[X], dict[str, X],
    Optional[X], Literal[...], Enum, Any, nested), ``required`` lists the parameters without
    defaults, defaults are recorded, and a Google-style docstring gives the descriptions (the text
    before its sections for the tool, the ``Args:`` entries for the parameters). Enum parameters
    are converted from their values before the function runs.

    Raises:
        ConfigurationError: ``*args``/``**kwargs`` or positional-only parameters, a type with no
            JSON Schema, an annotation this Python cannot evaluate, or an invalid name.
    """
    if fn is None:
        return lambda f: _from_function(f, name, description, permission)
    return _from_function(fn, name, description, permission)


def _from_function(fn: Any, name: str | None, description: str | None, permission: str) -> Tool:
    if isinstance(fn, Tool) or not callable(fn) or inspect.iscoroutinefunction(fn):
        raise ConfigurationError(f"a tool needs a plain (not async) function, got {fn!r}")
    tool_name = str(name or getattr(fn, "__name__", ""))
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"tool {tool_name!r}: cannot read the signature of {fn!r} ({exc})") from exc
    hints = _schema.hints(fn, signature, f"tool {tool_name!r}")
    summary, docs = _schema.parse_docstring(inspect.getdoc(fn) or "")
    properties: dict[str, Any] = {}
    required, enums = [], {}
    for pname, param in signature.parameters.items():
        where = f"tool {tool_name!r}, parameter {pname!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigurationError(f"{where} is {param.kind.description}: a tool takes named arguments only")
        schema = properties[pname] = _schema.schema(hints.get(pname, Any), where)
        if docs.get(pname):
            schema["description"] = docs[pname]
        if param.default is param.empty:
            required.append(pname)
        else:
            _schema.record_default(schema, param.default)
        bare = _schema.strip_optional(hints.get(pname))
        if isinstance(bare, type) and issubclass(bare, enum.Enum):
            enums[pname] = bare
    parameters = {"type": "object", "properties": properties, "required": required}
    fn = _with_enums(fn, enums) if enums else fn
    return Tool(tool_name, summary if description is None else description, parameters, fn, permission)


def _with_enums(fn: Callable[..., Any], enums: dict[str, type[enum.Enum]]) -> Callable[..., Any]:
    """Wrap ``fn`` so Enum parameters given by value (as JSON carries them) arrive as members."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        for pname, cls in enums.items():
            if kwargs.get(pname) is not None and not isinstance(kwargs[pname], cls):
                kwargs[pname] = cls(kwargs[pname])
        return fn(*args, **kwargs)

    return call


class Toolbox:
    """The tools of a stream, by name; iteration and `definitions` are sorted by name.

    Example::

        box = Toolbox([weather, save_note])
        box.call("weather", {"city": "Oslo"})  # runs it directly, without a permission check
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    @classmethod
    def of(cls, value: Any) -> Toolbox:
        """Normalize the ``tools=`` option: a Toolbox, tools or functions, a ``{name: function}`` dict, or None."""
        if value is None or isinstance(value, Tool):
            return cls([] if value is None else [value])
        if isinstance(value, Toolbox):
            return value
        if isinstance(value, Mapping):
            return cls(attrs.evolve(f, name=n) if isinstance(f, Tool) else tool(name=n)(f) for n, f in value.items())
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            return cls(value)
        raise ConfigurationError(
            f"tools must be a Toolbox, a list of tools or functions, or a {{name: function}} dict, "
            f"got {type(value).__name__}"
        )

    def add(self, item: Tool | Callable[..., Any]) -> Tool:
        """Add a `Tool`, or a function wrapped with `tool`, and return the `Tool`; names must be unique."""
        new = item if isinstance(item, Tool) else tool(item)
        if new.name in self._tools:
            raise ConfigurationError(f"there is already a tool named {new.name!r} in this toolbox")
        self._tools[new.name] = new
        return new

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Run a tool directly (no permission check) and return its result as text.

        Raises:
            ToolError: the tool is unknown or a declaration only, the arguments do not fit its
                signature, or it raised (then the original exception is the ``__cause__``).
        """
        found = self._tools.get(name)
        if found is None:
            raise ToolError(f"unknown tool {name!r}; available tools: {', '.join(self.names) or 'none'}")
        problem = _bad_arguments(found, arguments)
        if problem:
            raise ToolError(f"tool {name!r}: {problem}")
        try:
            value = found(**arguments)
        except Exception as exc:
            raise ToolError(f"tool {name!r} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(value, ToolResult):
            if value.is_error:
                raise ToolError(f"tool {name!r} failed: {value.content}")
            return value.content
        return _to_text(value)

    def definitions(self) -> list[dict[str, Any]]:
        """Every tool's `Tool.definition`, sorted by name (stable, so prompts cache well)."""
        return [t.definition() for t in self]

    @property
    def names(self) -> tuple[str, ...]:
        """The tool names, sorted."""
        return tuple(sorted(self._tools))

    def __iter__(self) -> Iterator[Tool]:
        return iter([self._tools[name] for name in self.names])

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, item: object) -> bool:
        return getattr(item, "name", item) in self._tools

    def __repr__(self) -> str:
        return f"Toolbox({list(self.names)!r})"


def execute(call: ToolCall, toolbox: Toolbox, confirm: Callable[[ToolCall], Any] | None = None) -> ToolResult:
    """Run one tool call and return the result for the model; the tool's own failures are error results.

    An unknown tool, unusable arguments (``call.error`` or a mismatch with the signature), a
    refusal and an exception raised by the tool each give a `ToolResult` with ``is_error=True``
    and the reason as its content (``"error: ..."`` or ``"refused: <reason>"``). ``read`` tools
    run without asking; ``write`` and ``exec`` tools run only when ``confirm(call)`` returns a true
    value or ``(True, reason)``; without ``confirm`` they are refused. A return value that is not
    a str is JSON-encoded; a function that returns a `ToolResult` gives its content and its
    ``is_error`` (the call's id and name are filled in).

    Raises:
        ToolError: the tool is a declaration only (``fn`` is None): the caller must run it itself.
        CallbackError: ``confirm`` raised (the original exception is the ``__cause__``), or it
            returned a tuple that is not ``(approved, reason)``.
    """
    ready = prepare(call, toolbox, confirm)
    return ready if isinstance(ready, ToolResult) else ready()


def prepare(
    call: ToolCall, toolbox: Toolbox, confirm: Callable[[ToolCall], Any] | None = None
) -> ToolResult | Callable[[], ToolResult]:
    """Check and confirm one call without running it: an error result now, or a function that runs it.

    The checks and ``confirm`` run in the calling thread (the stream's worker), so a
    confirmation that asks a person is never asked from two threads at once; only the returned
    function, which never raises, may run elsewhere. Raises as `execute` does.
    """
    found = toolbox.get(call.name)
    if found is None:
        return _error(call, f"error: unknown tool {call.name!r}; available tools: {', '.join(toolbox.names) or 'none'}")
    problem = _bad_arguments(found, call.arguments)
    if call.error or problem:
        return _error(call, f"error: {call.error or problem}")
    if found.permission != "read":
        approved, reason = _confirm(confirm, call, found)
        if not approved:
            return _error(call, f"refused: {reason}")
    return functools.partial(_run, found, call)


def _run(found: Tool, call: ToolCall) -> ToolResult:
    log.debug("running tool %s (call %s)", call.name, call.id)
    try:
        value = found(**call.arguments)
    except Exception as exc:
        return _error(call, f"error: {type(exc).__name__}: {exc}")
    if isinstance(value, ToolResult):
        return ToolResult(call.id, call.name, value.content, value.is_error)
    return ToolResult(call.id, call.name, _to_text(value))


def _bad_arguments(found: Tool, arguments: Mapping[str, Any]) -> str | None:
    """Why ``arguments`` do not fit the tool's function, or None when they do."""
    if found.fn is None:
        raise ToolError(f"tool {found.name!r} is a declaration only: it has no function to run")
    try:
        inspect.signature(found.fn).bind(**arguments)
    except TypeError as exc:
        return f"bad arguments for {found.name!r}: {exc}"
    except ValueError:  # no signature to check (some builtins): the call itself will tell
        pass
    return None


def _confirm(confirm: Callable[[ToolCall], Any] | None, call: ToolCall, found: Tool) -> tuple[bool, str]:
    if confirm is None:
        return False, f"tool {found.name!r} needs {found.permission!r} permission and no confirm_tool was given"
    try:
        answer = confirm(call)
    except Exception as exc:
        raise CallbackError(f"confirm_tool raised {type(exc).__name__}: {exc}") from exc
    if isinstance(answer, tuple) and len(answer) != 2:
        raise CallbackError(f"confirm_tool must return a bool or (bool, reason), got a {len(answer)}-tuple")
    approved, reason = answer if isinstance(answer, tuple) else (answer, None)
    return bool(approved), str(reason or "the call was not approved")


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _error(call: ToolCall, content: str) -> ToolResult:
    return ToolResult(call.id, call.name, content, is_error=True)


def tool_prompt(toolbox: Any) -> str:
    """A system-prompt text listing the tools as indented JSON, for providers that take tools as text.

    ``toolbox`` is anything `Toolbox.of` accepts. The text is stable (tools sorted by name), so it
    does not defeat prompt caching.
    """
    return _PROMPT.format(json.dumps(Toolbox.of(toolbox).definitions(), indent=2, ensure_ascii=False))
