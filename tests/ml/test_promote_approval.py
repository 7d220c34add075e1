"""An operator can make every model deployment a person's decision (``PODIUM_ML_APPROVE=always``):
a workflow file's ``uses: promote`` then asks, with both figures, before the champion changes, and
a rollback asks too. Without it the holdout comparison decides alone (the default, as before)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client
from podium.ml import Registry

GOOD = [{"x": float(i), "y": int(i >= 10)} for i in range(20)]
WRONG = [{"x": float(i), "y": int(i < 10)} for i in range(20)]  # labels the wrong way round: worse than chance
HOLDOUT = [{"x": float(i) + 0.5, "y": int(i >= 10)} for i in range(20)]

FLOW = f"""name: deploy
steps:
  - id: train
    uses: train
    with: {{model: m, target: y, rows: "{{{{ input.rows }}}}", holdout: {json.dumps(HOLDOUT)}}}
  - id: promote
    needs: [train]
    uses: promote
    with: {{model: m, version: "{{{{ steps.train.output.version }}}}", target: y, holdout: {json.dumps(HOLDOUT)}}}
"""
BACK = "name: back\nsteps:\n  - id: r\n    uses: promote\n    with: {model: m, action: rollback}\n"


async def _asked(c: Client, run_id: str) -> dict[str, Any]:
    for _ in range(600):
        open_ = await c.approvals(run_id=run_id)
        if open_:
            return open_[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no approval was asked")


async def test_an_operator_can_make_every_deployment_a_persons_decision(tmp_path, monkeypatch) -> None:
    """Review: the registry had no owner and promotion asked no one: any workflow file could put
    any version in production on a holdout it supplied. With PODIUM_ML_APPROVE=always a person
    decides each deployment and rollback (seeing both figures); a rejection leaves the champion."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.setenv("PODIUM_ML_APPROVE", "always")
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    wf, back = pyaml.load_text(FLOW), pyaml.load_text(BACK)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        first = await c.start(wf, {"rows": WRONG})
        asked = await _asked(c, first.id)
        assert "deploy model m version 1" in asked["title"] and reg.champion("m") is None  # not yet
        await c.decide(first.id, asked["name"], approve=True)
        out = await c.result(first.id, timeout=300)
        assert out["deployed"] and out["approved_by"] and reg.champion("m") == "1"

        second = await c.start(wf, {"rows": GOOD})  # better: a person still decides
        asked = await _asked(c, second.id)
        await c.decide(second.id, asked["name"], approve=False, comment="not this week")
        out = await c.result(second.id, timeout=300)
        assert not out["deployed"] and out["now_serving"] == "1" and reg.champion("m") == "1"

        third = await c.start(wf, {"rows": GOOD})
        await c.decide(third.id, (await _asked(c, third.id))["name"], approve=True)
        assert (await c.result(third.id, timeout=300))["deployed"] and reg.champion("m") == "3"
        from podium.ml._owners import set_owners

        await set_owners(c, "m", add=["back"], remove=[])  # the rollback workflow may change m too
        undo = await c.start(back, {})
        asked = await _asked(c, undo.id)
        assert "roll back model m" in asked["title"] and reg.champion("m") == "3"
        await c.decide(undo.id, asked["name"], approve=True)
        assert (await c.result(undo.id, timeout=300))["now_serving"] == "1" and reg.champion("m") == "1"
        actions = [a.action for a in await c.audit_log()]
        assert actions.count("model.promote") == 3 and "model.rollback" in actions


async def test_a_file_cannot_choose_the_approval(tmp_path) -> None:
    """The rule is the operator's alone: ``promote`` has no argument that skips it."""
    problems = pyaml.validate_text(BACK.replace("action: rollback", "action: rollback, approve: never"))
    assert problems and "approve" in problems[0].message
