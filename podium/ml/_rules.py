"""The rules a :class:`~podium.ml.Gate` checks. Each looks at the whole table and says whether it
passes, with figures, and which rows are bad (for rules about rows), so ``quarantine`` can set them aside."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import DefinitionError
from ._drift import compare
from ._table import Rows, column, columns_of, is_null, number, numeric

OUTCOMES = ("halt", "quarantine", "escalate", "warn")


@dataclass(frozen=True, kw_only=True)
class Check:
    """What every rule has: the outcome when it fails, and a name for reports and metrics."""

    on: str = "halt"
    """``halt`` (the run waits for a person to accept), ``quarantine`` (bad rows are set aside, the
    rest flows on), ``escalate`` (a person approves before the output flows on) or ``warn``."""
    name: str = ""
    """How reports and ``/metrics`` call the rule (default: its kind and column)."""

    rows_level: ClassVar[bool] = True
    """Whether the rule finds bad rows (and so can quarantine them)."""
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.on not in OUTCOMES:
            raise DefinitionError(f"gate rule {self.label}: on={self.on!r} is not one of {', '.join(OUTCOMES)}")
        if self.on == "quarantine" and not self.rows_level:
            raise DefinitionError(
                f"gate rule {self.label}: on='quarantine' sets bad rows aside, but this rule judges the whole "
                "table; use halt, escalate or warn"
            )

    @property
    def label(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
        return type(self).__name__.lower()

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        """(passes, a readable detail, bad row indices, figures)."""
        raise NotImplementedError


def _bad(rows: Rows, test: Any) -> list[int]:
    return [i for i, r in enumerate(rows) if test(r)]


def _where(schema: Any, parts: Any) -> str:
    """Where in a record a rule broke, with a map's keys (data: emails, ids) shown as ``*``."""
    from ..connectors._contracts import safe_parts

    return ".".join(map(str, safe_parts(schema, parts))) or "the record"


_TYPES: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: _when(v) is not None,
}


