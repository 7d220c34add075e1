"""Contracts: the JSON Schema every result of an operation is expected to match, and the readable
diff of a result that does not (its *drift*).

Where an operation's contract comes from, first found wins:

1. declared: ``open_connector(..., contracts={"getContact": ContactModel})`` (a pydantic model, a
   JSON Schema mapping, or a JSON/YAML file holding one);
2. learned from recorded results (``podium connectors learn NAME OP``, kept in the store);
3. the connector's own (``Operation.output``: an OpenAPI document's 2xx response schema).

An operation with none of these is not checked. Results are mapped first (:mod:`._mapping`), then
validated with ``jsonschema``; any validation error is drift. The diff names each change by kind:

==================  =============================================================
``missing``         a required field is absent
``renamed``         a field is absent and a new one of the same type took its place
``nested``          a field moved inside a new object, or a value became an object
``type_changed``    a value has another JSON type
``unknown_enum``    a value outside the field's enum
``extra_field``     a field the contract does not know (drift only where it forbids
                    extra fields; otherwise listed beside other changes)
``invalid``         any other rule of the schema (format, range, length...)
==================  =============================================================
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError, ConnectorDrift
from . import _learned as learned
from ._mapping import FieldMapping, Mappings

POLICIES = ("park", "fail", "skip")
KV_NAMESPACE = "connector.contracts"
"""Where learned contracts are kept in the store (key ``CONNECTOR.OPERATION``)."""
_LEARNED_TTL = 30.0  # seconds a process trusts its copy of a learned contract


@dataclass(frozen=True, kw_only=True, slots=True)
class Drift:
    """One difference between a result and its contract."""

    kind: str
    """``missing``, ``renamed``, ``nested``, ``type_changed``, ``unknown_enum``, ``extra_field`` or ``invalid``."""
    path: str
    """Where, as a JSON path from the result (``$.address.city``, ``$[3].email``)."""
    message: str
    """One readable line: what changed, and the mapping that would fix it when there is one."""
    expected: str | None = None
    got: str | None = None
    to: str | None = None
    """``renamed``/``nested``: the path where the field is now."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _types(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {str(x) for x in t}
    if "properties" in schema:
        return {"object"}
    if "enum" in schema:
        return {_type_of(v) for v in schema["enum"]}
    return set()


def _fits(schema: dict[str, Any], value: Any) -> bool:
    types = _types(schema)
    got = _type_of(value)
    return not types or got in types or (got == "integer" and "number" in types)


def _path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


DATA_KEY = "*"
"""What a path shows for a key that is data (a map's key: ``patternProperties``, ``additionalProperties``)."""


def _step(node: Any, p: Any) -> tuple[dict[str, Any], bool]:
    """The sub-schema that holds ``node``'s item or key ``p``, and whether ``p`` is data: a key
    matched by ``patternProperties`` or a schema-valued ``additionalProperties`` (a map keyed by
    ids, emails, names), not a field the contract names."""
    node = node if isinstance(node, dict) else {}
    if isinstance(p, int):
        prefix, items = node.get("prefixItems"), node.get("items")
        sub = prefix[p] if isinstance(prefix, list) and p < len(prefix) else items
        return (sub if isinstance(sub, dict) else {}), False
    props = node.get("properties") or {}
    if p in props:
        return (props[p] if isinstance(props[p], dict) else {}), False
    for pattern, sub in (node.get("patternProperties") or {}).items():
        try:
            if re.search(pattern, str(p)):
                return (sub if isinstance(sub, dict) else {}), True
        except re.error:
            return {}, True
    extra = node.get("additionalProperties")
    return (extra, True) if isinstance(extra, dict) else ({}, False)


def keyed_by_data(schema: Any) -> bool:
    """Whether an object of ``schema`` is a map whose keys are data (not fields the contract names)."""
    return isinstance(schema, dict) and (bool(schema.get("patternProperties")) or isinstance(schema.get("additionalProperties"), dict))


def safe_parts(schema: Any, parts: Iterable[Any]) -> tuple[Any, ...]:
    """An instance path (``err.absolute_path``) with each key that is data (see :func:`_step`)
    shown as ``*``: paths go into messages that readers without ``payloads.read`` see."""
    out: list[Any] = []
    node = schema
    for p in parts:
        node, data = _step(node, p)
        out.append(DATA_KEY if data else p)
    return tuple(out)


def safe_path(schema: Any, parts: Iterable[Any]) -> str:
    """:func:`safe_parts` written as a JSON path (``$.balances.*.amount``)."""
    return _path(safe_parts(schema, parts))


