"""Declarative field mappings: how a system's new response shape is turned back into the shape its
contract expects, applied to every result *before* it is checked. Adding a mapping is how a drift
is fixed::

    mappings:
      getContact:
        rename: {emailAddress: email}        # new name -> the contract's name
        cast: {age: integer}                 # integer, number, string, boolean
        unnest: {address: [city, zip]}       # lift address.city and address.zip to the top
        values: {status: {archived: inactive}}   # unknown enum values -> known ones
        default: {country: "NL"}             # when the field is absent
        drop: [internalId]                   # fields to remove

A mapping applies to an object result, and to each object of an array result. It never fails: a
value it cannot cast is left as it is, and the contract check then reports it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

_KEYS = ("rename", "cast", "unnest", "values", "default", "drop")
_CASTS = ("integer", "number", "string", "boolean")


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldMapping:
    """The mapping of one operation's results (see the module docstring for the YAML form)."""

    rename: dict[str, str] = field(default_factory=dict)
    """``{new_name: contract_name}``."""
    cast: dict[str, str] = field(default_factory=dict)
    """``{field: integer | number | string | boolean}``."""
    unnest: dict[str, list[str]] = field(default_factory=dict)
    """``{object_field: [inner fields lifted to the top]}``; the object goes once it is empty."""
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{field: {value the system sends: value the contract knows}}``."""
    default: dict[str, Any] = field(default_factory=dict)
    """``{field: value}`` set when the field is absent."""
    drop: list[str] = field(default_factory=list)
    """Fields removed."""

    @classmethod
    def parse(cls, data: Any, where: str) -> FieldMapping:
        """A mapping from its YAML/JSON form; ``where`` names it in errors (``mappings.getContact``)."""
        if isinstance(data, FieldMapping):
            return data
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a field mapping is a mapping of {', '.join(_KEYS)}; got {data!r}")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; a field mapping takes {', '.join(_KEYS)}")
        for key in ("rename", "cast", "unnest", "values", "default"):
            if not isinstance(data.get(key, {}), dict):
                raise ConfigError(f"{where}.{key}: expected a mapping, got {data[key]!r}")
        for name, kind in (data.get("cast") or {}).items():
            if kind not in _CASTS:
                raise ConfigError(f"{where}.cast.{name}: {kind!r} is not one of {', '.join(_CASTS)}")
        unnest = {}
        for name, inner in (data.get("unnest") or {}).items():
            if isinstance(inner, str):
                inner = [inner]
            if not isinstance(inner, list) or not all(isinstance(i, str) for i in inner):
                raise ConfigError(f"{where}.unnest.{name}: expected a list of field names, got {inner!r}")
            unnest[str(name)] = list(inner)
        for name, table in (data.get("values") or {}).items():
            if not isinstance(table, dict):
                raise ConfigError(f"{where}.values.{name}: expected {{sent value: known value}}, got {table!r}")
        drop = data.get("drop") or []
        if not isinstance(drop, list):
            raise ConfigError(f"{where}.drop: expected a list of field names, got {drop!r}")
        return cls(
            rename={str(k): str(v) for k, v in (data.get("rename") or {}).items()},
            cast={str(k): str(v) for k, v in (data.get("cast") or {}).items()},
            unnest=unnest,
            values={str(k): dict(v) for k, v in (data.get("values") or {}).items()},
            default=dict(data.get("default") or {}),
            drop=[str(d) for d in drop],
        )

    def apply(self, value: Any) -> Any:
        """``value`` mapped (a new object; ``value`` is not changed)."""
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for outer, inner in self.unnest.items():
            nested = out.get(outer)
            if isinstance(nested, dict):
                rest = dict(nested)
                for name in inner:
                    if name in rest:
                        out[name] = rest.pop(name)
                if rest:
                    out[outer] = rest
                else:
                    out.pop(outer)
        for old, new in self.rename.items():
            if old in out:
                out[new] = out.pop(old)
        for name in self.drop:
            out.pop(name, None)
        for name, table in self.values.items():
            if name in out:
                with contextlib.suppress(TypeError):  # an unhashable value is not in any table
                    out[name] = table.get(out[name], out[name])
        for name, kind in self.cast.items():
            if name in out:
                out[name] = _cast(out[name], kind)
        for name, default in self.default.items():
            out.setdefault(name, default)
        return out


def _cast(value: Any, kind: str) -> Any:
    try:
        if kind == "string":
            return value if isinstance(value, str) else (None if value is None else str(value))
        if kind == "boolean":
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.strip().lower() in ("true", "1", "yes")
            return value
        if isinstance(value, bool):
            return value
        if kind == "integer":
            number = float(value) if isinstance(value, str) else value
            return int(number) if isinstance(number, int | float) and float(number).is_integer() else value
        if kind == "number":
            return float(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        pass
    return value


class Mappings:
    """The field mappings of a connector's operations, from a mapping (``{op: {...}}``) or a YAML/JSON
    file (re-read when it changes, so editing the file fixes a drift without a restart). A file may
    hold the operations at its top or under ``mappings:``."""

    def __init__(self, source: dict[str, Any] | str | None = None) -> None:
        self.path: str | None = None
        self._ops: dict[str, FieldMapping] = {}
        self._stamp: float | None = None
        if isinstance(source, str):
            self.path = os.path.expanduser(source)
            self._load()
        elif source:
            self.set_all(source, "mappings")

    def set_all(self, data: Any, where: str) -> None:
        if isinstance(data, dict) and isinstance(data.get("mappings"), dict):
            data, where = data["mappings"], f"{where}.mappings"
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected {{operation: field mapping}}, got {type(data).__name__}")
        self._ops = {str(op): FieldMapping.parse(m, f"{where}.{op}") for op, m in data.items()}

    def set(self, operation: str, mapping: FieldMapping | dict[str, Any]) -> None:
        """Set (replace) the mapping of ``operation`` in this process."""
        self._ops[operation] = FieldMapping.parse(mapping, f"mappings.{operation}")

    def _load(self) -> None:
        assert self.path is not None
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError as exc:
            raise ConfigError(f"cannot read the mappings file {self.path}: {exc.strerror}") from None
        if stamp == self._stamp:
            return
        import yaml

        with open(self.path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{self.path}: not valid YAML: {exc}") from None
        self.set_all(data, self.path)
        self._stamp = stamp

    def get(self, operation: str) -> FieldMapping | None:
        """The mapping of ``operation`` (after re-reading the file if it changed), or None."""
        if self.path is not None:
            self._load()
        return self._ops.get(operation)
