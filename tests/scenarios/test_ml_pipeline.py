"""The ml_pipeline scenario end to end on embedded defaults (SQLite store, SQLite MLflow): collect,
clean (a data gate), train, test on the holdout, deploy only if better than the champion, score a
batch and flag retraining on drift; on the shipped samples and on freshly generated data."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ml_pipeline scenario needs the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ml_pipeline scenario needs the ml extra: pip install 'podium[ml]'")

from podium import Client, RunFailed
from podium.ml import Registry

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "scenarios" / "data"
pytestmark = pytest.mark.timeout(900)


async def _events(c: Client) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    await c.on("ml.monitor", lambda topic, payload: seen.append(payload))
    return seen


async def test_deploys_only_if_better_and_flags_drift(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import ml_pipeline

    base = {k: str(ROOT / v) for k, v in ml_pipeline.SAMPLE_INPUT.items()}
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        seen = await _events(c)
        first = await c.run(ml_pipeline.workflow, base)
        assert first["deployed"] is True and first["deploy"]["champion_version"] is None
        assert first["holdout_metric"]["name"] == "roc_auc" and first["holdout_metric"]["value"] > 0.65
        assert first["drifted"] is False and first["retraining"]["flagged"] is False
        assert first["batch_rows"] == 500 and first["version"] == "1" and len(first["riskiest"]) == 10

        # the same data again: the candidate is not better than the champion, so it is not deployed;
        # a later population drifts, and retraining is flagged through ml.monitor
        second = await c.run(ml_pipeline.workflow, {**base, "batch": str(DATA / "churn_batch_drift.csv")})
        assert second["deployed"] is False and second["deploy"]["version"] == "2"
        assert second["holdout_metric"]["value"] == second["holdout_metric"]["champion_value"]
        assert second["version"] == "1" and {s["customer_id"][:2] for s in second["riskiest"]} == {"C5"}
        assert second["drifted"] is True and second["retraining"]["flagged"] is True
        assert any(r.startswith("feature drift") for r in second["drift"]["reasons"])
        for _ in range(200):
            if any(e.get("retrain") == 1 for e in seen):
                break
            await asyncio.sleep(0.05)
        assert any(e["retrain"] == 1 and e["model"] == ml_pipeline.MODEL for e in seen), seen

        # with the bar lowered (min_gain -1: any candidate passes) the new version is deployed
        third = await c.run(ml_pipeline.workflow, {**base, "min_gain": -1.0})
        assert third["deployed"] is True and third["version"] == "3"
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    assert reg.champion(ml_pipeline.MODEL) == "3" and reg.history(ml_pipeline.MODEL) == ["1", "3"]


async def test_unseen_data_in_the_documented_format(tmp_path, monkeypatch):
    """A data set the scenario never saw (another seed), with dirty training rows and an unknown plan."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    sys.path.insert(0, str(ROOT / "examples" / "scenarios"))
    import make_churn_data

    from examples.scenarios import ml_pipeline

    files = make_churn_data.main(tmp_path / "fresh", seed=11)
    train = files["train"].read_text().splitlines()
    train += [train[1], "X1,-4,50,1,3,basic,1"]  # a repeated customer and a negative tenure
    files["train"].write_text("\n".join(train) + "\n")
    batch = files["batch"].read_text().splitlines()
    batch[1] = batch[1].rsplit(",", 1)[0] + ",family"
    files["batch"].write_text("\n".join(batch) + "\n")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        calm = await c.run(ml_pipeline.workflow, {k: str(files[k]) for k in ("train", "holdout", "batch")})
        drift = await c.run(ml_pipeline.workflow, {"train": str(files["train"]), "holdout": str(files["holdout"]),
                                                   "batch": str(files["batch_drift"])})
    assert calm["deployed"] and calm["holdout_metric"]["value"] > 0.65 and calm["quarantined"]["train"] == 2
    assert calm["drifted"] is False and calm["unseen_plans"] == {"family": 1} and calm["batch_rows"] == 500
    assert drift["drifted"] is True and drift["deployed"] is False


@pytest.mark.parametrize(("which", "content", "error"), [
    ("batch", "customer_id,tenure_months,monthly_charges,plan\nC1,3,12.5,basic\n",
     r"batch.csv:1: missing column\(s\) support_tickets_90d, last_login_days"),
    ("holdout", "customer_id,tenure_months,monthly_charges,support_tickets_90d,last_login_days,plan,churned\n"
     "C1,3,12.5,1,4,basic,1\nC2,three,12.5,1,4,basic,0\n",
     r"holdout.csv:3: column 2 \(tenure_months\) is 'three', not a number"),
    ("train", "customer_id,tenure_months,monthly_charges,support_tickets_90d,last_login_days,plan\nC1,3,12.5,1,4,basic\n",
     r"train.csv:1: missing column\(s\) churned"),
])
async def test_bad_files_fail_with_file_line_and_column(tmp_path, monkeypatch, which, content, error):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import ml_pipeline

    bad = tmp_path / f"{which}.csv"
    bad.write_text(content)
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(RunFailed, match=error):
            await c.run(ml_pipeline.workflow, {which: str(bad)})
        with pytest.raises(RunFailed, match="input field 'metric': 'auc' is not one of roc_auc"):
            await c.run(ml_pipeline.workflow, {"metric": "auc"})


async def test_a_drifted_batch_starts_retraining_through_a_server_rule(tmp_path, monkeypatch):
    """The flag is an ml.monitor event with retrain=1: a threshold rule on the server starts the
    retraining workflow, once for the drifted batch and never for the calm one."""
    pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import ml_pipeline
    from podium import Workflow
    from podium.server import Rule, Settings, create_app

    retrain = Workflow("retrain-churn")

    @retrain.step
    async def start(input: dict) -> dict:
        return {"model": input["model"], "reasons": input["reasons"]}

    rule = Rule(name="retrain-on-drift", when="retrain >= 1", event="ml.monitor", workflow="retrain-churn")
    settings = Settings(store=f"sqlite:///{tmp_path}/p.db", workflows=[ml_pipeline.workflow, retrain], rules=[rule],
                        deploy_dir=str(tmp_path / "d"), trigger_interval=0.05)
    app = create_app(settings)
    base = {k: str(ROOT / v) for k, v in ml_pipeline.SAMPLE_INPUT.items()}
    async with app.router.lifespan_context(app):
        client = app.state.client
        calm = await client.run(ml_pipeline.workflow, base)
        drift = await client.run(ml_pipeline.workflow, {**base, "batch": str(DATA / "churn_batch_drift.csv")})
        assert calm["drifted"] is False and drift["drifted"] is True
        for _ in range(600):
            runs = list(await client.list(workflow="retrain-churn"))
            if runs and runs[0].status.finished:
                break
            await asyncio.sleep(0.05)
        assert len(runs) == 1, runs
        out = await client.result(runs[0].id, timeout=30)
    # one flag per run: monitor()'s when the scores drifted too, else the feature drift's
    assert out["model"] == ml_pipeline.MODEL and out["reasons"] and set(out["reasons"]) <= set(drift["drift"]["reasons"])