@dataclass(frozen=True, kw_only=True)
class Schema(Check):
    """Every record fits a contract: ``columns`` ({name: int|float|number|str|bool|datetime}, a
    trailing ``?`` allows null), a pydantic ``model``, or a JSON Schema (``json_schema``)."""

    columns: Mapping[str, str] | None = None
    model: Any = None
    json_schema: Mapping[str, Any] | None = None
    extra: bool = False
    """Whether columns the contract does not name are allowed (with ``columns``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if sum(x is not None for x in (self.columns, self.model, self.json_schema)) != 1:
            raise DefinitionError("gate rule schema: give exactly one of columns=, model= or json_schema=")
        for name, kind in (self.columns or {}).items():
            if kind.rstrip("?") not in _TYPES:
                raise DefinitionError(
                    f"gate rule schema: column {name!r} has type {kind!r}; use one of {', '.join(_TYPES)}"
                )

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        problems: list[str] = []
        if self.columns is not None:
            cols = dict(self.columns)
            seen = set(columns_of(rows))
            missing = sorted(set(cols) - seen) if rows else []
            unexpected = sorted(seen - set(cols)) if not self.extra else []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unexpected:  # counted, not named: a record keyed by data (an email, an id) names data
                problems.append(
                    f"{len(unexpected)} column(s) the contract does not name; name them in columns= or allow "
                    "them with extra=True"
                )

            def wrong(r: dict[str, Any]) -> str | None:
                for name, kind in cols.items():
                    v = r.get(name)
                    if is_null(v):
                        if not kind.endswith("?"):
                            return f"{name} is missing"
                    elif not _TYPES[kind.rstrip("?")](v):  # the value is business data: its type only
                        return f"{name} is not {kind.rstrip('?')} (a {type(v).__name__})"
                if not self.extra and set(r) - set(cols):
                    return f"{len(set(r) - set(cols))} field(s) the contract does not name"
                return None

        elif self.model is not None:
            from pydantic import TypeAdapter, ValidationError

            from ..connectors._contracts import inline_refs

            adapter = TypeAdapter(self.model)
            try:
                model_schema: Any = inline_refs(adapter.json_schema())
            except Exception:  # a type with no JSON Schema: its paths are cut after the field's name
                model_schema = None

            def wrong(r: dict[str, Any]) -> str | None:
                try:
                    adapter.validate_python(r)
                except ValidationError as exc:  # its text quotes the input: the path and the rule only
                    err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
                    loc = err["loc"] if model_schema is not None else err["loc"][:1]
                    # a validator of the model's own may quote the value in its message: its name only
                    rule = "fails the model's own validator" if err["type"] in ("value_error", "assertion_error") else err["msg"]
                    return f"{_where(model_schema or {}, loc)}: {rule} ({err['type']})"
                return None

        else:
            import jsonschema

            from ..connectors._contracts import inline_refs
            from ..models import _patterns

            validator = _patterns.bounded(jsonschema.Draft202012Validator)(dict(self.json_schema or {}))
            json_schema = inline_refs(dict(self.json_schema or {}))

            def wrong(r: dict[str, Any]) -> str | None:
                err = next(iter(validator.iter_errors(r)), None)
                if err is None:
                    return None
                where = _where(json_schema, err.absolute_path)  # jsonschema's message quotes the value
                return f"{where} breaks the schema's rule {err.validator}: {json.dumps(err.validator_value, default=str)[:80]}"

        bad, first = [], None
        for i, r in enumerate(rows):
            why = wrong(r)
            if why is not None:
                bad.append(i)
                first = first or f"row {i}: {why}"
        if bad:
            problems.append(f"{len(bad)} of {len(rows)} rows break the contract (first: {first})")
        return not problems, "; ".join(problems) or "every row fits", bad, {"bad_rows": len(bad)}


@dataclass(frozen=True, kw_only=True)
class Nulls(Check):
    """At most ``max_rate`` (0 to 1) of ``column`` may be missing."""

    column: str
    max_rate: float = 0.0

    def default_name(self) -> str:
        return f"nulls:{self.column}"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        bad = _bad(rows, lambda r: is_null(r.get(self.column)))
        rate = len(bad) / len(rows) if rows else 0.0
        ok = rate <= self.max_rate
        return ok, f"{self.column}: {rate:.1%} missing (at most {self.max_rate:.1%})", bad, {"rate": round(rate, 4)}


@dataclass(frozen=True, kw_only=True)
class Range(Check):
    """Every value of ``column`` lies within [``min``, ``max``] (missing values are Nulls' business)."""

    column: str
    min: float | None = None
    max: float | None = None

    def default_name(self) -> str:
        return f"range:{self.column}"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        lo = -math.inf if self.min is None else self.min
        hi = math.inf if self.max is None else self.max

        def out(r: dict[str, Any]) -> bool:
            v = r.get(self.column)
            if is_null(v):
                return False
            x = number(v)
            return math.isnan(x) or not lo <= x <= hi

        bad = _bad(rows, out)
        detail = f"{self.column}: {len(bad)} value(s) outside [{self.min}, {self.max}]"
        if bad:  # which row, never its value: the detail is shown beyond payloads.read
            detail += f" (first: row {bad[0]})"
        return not bad, detail, bad, {"bad_rows": len(bad)}


@dataclass(frozen=True, kw_only=True)
class Unique(Check):
    """No two records share ``columns`` (the repeats after the first are the bad rows)."""

    columns: Sequence[str]

    def default_name(self) -> str:
        return "unique:" + "+".join(self.columns)

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        seen: set[tuple[Any, ...]] = set()
        bad = []
        for i, r in enumerate(rows):
            key = tuple(str(r.get(c)) for c in self.columns)
            if key in seen:
                bad.append(i)
            seen.add(key)
        return not bad, f"{len(bad)} repeated {'+'.join(self.columns)}", bad, {"duplicates": len(bad)}


@dataclass(frozen=True, kw_only=True)
class RowCount(Check):
    """The table has between ``min`` and ``max`` records."""

    min: int | None = None
    max: int | None = None
    rows_level: ClassVar[bool] = False

    def default_name(self) -> str:
        return "row_count"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        n = len(rows)
        ok = (self.min is None or n >= self.min) and (self.max is None or n <= self.max)
        return ok, f"{n} rows (expected {self.min}..{self.max})", [], {"rows": n}


def _when(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(v, str):
        try:
            d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp()
    return None


@dataclass(frozen=True, kw_only=True)
class Fresh(Check):
    """The newest ``column`` value (ISO time or epoch seconds) is at most ``max_age`` seconds old."""

    column: str
    max_age: float
    rows_level: ClassVar[bool] = False

    def default_name(self) -> str:
        return f"fresh:{self.column}"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        stamps = [t for t in (_when(v) for v in column(rows, self.column)) if t is not None]
        if not stamps:
            return False, f"{self.column}: no readable time", [], {}
        age = time.time() - max(stamps)
        return age <= self.max_age, f"{self.column}: newest is {age:.0f}s old (at most {self.max_age:.0f}s)", [], {
            "age": round(age, 1)
        }


@dataclass(frozen=True, kw_only=True)
class Drift(Check):
    """The table's distribution matches the stored ``reference`` (``podium.ml.save_reference``): per
    column, PSI at most ``psi``, and a Kolmogorov-Smirnov p-value (numbers) of at least ``ks_alpha``
    divided by the number of columns (Bonferroni), unless the KS distance is under ``ks_min``."""

    reference: str | None = None
    columns: Sequence[str] | None = None
    psi: float = 0.2
    ks_alpha: float = 0.01
    ks_min: float = 0.1
    """A KS distance this small is not drift worth stopping for, whatever its p-value (large batches)."""
    psi_rows: int = 0
    """Under this many rows PSI is not used and the KS test (which allows for the table's size) decides
    alone: PSI over a few rows is noise (30 rows like the reference exceed 0.2 nearly always)."""
    min_rows: int = 0
    """Under this many rows drift is not checked at all (the rule passes and says so)."""
    new_share: float = 0.1
    """A category column drifts when at least this share of its values are ones the reference never held,
    whatever the table's size: under ``psi_rows`` the KS test sees numbers only, and a batch of 150 customers
    all on a plan the model never saw passed as no drift."""
    rows_level: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.reference:
            raise DefinitionError("gate rule drift needs reference='NAME' (saved with podium.ml.save_reference)")
        if isinstance(self.new_share, bool) or not isinstance(self.new_share, int | float) or not 0 < self.new_share <= 1:
            raise DefinitionError(f"gate rule drift: new_share is {self.new_share!r}; give a share above 0 and at most 1")
        for field, low, high, what in (
            ("psi", 0.0, math.inf, "a PSI above 0 (0.2 is the usual limit)"),
            ("ks_alpha", 0.0, 1.0, "a p-value above 0 and at most 1 (0.01 by default)"),
            ("ks_min", 0.0, 1.0, "a KS distance from 0 to 1 (0.1 by default)"),
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or not low <= value <= high \
                    or (field != "ks_min" and value == low):
                raise DefinitionError(f"gate rule drift: {field} is {value!r}; give {what}")
        for field in ("psi_rows", "min_rows"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DefinitionError(f"gate rule drift: {field} is {value!r}; give a whole number of rows, 0 or more")

    def default_name(self) -> str:
        return f"drift:{self.reference}"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        ref = refs.get(self.reference or "")
        if ref is None:
            return False, f"reference {self.reference!r} is not stored; save it with podium.ml.save_reference", [], {}
        if "problem" in ref:  # not the reference the engine saved: nothing to compare with
            return False, str(ref["problem"]), [], {}
        cols = list(self.columns or ref["columns"])
        if len(rows) < self.min_rows:
            return True, f"not checked: {len(rows)} row(s), under {self.min_rows}", [], {}
        psi = self.psi if len(rows) >= self.psi_rows else math.inf
        alpha = self.ks_alpha / max(1, len(cols))
        figures: dict[str, Any] = {}
        drifted = []
        for name in cols:
            if name not in ref["columns"]:
                drifted.append(f"{name} (not in the reference)")
                continue
            f = figures[name] = compare(ref["columns"][name], rows, name)
            ks_hit = "p" in f and f["p"] < alpha and f["ks"] >= self.ks_min
            new_hit = f.get("new_share", 0.0) >= self.new_share
            if f["psi"] > psi or ks_hit or new_hit or f.get("note"):
                drifted.append(f"{name} (PSI {f['psi']}" + (f", KS {f['ks']} p={f['p']:.2g}" if "p" in f else "")
                               + (f", {f['new_share']:.0%} of values never seen: "
                                  f"{', '.join(map(repr, f['new_values'][:3]))}" if new_hit else "") + ")")
        detail = "drift in " + ", ".join(drifted) if drifted else f"no drift in {len(cols)} column(s)"
        if psi == math.inf:
            detail += f" (KS only: {len(rows)} row(s), under {self.psi_rows})"
        return not drifted, detail, [], figures


@dataclass(frozen=True, kw_only=True)
class Anomaly(Check):
    """Rows whose ``columns`` lie far from the usual: ``method`` ``zscore`` (robust, median and MAD,
    beyond ``threshold``), ``iqr`` (beyond ``threshold`` interquartile ranges) or ``isolation_forest``
    (scikit-learn; ``threshold`` is the expected share of anomalies). Usual is the stored
    ``reference`` when given, else the table itself. Fails when more than ``max_rate`` of rows are anomalous."""

    columns: Sequence[str]
    method: str = "zscore"
    threshold: float = 4.0
    reference: str | None = None
    max_rate: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in ("zscore", "iqr", "isolation_forest"):
            raise DefinitionError(
                f"gate rule anomaly: method {self.method!r} is not zscore, iqr or isolation_forest"
            )

    def default_name(self) -> str:
        return f"anomaly:{self.method}"

    def check(self, rows: Rows, refs: Mapping[str, Any]) -> tuple[bool, str, list[int], dict[str, Any]]:
        import numpy as np

        if not rows:
            return True, "no rows", [], {}
        ref = refs.get(self.reference) if self.reference else None
        if ref is not None and "problem" in ref:  # not the reference the engine saved
            return False, str(ref["problem"]), [], {}
        mat = np.column_stack([numeric(rows, c) for c in self.columns])
        if self.method == "isolation_forest":
            from sklearn.ensemble import IsolationForest

            base = mat if ref is None else np.column_stack([ref["columns"][c]["sample"] for c in self.columns])
            base = base[~np.isnan(base).any(axis=1)]
            forest = IsolationForest(contamination=min(0.5, self.threshold), random_state=0).fit(base)
            flags = forest.predict(np.nan_to_num(mat)) == -1
        else:
            flags = np.zeros(len(rows), dtype=bool)
            for j, c in enumerate(self.columns):
                x = mat[:, j]
                if ref is not None:
                    s = ref["columns"][c]
                    med, mad, q1, q3 = s["median"], s["mad"], s["q1"], s["q3"]
                else:
                    med = float(np.nanmedian(x))
                    mad = float(np.nanmedian(np.abs(x - med)))
                    q1, q3 = (float(v) for v in np.nanquantile(x, [0.25, 0.75]))
                with np.errstate(invalid="ignore", divide="ignore"):
                    if self.method == "zscore":
                        score = np.abs(x - med) / (1.4826 * mad if mad else 1.0)
                        flags |= score > self.threshold
                    else:
                        iqr = (q3 - q1) or 1.0
                        flags |= (x < q1 - self.threshold * iqr) | (x > q3 + self.threshold * iqr)
        bad = np.flatnonzero(flags).tolist()
        rate = len(bad) / len(rows)
        return rate <= self.max_rate, f"{len(bad)} anomalous row(s) ({rate:.1%}) by {self.method}", bad, {
            "rate": round(rate, 4)
        }


RULES: dict[str, type[Check]] = {
    "schema": Schema,
    "nulls": Nulls,
    "range": Range,
    "unique": Unique,
    "row_count": RowCount,
    "fresh": Fresh,
    "drift": Drift,
    "anomaly": Anomaly,
}
"""Rule kinds by the name YAML's ``gate:`` uses."""


def rule_from(spec: Mapping[str, Any], where: str) -> Check:
    """A rule from a YAML mapping: ``{rule: range, column: age, min: 0, on: quarantine}``."""
    kind = spec.get("rule")
    cls = RULES.get(str(kind))
    if cls is None:
        raise DefinitionError(f"{where}: gate rule {kind!r} is not one of {', '.join(RULES)}")
    args = {k: v for k, v in spec.items() if k != "rule"}
    names = set(cls.__dataclass_fields__)
    unknown = sorted(set(args) - names)
    if unknown:
        raise DefinitionError(
            f"{where}: gate rule {kind} has unknown field(s) {', '.join(unknown)}; it takes {', '.join(sorted(names))}"
        )
    try:
        return cls(**args)
    except TypeError as exc:
        raise DefinitionError(f"{where}: gate rule {kind}: {exc}") from None