def inline_refs(schema: Any, root: Any = None, seen: tuple[str, ...] = ()) -> Any:
    """``schema`` with its local ``$ref``s (``#/$defs/...``, ``#/definitions/...``) inlined, so the
    diff can walk it (a recursive reference is left as ``{}``)."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(s, root, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") or ref in seen:
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        return inline_refs(target, root, (*seen, ref))
    return {k: inline_refs(v, root, seen) for k, v in schema.items() if k not in ("$defs", "definitions")}


def from_openapi(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable: true`` admits null, and boolean
    ``exclusiveMinimum``/``exclusiveMaximum`` become numbers (3.1 documents are unchanged)."""
    if isinstance(schema, list):
        return [from_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: from_openapi(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True:
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
    for bound, edge in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool) and out.pop(bound) and edge in out:  # a False one just goes
            out[bound] = out.pop(edge)
    return out


def _validator(schema: dict[str, Any]) -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError as exc:
        raise ConfigError("checking connector results against their contracts needs jsonschema: pip install 'podium[connectors]'") from exc
    from ..models import _patterns

    return _patterns.bounded(Draft202012Validator)(schema)  # the system's answer meets a pattern within a bound


def diff(schema: dict[str, Any], value: Any) -> list[Drift]:
    """How ``value`` departs from ``schema`` (empty when it matches)."""
    errors = list(_validator(schema).iter_errors(value))
    if not errors:
        return []
    return _classify(inline_refs(schema), value, errors)


def _at(schema: dict[str, Any], parts: Iterable[Any]) -> dict[str, Any]:
    """The sub-schema for an instance path (through properties, maps and items)."""
    node = schema
    for p in parts:
        node, _ = _step(node, p)
    return node


def _classify(schema: dict[str, Any], value: Any, errors: list[Any]) -> list[Drift]:
    out: list[Drift] = []
    used: set[tuple[str, str]] = set()  # (object path, extra key) explained as a rename or a nesting
    objects: dict[tuple[Any, ...], None] = {}
    for err in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.validator != "required")):
        parts = tuple(err.absolute_path)
        shown = safe_parts(schema, parts)  # a map's keys are data: shown as *
        here, at = _path(shown), _path(parts)  # ``at`` tells two entries of a map apart
        field = shown[-1] if shown and shown[-1] != DATA_KEY else "field"
        if err.validator == "required":
            objects[parts] = None
            sub = _at(schema, parts)
            obj = err.instance if isinstance(err.instance, dict) and not keyed_by_data(sub) else {}
            props = sub.get("properties") or {}
            name = str(err.message.split("'")[1]) if "'" in err.message else "?"
            extras = [k for k in obj if k not in props and (at, k) not in used]
            found = _moved(name, props.get(name) or {}, obj, extras)
            if found is None:
                out.append(Drift(kind="missing", path=_path((*shown, name)), message=f"required field {name!r} is missing", expected=_label(props.get(name) or {})))
                continue
            kind, key = found
            used.add((at, key))
            if kind == "renamed":
                out.append(Drift(
                    kind="renamed", path=_path((*shown, name)), to=_path((*shown, key)), got=_type_of(obj[key]),
                    message=f"field {name!r} is missing and {key!r} ({_type_of(obj[key])}) is new: renamed? map it with rename: {{{key}: {name}}}",
                ))
            else:
                out.append(Drift(
                    kind="nested", path=_path((*shown, name)), to=_path((*shown, key, name)),
                    message=f"field {name!r} moved into the new object {key!r}: map it with unnest: {{{key}: [{name}]}}",
                ))
        elif err.validator == "type":
            got = _type_of(err.instance)
            expected = _label(err.schema)
            if got in ("object", "array") and not ({"object", "array"} & _types(err.schema)):
                keys = f" with {', '.join(map(repr, list(err.instance)[:5]))}" if isinstance(err.instance, dict) else ""
                out.append(Drift(kind="nested", path=here, expected=expected, got=got, message=f"{here} was {expected} and is now an {got}{keys}"))
            else:
                hint = f": map it with cast: {{{field}: {expected}}}" if parts and expected in ("integer", "number", "string", "boolean") else ""
                out.append(Drift(kind="type_changed", path=here, expected=expected, got=got, message=f"{here} was {expected} and is now {got}{hint}"))
        elif err.validator == "enum":
            # The value itself is business data (payloads.read): the quarantined payload holds it.
            known = ", ".join(map(json.dumps, err.schema.get("enum") or []))
            out.append(Drift(
                kind="unknown_enum", path=here, got=_type_of(err.instance), expected=known,
                message=f"{here} has a {_type_of(err.instance)} value outside the contract's enum ({known}): map it "
                f"with values: {{{field}: {{NEW_VALUE: one of them}}}}, NEW_VALUE read from the quarantined payload",
            ))
        elif err.validator == "additionalProperties" and err.schema.get("patternProperties"):
            # a map whose keys must match a pattern: the keys are data, counted, not named
            objects[parts] = None
            n = sum(1 for k in err.instance if (at, k) not in used) if isinstance(err.instance, dict) else 0
            out.append(Drift(
                kind="extra_field", path=_path((*shown, DATA_KEY)),
                message=f"{here} has {n} key(s) that match none of the contract's key patterns (patternProperties)",
            ))
        elif err.validator == "additionalProperties":
            objects[parts] = None
            for key in err.instance if isinstance(err.instance, dict) else ():
                if key not in (err.schema.get("properties") or {}) and (at, key) not in used:
                    used.add((at, key))
                    out.append(Drift(kind="extra_field", path=_path((*shown, key)), got=_type_of(err.instance[key]), message=f"field {key!r} is not in the contract"))
        else:
            # jsonschema's own message quotes the value (business data): name the rule instead
            rule = json.dumps(err.validator_value, default=str, ensure_ascii=False)[:120]
            out.append(Drift(kind="invalid", path=here, message=f"{here} breaks the contract's rule {err.validator}: {rule}"))
    # A declared, optional field gone while a similar new one of its type appeared is a rename too.
    for parts in list(objects) or [()]:
        obj = _get(value, parts)
        node = _at(schema, parts)
        if not isinstance(obj, dict) or keyed_by_data(node):
            continue  # a map's keys are data, not new fields
        shown = safe_parts(schema, parts)
        at = _path(parts)
        props = node.get("properties") or {}
        extras = [k for k in obj if k not in props and (at, k) not in used]
        for name, sub in props.items():
            if name in obj or not extras:
                continue
            best = max(extras, key=lambda k: _alike(name, k))
            if _alike(name, best) >= 0.6 and _fits(sub, obj[best]):
                used.add((at, best))
                extras.remove(best)
                out.append(Drift(kind="renamed", path=_path((*shown, name)), to=_path((*shown, best)), got=_type_of(obj[best]), message=f"field {name!r} is missing and {best!r} is new: renamed? map it with rename: {{{best}: {name}}}"))
        for key in extras:
            out.append(Drift(kind="extra_field", path=_path((*shown, key)), got=_type_of(obj[key]), message=f"field {key!r} is not in the contract"))
    return out


