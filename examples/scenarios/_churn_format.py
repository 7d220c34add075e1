"""The churn column format the ``churn`` and ``ml_pipeline`` scenarios read, checked cell by cell,
and what both need around it: the training data gate, the MLflow registry they use, AUC.

    customer_id, tenure_months, monthly_charges, support_tickets_90d, last_login_days, plan, churned

``churned`` (0 or 1; also true/false, yes/no) only in labelled files. Column order is free and other
columns are ignored. A mistake is a :class:`~podium.ConfigError` naming the file, line and column.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from podium import ConfigError
from podium.ml import Gate, Range, Unique

try:
    from ._common import caseless, missing_columns, read_csv
except ImportError:  # loaded by file path, beside _common.py
    from _common import caseless, missing_columns, read_csv  # type: ignore[no-redef]

ID = "customer_id"
TARGET = "churned"
NUMBERS = ("tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days")
FEATURES = (*NUMBERS, "plan")
COLUMNS = (ID, *FEATURES)
UNKNOWN_PLAN = "unknown"
"""What an empty ``plan`` cell becomes (a category of its own, never a crash)."""
_LABELS = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "0.0": 0, "1.0": 1}

#: The training data gate: repeated customers and impossible values are set aside (quarantined, with
#: the reason in the run's log), the rest flows on.
RANGES = {"tenure_months": (0, 1200), "monthly_charges": (0, 1_000_000_000), "support_tickets_90d": (0, 10_000),
          "last_login_days": (0, 36_500)}
"""The values a customer can have; others are impossible (a broken export), set aside, never scored. Charges are in
the customers' currency, so their ceiling allows rupiah and dong: before the thirteenth session it was 100,000, and
a subscription billing 149,000-899,000 rupiah a month had every customer set aside as impossible."""
TRAIN_GATE = Gate(
    name="train_data",
    rows="rows",
    report="quality",
    rules=[
        Unique(columns=[ID], on="quarantine"),
        *(Range(column=name, min=low, max=high, on="quarantine") for name, (low, high) in RANGES.items()),
    ],
)


def read(path: str, *, labelled: bool | None, aside: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The rows of a churn-format CSV. ``labelled=True``: ``churned`` is required in every row;
    ``None``: kept where the file has one (to measure; a row without one has none), else absent;
    ``False``: ignored.
    ``aside``: rows with a value outside :data:`RANGES` go there (customer, line, column, value,
    problem) instead of into the result."""
    rows: list[dict[str, Any]] = []
    header, records = read_csv(path, (*COLUMNS, TARGET))
    need = (*COLUMNS, TARGET) if labelled else COLUMNS
    missing = [c for c in need if c not in header]
    if missing:
        raise missing_columns(path, missing, need, header)
    at = {c: header.index(c) for c in (*COLUMNS, TARGET) if c in header}
    with_label = TARGET in at and labelled is not False
    for line, record in records:  # a quoted cell may span lines: the line is the row's first
        row = _row(path, line, record, at, with_label)
        if labelled and TARGET not in row:  # said with its line: the count alone left the row to be found
            raise ConfigError(f"{path}:{line}: column {at[TARGET] + 1} ({TARGET}) is empty; label every row of "
                              "this file 0 or 1 (or true/false, yes/no)")
        wrong = None if aside is None else next(
            (n for n, (low, high) in RANGES.items() if not low <= row[n] <= high), None
        )
        if wrong is None:
            rows.append(row)
        else:
            low, high = RANGES[wrong]
            aside.append({ID: row[ID], "line": line, "column": wrong, "value": row[wrong],
                          "problem": f"{path}:{line}: {wrong} {row[wrong]} is impossible (from {low} to {high})"})
    if not rows and aside:
        raise ConfigError(f"{path}: every customer has an impossible value, e.g. {aside[0]['problem']}; fix the export")
    if not rows:
        raise ConfigError(f"{path}: no customers (only a header); give one row per customer")
    return rows


def _row(path: str, line: int, record: list[str], at: dict[str, int], with_label: bool) -> dict[str, Any]:
    def cell(name: str) -> str:
        i = at[name]
        return record[i].strip() if i < len(record) else ""

    def where(name: str) -> str:
        return f"{path}:{line}: column {at[name] + 1} ({name})"

    row: dict[str, Any] = {ID: cell(ID)}
    if not row[ID]:
        raise ConfigError(f"{where(ID)} is empty; every row needs a customer id")
    for name in NUMBERS:
        text = cell(name)
        try:
            value = float(text)
        except ValueError:
            what = "empty" if not text else f"{text!r}, not a number"
            raise ConfigError(f"{where(name)} is {what}; write plain numbers such as 12 or 64.5 (no units, "
                              "currency signs or thousands separators)") from None
        if not math.isfinite(value):
            raise ConfigError(f"{where(name)} is {text!r}; give a finite number")
        row[name] = int(value) if value.is_integer() else value
    # one plan however an export spells it: case, spaces, and the Unicode form (macOS writes "á" as two code points)
    row["plan"] = " ".join(caseless(unicodedata.normalize("NFKC", cell("plan"))).split()) or UNKNOWN_PLAN
    if with_label and (label := _label(where(TARGET), cell(TARGET))) is not None:
        row[TARGET] = label
    return row


