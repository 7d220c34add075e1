"""The ML loop: data-quality gates on any step, the model lifecycle on MLflow (train, evaluate,
deploy if better, roll back), tabular scoring with the model version in the audit, monitoring that
starts retraining, and predictions turned into actions with compensation and outcome tracking.

Gates need NumPy and SciPy; models need scikit-learn and MLflow: ``pip install 'podium[ml]'``.
"""

from __future__ import annotations

from typing import Any

from ._drift import load_reference, save_reference
from ._gate import Gate, quarantined, release
from ._rules import Anomaly, Check, Drift, Fresh, Nulls, Range, RowCount, Schema, Unique
from ._table import read_csv

_LAZY = {
    # The model lifecycle imports MLflow and scikit-learn only when used.
    "Registry": "._registry",
    "registry_for": "._registry",
    "predict": "._predict",
    "record_outcome": "._predict",
    "performance": "._predict",
    "measured": "._predict",
    "monitor": "._predict",
    "remember_scores": "._predict",
    "Action": "._actions",
    "act": "._actions",
    "RayExecutor": "._ray",  # steps on Ray (executor="ray"); imports Ray only when used
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'podium.ml' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 (the lazy names last)
    "Anomaly",
    "Check",
    "Drift",
    "Fresh",
    "Gate",
    "Nulls",
    "Range",
    "RowCount",
    "Schema",
    "Unique",
    "load_reference",
    "quarantined",
    "read_csv",
    "release",
    "save_reference",
    "Action",
    "RayExecutor",
    "Registry",
    "act",
    "measured",
    "monitor",
    "performance",
    "predict",
    "record_outcome",
    "registry_for",
    "remember_scores",
]