def _get(value: Any, parts: Iterable[Any]) -> Any:
    for p in parts:
        try:
            value = value[p]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _alike(a: str, b: str) -> float:
    a, b = a.lower(), b.lower()
    if a in b or b in a:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _label(schema: dict[str, Any]) -> str:
    types = sorted(_types(schema))
    return "|".join(types) if types else "any"


def _moved(name: str, sub: dict[str, Any], obj: dict[str, Any], extras: list[str]) -> tuple[str, str] | None:
    """Where a missing field went: ``("nested", key)`` when a new object holds it, ``("renamed", key)``
    for the most similar new field of a fitting type."""
    for key in extras:
        inner = obj[key]
        if isinstance(inner, dict) and name in inner and not ({"object"} & _types(sub)):
            return "nested", key
    fitting = [k for k in extras if _fits(sub, obj[k])]
    if not fitting:
        return None
    return "renamed", max(fitting, key=lambda k: _alike(name, k))


def describe(drifts: list[Drift]) -> str:
    """The diff as readable lines."""
    return "\n".join(f"  {d.kind:<13} {d.message}" for d in drifts)


def learn_schema(samples: Iterable[Any]) -> dict[str, Any]:
    """A JSON Schema that every sample matches, inferred with GenSON: object fields present in every
    sample are required; types are the union seen."""
    try:
        from genson import SchemaBuilder
    except ImportError as exc:
        raise ConfigError("learning a contract needs genson: pip install 'podium[connectors]'") from exc
    builder = SchemaBuilder(schema_uri=False)
    n = 0
    for sample in samples:
        builder.add_object(sample)
        n += 1
    if n == 0:
        raise ConfigError("no sample to learn a contract from: make some calls first, or pass samples")
    schema: dict[str, Any] = builder.to_schema()
    return schema


def _schema_of(spec: Any, where: str) -> dict[str, Any]:
    """A JSON Schema from a pydantic model, a mapping, or a JSON/YAML file."""
    if hasattr(spec, "model_json_schema"):
        schema: dict[str, Any] = spec.model_json_schema()
        return schema
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, str) and os.path.isfile(os.path.expanduser(spec)):
        import yaml

        with open(os.path.expanduser(spec), encoding="utf-8") as f:
            loaded = yaml.safe_load(f)
        if isinstance(loaded, dict):
            return loaded
    raise ConfigError(f"{where}: a contract is a pydantic model, a JSON Schema mapping or a JSON/YAML file; got {spec!r}")


EVENT = "event"
"""The contract name of the messages a broker trigger consumes (``contracts={"event": Model}``,
``mappings={"event": {...}}``): a message that drifts is quarantined before it starts a run."""


