"""The ML loop, measured: one JSON line per figure.

    python bench/ml_loop.py [--data DIR] [--batches N] [--only ray]

DIR holds train.csv, holdout.csv and batch_drift.csv in the churn columns (customer_id,
tenure_months, monthly_charges, support_tickets_90d, last_login_days, plan, churned); the default is
the shipped sample (examples/churn/data). Figures: the champion's holdout quality; deploy-if-better
decisions (never deploys a model worse on the holdout metric); the drift gate on a batch with a
changed schema, on batches with an injected distribution shift and on clean batches (resampled
from the holdout); time from drift detection to a retrained, deployed model; gate overhead per 10,000 rows;
the Ray executor's overhead per step against the same step in-process (Ray binds every address: run
this in a loopback-only network namespace, see docs/ml.md).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from podium import Client, Workflow  # noqa: E402
from podium.ml import Drift, Gate, Nulls, Range, Registry, Schema, Unique, read_csv, save_reference  # noqa: E402

FEATURES = ["tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
COLUMNS = {"customer_id": "str", "tenure_months": "int", "monthly_charges": "number", "support_tickets_90d": "int",
           "last_login_days": "int", "plan": "str", "churned": "int?"}


def emit(figure: str, value: object, **extra: object) -> None:
    print(json.dumps({"figure": figure, "value": value, **extra}), flush=True)


def shifted(rows: list[dict], rng: random.Random) -> list[dict]:
    """One injected shift: a numeric column moved by 0.5 to 1 standard deviation, or scaled, or a
    category's share changed."""
    kind = rng.choice(["mean", "scale", "category"])
    col = rng.choice(["tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days"])
    vals = [r[col] for r in rows]
    mu = sum(vals) / len(vals)
    sd = (sum((v - mu) ** 2 for v in vals) / len(vals)) ** 0.5 or 1.0
    out = []
    for r in rows:
        r = dict(r)
        if kind == "mean":
            r[col] = r[col] + rng.uniform(0.5, 1.0) * sd
        elif kind == "scale":
            r[col] = mu + (r[col] - mu) * rng.uniform(1.6, 2.2)
        elif rng.random() < 0.5:
            r["plan"] = "basic"
        out.append(r)
    return out


async def loop_figures(args: argparse.Namespace) -> None:
    data = Path(args.data)
    train, holdout = read_csv(str(data / "train.csv")), read_csv(str(data / "holdout.csv"))
    drift = read_csv(str(data / "batch_drift.csv"))
    tmp = Path(tempfile.mkdtemp())
    reg = Registry(f"sqlite:///{tmp}/mlflow.db")
    rng = random.Random(7)

    # Deploy-if-better: a sequence of candidates of varying quality (noisy labels, fewer rows, other
    # estimators); each is deployed only if it beats the champion on the holdout.
    t0 = time.perf_counter()
    worse_deployed = decisions = deployed = 0
    candidates = [(None, 1.0, 0.0), ("sklearn.ensemble.HistGradientBoostingClassifier", 1.0, 0.0), (None, 0.2, 0.3),
                  ("sklearn.ensemble.RandomForestClassifier", 1.0, 0.1), (None, 0.5, 0.0), (None, 1.0, 0.5)]
    for est, share, noise in candidates:
        rows = rng.sample(train, int(len(train) * share))
        rows = [{**r, "churned": 1 - r["churned"]} if rng.random() < noise else r for r in rows]
        params = {"n_estimators": 100} if est and "RandomForest" in est else {}
        v = reg.train("churn", rows, target="churned", features=FEATURES, holdout=holdout, estimator=est, params=params)["version"]
        d = reg.promote("churn", v, holdout, target="churned")
        decisions += 1
        deployed += d["deployed"]
        if d["deployed"] and d["champion"] is not None and d["candidate"] < d["champion"]:
            worse_deployed += 1
    champion = reg.champion("churn")
    quality = reg.evaluate("churn", champion or "1", holdout, target="churned")
    emit("champion_holdout_roc_auc", quality["roc_auc"], version=champion, accuracy=quality["accuracy"], data=str(data))
    emit("deploy_if_better_decisions", decisions, deployed=deployed, worse_deployed=worse_deployed, goal="worse_deployed == 0",
         seconds=round(time.perf_counter() - t0, 1))

    # The drift gate: a changed schema, shifted batches and clean batches.
    async with Client("memory://") as c:
        await save_reference(c.store, "ref", train, FEATURES)
        gate = Gate(rules=[Schema(columns=COLUMNS), Drift(reference="ref", columns=FEATURES)])
        refs = {"ref": json.loads(await c.store.kv_get("ml_references", "ref") or "{}")}
        pool = holdout + read_csv(str(data / "batch_clean.csv")) if (data / "batch_clean.csv").exists() else holdout
        schema_batch = [{**{k: v for k, v in r.items() if k != "monthly_charges"}, "monthly_fee": f"${r['monthly_charges']}"}
                        for r in rng.sample(pool, min(args.size, len(pool)))]
        caught = not gate.evaluate(schema_batch, refs)["rules"][0]["ok"]
        emit("schema_drift_caught", 1.0 if caught else 0.0, goal=1.0)
        hits = alarms = 0
        for _ in range(args.batches):
            clean = [rng.choice(pool) for _ in range(args.size)]
            alarms += not gate.evaluate(clean, refs)["passed"]
            hits += not gate.evaluate(shifted(clean, rng), refs)["passed"]
        emit("shifted_batches_caught", round(hits / args.batches, 3), batches=args.batches, rows=args.size, goal=">= 0.9")
        emit("clean_batches_false_alarms", round(alarms / args.batches, 3), batches=args.batches, rows=args.size, goal="<= 0.05")

        # Detection to a retrained, deployed model.
        t0 = time.perf_counter()
        report = gate.evaluate(drift[:1000], refs)
        assert not report["passed"], "the shipped drift batch should drift"
        cut = 600
        v = reg.train("churn", train + drift[:cut], target="churned", features=FEATURES, holdout=drift[cut:])["version"]
        d = reg.promote("churn", v, drift[cut:], target="churned")
        emit("drift_to_deployed_seconds", round(time.perf_counter() - t0, 2), deployed=d["deployed"],
             candidate=d["candidate"], champion=d["champion"])

        # Gate overhead per 10,000 rows (all rules of the example's gate).
        big = [dict(rng.choice(pool), customer_id=f"X{i}") for i in range(10_000)]
        full = Gate(rules=[Schema(columns=COLUMNS), Unique(columns=["customer_id"]), Range(column="monthly_charges", min=0),
                           Nulls(column="plan"), Drift(reference="ref", columns=FEATURES)])
        t0 = time.perf_counter()
        full.evaluate(big, refs)
        emit("gate_seconds_per_10k_rows", round(time.perf_counter() - t0, 3), rules=len(full.rules))


