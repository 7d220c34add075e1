"""Distribution drift: a stored reference (a compact summary of known-good data) and the two usual
figures against it, the population stability index (PSI) and the Kolmogorov-Smirnov test (SciPy)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from ..governance.accounts import signed
from ..governance.references import REFERENCE_OWNERS, REFERENCES, checked, logged_owner, record_save, target
from ._table import Rows, column, columns_of, is_null, is_numeric, numeric

_SAMPLE = 5000
_BINS = 10
_EPS = 1e-4


def summarize(rows: Rows, columns: list[str] | None = None) -> dict[str, Any]:
    """A reference of ``rows``: per numeric column, quantile bins and a sample; per other column,
    category shares. JSON-ready, a few hundred KB at most whatever the size of ``rows``."""
    import numpy as np

    out: dict[str, Any] = {"rows": len(rows), "columns": {}}
    for name in columns or columns_of(rows):
        values = column(rows, name)
        if is_numeric(values):
            arr = numeric(rows, name)
            arr = arr[~np.isnan(arr)]
            if not len(arr):
                continue
            edges = np.unique(np.quantile(arr, np.linspace(0, 1, _BINS + 1)[1:-1]))
            counts = np.bincount(np.searchsorted(edges, arr, side="right"), minlength=len(edges) + 1)
            rng = np.random.default_rng(0)
            sample = arr if len(arr) <= _SAMPLE else rng.choice(arr, _SAMPLE, replace=False)
            q1, med, q3 = (float(x) for x in np.quantile(arr, [0.25, 0.5, 0.75]))
            out["columns"][name] = {
                "kind": "number",
                "edges": edges.tolist(),
                "shares": (counts / counts.sum()).tolist(),
                "sample": np.sort(sample).tolist(),
                "mean": float(arr.mean()),
                "std": float(arr.std()),
                "median": med,
                "mad": float(np.median(np.abs(arr - med))),
                "q1": q1,
                "q3": q3,
            }
        else:
            cats = Counter(str(v) for v in values if not is_null(v))
            total = sum(cats.values()) or 1
            if len(cats) > max(50, total // 2):
                continue  # an identifier (customer_id), not a distribution
            out["columns"][name] = {"kind": "category", "shares": {k: n / total for k, n in cats.items()}}
    return out


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two share vectors (same bins)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, _EPS), max(a, _EPS)
        total += (a - e) * math.log(a / e)
    return total


def compare(ref: dict[str, Any], rows: Rows, name: str) -> dict[str, Any]:
    """Drift figures of column ``name`` of ``rows`` against its reference summary."""
    import numpy as np

    if ref["kind"] == "number":
        arr = numeric(rows, name)
        arr = arr[~np.isnan(arr)]
        if not len(arr):
            return {"psi": math.inf, "note": "no numbers"}
        edges = np.asarray(ref["edges"])
        counts = np.bincount(np.searchsorted(edges, arr, side="right"), minlength=len(edges) + 1)
        from scipy.stats import ks_2samp

        ks = ks_2samp(np.asarray(ref["sample"]), arr)
        return {
            "psi": round(psi(ref["shares"], (counts / counts.sum()).tolist()), 4),
            "ks": round(float(ks.statistic), 4),
            "p": float(ks.pvalue),
        }
    cats = Counter(str(v) for v in column(rows, name) if not is_null(v))
    total = sum(cats.values()) or 1
    keys = sorted(set(ref["shares"]) | set(cats))
    new = sorted(set(cats) - set(ref["shares"]))
    figures: dict[str, Any] = {
        "psi": round(psi([ref["shares"].get(k, 0.0) for k in keys], [cats.get(k, 0) / total for k in keys]), 4)
    }
    if new:
        figures["new_values"] = new[:10]
        figures["new_share"] = round(sum(cats[k] for k in new) / total, 4)
    return figures


async def save_reference(
    store: Any, name: str, rows: Rows, columns: list[str] | None = None, *, owner: str | None = None, audited: bool = True
) -> dict[str, Any]:
    """Keep a summary of ``rows`` as reference ``name`` in ``store`` (what drift rules compare with).

    The save is signed into the audit log (an ``ml.reference`` entry with the summary's SHA-256),
    and a reference is compared with only while its stored text is the one its newest entry
    recorded (:func:`checked_reference`). ``owner``: the model whose training saves it (None: saved
    in Python, which no workflow file's training replaces). ``audited=False``: the store's client
    does not audit; the reference is kept unrecorded and taken as stored."""
    ref = summarize(rows, columns)
    text = json.dumps(ref)
    row = await store.kv_get(REFERENCE_OWNERS, name)
    if audited:
        if owner is None:  # in Python: whoever the log says (a model's reference stays the model's), else the
            # row of an earlier release (unrecorded), else Python's
            owner = logged_owner(await signed(store, target(name)))[0]
        await record_save(store, name, text, owner if owner is not None else (row or ""))
    await store.kv_put(REFERENCES, name, text)
    if row is None:  # saved in Python: no workflow file's training replaces it
        await store.kv_put(REFERENCE_OWNERS, name, owner or "")
    return ref


async def load_reference(store: Any, name: str) -> dict[str, Any] | None:
    """The reference ``name`` as stored (None: none); see :func:`checked_reference` for the one to compare with."""
    raw = await store.kv_get(REFERENCES, name)
    return json.loads(raw) if raw else None


async def checked_reference(store: Any, name: str, *, audited: bool = True) -> tuple[dict[str, Any] | None, str | None]:
    """Reference ``name`` (None: not stored) and why it may not be compared with (None: it may):
    its stored text is not the one its newest signed ``ml.reference`` entry recorded (edited in the
    store, or saved by an earlier release). With ``audited`` false it is taken as stored."""
    raw = await store.kv_get(REFERENCES, name)
    if raw and audited and (problem := (await checked(store, name, raw))[1]):
        return None, problem
    return (json.loads(raw) if raw else None), None
