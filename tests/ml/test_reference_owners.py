"""Drift references are what a model's gates and monitor compare new data with, so they belong to
the model whose training saved them, as the model belongs to its owners (sixth review).

Attack: ``uses: train`` with ``reference: NAME`` wrote any reference, whoever's it was. Team B's
workflow, training a model of its own, replaced team A's ``churn-train`` with a summary of the
drifted data, and team A's drift gate let that data through; naming ``churn@1:scores`` (the
holdout scores the monitor measures prediction drift against) silenced churn's retraining."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client, RunFailed
from podium.ml import Drift, Gate, load_reference, save_reference

KNOWN = [{"x": float(i % 20), "y": int(i % 20 >= 10)} for i in range(200)]
DRIFTED = [{"x": float(100 + i % 20), "y": int(i % 20 >= 10)} for i in range(200)]


def _train(name: str, model: str, reference: str, rows: list[dict[str, Any]]) -> Any:
    return pyaml.load_text(f"""name: {name}
steps:
  - id: train
    uses: train
    with: {{model: {model}, target: y, reference: "{reference}", rows: {json.dumps(rows)}}}
""")


async def _passes(store: Any, rows: list[dict[str, Any]]) -> bool:
    gate = Gate(rules=[Drift(reference="churn-train", columns=["x"], on="halt")])
    return bool(gate.evaluate(rows, {"churn-train": await load_reference(store, "churn-train")})["passed"])


async def test_attack_another_workflow_replaces_a_models_drift_reference(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        out = await c.run(_train("team-a", "churn", "churn-train", KNOWN), {})
        assert not await _passes(c.store, DRIFTED)  # team A's gate stops the drifted data
        scores = await load_reference(c.store, f"churn@{out['version']}:scores")
        for reference, says in (("churn-train", "belongs to model 'churn'"),
                                (f"churn@{out['version']}:scores", "kept for the holdout scores")):
            with pytest.raises(RunFailed) as failed:
                await c.run(_train("team-b", f"other-{len(reference)}", reference, DRIFTED), {})
            assert repr(reference) in str(failed.value) and says in str(failed.value), str(failed.value)
        assert not await _passes(c.store, DRIFTED), "team B's training replaced team A's drift reference"
        assert await load_reference(c.store, f"churn@{out['version']}:scores") == scores
        # the model's own training keeps refreshing its reference
        await c.run(_train("team-a", "churn", "churn-train", DRIFTED), {})
        assert await _passes(c.store, DRIFTED)


async def test_a_reference_saved_in_python_is_not_a_workflow_files(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await save_reference(c.store, "churn-train", KNOWN)
        with pytest.raises(RunFailed) as failed:
            await c.run(_train("team-b", "other", "churn-train", DRIFTED), {})
        assert "saved in Python" in str(failed.value), str(failed.value)
        assert not await _passes(c.store, DRIFTED)
