"""OpenAI's strict structured output: the schema rewritten into the subset ``strict: true`` accepts,
and the answer brought back to the caller's schema.

Strict mode needs every object to list all its properties as required and to forbid others. A
property the caller left optional becomes required and nullable in what is sent; a ``null`` the
model gives for it is dropped from the answer, so the caller's own schema (checked locally, always)
sees the field absent, as it would have been. A schema strict mode cannot express (an object with
no declared properties: a free-form mapping) is sent with ``strict: false``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_COMPOSED = ("anyOf", "oneOf", "allOf")


def to_strict(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(schema for strict mode, whether strict mode can take it)``."""
    out = copy.deepcopy(schema)
    ok = [True]

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "object" or "properties" in node:
            props = node.get("properties")
            if not props:
                ok[0] = False  # a free-form mapping: strict mode has no form for it
            else:
                required = set(node.get("required") or ())
                for name, sub in props.items():
                    if name not in required:
                        props[name] = {"anyOf": [sub, {"type": "null"}]}
                node["required"] = list(props)
                node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for sub in value.values():
                    walk(sub)
            elif key in (*_COMPOSED, "items", "prefixItems") or key == "additionalProperties":
                walk(value)

    walk(out)
    return out, ok[0]


def drop_optional_nulls(text: str, schema: dict[str, Any]) -> str:
    """The answer with ``null`` removed where the caller's ``schema`` had an optional, non-nullable
    property (what :func:`to_strict` turned into required-and-nullable). Text that is not JSON is
    returned as it is (the caller's check reports it)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    defs = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}

    def resolve(node: Any) -> Any:
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
            return defs.get(ref.rsplit("/", 1)[1], {})
        return node

    def nullable(node: Any) -> bool:
        node = resolve(node)
        if not isinstance(node, dict):
            return True
        kind = node.get("type")
        if kind == "null" or (isinstance(kind, list) and "null" in kind):
            return True
        return any(nullable(s) for key in _COMPOSED for s in node.get(key) or ())

    def clean(value: Any, node: Any) -> Any:
        node = resolve(node)
        if not isinstance(node, dict):
            return value
        if isinstance(value, dict) and isinstance(node.get("properties"), dict):
            required = set(node.get("required") or ())
            out = {}
            for k, v in value.items():
                sub = node["properties"].get(k)
                if v is None and k not in required and sub is not None and not nullable(sub):
                    continue
                out[k] = clean(v, sub) if sub is not None else v
            return out
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [clean(v, node["items"]) for v in value]
        for key in _COMPOSED:  # a union: clean with the first branch that describes an object
            for sub in node.get(key) or ():
                if isinstance(resolve(sub), dict) and isinstance(resolve(sub).get("properties"), dict) and isinstance(value, dict):
                    return clean(value, sub)
        return value

    return json.dumps(clean(data, schema), ensure_ascii=False)
