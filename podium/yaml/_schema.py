"""A small JSON Schema subset: run inputs and step arguments are checked with it.

Supported keywords: ``type`` (a name or a list), ``properties``, ``required``,
``additionalProperties``, ``items``, ``enum``, ``const``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``, ``minItems``,
``maxItems``, ``anyOf`` and ``default`` (filled in when a property is missing); ``title``,
``description``, ``examples``, ``format`` and ``$``-keywords are accepted and ignored. Anything else
is reported when the schema is checked, rather than silently not enforced.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from ..models import _patterns
from ._expr import json_type

TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
_ANNOTATIONS = {
    "title",
    "description",
    "examples",
    "format",
    "deprecated",
    "readOnly",
    "writeOnly",
    "markdownDescription",
}
_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems",
    "maxItems", "anyOf", "default",
} | _ANNOTATIONS  # fmt: skip
_ALIASES = {
    "str": "string",
    "text": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}


def check_schema(schema: Any, where: str = "schema") -> list[str]:
    """What is wrong with ``schema`` itself (unknown keywords, wrong shapes), as messages."""
    out: list[str] = []
    if not isinstance(schema, Mapping):
        return [f"{where} must be a mapping (a JSON Schema), got {_kind(schema)}"]
    for key, value in schema.items():
        if not isinstance(key, str):
            out.append(f"{where}: keys must be text, got {key!r}")
        elif key.startswith("$") or key in _ANNOTATIONS:
            continue
        elif key not in _KEYWORDS:
            close = difflib.get_close_matches(key, sorted(_KEYWORDS), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; supported: {', '.join(sorted(_KEYWORDS - _ANNOTATIONS))}"
            )
            out.append(f"{where}: the JSON Schema keyword {key!r} is not supported{hint}")
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            bad = [n for n in names if n not in TYPES]
            if bad:
                out.append(f"{where}: unknown type {bad[0]!r}; types are {', '.join(TYPES)}")
        elif key == "properties":
            if not isinstance(value, Mapping):
                out.append(f"{where}.properties must be a mapping of field names to schemas")
            else:
                for name, sub in value.items():
                    out.extend(check_schema(sub, f"{where}.{name}"))
        elif key in ("items", "additionalProperties"):
            if not isinstance(value, bool):
                out.extend(check_schema(value, f"{where}.{key}"))
        elif key == "anyOf":
            if not isinstance(value, list) or not value:
                out.append(f"{where}.anyOf must be a non-empty list of schemas")
            else:
                for i, sub in enumerate(value):
                    out.extend(check_schema(sub, f"{where}.anyOf[{i}]"))
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                out.append(f"{where}.required must be a list of field names")
        elif key == "enum" and not isinstance(value, list):
            out.append(f"{where}.enum must be a list of values")
        elif key == "pattern":
            try:
                re.compile(value)
                _patterns.search(value, "")  # what matches it: the regex package, which must read it too
            except (re.error, TypeError, ValueError) as exc:
                out.append(f"{where}.pattern is not a valid regular expression: {exc}")
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") and not _is_number(value):
            out.append(f"{where}.{key} must be a number")
        elif key in ("minLength", "maxLength", "minItems", "maxItems") and not (
            _is_int(value) and value >= 0
        ):
            out.append(f"{where}.{key} must be a whole number >= 0")
    return out


def compact(fields: Mapping[str, Any], where: str = "input") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A compact field list (``ticket: string``, ``priority: integer?``, ``tags: list[string]``, or a
    JSON Schema per field) as an object JSON Schema; problems as (field, message)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    problems: list[tuple[str, str]] = []
    for name, spec in fields.items():
        if not isinstance(name, str):
            problems.append((str(name), f"{where}: field names must be text, got {name!r}"))
            continue
        optional = False
        if isinstance(spec, str):
            text = spec.strip()
            optional = text.endswith("?")
            sub, err = _type_spec(text.rstrip("?").strip())
            if err:
                # said once; the field stays known (of any type) so that references to the input
                # are still checked in the same round
                problems.append((name, f"{where}.{name}: {err}"))
                sub, optional = {}, True
        elif isinstance(spec, Mapping):
            sub = dict(spec)
            errs = check_schema(sub, f"{where}.{name}")
            problems.extend((name, e) for e in errs)
            optional = "default" in sub or bool(errs)
            sub = {} if errs else sub
        elif spec is None:
            sub, optional = {}, True
        else:
            problems.append(
                (
                    name,
                    f"{where}.{name}: write a type (string, integer, number, boolean, list[string]...) or a JSON Schema, not {spec!r}",
                )
            )
            sub, optional = {}, True
        props[name] = sub
        if not optional:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema, problems


def _type_spec(text: str) -> tuple[dict[str, Any], str | None]:
    m = re.fullmatch(r"(list|array)\[(.+)\]", text)
    if m:
        inner, err = _type_spec(m.group(2).strip())
        return {"type": "array", "items": inner}, err
    if text == "any":
        return {}, None
    name = _ALIASES.get(text, text)
    if name not in TYPES:
        close = difflib.get_close_matches(text, [*TYPES, "any"], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(TYPES)}, any, list[TYPE]"
        return {}, f"unknown type {text!r}; {hint}"
    return {"type": name}, None


def is_json_schema(value: Mapping[str, Any]) -> bool:
    """Whether an ``input:`` mapping is a JSON Schema rather than a compact field list."""
    keys = set(value)
    if keys & {"properties", "$schema", "anyOf", "items"}:
        return True
    t = value.get("type")
    names = t if isinstance(t, list) else [t]
    return (
        "type" in keys
        and all(n in TYPES for n in names)
        and keys <= _KEYWORDS | {k for k in keys if str(k).startswith("$")}
    )


def schema_types(schema: Any) -> frozenset[str] | None:
    """The JSON types a schema allows, or None for any."""
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        t = json_type(schema["const"])
        return frozenset({t}) if t else None
    if "enum" in schema and isinstance(schema["enum"], list):
        found = {json_type(v) for v in schema["enum"]}
        return None if None in found else frozenset(t for t in found if t)
    if "anyOf" in schema and isinstance(schema["anyOf"], list):
        out: set[str] = set()
        for sub in schema["anyOf"]:
            ts = schema_types(sub)
            if ts is None:
                return None
            out |= ts
        return frozenset(out)
    t = schema.get("type")
    if t is None:
        return None
    return frozenset(t if isinstance(t, list) else [t])


def compatible(have: frozenset[str], want: frozenset[str]) -> bool:
    """Whether a value of one of the types ``have`` can be one of ``want``."""
    wanted = set(want)
    if "number" in wanted:
        wanted.add("integer")
    return bool(set(have) & wanted)


def lookup(schema: Any, path: tuple[str | int, ...]) -> tuple[Any, str | None, list[str]]:
    """Follow ``path`` into ``schema``: (the sub-schema or None if unknown, the first field name that
    the schema says does not exist, the field names there)."""
    current = schema
    for part in path:
        if not isinstance(current, Mapping):
            return None, None, []
        if isinstance(part, int):
            items = current.get("items")
            current = items if isinstance(items, Mapping) else None
            continue
        props = current.get("properties")
        if not isinstance(props, Mapping):
            return None, None, []
        if part in props:
            current = props[part]
            continue
        extra = current.get("additionalProperties", False)
        if extra is False:
            return None, part, sorted(str(k) for k in props)
        return (extra if isinstance(extra, Mapping) else None), None, []
    return current, None, []


def validate(schema: Any, value: Any, where: str = "input") -> tuple[Any, list[str]]:
    """Check ``value`` against ``schema``: (the value with defaults filled in, error messages)."""
    errors: list[str] = []
    out = _validate(schema, value, where, errors)
    return out, errors


def _validate(schema: Any, value: Any, where: str, errors: list[str]) -> Any:
    if not isinstance(schema, Mapping) or schema is True:
        return value
    if "anyOf" in schema and isinstance(schema["anyOf"], list):
        tries = []
        for sub in schema["anyOf"]:
            errs: list[str] = []
            out = _validate(sub, value, where, errs)
            if not errs:
                value = out
                break
            tries.append(errs[0])
        else:
            errors.append(f"{where}: matches none of the allowed forms ({'; '.join(tries)})")
            return value
    types = schema_types({"type": schema["type"]}) if "type" in schema else None
    have = json_type(value)
    if types is not None and not (have is not None and compatible(frozenset({have}), types)):
        errors.append(f"{where}: expected {' or '.join(sorted(types))}, got {_kind(value)}")
        return value
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: must be {schema['const']!r}, got {_short(value)}")
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {', '.join(map(repr, schema['enum']))}; got {_short(value)}")
    if _is_number(value):
        for key, ok, word in (
            ("minimum", lambda v, b: v >= b, ">="),
            ("maximum", lambda v, b: v <= b, "<="),
            ("exclusiveMinimum", lambda v, b: v > b, ">"),
            ("exclusiveMaximum", lambda v, b: v < b, "<"),
        ):
            bound = schema.get(key)
            if _is_number(bound) and not ok(value, bound):
                errors.append(f"{where}: must be {word} {bound}, got {value}")
    if isinstance(value, str):
        if _is_int(schema.get("minLength")) and len(value) < schema["minLength"]:
            errors.append(f"{where}: must be at least {schema['minLength']} characters long")
        if _is_int(schema.get("maxLength")) and len(value) > schema["maxLength"]:
            errors.append(f"{where}: must be at most {schema['maxLength']} characters long")
        if isinstance(schema.get("pattern"), str):
            try:  # within a time bound: the text comes from outside (an event, a model), see podium.models._patterns
                if not _patterns.search(schema["pattern"], value):
                    errors.append(f"{where}: does not match the pattern {schema['pattern']!r}")
            except _patterns.PatternTimeout as exc:
                errors.append(f"{where}: {exc}")
            except ValueError:
                errors.append(f"{where}: the schema's pattern {schema['pattern']!r} is not valid")
    if isinstance(value, list):
        if _is_int(schema.get("minItems")) and len(value) < schema["minItems"]:
            errors.append(f"{where}: must have at least {schema['minItems']} items")
        if _is_int(schema.get("maxItems")) and len(value) > schema["maxItems"]:
            errors.append(f"{where}: must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            value = [_validate(items, v, f"{where}[{i}]", errors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        value = _validate_object(schema, value, where, errors)
    return value


def _validate_object(
    schema: Mapping[str, Any], value: dict[Any, Any], where: str, errors: list[str]
) -> dict[Any, Any]:
    props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    assert isinstance(props, Mapping)
    out = dict(value)
    for name in schema.get("required") or ():
        if name not in value and not (isinstance(props.get(name), Mapping) and "default" in props[name]):
            errors.append(f"{where}: the field {name!r} is required")
    for name, sub in props.items():
        if name in value:
            out[name] = _validate(sub, value[name], f"{where}.{name}", errors)
        elif isinstance(sub, Mapping) and "default" in sub:
            out[name] = sub["default"]
    extra = schema.get("additionalProperties", True)
    for name in value:
        if name in props:
            continue
        if extra is False:
            close = difflib.get_close_matches(str(name), [str(p) for p in props], n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; fields: {', '.join(map(str, props)) or '(none)'}"
            )
            errors.append(f"{where}: unknown field {name!r}{hint}")
        elif isinstance(extra, Mapping):
            out[name] = _validate(extra, value[name], f"{where}.{name}", errors)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    t = json_type(value)
    if t is None:
        return type(value).__name__
    if t in ("string", "integer", "number", "boolean"):
        return f"{t} {_short(value)}"
    return t
