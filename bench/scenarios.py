"""The seed scenarios, measured on held-out data: one JSON line per scenario.

    python bench/scenarios.py [--only fraud,feedback,answer]

Each line: the scenario, its outcome metric(s) on data the scenario was not trained or tuned on, the
wall time of the run, model calls (LLM calls; classifier and embedding calls are not model calls)
and cost (0 on the embedded model). Approvals a run asks for are decided by this script (fraud:
approve the review queue; answer: reject, i.e. block, the doubtful requests), so the stopped-share
figures count a request sent to a person as stopped. Add a scenario by appending a
``Scenario(name, module, input, decide, metric)`` to ``SCENARIOS``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "examples" / "scenarios" / "data"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One scenario to measure."""

    name: str
    module: str
    """The module that exposes ``workflow``."""
    input: dict[str, Any] = field(default_factory=dict)
    """The run input (held-out data)."""
    approve: bool = True
    """How this script decides any approval the run asks for."""
    metric: Callable[[dict[str, Any]], dict[str, Any]] = lambda out: out.get("quality", {})
    """The outcome figures, from the run's output."""


SCENARIOS = [
    Scenario(name="fraud", module="examples.scenarios.fraud",
             input={"train": str(DATA / "fraud_train.csv"), "transactions": str(DATA / "fraud_holdout.csv")}),
    Scenario(name="feedback", module="examples.scenarios.feedback",
             input={"messages": str(DATA / "feedback_holdout.jsonl"), "min_cluster": 3}),
    Scenario(name="answer", module="examples.scenarios.answer",
             input={"questions": str(DATA / "answer_questions.jsonl")}, approve=False,
             metric=lambda out: {**out["quality"],
                                 "quoted": sum(a.get("reply_source") == "quote" for a in out["answers"]),
                                 "drafts_withheld": {
                 why: sum(a.get("withheld") == why for a in out["answers"])
                 for why in sorted({a["withheld"] for a in out["answers"] if a.get("withheld")})}}),
    # churn: AUC on 600 labelled customers never trained on; every approval (grey zone, offers) approved
    Scenario(name="churn", module="examples.scenarios.churn",
             input={"train": str(DATA / "churn_train.csv"), "customers": str(DATA / "churn_holdout.csv"),
                    "max_customers": 1000},
             metric=lambda out: {"roc_auc": out["quality"]["roc_auc"], "holdout_auc": out["model"]["holdout_auc"],
                                 "actions_per_high_risk": out["actions_per_high_risk"], "high_risk": out["high_risk"],
                                 "reviewed": out["reviewed"], "treated": out["treated"],
                                 "offer_source": out["offer"]["source"]}),
    # ml_pipeline twice on one registry: a batch like the training data, then a drifted one
    Scenario(name="ml_pipeline", module="examples.scenarios.ml_pipeline",
             input={"train": str(DATA / "churn_train.csv"), "holdout": str(DATA / "churn_holdout.csv"),
                    "batch": str(DATA / "churn_batch.csv")},
             metric=lambda out: {"holdout_auc": out["holdout_metric"]["value"], "deployed": out["deployed"],
                                 "drifted": out["drifted"], "batch_rows": out["batch_rows"]}),
    Scenario(name="ml_pipeline_drift", module="examples.scenarios.ml_pipeline",
             input={"train": str(DATA / "churn_train.csv"), "holdout": str(DATA / "churn_holdout.csv"),
                    "batch": str(DATA / "churn_batch_drift.csv")},
             metric=lambda out: {"holdout_auc": out["holdout_metric"]["value"], "deployed": out["deployed"],
                                 "drifted": out["drifted"], "drift": out["drift"]["reasons"]}),
]
SCENARIOS += importlib.import_module("bench._retail").scenarios(Scenario)  # pricing, recommend (+ unseen data)


async def measure(s: Scenario, home: str) -> dict[str, Any]:
    from podium import Client, RunStatus, ai

    workflow = importlib.import_module(s.module).workflow
    async with Client(f"sqlite:///{home}/{s.name}.db", poll_interval=0.05) as c:
        started = time.perf_counter()
        handle = await c.start(workflow, s.input)
        approvals = 0
        while (status := (await c.get(handle.id)).status) in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
            if status is RunStatus.WAITING:
                for req in await c.approvals(run_id=handle.id):
                    approvals += 1
                    await c.decide(handle.id, req["name"], approve=s.approve, comment="bench/scenarios.py")
            await asyncio.sleep(0.1)
        out = await c.result(handle.id, timeout=60)
        seconds = time.perf_counter() - started
        report = await ai.usage(c, run_id=handle.id)
    return {"scenario": s.name, **s.metric(out), "wall_seconds": round(seconds, 1),
            "model_calls": report.model_calls, "cost": round(report.total.cost or 0.0, 6),
            "approvals_asked": approvals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated scenario names")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("PODIUM_HOME", home)
        os.environ.setdefault("PODIUM_AUDIT_KEY", f"{home}/audit.key")
        os.environ.setdefault("PODIUM_SANDBOX_DIR", f"{home}/sandbox")  # systems a scenario acts on, if it needs them
        for s in SCENARIOS:
            if wanted is None or s.name in wanted:
                print(json.dumps(asyncio.run(measure(s, home))), flush=True)


if __name__ == "__main__":
    main()
