"""Scenario ``ml_pipeline`` (seed 002): collect -> clean -> train -> test -> deploy if better -> score
a batch and watch it for drift; drift flags a retraining.

    podium demo ml_pipeline
    podium run examples/scenarios/ml_pipeline.py:workflow --input '{"train": "examples/scenarios/data/churn_train.csv",
        "holdout": "examples/scenarios/data/churn_holdout.csv", "batch": "examples/scenarios/data/churn_batch_drift.csv"}'

Input: ``train`` and ``holdout`` (labelled CSV: customer_id, tenure_months, monthly_charges,
support_tickets_90d, last_login_days, plan, churned) and ``batch`` (the same columns without
churned: the customers to score). Optional: ``metric`` (roc_auc; or accuracy, f1, log_loss, brier),
``min_gain`` (0: how much better than the champion a candidate must be), ``estimator`` (a
scikit-learn class name, default logistic regression), ``registry`` (an MLflow URI; default
``$PODIUM_MLFLOW_URI`` or ``.podium/mlflow.db`` in the working folder).

Clean is a data gate over the training rows (repeated customers and impossible values are set aside,
with the reason in the run's log) and drops holdout customers that also appear in training (they
would flatter the test). The candidate and the current champion are both scored on the holdout; the
MLflow ``champion`` alias moves only if the candidate is better. The batch is scored by the champion
and checked for drift twice: the features of the rows left after the batch gate's quarantine against the
champion's training data (PSI and Kolmogorov-Smirnov, a ``Drift`` gate rule of its own) and its scores
against the champion's holdout scores.
Drift emits ``ml.monitor`` with ``retrain: 1``: a server rule ``Rule(when="retrain >= 1",
event="ml.monitor", workflow="...")`` starts the retraining once labels for the new population exist.
No LLM is involved: every decision is a measured comparison.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from podium import ConfigError, Workflow
from podium.ml import Drift, Gate, Range, Unique

try:
    from . import _churn_format as fmt
    from ._common import DATA, number, path_of
except ImportError:  # loaded by file path: podium run examples/scenarios/ml_pipeline.py:workflow
    sys.path.insert(0, str(Path(__file__).parent))
    import _churn_format as fmt  # type: ignore[no-redef]
    from _common import DATA, number, path_of  # type: ignore[no-redef]

MODEL = "scenario-ml-pipeline"
REFERENCE = "scenario-ml-pipeline:champion-train"
"""The drift reference: a summary of the serving champion's training data (kept in the store)."""
METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "brier")

#: What ``podium demo ml_pipeline`` checks before it starts: module -> the extra that installs it.
NEEDS = {"sklearn": "ml", "mlflow": "ml"}
SAMPLE_INPUT = {
    "train": "examples/scenarios/data/churn_train.csv",
    "holdout": "examples/scenarios/data/churn_holdout.csv",
    "batch": "examples/scenarios/data/churn_batch.csv",
}
#: ``podium demo ml_pipeline``: a batch like the training data (no drift), then a later population
#: with a gradient-boosting candidate (drift flagged; deployed only if it beats the champion).
DEMO_INPUTS = [
    {"batch": str(DATA / "churn_batch.csv")},
    {"batch": str(DATA / "churn_batch_drift.csv"), "estimator": "sklearn.ensemble.HistGradientBoostingClassifier"},
]

PSI_ROWS = 200
"""A batch this large is checked for drift by PSI and KS per feature and by its score PSI. PSI over fewer
rows is noise: batches drawn from the training population (third unseen-data round, docs/status.md)
were flagged 60 times in 60 at 30 rows, 5 in 60 at 100, 1 in 60 at 200."""
DRIFT_ROWS = 20
"""Under :data:`PSI_ROWS`, down to this many rows, only the KS test per feature (which allows for the
sample's size) decides: 0 false alarms in 60 at 20-200 rows, the shifted population caught 48/60 at 20
rows and 60/60 from 50. Fewer rows say nothing: drift is not checked."""

BATCH_GATE = Gate(
    name="batch",
    rows="rows",
    report="quality",
    rules=[
        Unique(columns=[fmt.ID], on="quarantine"),
        # every value a customer can have, as the churn scenario's customers (tickets and last login were unchecked)
        *(Range(column=name, min=low, max=high, on="quarantine") for name, (low, high) in fmt.RANGES.items()),
    ],
)

DRIFT_GATE = Gate(
    name="drift",
    rows="rows",
    report="quality",
    # drift flags retraining, the data flow on; a small batch is judged by KS alone, a tiny one not at all. A gate
    # of its own, on the rows the batch gate let through: in one gate every rule saw every row, so a batch of 25
    # customers with a negative tenure, all quarantined and none scored, was "drift in tenure_months" and started
    # a retraining
    rules=[Drift(reference=REFERENCE, columns=list(fmt.FEATURES), on="warn", psi_rows=PSI_ROWS, min_rows=DRIFT_ROWS)],
)


