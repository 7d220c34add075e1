"""Grammars that always finish: a JSON Schema turned into a llama.cpp GBNF grammar whose every string
and array is bounded, so that a constrained answer is a complete, valid JSON value within a number of
tokens known in advance.

llama.cpp's own converter (``llama_cpp.llama_grammar``) does the translation. A schema's strings have
no length limit unless it gives one, so a small model can write inside one string until it runs out of
tokens (SmolLM2-135M writes `` }`` in an unclosed string for hundreds of tokens): the answer starts as
JSON and never ends. What is Podium's own is the bounding:

* every string without ``maxLength`` gets one (``max_string``), every array without ``maxItems`` gets
  one (``max_items``); the schema's own limits are kept;
* a string's characters are JSON's (no raw control characters, no ``\\u`` escapes: a raw newline the
  converter lets through is invalid JSON, and a character is then at most two bytes of ASCII);
* :func:`max_chars` is the longest answer the grammar allows, so ``max_tokens`` can be set to fit it
  (a token is at least one character of ASCII text). When the caller's ``max_tokens`` is smaller,
  the default string limit is lowered until the answer fits it.

Schemas that stay unbounded (a free-form ``object``, a ``pattern``, a recursive ``$ref``) are
converted as they are, and their answer can still run out of tokens.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_STRING = 256
"""Default ``maxLength`` of a string without one (characters)."""
MAX_ITEMS = 16
"""Default ``maxItems`` of an array without one."""
MIN_STRING = 8
"""The default string limit is never lowered below this to fit ``max_tokens``."""

# JSON string characters: no raw control characters (invalid in JSON), escapes of one character.
_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt]'
_FORMATS = {"date": 12, "time": 30, "date-time": 42, "uuid": 38}
"""Longest quoted value of the string formats llama.cpp's converter has a rule for."""
_INTEGER = 1 + 16 + 1  # sign, up to 16 digits, space
_NUMBER = 1 + 16 + 1 + 16 + 2 + 16 + 1  # sign, integer part, fraction, exponent, space


@dataclass(frozen=True, kw_only=True, slots=True)
class Grammar:
    """A bounded grammar for a schema."""

    gbnf: str
    """The GBNF text, for ``llama_cpp.LlamaGrammar.from_string``."""
    max_tokens: int | None
    """Tokens that always hold a complete answer of ASCII text (None: the schema is unbounded)."""
    max_string: int
    """The ``maxLength`` given to strings that had none."""


def bounded(schema: dict[str, Any], *, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """A copy of ``schema`` with a length limit on every string and array that has none."""
    out = copy.deepcopy(schema)
    _bound(out, max_string, max_items)
    return out


def _bound(node: Any, max_string: int, max_items: int) -> None:
    if not isinstance(node, dict):
        return
    types = node.get("type")
    if isinstance(types, list):  # the converter drops a type list's constraints: make it an anyOf
        rest = {k: v for k, v in node.items() if k != "type"}
        node.clear()
        node["anyOf"] = [{**copy.deepcopy(rest), "type": t} for t in types]
    if node.get("type") == "string" and not ({"enum", "const", "pattern"} & node.keys()):
        node.setdefault("maxLength", max(max_string, int(node.get("minLength", 0))))
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        node.setdefault("maxItems", max(max_items, int(node.get("minItems", 0))))
    for key in ("properties", "$defs", "definitions"):
        for sub in (node.get(key) or {}).values():
            _bound(sub, max_string, max_items)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in node.get(key) or ():
            _bound(sub, max_string, max_items)
    for key in ("items", "additionalProperties"):
        _bound(node.get(key), max_string, max_items)


def max_chars(schema: dict[str, Any]) -> int | None:
    """The longest JSON text the converted grammar of ``schema`` allows; None when it is unbounded."""
    return _chars(schema, schema, frozenset())


def _chars(node: Any, root: dict[str, Any], seen: frozenset[str]) -> int | None:
    if not isinstance(node, dict):
        return None
    if "$ref" in node:
        ref = str(node["$ref"])
        if ref in seen or not ref.startswith("#/"):
            return None
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _chars(target, root, seen | {ref})
    options = node.get("oneOf") or node.get("anyOf")
    if options:
        sizes = [_chars(o, root, seen) for o in options]
        return None if any(s is None for s in sizes) else max(s for s in sizes if s is not None)
    kind = node.get("type")
    if isinstance(kind, list):
        return _chars({"anyOf": [{**node, "type": t} for t in kind]}, root, seen)
    if "const" in node:
        return len(json.dumps(node["const"])) + 1
    if "enum" in node:
        return max((len(json.dumps(v)) for v in node["enum"]), default=0) + 1
    if kind in (None, "object") and ("properties" in node or node.get("additionalProperties") not in (None, True)):
        if node.get("additionalProperties") not in (None, False):
            return None  # any number of extra keys
        total = 4  # "{" space "}" space
        for name, sub in (node.get("properties") or {}).items():
            size = _chars(sub, root, seen)
            if size is None:
                return None
            total += len(json.dumps(name)) + 4 + size + 2  # "name" space ":" space value "," space
        return total
    if kind in (None, "array") and ("items" in node or "prefixItems" in node):
        items = node.get("items") or node.get("prefixItems")
        if isinstance(items, list):
            sizes = [_chars(i, root, seen) for i in items]
            return None if any(s is None for s in sizes) else 4 + sum(s + 2 for s in sizes if s is not None)
        most, size = node.get("maxItems"), _chars(items, root, seen)
        return None if most is None or size is None else 4 + int(most) * (size + 2)
    if kind == "string":
        fmt = re.sub(r"^uuid[1-5]?$", "uuid", str(node.get("format") or ""))
        if "pattern" in node:
            return None
        if fmt in _FORMATS:
            return _FORMATS[fmt] + 1
        if "maxLength" in node:
            return 2 + 2 * int(node["maxLength"]) + 1  # quotes, escapes of two characters, space
        return None
    return {"integer": _INTEGER, "number": _NUMBER, "boolean": 6, "null": 5}.get(str(kind))


def grammar(
    schema: dict[str, Any], *, budget: int | None = None, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS
) -> Grammar:
    """The bounded grammar of ``schema``. With ``budget`` (the caller's ``max_tokens``), strings without
    a limit of their own get a lower one, down to :data:`MIN_STRING`, until every answer fits it."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    limit = max_string
    shaped = bounded(schema, max_string=limit, max_items=max_items)
    size = max_chars(shaped)
    if budget is not None and size is not None and size + 2 > budget:
        low, high = MIN_STRING, max_string  # the size grows with the limit: the largest that fits
        while low < high:
            mid = (low + high + 1) // 2
            fits = max_chars(bounded(schema, max_string=mid, max_items=max_items))
            low, high = (mid, high) if fits is not None and fits + 2 <= budget else (low, mid - 1)
        limit = low
        shaped = bounded(schema, max_string=limit, max_items=max_items)
        size = max_chars(shaped)
    text = json_schema_to_gbnf(json.dumps(shaped))
    text = re.sub(r"(?m)^char ::= .*$", lambda _: _CHAR, text)
    # +2: the end-of-generation token after the grammar's end, and one for a token of the chat format
    return Grammar(gbnf=text, max_tokens=None if size is None else size + 2, max_string=limit)
