"""Churn, closed loop: train a model on a CSV, gate the next batch, retrain on drift and deploy only
if better (MLflow), score customers, and start retention actions across CRM, support and marketing
for high scores, with compensation and outcome tracking.

    podium run examples/churn/workflow.py:workflow --input '{"data": "examples/churn/data"}'

Input: ``data`` (a folder with train.csv, holdout.csv, batch_drift.csv, customers.csv in the
documented columns) or each path by name (``train``, ``holdout``, ``batch``, ``customers``);
``registry`` (an MLflow URI, default ``$PODIUM_HOME/mlflow.db``); ``systems`` (the SQLite file
standing in for the CRM, support desk and marketing tool); ``threshold`` (default 0.7);
``max_actions`` (default 20); ``approve_above`` (scores above it need a person before the offer).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from podium import Workflow
from podium.ml import (
    Action,
    Drift,
    Gate,
    Nulls,
    Range,
    Schema,
    Unique,
    act,
    monitor,
    predict,
    read_csv,
    registry_for,
    remember_scores,
    save_reference,
)

MODEL = "churn"
TARGET = "churned"
COLUMNS = {
    "customer_id": "str",
    "tenure_months": "int",
    "monthly_charges": "number",
    "support_tickets_90d": "int",
    "last_login_days": "int",
    "plan": "str",
    "churned": "int?",
}
BATCH_GATE = Gate(
    name="batch",
    rows="rows",
    report="quality",
    rules=[
        Schema(columns=COLUMNS),  # a changed export halts the run for a person
        Unique(columns=["customer_id"], on="quarantine"),
        Range(column="monthly_charges", min=0, max=1000, on="quarantine"),
        Nulls(column="plan", max_rate=0.05, on="warn"),
    ],
)
DRIFT_GATE = Gate(
    name="batch_drift",
    rows="rows",
    report="quality",
    # drift does not stop the data: it triggers retraining. A gate of its own, on the rows the batch gate let
    # through: in one gate every rule saw every row, so rows the range rule set aside (charges an export wrote in
    # cents) were "drift in monthly_charges" and started a retraining (ml_pipeline's fix of the twelfth session)
    rules=[Drift(reference="churn-train", on="warn")],
)


def _path(input: dict[str, Any], name: str, default: str) -> str:
    return str(input.get(name) or Path(input.get("data") or Path(__file__).parent / "data") / default)


workflow = Workflow("churn", description="train, gate, retrain on drift, deploy if better, score, act")


@workflow.step
async def train(ctx, input) -> dict[str, Any]:
    """Train on the training CSV and deploy when better than the champion on the holdout."""
    reg = registry_for(input.get("registry"))
    rows, holdout = read_csv(_path(input, "train", "train.csv")), read_csv(_path(input, "holdout", "holdout.csv"))
    await save_reference(ctx.store, "churn-train", rows, [c for c in COLUMNS if c not in ("customer_id", TARGET)])
    trained = await ctx.call(reg.train, MODEL, rows, target=TARGET, holdout=holdout, name="train")
    decision = await ctx.call(reg.promote, MODEL, trained["version"], holdout, target=TARGET, name="promote")
    await _audit_decision(ctx, decision)
    scores = await ctx.call(lambda: reg.score(MODEL, holdout, trained["version"])[1], name="holdout_scores")
    await remember_scores(ctx.store, MODEL, trained["version"], scores)
    return {"trained": trained, "decision": decision}


@workflow.step(gate=BATCH_GATE)
async def batch(input, train) -> dict[str, Any]:
    """The next batch of labelled customers, checked by the gate before anything uses it."""
    return {"rows": read_csv(_path(input, "batch", "batch_drift.csv"))}


@workflow.step(gate=DRIFT_GATE)
def batch_drift(batch: dict[str, Any]) -> dict[str, Any]:
    """The rows left after the batch gate's quarantine, checked against the training data for drift."""
    return {"rows": batch["rows"]}


@workflow.step(when=lambda batch_drift: not batch_drift["quality"]["passed"] and any(
    r.startswith("drift") for r in batch_drift["quality"]["failed"]))
async def retrain(ctx, input, batch, batch_drift) -> dict[str, Any]:
    """The batch drifted: train on the old data plus most of the batch, and deploy only if the new
    model beats the champion on the rest of the batch (the new population)."""
    reg = registry_for(input.get("registry"))
    rows = batch["rows"]
    cut = int(len(rows) * 0.6)
    recent, holdout = rows[:cut], rows[cut:]
    old = read_csv(_path(input, "train", "train.csv"))
    trained = await ctx.call(reg.train, MODEL, old + recent, target=TARGET, holdout=holdout, name="train")
    decision = await ctx.call(reg.promote, MODEL, trained["version"], holdout, target=TARGET, name="promote")
    await _audit_decision(ctx, decision)
    scores = await ctx.call(lambda: reg.score(MODEL, holdout, trained["version"])[1], name="holdout_scores")
    await remember_scores(ctx.store, MODEL, trained["version"], scores)
    return {"trained": trained, "decision": decision}


