r"""JSON Schema to Gemini's ``Schema``: the subset of OpenAPI 3.0 its API takes.

``{"type": [X, "null"]}`` and ``null`` branches become ``nullable``; types are upper-cased;
``anyOf``/``oneOf`` are kept (one branch is inlined); ``allOf`` is merged; ``const`` and enums
become string enums; local ``$ref``\ s are inlined (recursion is refused); keywords Gemini does not
know (``additionalProperties``, ``$schema``, ...) are dropped.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigurationError

__all__ = ["gemini_schema"]

# Schema keywords Gemini takes as they are (beyond type, nullable, enum, properties, required,
# items and anyOf, which are converted); everything else is dropped.
_SCHEMA_KEEP = frozenset(
    {
        "format",
        "title",
        "description",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "propertyOrdering",
    }
)
_MAX_REF_DEPTH = 16


def gemini_schema(schema: Any) -> dict[str, Any]:
    """Convert a JSON Schema to Gemini's ``Schema`` (a subset of OpenAPI 3.0); see the module docstring.

    Raises:
        ConfigurationError: a ``$ref`` that is not local, names nothing, or recurses.
    """
    if not isinstance(schema, dict):
        raise ConfigurationError(f"a schema must be a dict, got {type(schema).__name__}")
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, 0)


def _convert(schema: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith(("#/$defs/", "#/definitions/")) or name not in defs:
            raise ConfigurationError(f"cannot resolve the schema reference {ref!r} (only local $defs are supported)")
        if depth >= _MAX_REF_DEPTH:
            raise ConfigurationError(f"the schema reference {ref!r} is recursive; Gemini schemas cannot recurse")
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return _convert({**defs[name], **siblings}, defs, depth + 1)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _SCHEMA_KEEP}
    nullable = schema.get("nullable") is True
    kind = schema.get("type")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        kinds = [k for k in kind if k != "null"]
        if len(kinds) > 1:
            out["anyOf"] = [_convert({**schema, "type": k}, defs, depth) for k in kinds]
            kind = None
        else:
            kind = kinds[0] if kinds else None
    elif kind == "null":
        nullable, kind = True, None
    if isinstance(kind, str):
        out["type"] = kind.upper()
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list):
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(kept) < len(branches)
        if len(kept) == 1:
            out.update(_convert(kept[0], defs, depth))
        elif kept:
            out["anyOf"] = [_convert(b, defs, depth) for b in kept]
    for part in schema.get("allOf") or ():
        out.update(_convert(part, defs, depth))
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if isinstance(values, list):
        nullable = nullable or None in values
        out["enum"] = [v if isinstance(v, str) else json.dumps(v) for v in values if v is not None]
        if "type" not in out and "anyOf" not in out:
            out["type"] = "STRING"
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _convert(sub, defs, depth) for name, sub in properties.items()}
        required = [r for r in schema.get("required") or () if r in properties]
        if required:
            out["required"] = required
    if isinstance(schema.get("items"), dict):
        out["items"] = _convert(schema["items"], defs, depth)
    if nullable:
        out["nullable"] = True
    return out
