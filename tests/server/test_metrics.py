"""Prometheus /metrics, read with the official client's parser (and promtool when installed): runs,
steps, latency histograms, queue depth, events, HTTP requests, business figures; exact values for
large counters; OpenMetrics on request; and /readyz.

These used to compare the hand-written text line by line (``... 1``); prometheus-client renders
values as Go floats (``1.0``, ``1.2345678e+07``), so they now compare parsed values."""

from __future__ import annotations

from typing import Any

import pytest

import podium
from podium.server import metrics as metrics_module

from . import flows
from .prom import OPENMETRICS, families, openmetrics_families, promtool_check, value
from .test_api import wait_status

kpi = podium.Workflow("kpi")


@kpi.step
async def report(ctx: podium.StepContext, input: dict) -> str:
    await ctx.metric("tokens_saved", input["n"], kind="counter")
    await ctx.metric("retention_rate", 0.8125, group=input.get("group", "treated"))
    for i in range(input.get("spread", 0)):  # one label set per customer: capped
        await ctx.metric("churn_score", 0.5, customer=str(i))
    return "ok"


async def _run(http: Any, workflow: str, data: Any) -> None:
    rid = (await http.post("/api/runs", json={"workflow": workflow, "input": data})).json()["run"]["id"]
    await wait_status(http, rid, "completed", timeout=30)


async def test_metrics_after_runs(server: Any) -> None:
    async with server("memory://", workflows=[*flows.TRIGGERS, kpi]) as (app, http):
        await _run(http, "hello", {})
        await http.post("/api/events/ticket.created", json={"id": 1, "subject": "x"})
        # 12,345,678 and 12,345,718 both printed 1.23457e+07 when the format was hand-written.
        await _run(http, "kpi", {"n": 12_345_678})
        await _run(http, "kpi", {"n": 40})
        app.state.metrics.inc("podium_tokens_total", 12_345_678, workflow="kpi", model="m", direction="input")
        response = await http.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        fams = families(text)
        assert fams["podium_runs"].type == "counter"  # exposed as podium_runs_total
        assert fams["podium_runs_unfinished"].type == "gauge"  # was podium_runs, which clashed
        assert value(fams, "podium_runs_total", status="completed", workflow="hello") == 1
        assert value(fams, "podium_steps_total", status="completed", step="greet", workflow="hello") == 1
        assert value(fams, "podium_step_duration_seconds_bucket", step="shout", workflow="hello", le="+Inf") == 1
        assert fams["podium_run_duration_seconds"].type == "histogram"
        assert value(fams, "podium_events_ingested_total", type="ticket.created") == 1
        assert value(fams, "podium_queue_depth") == 0 and value(fams, "podium_dead_letters") == 0
        assert value(fams, "podium_runs_unfinished", status="running") is not None
        assert value(fams, "podium_http_requests_total", method="POST", route="/api/runs", status="201") == 3
        assert value(fams, "podium_business_tokens_saved_total", workflow="kpi") == 12_345_718
        assert value(fams, "podium_tokens_total", direction="input", model="m", workflow="kpi") == 12_345_678
        assert value(fams, "podium_business_retention_rate", group="treated", workflow="kpi") == 0.8125
        assert "1.23457e+07" not in text
        promtool_check(text)

        # A scraper that asks for OpenMetrics gets it; its stricter parser accepts it (it refused the
        # old podium_runs / podium_runs_total pair as one name declared twice).
        om = await http.get("/metrics", headers={"Accept": OPENMETRICS})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        parsed = {f.name: f for f in openmetrics_families(om.text)}
        assert {"podium_runs", "podium_runs_unfinished", "podium_business_tokens_saved"} <= set(parsed)


async def test_business_figures_are_capped(server: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """A workflow labelling a figure with data (a customer id per series) cannot grow the server's
    memory and every scrape without bound: past the cap, new label sets are dropped and logged."""
    monkeypatch.setattr(metrics_module, "MAX_BUSINESS_SERIES", 5)
    async with server("memory://", workflows=[kpi]) as (_, http):
        await _run(http, "kpi", {"n": 1, "spread": 8})
        fams = families((await http.get("/metrics")).text)
    series = [s for s in fams["podium_business_churn_score"].samples]
    assert len(series) == 5
    assert "podium_business_churn_score are dropped (more than 5 label sets)" in caplog.text


async def test_business_name_clashes_are_dropped(caplog: Any) -> None:
    """A gauge named like a counter's sample (``x_total`` beside counter ``x``) or a name reported
    as both kinds would make the exposition invalid: the later one is dropped, and logged."""
    business = metrics_module.Business()
    business.record("saved", "counter", 2, {"workflow": "w"})
    business.record("saved_total", "gauge", 1, {"workflow": "w"})
    business.record("saved", "gauge", 1, {"workflow": "w"})
    business.record("rate", "gauge", 0.5, {"workflow": "w", "region": "eu"})
    business.record("rate", "gauge", 0.7, {"workflow": "w"})  # another label set
    assert sorted(business.series) == ["podium_business_rate", "podium_business_saved"]
    assert "clashes with podium_business_saved" in caplog.text and "reported as a gauge" in caplog.text
    from prometheus_client import generate_latest

    class One:
        def collect(self) -> Any:
            return business.families()

    fams = families(generate_latest(One()).decode())  # type: ignore[arg-type]
    assert value(fams, "podium_business_saved_total", workflow="w") == 2
    assert value(fams, "podium_business_rate", region="eu", workflow="w") == 0.5
    assert value(fams, "podium_business_rate", workflow="w") == 0.7


async def test_readyz_follows_the_store(server: Any, tmp_path: Any) -> None:
    async with server(f"sqlite:///{tmp_path}/p.db") as (app, http):
        assert (await http.get("/healthz")).json() == {"ok": True}
        assert (await http.get("/readyz")).json() == {"ok": True}
        store = app.state.client.store
        await store.close()  # the database is gone: not ready, still alive
        try:
            r = await http.get("/readyz")
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "store_unavailable"
            assert "not ready: the store" in r.json()["error"]["message"]
            assert (await http.get("/healthz")).status_code == 200
        finally:
            await store.open()
        assert (await http.get("/readyz")).status_code == 200
