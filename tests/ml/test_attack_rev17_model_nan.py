"""Attacker's review of untrusted inputs (seventeenth session): a model in the MLflow registry whose
weights are NaN. Its classes are scikit-learn's own, so it loads; it then scored every customer NaN,
which a limit written either way lets through (``score > 0.8`` and ``score <= 0.8`` are both false)
and which the drift monitor left out of its figures. Scoring refuses it now, naming the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("skops", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from podium.ml import Registry

from .test_model_artifact_attack import _fitted, _publish, _score


def _poisoned(value: float) -> Any:
    import numpy as np

    model = _fitted()
    model.coef_ = np.array([[value]])
    return model


@pytest.mark.parametrize("weight", [float("nan"), float("inf")])
async def test_attack_a_registered_model_with_nan_weights_scores_every_customer_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weight: float
) -> None:
    import skops.io as sio

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    _publish(Registry(), sio.dumps(_poisoned(weight)))
    rec = await _score(tmp_path)
    if weight == float("inf"):  # inf * 1.0 is inf, whose probability is 1.0: a number, scored as such
        assert rec.status.value == "completed"
        return
    assert rec.status.value == "failed", rec  # before: completed, customer c1 scored NaN
    assert "model 'churn' v1 scored" in (rec.error or "") and "not a number" in (rec.error or "")


async def test_a_sound_model_still_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    _publish(Registry(), sio.dumps(_fitted()))
    rec = await _score(tmp_path)
    assert rec.status.value == "completed", rec