def _input(input: Any) -> dict[str, Any]:
    if input is None:
        return {}
    if not isinstance(input, dict):
        raise ConfigError('the ml_pipeline scenario takes a JSON object: {"train": ..., "holdout": ..., "batch": ...}')
    metric = input.get("metric", "roc_auc")
    if metric not in METRICS:
        raise ConfigError(f"input field 'metric': {metric!r} is not one of {', '.join(METRICS)}")
    # finite: "nan" deployed no candidate however much better (nothing is better by more than nan), "inf" the
    # same; a negative min_gain stays allowed, deliberately (any candidate passes: how to force a redeploy)
    number(input, "min_gain", 0.0, hint="how much better than the champion a candidate must be, a finite number "
           "(default 0; negative lets a worse one replace it)")
    return input


def _summary(score: dict[str, Any]) -> dict[str, Any]:
    # Every score stays in the score step's output (podium show RUN_ID) and in the store (predict);
    # the run's output names the ten riskiest customers.
    riskiest = sorted(score["scores"], key=lambda s: (-s["score"], s["customer_id"]))[:10]
    return {**{k: v for k, v in score.items() if k != "scores"}, "riskiest": riskiest}


workflow = Workflow("scenario-ml-pipeline", output=_summary,
                    description="collect -> clean -> train -> test -> deploy if better -> score batch, drift flags retraining")


@workflow.step
def collect(input: Any) -> dict[str, Any]:
    """Read the three files in the documented columns (a bad cell: an error with file:line, column)."""
    input = _input(input)
    fmt.require_ml()
    paths = {"train": path_of(input, "train", "churn_train.csv"), "holdout": path_of(input, "holdout", "churn_holdout.csv"),
             "batch": path_of(input, "batch", "churn_batch.csv")}
    return {"train": fmt.read(paths["train"], labelled=True), "holdout": fmt.read(paths["holdout"], labelled=True),
            "batch": fmt.read(paths["batch"], labelled=False), "paths": paths, "registry": fmt.registry_uri(input)}


@workflow.step(gate=fmt.TRAIN_GATE)
def clean(collect: dict[str, Any]) -> dict[str, Any]:
    """The training rows, through the data gate; holdout customers seen in training are dropped."""
    fmt.check_labels(collect["paths"]["train"], collect["train"])
    holdout = fmt.holdout_unseen(collect["train"], collect["holdout"], collect["paths"]["holdout"])
    fmt.check_labels(collect["paths"]["holdout"], holdout, least=5, what="testing")
    return {"rows": collect["train"], "holdout": holdout, "holdout_dropped": len(collect["holdout"]) - len(holdout)}


@workflow.step
async def train(ctx: Any, input: Any, collect: dict[str, Any], clean: dict[str, Any]) -> dict[str, Any]:
    """Fit a candidate and register it in MLflow (not deployed)."""
    from podium.ml import registry_for

    reg = registry_for(collect["registry"])
    trained: dict[str, Any] = await ctx.call(
        reg.train, MODEL, clean["rows"], target=fmt.TARGET, features=list(fmt.FEATURES), holdout=clean["holdout"],
        estimator=_input(input).get("estimator"), metric=_input(input).get("metric", "roc_auc"), name="train")
    return {"version": trained["version"], "run_id": trained["run_id"], "rows": len(clean["rows"]),
            "quarantined": clean["quality"]["quarantined"]}


