"""Serialization of run inputs, step outputs and errors (payload format version 1).

Payloads are stored as UTF-8 JSON text. JSON values (None, bool, int, float, str, list, dict with
string keys) are stored as they are; tuples become lists. Other supported values are written as a
tagged object ``{"$podium": TAG, ...}``:

==========  =====================================================  ============================
tag         written for                                            read back as
==========  =====================================================  ============================
dataclass   a dataclass instance: ``type`` (module:qualname),      the dataclass (the module is
            ``value`` (its fields, encoded recursively)            imported by name)
pydantic    a pydantic model: ``type``, ``value`` (model_dump)     the model (``model_validate``)
bytes       ``b64``: base64 text                                   bytes
datetime    ``iso``: ISO 8601 text (also ``date``, ``time``)       datetime / date / time
decimal     ``str``                                                decimal.Decimal
uuid        ``str``                                                uuid.UUID
set         ``items``                                              set
dict        ``items``: ``[key, value]`` pairs of a plain dict      the dict
            that has a ``$podium`` key of its own
==========  =====================================================  ============================

Only :func:`dumps` writes tags: a dict in the data that holds a ``$podium`` key (run input, an
event's payload, JSON a tool fetched) is written as a ``dict`` tag and reads back as the same dict,
never as an object. A tag found in stored text (an older store, a message another party put on the
event bus) makes only a dataclass or a pydantic model; any other named type reads as its plain
``value`` (instantiating whatever a payload names would run any importable callable), and only
from a package the process has already imported (importing one runs its code).

If a tagged type can no longer be imported (code changed), the plain ``value`` is returned so that
history stays readable. Anything else raises :class:`SerializationError` naming the type.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import importlib
import json
import sys
import uuid
from typing import Any

from .errors import SerializationError

FORMAT_VERSION = 1
_TAG = "$podium"


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        value = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {_TAG: "dataclass", "type": _type_ref(type(obj)), "value": value}
    dump = getattr(obj, "model_dump", None)
    if dump is not None and hasattr(type(obj), "model_validate"):
        return {_TAG: "pydantic", "type": _type_ref(type(obj)), "value": dump(mode="json")}
    if isinstance(obj, bytes | bytearray | memoryview):
        return {_TAG: "bytes", "b64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, _dt.datetime):
        return {_TAG: "datetime", "iso": obj.isoformat()}
    if isinstance(obj, _dt.date):
        return {_TAG: "date", "iso": obj.isoformat()}
    if isinstance(obj, _dt.time):
        return {_TAG: "time", "iso": obj.isoformat()}
    if isinstance(obj, decimal.Decimal):
        return {_TAG: "decimal", "str": str(obj)}
    if isinstance(obj, uuid.UUID):
        return {_TAG: "uuid", "str": str(obj)}
    if isinstance(obj, set | frozenset):
        return {_TAG: "set", "items": list(obj)}
    raise SerializationError(
        f"cannot store a value of type {type(obj).__module__}.{type(obj).__qualname__}; "
        "return JSON data, a dataclass, a pydantic model, bytes, datetime, Decimal, UUID or a set"
    )


_KEY = f'"{_TAG}":'


def _escaped(value: Any) -> Any:
    """``value`` with every dict that holds a ``$podium`` key of its own written as a ``dict`` tag."""
    if isinstance(value, dict):
        inner = {k: _escaped(v) for k, v in value.items()}
        return {_TAG: "dict", "items": [[k, v] for k, v in inner.items()]} if _TAG in value else inner
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value


def _default_escaped(obj: Any) -> Any:
    return {k: v if k == _TAG else _escaped(v) for k, v in _default(obj).items()}


_PLAIN = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Plain JSON values (most payloads): one encoder, made once."""


