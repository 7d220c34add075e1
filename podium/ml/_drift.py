"""Distribution drift: a stored reference (a compact summary of known-good data) and the two usual
figures against it, the population stability index (PSI) and the Kolmogorov-Smirnov test (SciPy)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from ._table import Rows, column, columns_of, is_null, is_numeric, numeric

REFERENCES = "ml_references"
"""Key-value namespace of the store that holds references by name."""
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
    return figures


async def save_reference(store: Any, name: str, rows: Rows, columns: list[str] | None = None) -> dict[str, Any]:
    """Keep a summary of ``rows`` as reference ``name`` in ``store`` (what drift rules compare with)."""
    from ._owners import REFERENCE_OWNERS

    ref = summarize(rows, columns)
    await store.kv_put(REFERENCES, name, json.dumps(ref))
    if await store.kv_get(REFERENCE_OWNERS, name) is None:  # saved in Python: no workflow file's training replaces it
        await store.kv_put(REFERENCE_OWNERS, name, "")
    return ref


async def load_reference(store: Any, name: str) -> dict[str, Any] | None:
    raw = await store.kv_get(REFERENCES, name)
    return json.loads(raw) if raw else None
