"""Quality gates on a step's output: rules, the four outcomes, durability, audit and metrics."""

from __future__ import annotations

import asyncio
import random

import pytest

pytest.importorskip("scipy", reason="gates need the ml extra: pip install 'podium[ml]'")

from podium import Client, DefinitionError, RunFailed, RunStatus, Workflow
from podium.ml import (
    Anomaly,
    Drift,
    Fresh,
    Gate,
    Nulls,
    Range,
    RowCount,
    Schema,
    Unique,
    quarantined,
    release,
    save_reference,
)

COLUMNS = {"customer_id": "str", "tenure_months": "int", "monthly_charges": "float", "plan": "str"}


def customers(n: int, seed: int = 1, shift: float = 0.0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "customer_id": f"c{i}",
            "tenure_months": rng.randint(1, 72),
            "monthly_charges": round(rng.gauss(60 + shift, 15), 2),
            "plan": rng.choice(["basic", "standard", "premium"]),
        }
        for i in range(n)
    ]


async def _approval(c: Client, run_id: str) -> dict:
    for _ in range(1000):
        if (await c.get(run_id)).status is RunStatus.WAITING:
            [req] = await c.approvals(run_id=run_id)
            return req
        await asyncio.sleep(0.02)
    raise AssertionError("the run never asked a person")


def loader(gate: Gate) -> Workflow:
    wf = Workflow(f"load-{gate.name}")

    @wf.step(gate=gate)
    async def load(input):
        return input

    @wf.step
    async def count(load):
        return len(load)

    return wf


def test_rules_judge_a_table():
    rows = customers(200)
    rows[3]["monthly_charges"] = -5.0
    rows[7]["plan"] = None
    rows[9]["customer_id"] = rows[8]["customer_id"]
    gate = Gate(
        rules=[
            Schema(columns={**COLUMNS, "plan": "str?"}),
            Range(column="monthly_charges", min=0),
            Nulls(column="plan", max_rate=0.0),
            Unique(columns=["customer_id"]),
            RowCount(min=10),
            Anomaly(columns=["monthly_charges"], method="iqr", threshold=3, max_rate=0.05),
        ]
    )
    report = gate.evaluate(rows, {})
    by = {r["rule"]: r for r in report["rules"]}
    assert by["range:monthly_charges"]["bad"] == [3] and not by["range:monthly_charges"]["ok"]
    assert by["nulls:plan"]["bad"] == [7] and "0.5% missing" in by["nulls:plan"]["detail"]
    assert by["unique:customer_id"]["bad"] == [9]
    assert by["schema"]["ok"] and by["row_count"]["ok"] and by["anomaly:iqr"]["ok"]
    assert report["failed"] == ["range:monthly_charges", "nulls:plan", "unique:customer_id"]

    drifted = [{**r, "tenure_months": str(r["tenure_months"]), "region": "eu"} for r in customers(5)]
    bad = Gate(rules=[Schema(columns=COLUMNS)]).evaluate(drifted, {})["rules"][0]
    assert not bad["ok"] and "1 column(s) the contract does not name" in bad["detail"] and "is not int" in bad["detail"]
    stale = Gate(rules=[Fresh(column="at", max_age=60)]).evaluate([{"at": "2020-01-01T00:00:00Z"}], {})
    assert not stale["passed"]


def test_a_gate_is_checked_when_defined():
    with pytest.raises(DefinitionError, match="quarantine.*whole table"):
        RowCount(min=1, on="quarantine")
    with pytest.raises(DefinitionError, match="not one of halt"):
        Range(column="x", on="explode")
    with pytest.raises(DefinitionError, match="rule 1: gate rule 'ranges' is not one of"):
        Gate.from_spec({"rules": [{"rule": "ranges"}]}, "step 'x'")
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="gate must be"):
        wf.step(id="s", gate="strict")(lambda: 1)


