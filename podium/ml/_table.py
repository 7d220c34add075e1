"""Tabular data as Podium passes it between steps: a list of records (dicts), read column-wise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import NonRetryableError

Rows = list[dict[str, Any]]


def rows_at(value: Any, where: str | None, step: str) -> Rows:
    """The records in a step's output: the output itself, or the list at ``where`` (dotted keys)."""
    found = value
    for part in (where or "").split(".") if where else ():
        found = found.get(part) if isinstance(found, dict) else None
    if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
        at = f" at {where!r}" if where else ""
        raise NonRetryableError(
            f"step {step!r}: its gate checks records, but the output{at} is a {type(found).__name__}, not a "
            f"list of records (dicts); return a list of dicts, or set Gate(rows='key') to where the list is"
        )
    return found


def with_rows(value: Any, where: str | None, rows: Rows) -> Any:
    """``value`` with the records at ``where`` replaced by ``rows`` (a copy along the path)."""
    if not where:
        return rows
    head, _, rest = where.partition(".")
    return {**value, head: with_rows(value[head], rest or None, rows)}


def number(v: Any) -> float:
    """A cell as a float; NaN when it is missing or not a number (booleans are not numbers)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return math.nan
    return math.nan


def is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def column(rows: Rows, name: str) -> list[Any]:
    return [r.get(name) for r in rows]


def numeric(rows: Rows, name: str) -> Any:
    """The column as a NumPy float array (NaN where not a number)."""
    import numpy as np

    return np.fromiter((number(r.get(name)) for r in rows), dtype=float, count=len(rows))


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether a column holds numbers (ignoring missing cells)."""
    seen = False
    for v in values:
        if is_null(v):
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        seen = True
    return seen


def columns_of(rows: Rows) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows[:1000]:
        seen.update(dict.fromkeys(r))
    return list(seen)


def read_csv(path: str) -> Rows:
    """Records from a CSV file with a header; cells that read as numbers become numbers, empty ones None."""
    import csv

    def cell(v: str) -> Any:
        if v == "":
            return None
        try:
            return int(v)
        except ValueError:
            pass
        try:
            return float(v)
        except ValueError:
            return v

    from ..governance.files import Confined, open_confined

    # a path checked to lie in a registered folder is opened beneath it, no link followed
    with open(open_confined(path) if isinstance(path, Confined) else path, newline="") as f:
        return [{k: cell(v) for k, v in row.items()} for row in csv.DictReader(f)]