def dumps(value: Any) -> str:
    """Encode ``value`` as payload text (format version 1)."""
    if value is None:  # a step or run without a value: no encoder
        return "null"
    try:
        text = _PLAIN.encode(value)
    except (TypeError, ValueError):  # a value to tag (or a bad one: the tagged encoding says what)
        pass
    else:
        if _KEY not in text:
            return _storable(text)
    tags = 0

    def default(obj: Any) -> Any:
        nonlocal tags
        tags += 1
        return _default(obj)

    try:
        text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default).encode(value)
        # Every tag is one of ours unless the data itself holds the key: then write it escaped.
        if text.count(_KEY) > tags:
            text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default_escaped).encode(
                _escaped(value)
            )
        return _storable(text)
    except SerializationError:
        raise
    except (TypeError, ValueError) as exc:  # circular references, bad keys
        raise SerializationError(f"cannot store value: {exc}") from exc


def _storable(text: str) -> str:
    """``text`` if it is valid Unicode: a lone surrogate (bytes decoded with ``surrogateescape``, a
    broken ``\\ud800`` escape) cannot be written as UTF-8 by any store, nor hashed into the audit."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise SerializationError(
            f"cannot store value: it holds {text[exc.start : exc.end]!a} (a lone surrogate, not valid Unicode "
            f"text) at character {exc.start} of its JSON; decode bytes with errors='replace', or keep them as "
            f"base64"
        ) from None
    return text


def _type_ref(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_type(ref: str) -> Any:
    """The class ``ref`` names, from a package this process has already imported (the workflow's
    own, Podium's; a module of it may still be imported, as a resumed run needs): a payload naming
    another package must not make the engine import it (importing runs the package's code)."""
    module, _, qual = ref.partition(":")
    if module.partition(".")[0] not in sys.modules:
        raise LookupError(f"package of {module!r} is not imported")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _hook(d: dict[str, Any]) -> Any:
    tag = d.get(_TAG)
    if tag is None:
        return d
    if tag == "dict":
        return {str(k): v for k, v in d["items"]}
    if tag == "dataclass" or tag == "pydantic":
        try:
            cls: Any = _import_type(d["type"])
        except Exception:
            return d["value"]
        make = getattr(cls, "model_validate", None) if tag == "pydantic" else cls
        if not isinstance(cls, type) or not callable(make) or (tag == "dataclass" and not dataclasses.is_dataclass(cls)):
            return d["value"]  # a payload names what to build: only data classes, never any callable
        try:
            return make(d["value"]) if tag == "pydantic" else make(**d["value"])
        except Exception:
            return d["value"]
    if tag == "bytes":
        return base64.b64decode(d["b64"])
    if tag == "datetime":
        return _dt.datetime.fromisoformat(d["iso"])
    if tag == "date":
        return _dt.date.fromisoformat(d["iso"])
    if tag == "time":
        return _dt.time.fromisoformat(d["iso"])
    if tag == "decimal":
        return decimal.Decimal(d["str"])
    if tag == "uuid":
        return uuid.UUID(d["str"])
    if tag == "set":
        return set(d["items"])
    return d


_decoder = json.JSONDecoder(object_hook=_hook)


def loads(text: str | None) -> Any:
    """Decode payload text written by :func:`dumps`. ``None`` reads as ``None``."""
    if text is None or text == "null":  # no value (a run without input, a step without output)
        return None
    return _decoder.decode(text)


def loads_plain(text: str | None) -> Any:
    """Decode payload text to plain JSON (tags kept), for display and export."""
    if text is None:
        return None
    return json.loads(text)


def untagged(value: Any) -> Any:
    """Stored payload JSON (already parsed) as plain data: Podium's type tags replaced by the value
    they wrap, and escaped data (its own ``$podium`` key) shown as it was. For display, never for
    rebuilding objects (:func:`loads` does that)."""
    if isinstance(value, dict):
        if "$podium" in value and "value" in value:
            return untagged(value["value"])
        if value.get("$podium") == "dict" and isinstance(value.get("items"), list):  # data holding the key
            return {str(p[0]): untagged(p[1]) for p in value["items"] if isinstance(p, list) and len(p) == 2}
        return {k: untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untagged(v) for v in value]
    return value