class Contracts:
    """One connector's contracts, field mappings and drift policy (``connector.contracts``)."""

    def __init__(
        self,
        *,
        declared: dict[str, Any] | None = None,
        mappings: dict[str, Any] | str | Mappings | None = None,
        on_drift: str | dict[str, str] = "park",
    ) -> None:
        self.declared = {op: _schema_of(s, f"contracts.{op}") for op, s in (declared or {}).items()}
        self.mappings = mappings if isinstance(mappings, Mappings) else Mappings(mappings)
        policies = {"*": on_drift} if isinstance(on_drift, str) else dict(on_drift)
        for op, p in policies.items():
            if p not in POLICIES:
                raise ConfigError(f"on_drift{'' if op == '*' else '.' + op}: {p!r} is not one of {', '.join(POLICIES)}")
        self.policies = policies
        self.learned: dict[str, dict[str, Any] | None] = {}
        self.refused: dict[str, str] = {}
        """Operations whose learned contract in the store is not taken, and why (every result drifts)."""
        self._learned_at: dict[str, float] = {}
        self._validators: dict[str, tuple[dict[str, Any], Any]] = {}

    def policy(self, operation: str) -> str:
        """``park``, ``fail`` or ``skip``: what a run does when ``operation``'s result drifts."""
        return self.policies.get(operation) or self.policies.get("*") or "park"

    def schema(self, connector: Any, operation: str) -> dict[str, Any] | None:
        """The contract of ``operation`` (declared, learned or the connector's own), or None."""
        found = self.declared.get(operation) or self.learned.get(operation)
        if found is None and operation != EVENT:  # consumed events have only a declared or learned one
            found = connector.operation(operation).output
        return found or None

    def mapping(self, operation: str) -> FieldMapping | None:
        return self.mappings.get(operation)

    async def refresh(self, store: Any, name: str, operation: str, *, sealed: bool = True) -> str | None:
        """Read ``operation``'s learned contract from the store (at most every 30 s per process).
        Returns why it is not taken when it was read and refused (its seal does not hold, or a
        signed entry learned one that is missing: :mod:`._learned`), for the caller to audit; with
        ``sealed`` false (auditing off) the row is taken as stored."""
        if operation in self.declared or store is None:
            return None
        now = time.monotonic()
        if now - self._learned_at.get(operation, -_LEARNED_TTL) < _LEARNED_TTL:
            return None
        text = await store.kv_get(KV_NAMESPACE, f"{name}.{operation}")
        schema: Any = json.loads(text)["schema"] if text and not sealed else None
        problem: str | None = None
        if text and sealed:
            schema, problem = learned.open_contract(store, name, operation, text)
            if problem is None and (entry := await learned.learned_in_log(store, name, operation)) is not None:
                problem = learned.not_newest(name, operation, schema, entry)
                schema = None if problem else schema
        elif not text and sealed and (entry := await learned.learned_in_log(store, name, operation)) is not None:
            problem = learned.deleted(name, operation, entry)
        self.learned[operation] = schema
        self.refused.pop(operation, None)
        if problem:
            self.refused[operation] = problem
        self._learned_at[operation] = now
        return problem

    def check(self, connector: Any, operation: str, value: Any, *, name: str = "") -> Any:
        """``value`` mapped, when it matches the contract; else :class:`~podium.ConnectorDrift`
        carrying the raw value and the diff (counted in ``connector.stats.drifted``)."""
        mapping = self.mapping(operation)
        mapped = mapping.apply(value) if mapping is not None else value
        if (problem := self.refused.get(operation)) is not None and operation not in self.declared:
            connector.stats.drifted += 1
            drift = Drift(kind="invalid", path="$", message=problem)
            raise ConnectorDrift(problem, diff=[drift.to_json()], payload=value, connector=name or connector.kind, operation=operation)
        schema = self.schema(connector, operation)
        if schema is None:
            return mapped
        drifts = self.validate(operation, schema, mapped)
        if not drifts:
            return mapped
        connector.stats.drifted += 1
        what = name or connector.kind
        raise ConnectorDrift(
            f"connector {what!r}: the result of {operation} does not match its contract:\n{describe(drifts)}\n"
            "Add a field mapping for it (docs/connectors.md, 'Contracts, drift and quarantine').",
            diff=[d.to_json() for d in drifts],
            payload=value,
            connector=what,
            operation=operation,
        )

    def validate(self, operation: str, schema: dict[str, Any], value: Any) -> list[Drift]:
        """The drift of ``value`` against ``schema`` (a compiled validator is kept per operation)."""
        cached = self._validators.get(operation)
        if cached is None or cached[0] is not schema:
            cached = (schema, _validator(schema))
            self._validators[operation] = cached
        if cached[1].is_valid(value):
            return []
        found = _classify(inline_refs(schema), value, list(cached[1].iter_errors(value)))
        return found or [Drift(kind="invalid", path="$", message="the result does not match its contract")]