def _square(input: int) -> int:
    return input * input


def _fit(rows: list[dict], holdout: list[dict]) -> float:
    from podium.ml._registry import Registry as _Reg

    reg = _Reg(f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
    return float(reg.train("churn", rows, target="churned", features=FEATURES, holdout=holdout)["metrics"]["roc_auc"])


async def ray_figures(data: Path, runs: int) -> None:
    """The same one-step workflow in-process and on Ray (a local Ray on 127.0.0.1): wall time per run."""
    if importlib.util.find_spec("ray") is None:
        emit("ray_step_overhead_ms", None, skipped="Ray is not installed: pip install 'podium[ray]'")
        return
    here, there = Workflow("square-here"), Workflow("square-on-ray")
    here.step(_square, id="square")
    there.step(_square, id="square", executor="ray")
    train, holdout = read_csv(str(data / "train.csv")), read_csv(str(data / "holdout.csv"))
    fit_here, fit_there = Workflow("fit-here"), Workflow("fit-on-ray")
    fit_here.step(lambda input: _fit(*input), id="fit")
    fit_there.step(lambda input: _fit(*input), id="fit", executor="ray")
    async with Client(f"sqlite:///{tempfile.mkdtemp()}/podium.db") as c:
        t0 = time.perf_counter()
        await c.run(there, 2)  # starts the local Ray and the results actor
        emit("ray_first_step_seconds", round(time.perf_counter() - t0, 2), note="includes starting a local Ray")
        times: dict[str, list[float]] = {"here": [], "there": []}
        for i in range(runs):  # interleaved, so load on the machine hits both alike
            for name, wf in (("here", here), ("there", there)):
                t0 = time.perf_counter()
                assert await c.run(wf, i) == i * i
                times[name].append(time.perf_counter() - t0)
        here_ms, there_ms = (statistics.median(times[k]) * 1000 for k in ("here", "there"))
        emit("ray_step_overhead_ms", round(there_ms - here_ms, 1), in_process_run_ms=round(here_ms, 1),
             ray_run_ms=round(there_ms, 1), runs=runs, statistic="median wall time of a one-step run")
        for name, wf in (("in_process", fit_here), ("ray", fit_there)):
            t0 = time.perf_counter()
            auc = await c.run(wf, [train, holdout])
            emit(f"train_step_seconds_{name}", round(time.perf_counter() - t0, 2), roc_auc=round(auc, 4),
                 rows=len(train), note="fit + MLflow log + register, cold process for Ray's worker")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "examples" / "churn" / "data"))
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--runs", type=int, default=30, help="runs per side for the Ray overhead")
    ap.add_argument("--only", choices=["ray"], help="measure only this part")
    args = ap.parse_args()
    if args.only != "ray":
        await loop_figures(args)
    if args.only == "ray" or os.environ.get("PODIUM_BENCH_RAY"):
        await ray_figures(Path(args.data), args.runs)
    else:
        emit("ray_step_overhead_ms", None, skipped="run with --only ray inside a loopback-only namespace (docs/ml.md)")


if __name__ == "__main__":
    asyncio.run(main())
