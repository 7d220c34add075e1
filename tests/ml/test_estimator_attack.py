"""A workflow file's ``uses: train`` names its estimator as text. Only scikit-learn estimator classes
may be named: any other attribute of a ``sklearn.`` module was called with the file's ``params``,
and scikit-learn has functions that run Python code in a subprocess or delete a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client, ConfigError
from podium.ml._registry import _sklearn_class

ROWS = [{"x": float(i), "y": i % 2} for i in range(20)]


def _train(estimator: str, params: dict[str, object]) -> str:
    return (
        "name: t\nsteps:\n  - id: train\n    uses: train\n    with:\n      model: m\n      target: y\n"
        f"      estimator: {estimator}\n      params: {json.dumps(params)}\n      rows: {json.dumps(ROWS)}\n"
    )


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.utils._testing.assert_run_python_script_without_output",  # runs Python code in a subprocess
        "sklearn.datasets.clear_data_home",  # deletes a folder
        "sklearn.datasets._base.shutil",  # a module another one imported
        "sklearn.base.BaseEstimator",  # a class, but no estimator
    ],
)
def test_only_estimator_classes_may_be_named(name: str) -> None:
    with pytest.raises(ConfigError, match="scikit-learn estimator class"):
        _sklearn_class(name)


def test_public_estimators_still_load() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    assert _sklearn_class("sklearn.ensemble.RandomForestClassifier") is RandomForestClassifier
    assert _sklearn_class("sklearn.linear_model.LogisticRegression") is LogisticRegression


async def test_a_workflow_file_cannot_run_code_through_the_estimator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    wf = pyaml.load_text(_train("sklearn.utils._testing.assert_run_python_script_without_output", {"source_code": code}))
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    wf2 = pyaml.load_text(_train("sklearn.datasets.clear_data_home", {"data_home": str(victim)}))
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        for w in (wf, wf2):
            h = await c.start(w, {})
            rec = await c.wait(h.id, timeout=300)
            assert rec.status.value == "failed"
            # refused by the estimator check, or before it by the params check (both hold paths)
            assert "scikit-learn estimator class" in (rec.error or "") or "never places" in (rec.error or "")
    assert not marker.exists()
    assert (victim / "keep.txt").exists()


async def test_a_workflow_file_cannot_write_files_through_an_estimators_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack (review): a public estimator class still takes options that are paths: with
    ``memory: /some/folder`` AgglomerativeClustering made joblib write its cache there, wherever the
    engine may write. A workflow file's params hold no paths (and no ``memory``)."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    target = tmp_path / "elsewhere"
    wf = pyaml.load_text(_train("sklearn.cluster.AgglomerativeClustering", {"memory": str(target)}))
    wf2 = pyaml.load_text(_train("sklearn.linear_model.LogisticRegression", {"C": 0.5, "solver": "lbfgs"}))
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        rec = await c.wait((await c.start(wf, {})).id, timeout=300)
        assert rec.status.value == "failed" and "params" in (rec.error or ""), rec.error
        ok = await c.wait((await c.start(wf2, {})).id, timeout=300)
        assert ok.status.value == "completed", ok.error
    assert not target.exists()
