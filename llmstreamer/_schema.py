"""JSON Schema from Python type hints, and parameter descriptions from Google-style docstrings."""

from __future__ import annotations

import enum
import inspect
import json
import logging
import re
import types
import typing
from collections import abc
from typing import Any, Literal, Union

from .errors import ConfigurationError

__all__ = ["hints", "parse_docstring", "record_default", "response_schema", "schema", "strip_optional"]

log = logging.getLogger(__name__)

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
_ARRAYS = (list, tuple, set, frozenset, abc.Sequence)
_OBJECTS = (dict, abc.Mapping)
_UNIONS = (Union, getattr(types, "UnionType", Union))  # X | Y makes a types.UnionType from 3.10
_ARGS_HEADERS = frozenset({"args", "arguments", "parameters", "params", "keyword args"})
_HEADERS = _ARGS_HEADERS | {"returns", "return", "yields", "raises", "example", "examples", "note", "notes"}
_ARG_LINE = re.compile(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")  # "name (type): text" or "name: text"


def hints(fn: Any, signature: inspect.Signature, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # "int | None" on Python 3.9, a name that does not resolve, a callable object
        log.debug("%s: get_type_hints failed, evaluating each annotation", where)
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    return {
        pname: _evaluate(param.annotation, namespace, f"{where}, parameter {pname!r}")
        for pname, param in signature.parameters.items()
        if param.annotation is not param.empty
    }


def _evaluate(annotation: Any, namespace: dict[str, Any], where: str) -> Any:
    """Evaluate one annotation, a top-level ``X | Y`` as ``Union[X, Y]`` (which Python 3.9 cannot)."""
    if not isinstance(annotation, str):
        return annotation
    parts, depth, start = [], 0, 0
    for i, char in enumerate(annotation):
        depth += (char in "[(") - (char in "])")
        if char == "|" and depth == 0:
            parts.append(annotation[start:i])
            start = i + 1
    try:
        if parts:
            return Union[tuple(eval(part, namespace) for part in [*parts, annotation[start:]])]
        return eval(annotation, namespace)
    except Exception as exc:
        raise ConfigurationError(
            f"{where}: cannot evaluate the annotation {annotation!r} on this Python ({type(exc).__name__}: {exc}); "
            "on Python 3.9 write Optional[X] or Union[X, Y] instead of X | Y inside brackets"
        ) from exc


def strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in _UNIONS and len(args) == 1 else hint


def schema(hint: Any, where: str) -> dict[str, Any]:
    """The JSON Schema of one type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if origin in _UNIONS:
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _nullable(schema(options[0], where))
        return {"anyOf": [schema(a, where) for a in args]}
    if origin is Literal:
        return _enum_schema(list(args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_schema([member.value for member in hint])
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if hint in _ARRAYS or origin in _ARRAYS:
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            raise ConfigurationError(f"{where}: use tuple[X, ...] or list[X]; fixed-length tuples are not supported")
        return {"type": "array", "items": schema(args[0], where)} if args else {"type": "array"}
    if hint in _OBJECTS or origin in _OBJECTS:
        if args and args[0] is not str:
            raise ConfigurationError(f"{where}: dictionary keys must be str (JSON object keys are text)")
        values = schema(args[1], where) if args else {}
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    raise ConfigurationError(
        f"{where}: the type {hint!r} has no JSON Schema here; use str, int, float, bool, list[X], "
        "dict[str, X], Optional[X], Literal[...], an Enum or Any"
    )


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    # bool before int: True is an int too
    kinds = {next((_SIMPLE[k] for k in (bool, int, float, str) if isinstance(v, k)), None) for v in values}
    kind = kinds.pop() if len(kinds) == 1 else None
    return {"type": kind, "enum": values} if kind else {"enum": values}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that accepts null too (for Optional[X])."""
    if not schema:
        return schema  # Any accepts null already
    if isinstance(schema.get("type"), str):
        extra = {"enum": [*schema["enum"], None]} if "enum" in schema else {}
        return {**schema, "type": [schema["type"], "null"], **extra}
    return {"anyOf": [*schema.get("anyOf", [schema]), {"type": "null"}]}


def response_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON Schema a ``response_format`` option asks for; None for plain JSON (no schema).

    The option is a schema itself, or OpenAI's wrapper: ``{"type": "json_schema", "json_schema":
    {"schema": S, ...}}`` gives S and ``{"type": "json_object"}`` gives None.
    """
    kind = response_format.get("type")
    if kind == "json_object":
        return None
    if kind == "json_schema":
        inner = response_format.get("json_schema") or {}
        schema = inner.get("schema") if isinstance(inner, dict) else None
        if not isinstance(schema, dict):
            raise ConfigurationError('response_format {"type": "json_schema"} needs "json_schema": {"schema": {...}}')
        return schema
    return dict(response_format)


def record_default(schema: dict[str, Any], default: Any) -> None:
    value = default.value if isinstance(default, enum.Enum) else default
    try:
        schema["default"] = json.loads(json.dumps(value))  # tuples become lists
    except (TypeError, ValueError):
        log.debug("a default of type %s is not JSON: not recorded in the schema", type(value).__name__)


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (the text before its sections, {parameter: description})."""
    paragraphs: list[list[str]] = [[]]
    args: dict[str, list[str]] = {}
    section, current, indent = None, "", 0
    for line in doc.splitlines():
        text = line.strip()
        if line[:1] not in (" ", "\t") and text.endswith(":") and text[:-1].strip().lower() in _HEADERS:
            section, current = text[:-1].strip().lower(), ""
        elif section is None:
            if text:
                paragraphs[-1].append(text)
            elif paragraphs[-1]:  # a blank line ends a paragraph
                paragraphs.append([])
        elif section in _ARGS_HEADERS and text:
            depth, match = len(line) - len(line.lstrip()), _ARG_LINE.fullmatch(text)
            if match and (not current or depth <= indent):
                current, indent = match.group(1), depth
                args[current] = [match.group(2)]
            elif current:
                args[current].append(text)
    summary = "\n\n".join(" ".join(p) for p in paragraphs if p)
    return summary, {k: " ".join(filter(None, v)) for k, v in args.items()}