@workflow.step(needs=["retrain"])
async def score(ctx, input, batch_drift) -> dict[str, Any]:
    """Score customers with the champion; watch the scores for drift (an ``ml.monitor`` event)."""
    customers = read_csv(_path(input, "customers", "customers.csv"))
    scored = await predict(ctx, MODEL, customers, registry=input.get("registry"))
    figures = await monitor(ctx, MODEL, [s["score"] for s in scored], scored[0]["version"] if scored else "")
    return {"scores": scored, "monitor": figures}


@workflow.step
async def retain(ctx, input, score) -> dict[str, Any]:
    """For the riskiest customers: a CRM task, support priority and a marketing offer, undone if a
    later one fails; offers above ``approve_above`` wait for a person."""
    threshold = float(input.get("threshold", 0.7))
    approve_above = float(input.get("approve_above", 1.01))
    high = sorted((s for s in score["scores"] if s["score"] >= threshold), key=lambda s: -s["score"])
    high = high[: int(input.get("max_actions", 20))]
    db = _systems(input)
    actions: dict[str, Any] = {}
    for s in high:
        cid = s["id"]
        out = await act(ctx, [
            Action(name=f"crm:{cid}", do=_do(db, "crm_tasks", cid, f"call {cid}: churn risk {s['score']:.2f}"),
                   undo=_undo(db, "crm_tasks")),
            Action(name=f"support:{cid}", do=_do(db, "support_priority", cid, "priority"), undo=_undo(db, "support_priority")),
            Action(name=f"offer:{cid}", do=_do(db, "marketing_offers", cid, "20% off 3 months"),
                   undo=_undo(db, "marketing_offers"), approve=s["score"] > approve_above, role="retention-lead"),
        ], context=s)
        actions[cid] = {"score": s["score"], "done": sorted(out["done"]), "declined": out["declined"]}
    await ctx.metric("churn_high_risk_customers", len([s for s in score["scores"] if s["score"] >= threshold]))
    await ctx.metric("retention_actions", sum(len(a["done"]) for a in actions.values()), kind="counter")
    return {"treated": actions, "threshold": threshold}


async def _audit_decision(ctx: Any, decision: dict[str, Any]) -> None:
    await ctx.governance.audit("model.promote", step=ctx.step_id, **decision)


def _systems(input: dict[str, Any]) -> str:
    db = str(input.get("systems") or Path(os.environ.get("PODIUM_HOME") or Path.home() / ".podium") / "churn-systems.db")
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as con:
        for table in ("crm_tasks", "support_priority", "marketing_offers"):
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, customer_id TEXT, note TEXT)")
    return db


def _do(db: str, table: str, cid: str, note: str) -> Any:
    def do(ctx: Any) -> dict[str, Any]:
        with sqlite3.connect(db) as con:
            cur = con.execute(f"INSERT INTO {table} (customer_id, note) VALUES (?, ?)", (cid, note))
            return {"table": table, "id": cur.lastrowid}

    do.__name__ = f"insert_{table}"
    return do


def _undo(db: str, table: str) -> Any:
    def undo(ctx: Any, result: dict[str, Any]) -> dict[str, Any]:
        with sqlite3.connect(db) as con:
            con.execute(f"DELETE FROM {table} WHERE id = ?", (result["id"],))
        return {"undone": result["id"]}

    undo.__name__ = f"delete_{table}"
    return undo


outcomes = Workflow("churn-outcomes", description="feed what happened back: labels, per-version performance, retention KPI")


@outcomes.step
async def record(ctx, input) -> dict[str, Any]:
    """``{"outcomes": CSV of customer_id, churned, "treated": [ids]}``: record each outcome as a
    label, report performance per model version and the retention rate of treated vs untreated."""
    from podium.ml import performance, record_outcome

    rows = read_csv(input["outcomes"])
    treated = set(input.get("treated") or ())
    for r in rows:
        await record_outcome(ctx.store, MODEL, str(r["customer_id"]), int(r[TARGET]), treated=r["customer_id"] in treated)
    perf = await performance(ctx.store, MODEL)
    rate = {}
    for group, members in (("treated", [r for r in rows if r["customer_id"] in treated]),
                           ("untreated", [r for r in rows if r["customer_id"] not in treated])):
        if members:
            rate[group] = round(1 - sum(int(r[TARGET]) for r in members) / len(members), 4)
            await ctx.metric("retention_rate", rate[group], group=group)
    return {"performance": perf, "retention_rate": rate}