async def test_quarantine_sets_bad_rows_aside_durably_and_the_rest_flows(store_url):
    rows = customers(50)
    rows[4]["monthly_charges"] = 9999.0
    rows[11]["monthly_charges"] = -1.0
    wf = loader(Gate(name="q", rules=[Range(column="monthly_charges", min=0, max=500, on="quarantine")]))
    async with Client(store_url) as c:
        handle = await c.start(wf, rows)
        assert await c.result(handle.id, timeout=30) == 48
        [entry] = await quarantined(c.store, workflow=wf.name)
        assert [r["customer_id"] for r in entry["rows"]] == ["c4", "c11"]
        assert "outside [0, 500]" in entry["reasons"]["range:monthly_charges"]
        history = await c.history(handle.id)
        assert any(s.step == "load/gate:q" for s in history.steps)
        audit = [a for a in await c.audit_log() if a.action == "gate.check" and a.target == handle.id]
        assert len(audit) == 1 and audit[0].details()["failed"] == ["range:monthly_charges"]
        # Replay: the fixed rows run again; the quarantine is empty afterwards.
        fixed = [{**r, "monthly_charges": 80.0} for r in await release(c.store, entry["key"])]
        assert await c.run(wf, fixed) == 2
        assert await quarantined(c.store, workflow=wf.name) == []


async def test_halt_parks_the_run_with_a_report_until_a_person_accepts(store_url):
    rows = customers(20)
    rows[2]["tenure_months"] = "twelve"
    wf = loader(Gate(name="contract", rules=[Schema(columns=COLUMNS)], role="data-steward"))
    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf, rows)
        req = await _approval(c, handle.id)
        assert "data gate 'contract' halted step 'load'" in req["title"] and "row 2" in req["title"]
        assert req["role"] == "data-steward"
        [failed] = req["payload"]["failed"]
        assert failed["examples"][0]["tenure_months"] == "twelve"
        fixed = [{**r, "tenure_months": 12} if r["tenure_months"] == "twelve" else r for r in rows][:19]
        await c.decide(handle.id, req["name"], approve=True, payload={"rows": fixed})
        assert await c.result(handle.id, timeout=30) == 19

        rejected = await c.start(wf, rows)
        req = await _approval(c, rejected.id)
        await c.decide(rejected.id, req["name"], approve=False, comment="upstream export is broken")
        with pytest.raises(RunFailed, match="rejected the data: upstream export is broken"):
            await c.result(rejected.id, timeout=30)


async def test_drift_against_a_stored_reference_halts_or_warns():
    async with Client("memory://") as c:
        await save_reference(c.store, "customers", customers(2000, seed=3))
        strict = loader(Gate(name="drift", rules=[Drift(reference="customers")], timeout=0.05, on_timeout="reject"))
        clean = await c.start(strict, customers(400, seed=4))
        assert await c.result(clean.id, timeout=30) == 400  # a clean batch passes
        handle = await c.start(strict, customers(400, seed=5, shift=25))
        req = await _approval(c, handle.id)
        assert "drift in monthly_charges (PSI" in req["title"]
        await c.decide(handle.id, req["name"], approve=True)
        assert await c.result(handle.id, timeout=30) == 400
        lenient = loader(Gate(name="warn", rules=[Drift(reference="customers", on="warn")]))
        assert await c.run(lenient, customers(400, seed=6, shift=25)) == 400


async def test_gate_results_reach_metrics():
    pytest.importorskip("fastapi")
    from podium.server.metrics import Metrics

    rows = customers(30)
    rows[0]["monthly_charges"] = -3
    wf = loader(Gate(name="m", rules=[Range(column="monthly_charges", min=0, on="quarantine"), RowCount(min=1, on="warn")]))
    async with Client("memory://") as c:
        metrics = Metrics()
        metrics.attach(c)
        assert await c.run(wf, rows) == 29
        text = await metrics.render()
    assert 'podium_gate_checks_total{outcome="quarantine",result="fail",rule="range:monthly_charges",step="load",workflow="load-m"} 1' in text
    assert 'podium_gate_quarantined_rows_total{step="load",workflow="load-m"} 1' in text


async def test_business_metrics_reach_metrics_once_per_step():
    pytest.importorskip("fastapi")
    from podium.server.metrics import Metrics

    wf = Workflow("kpi")

    @wf.step
    async def report(ctx):
        await ctx.metric("retention_rate", 0.81, group="treated")
        await ctx.metric("retention_actions", 3, kind="counter")
        with pytest.raises(ValueError, match="metric 'bad name'"):
            await ctx.metric("bad name", 1)
        return "ok"

    async with Client("memory://") as c:
        metrics = Metrics()
        metrics.attach(c)
        assert await c.run(wf) == "ok"
        assert await c.run(wf) == "ok"
        text = await metrics.render()
    assert 'podium_business_retention_rate{group="treated",workflow="kpi"} 0.81' in text
    assert "# TYPE podium_business_retention_rate gauge" in text
    # A counter's sample ends in _total (prometheus-client renders it; values print as 6.0).
    assert 'podium_business_retention_actions_total{workflow="kpi"} 6' in text
