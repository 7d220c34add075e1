"""Attack (eighth session's review): a version a person refused to deploy scored customers anyway.

With ``PODIUM_ML_APPROVE=always`` a person decides each deployment, and a rejection leaves the
champion. But ``predict`` (``uses: predict`` or ``podium.ml.predict`` in a step) took any
``version``: a workflow (any, not only the model's owners) scored with the version the approver had
refused, and a templated ``version: "{{ input.v }}"`` let whoever sent the event pick the version
that scores them. Now, under that rule, only a version a person let serve (the champion, or one
that was champion before: a rollback's target) scores; the refusal names the rule and the versions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client, RunFailed
from podium.ml import Registry

GOOD = [{"x": float(i), "y": int(i >= 10)} for i in range(20)]
WRONG = [{"x": float(i), "y": int(i < 10)} for i in range(20)]
HOLDOUT = [{"x": float(i) + 0.5, "y": int(i >= 10)} for i in range(20)]

DEPLOY = f"""name: deploy
steps:
  - id: train
    uses: train
    with: {{model: m, target: y, rows: "{{{{ input.rows }}}}", holdout: {json.dumps(HOLDOUT)}}}
  - id: promote
    needs: [train]
    uses: promote
    with: {{model: m, version: "{{{{ steps.train.output.version }}}}", target: y, holdout: {json.dumps(HOLDOUT)}}}
"""
SCORE = """name: score
steps:
  - id: p
    uses: predict
    with: {model: m, rows: [{customer_id: c1, x: 15.0}], version: "{{ input.v }}"}
"""


async def _decide(c: Client, run_id: str, approve: bool) -> Any:
    for _ in range(600):
        asked = await c.approvals(run_id=run_id)
        if asked:
            await c.decide(run_id, asked[0]["name"], approve=approve)
            return await c.result(run_id, timeout=300)
        await asyncio.sleep(0.05)
    raise AssertionError("no approval was asked")


async def test_attack_a_version_a_person_refused_does_not_score(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.setenv("PODIUM_ML_APPROVE", "always")
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    deploy, score = pyaml.load_text(DEPLOY), pyaml.load_text(SCORE)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        assert (await _decide(c, (await c.start(deploy, {"rows": WRONG})).id, True))["deployed"]
        refused = await _decide(c, (await c.start(deploy, {"rows": GOOD})).id, False)
        assert not refused["deployed"] and reg.champion("m") == "1"

        with pytest.raises(RunFailed, match=r"version 2 of model 'm' .*PODIUM_ML_APPROVE=always") as err:
            await c.run(score, {"v": "2"})
        assert "1" in str(err.value)  # the versions a person let serve
        assert (await c.run(score, {"v": "1"}))["version"] == "1"
        assert (await c.run(score, {"v": "champion"}))["version"] == "1"
        scored = [a for a in await c.audit_log() if a.action == "model.predict"]
        assert [a.details()["version"] for a in scored] == ["1", "1"]


async def test_without_the_rule_the_holdout_decides_and_any_version_scores(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)
    Registry(f"sqlite:///{tmp_path}/mlflow.db")
    deploy, score = pyaml.load_text(DEPLOY), pyaml.load_text(SCORE)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await c.run(deploy, {"rows": GOOD})
        await c.run(deploy, {"rows": WRONG})  # worse on the holdout: not deployed, still a version
        assert (await c.run(score, {"v": "2"}))["version"] == "2"