@workflow.step
async def test(ctx: Any, input: Any, collect: dict[str, Any], clean: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    """The candidate and the current champion, on the same holdout rows."""
    from podium.ml import registry_for

    reg = registry_for(collect["registry"])
    candidate = await ctx.call(reg.evaluate, MODEL, train["version"], clean["holdout"], target=fmt.TARGET, name="candidate")
    champion_version = await ctx.call(reg.champion, MODEL, name="champion_version")
    champion = None
    if champion_version is not None:
        champion = await ctx.call(reg.evaluate, MODEL, champion_version, clean["holdout"], target=fmt.TARGET, name="champion")
    return {"metric": _input(input).get("metric", "roc_auc"), "candidate": candidate, "champion": champion,
            "champion_version": champion_version, "holdout_rows": len(clean["holdout"])}


@workflow.step
async def deploy(ctx: Any, input: Any, collect: dict[str, Any], clean: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    """Promote the candidate (MLflow alias ``champion``) only if it beats the champion on the
    holdout; a new champion's training data becomes the drift reference."""
    from podium.ml import load_reference, registry_for, remember_scores, save_reference

    given = _input(input)
    reg = registry_for(collect["registry"])
    decision: dict[str, Any] = await ctx.call(
        reg.promote, MODEL, train["version"], clean["holdout"], target=fmt.TARGET,
        metric=given.get("metric", "roc_auc"), min_gain=float(given.get("min_gain", 0.0)), name="promote")
    await ctx.governance.audit("model.promote", step=ctx.step_id, **decision)
    scores = await ctx.call(lambda: reg.score(MODEL, clean["holdout"], train["version"])[1], name="holdout_scores")
    await remember_scores(ctx.store, MODEL, train["version"], scores)
    if decision["deployed"] or await load_reference(ctx.store, REFERENCE) is None:
        await save_reference(ctx.store, REFERENCE, clean["rows"], list(fmt.FEATURES))
    return decision


@workflow.step(gate=BATCH_GATE, needs=["deploy"])
def batch(collect: dict[str, Any]) -> dict[str, Any]:
    """The batch to score, its impossible values and repeated customers set aside."""
    return {"rows": collect["batch"]}


@workflow.step(gate=DRIFT_GATE)
def batch_drift(batch: dict[str, Any]) -> dict[str, Any]:
    """The rows to score, checked against the champion's training data (drift warns, never stops)."""
    return {"rows": batch["rows"]}


@workflow.step
async def score(ctx: Any, collect: dict[str, Any], clean: dict[str, Any], test: dict[str, Any],
                deploy: dict[str, Any], batch: dict[str, Any], batch_drift: dict[str, Any]) -> dict[str, Any]:
    """Score the batch with the champion and watch its scores; on drift, flag a retraining
    (``ml.monitor`` with ``retrain: 1``, once per run)."""
    from podium.ml import monitor, predict

    rows = batch["rows"]
    scored = await predict(ctx, MODEL, rows, registry=collect["registry"]) if rows else []
    version = deploy["now_serving"]
    if len(rows) >= PSI_ROWS:
        watch = await monitor(ctx, MODEL, [s["score"] for s in scored], version)
    else:  # the scores' PSI over a few rows is noise (the batch gate's drift rule uses KS alone there)
        watch = {"retrain": 0, "score_psi": None, "reasons": []}
    drift = batch_drift["quality"]
    found = {r: drift["details"][r] for r in drift["failed"] if r.startswith("drift")}
    features = list(found)
    reasons = [f"feature drift: {found[r]}" for r in features] + list(watch["reasons"])
    if features and not watch["retrain"]:  # monitor() saw only the scores: tell the same rule
        await ctx.emit("ml.monitor", {"model": MODEL, "version": version, "rows": len(rows), "retrain": 1,
                                      "reasons": reasons, "idempotency_key": f"{ctx.run_id}:{ctx.step_id}:features"})
    metric = test["metric"]
    return {
        "holdout_metric": {"name": metric, "value": test["candidate"].get(metric), "rows": test["holdout_rows"],
                           "champion_value": None if test["champion"] is None else test["champion"].get(metric)},
        "deployed": deploy["deployed"],
        "deploy": {k: deploy[k] for k in ("version", "candidate", "champion", "champion_version", "now_serving")},
        "drifted": bool(reasons),
        "drift": {"features": found, "score_psi": watch.get("score_psi"), "reasons": reasons,
                  "checked": "PSI and KS per feature, score PSI" if len(rows) >= PSI_ROWS else
                  f"KS per feature only ({len(rows)} rows, under {PSI_ROWS})" if len(rows) >= DRIFT_ROWS else
                  f"not checked ({len(rows)} rows, under {DRIFT_ROWS})"},
        "retraining": {"flagged": bool(reasons), "event": "ml.monitor" if reasons else None},
        "batch_rows": len(rows), "quarantined": {"train": clean["quality"]["quarantined"], "batch": batch["quality"]["quarantined"]},
        "holdout_dropped": clean["holdout_dropped"],
        "unseen_plans": fmt.unseen_plans(clean["rows"], rows),
        "scores": [{"customer_id": r[fmt.ID], "score": round(s["score"], 4)} for r, s in zip(rows, scored, strict=True)],
        "version": version,
    }


async def evaluate(seeds: int = 5) -> dict[str, Any]:
    """The pipeline on ``seeds`` fresh data sets it never saw (``make_churn_data.py --seed N``), each
    with a fresh store and registry: holdout AUC, drift caught on the later population, false alarms
    on a batch like the training data."""
    import statistics
    import tempfile

    from podium import Client

    sys.path.insert(0, str(Path(__file__).parent))
    import make_churn_data

    aucs, caught, alarms = [], 0, 0
    for seed in range(1, seeds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            files = make_churn_data.main(Path(tmp), seed=100 + seed)
            base = {"train": str(files["train"]), "holdout": str(files["holdout"]), "registry": f"sqlite:///{tmp}/mlflow.db"}
            async with Client(f"sqlite:///{tmp}/p.db") as c:
                calm = await c.run(workflow, {**base, "batch": str(files["batch"])})
                drift = await c.run(workflow, {**base, "batch": str(files["batch_drift"])})
        aucs.append(calm["holdout_metric"]["value"])
        caught += drift["drifted"]
        alarms += calm["drifted"]
    return {"data_sets": seeds, "holdout_auc_mean": round(statistics.mean(aucs), 4),
            "holdout_auc_min": round(min(aucs), 4), "drift_caught": f"{caught}/{seeds}", "false_alarms": f"{alarms}/{seeds}"}


if __name__ == "__main__":  # python examples/scenarios/ml_pipeline.py [N]: measured on N fresh data sets
    import asyncio
    import json
    import os
    import tempfile

    os.environ.setdefault("PODIUM_AUDIT_KEY", os.path.join(tempfile.gettempdir(), "podium-eval-audit.key"))
    print(json.dumps(asyncio.run(evaluate(int(sys.argv[1]) if len(sys.argv) > 1 else 5))))