def _label(where: str, text: str) -> int | None:
    """A ``churned`` cell: 0 or 1 (true/false, yes/no), None when empty."""
    if text.lower() in _LABELS:
        return _LABELS[text.lower()]
    if text:
        raise ConfigError(f"{where} is {text.lower()!r}; churned is 0 or 1 (or true/false, yes/no)")
    return None


def read_outcomes(path: str) -> dict[str, int]:
    """``customer_id -> churned`` of an outcomes CSV (``customer_id, churned``), read like the other churn
    files (a header in any case, a BOM, extra columns; a mistake names its line and column). A customer
    listed twice with two different outcomes is an error naming both lines."""
    header, records = read_csv(path, (ID, TARGET))
    if not {ID, TARGET} <= set(header):
        raise ConfigError(f"{path}:1: an outcomes file has the columns customer_id, churned (found: "
                          f"{', '.join(header) or 'nothing'})")
    at = {ID: header.index(ID), TARGET: header.index(TARGET)}
    out: dict[str, int] = {}
    first: dict[str, int] = {}
    for line, record in records:
        cid, label = (record[at[c]].strip() if at[c] < len(record) else "" for c in (ID, TARGET))
        where = f"{path}:{line}: column {at[TARGET] + 1} ({TARGET})"
        churned = _label(where, label)
        if not cid:
            raise ConfigError(f"{path}:{line}: column {at[ID] + 1} ({ID}) is empty; every row needs a customer id")
        if churned is None:
            raise ConfigError(f"{where} is empty; write 0 or 1")
        if cid in out and out[cid] != churned:
            raise ConfigError(f"{path}:{line}: customer {cid!r} churned {churned}, but {out[cid]} on line "
                              f"{first[cid]}; list each customer's outcome once")
        out[cid] = churned
        first.setdefault(cid, line)
    return out


def holdout_unseen(train: list[dict[str, Any]], holdout: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """The holdout's customers the training data does not hold. A customer the model learned from says
    nothing of how it does on others, and a candidate scored on them beats the champion unfairly; a
    holdout made only of training customers is an error naming the file."""
    known = {r[ID] for r in train}
    unseen = [r for r in holdout if r[ID] not in known]
    if holdout and not unseen:
        raise ConfigError(f"{path}: every customer of the holdout is also in the training data; a holdout must "
                          "hold customers the model does not learn from (or leave holdout out: a quarter of the "
                          "training data is kept aside)")
    return unseen


def check_labels(path: str, rows: list[dict[str, Any]], least: int = 10, what: str = "training") -> None:
    """Training (and testing) needs enough customers of both kinds."""
    unlabelled = [i for i, r in enumerate(rows) if TARGET not in r]
    if unlabelled:
        raise ConfigError(f"{path}: {len(unlabelled)} row(s) have an empty churned cell; label every "
                          "training row 0 or 1")
    churned = sum(r[TARGET] for r in rows)
    if churned < least or len(rows) - churned < least:
        raise ConfigError(f"{path}: {churned} churned and {len(rows) - churned} retained customers; {what} "
                          f"needs at least {least} of each")


def unseen_plans(train: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, int]:
    """Plans in ``rows`` the model never saw: they are scored without a plan effect (one-hot
    encoding ignores them), and reported so a person knows."""
    known = {r["plan"] for r in train}
    return dict(Counter(r["plan"] for r in rows if r["plan"] not in known))


def registry_uri(input: dict[str, Any]) -> str:
    """The MLflow registry: ``input["registry"]``, ``$PODIUM_MLFLOW_URI``, ``$PODIUM_HOME/mlflow.db``
    when ``PODIUM_HOME`` is set, else a SQLite file in the project's ``.podium`` folder (beside the
    default store)."""
    uri = input.get("registry") or os.environ.get("PODIUM_MLFLOW_URI")
    if uri:
        return str(uri)
    folder = Path(os.environ["PODIUM_HOME"]) if os.environ.get("PODIUM_HOME") else Path(".podium")
    return f"sqlite:///{folder.resolve() / 'mlflow.db'}"


def require_ml() -> None:
    """A clear message, before any work, when the ml extra is missing."""
    from podium.errors import install_hint

    try:
        import mlflow  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"this scenario trains a model in MLflow and needs {exc.name}: "
                          f"{install_hint('ml')}") from None


def auc(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC (None when only one outcome occurs)."""
    if len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4)
