"""Monitoring that starts work: a scoring run whose predictions drift emits ml.monitor with
retrain=1, and the server's threshold rule starts the retraining workflow (once per scoring step);
a batch that does not drift starts nothing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

pytest.importorskip("scipy", reason="drift needs the ml extra: pip install 'podium[ml]'")
pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")

from podium import Workflow
from podium.ml import monitor, remember_scores
from podium.server import Rule, Settings, create_app

retrain = Workflow("churn-retrain")


@retrain.step
async def fit(input: dict) -> dict:
    return {"retrained_for": input["version"], "reasons": input["reasons"]}


score = Workflow("churn-score")


@score.step
async def check(ctx: Any, input: dict) -> dict:
    return await monitor(ctx, "churn", input["scores"], "3")


async def test_prediction_drift_starts_retraining_through_a_rule(tmp_path: Any) -> None:
    rnd = random.Random(5)
    rule = Rule(name="retrain-on-drift", when="retrain >= 1", event="ml.monitor", workflow="churn-retrain")
    settings = Settings(store=f"sqlite:///{tmp_path}/p.db", workflows=[score, retrain], rules=[rule],
                        deploy_dir=str(tmp_path / "d"), trigger_interval=0.05)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = app.state.client
        await remember_scores(client.store, "churn", "3", [rnd.betavariate(2, 5) for _ in range(500)])
        calm = await client.run(score, {"scores": [rnd.betavariate(2, 5) for _ in range(300)]})
        assert calm["retrain"] == 0
        drifted = await client.run(score, {"scores": [rnd.betavariate(5, 2) for _ in range(300)]})
        assert drifted["retrain"] == 1 and "prediction drift" in drifted["reasons"][0]
        for _ in range(600):
            runs = [r for r in await client.list(workflow="churn-retrain")]
            if runs and runs[0].status.finished:
                break
            await asyncio.sleep(0.05)
        assert len(runs) == 1, runs  # the calm batch started nothing; the drifted one started one run
        out = await client.result(runs[0].id, timeout=30)
        assert out["retrained_for"] == "3" and out["reasons"] == drifted["reasons"]
