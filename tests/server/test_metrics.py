"""Prometheus /metrics: runs, steps, latency histograms, queue depth, events, HTTP requests."""

from __future__ import annotations

from typing import Any

from . import flows
from .test_api import wait_status


async def test_metrics_after_runs(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS) as (_, http):
        rid = (await http.post("/api/runs", json={"workflow": "hello", "input": {}})).json()["run"]["id"]
        await wait_status(http, rid, "completed")
        await http.post("/api/events/ticket.created", json={"id": 1, "subject": "x"})
        text = (await http.get("/metrics")).text
        assert "# TYPE podium_runs_total counter" in text
        assert 'podium_runs_total{status="completed",workflow="hello"} 1' in text
        assert 'podium_steps_total{status="completed",step="greet",workflow="hello"} 1' in text
        assert 'podium_step_duration_seconds_bucket{step="shout",workflow="hello",le="+Inf"} 1' in text
        assert "# TYPE podium_run_duration_seconds histogram" in text
        assert 'podium_events_ingested_total{type="ticket.created"} 1' in text
        assert "podium_queue_depth 0" in text and "podium_dead_letters 0" in text
        assert 'podium_http_requests_total{method="POST",route="/api/runs",status="201"} 1' in text
