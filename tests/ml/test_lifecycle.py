"""The model lifecycle on a real MLflow (SQLite backend, file artifacts): train, evaluate, deploy
only if better, roll back; scoring with the model version in the audit; outcomes per version."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the model lifecycle needs the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the model lifecycle needs the ml extra: pip install 'podium[ml]'")

from podium import Client, Workflow
from podium.ml import Registry, performance, predict, record_outcome

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from examples.churn.make_data import customers


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")


def test_deploys_only_a_better_model_and_rolls_back(registry):
    train, holdout = customers(1500, seed=1), customers(500, seed=2)
    good = registry.train("churn", train, target="churned", holdout=holdout)
    assert good["version"] == "1" and good["metrics"]["roc_auc"] > 0.65
    first = registry.promote("churn", good["version"], holdout, target="churned")
    assert first["deployed"] and first["champion"] is None and registry.champion("churn") == "1"

    # A worse model (trained on shuffled labels) is registered but not deployed.
    noise = [{**r, "churned": customers(1500, seed=9)[i]["churned"]} for i, r in enumerate(train)]
    bad = registry.train("churn", noise, target="churned", holdout=holdout)
    decision = registry.promote("churn", bad["version"], holdout, target="churned")
    assert not decision["deployed"] and decision["candidate"] < decision["champion"]
    assert registry.champion("churn") == "1"

    forest = registry.train(
        "churn", train + customers(1500, seed=7), target="churned", holdout=holdout,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier", params={"max_depth": 3},
    )
    decision = registry.promote("churn", forest["version"], holdout, target="churned", metric="log_loss", min_gain=-1)
    assert decision["deployed"] and registry.champion("churn") == forest["version"]
    assert registry.history("churn") == ["1", forest["version"]]
    assert registry.rollback("churn")["now_serving"] == "1" and registry.champion("churn") == "1"

    with pytest.raises(Exception, match="is not a scikit-learn estimator class"):
        registry.train("churn", train, target="churned", estimator="os.system")


def test_any_callable_trains():
    from sklearn.tree import DecisionTreeClassifier

    def fit(frame, labels):
        return DecisionTreeClassifier(max_depth=3).fit(frame[["tenure_months", "support_tickets_90d"]], labels)

    reg = Registry(f"sqlite:///{Path(__import__('tempfile').mkdtemp())}/m.db")
    out = reg.train("tree", customers(400, seed=1), target="churned", features=["tenure_months", "support_tickets_90d"], estimator=fit)
    assert out["metrics"]["accuracy"] > 0.6


async def test_predictions_carry_the_model_version_into_the_audit_and_outcomes_measure_it(registry):
    if registry.champion("churn") is None:
        v = registry.train("churn", customers(1500, seed=1), target="churned")["version"]
        registry.promote("churn", v, customers(300, seed=2), target="churned")
    batch = [{k: v for k, v in r.items() if k != "churned"} for r in customers(200, seed=11, start=9000)]
    truth = {r["customer_id"]: r["churned"] for r in customers(200, seed=11, start=9000)}
    wf = Workflow("score")

    @wf.step
    async def score(ctx, input):
        return await predict(ctx, "churn", input, registry=registry)

    async with Client("memory://") as c:
        handle = await c.start(wf, batch)
        out = await c.result(handle.id, timeout=120)
        assert len(out) == 200 and {o["version"] for o in out} == {registry.champion("churn")}
        assert all(0 <= o["score"] <= 1 for o in out) and out[0]["id"] == "C09000"
        [entry] = [a for a in await c.audit_log() if a.action == "model.predict"]
        assert entry.target == handle.id and entry.details()["version"] == registry.champion("churn")
        for cid, churned in truth.items():
            await record_outcome(c.store, "churn", cid, churned)
        perf = await performance(c.store, "churn")
        assert perf[registry.champion("churn")]["n"] == 200 and perf[registry.champion("churn")]["roc_auc"] > 0.6
