"""`podium serve` wiring: Settings(alerts=..., otel=..., log_format=...) and the CLI options."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")

import httpx

import podium
from podium.server import Settings, create_app

from .receivers import HookServer

flaky = podium.Workflow("flaky")


@flaky.step
async def charge(input: dict) -> None:
    raise RuntimeError("card declined")


async def test_settings_turn_on_alerts_and_traces(tmp_path: Path) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with HookServer() as hook:
        alerts = tmp_path / "alerts.json"
        alerts.write_text(
            json.dumps(
                {
                    "channels": {"ops": {"type": "webhook", "url": hook.url}},
                    "rules": [{"name": "failures", "kind": "run_failed"}],
                }
            )
        )
        app = create_app(
            Settings(store="memory://", workflows=[flaky], alerts=str(alerts), otel=provider, triggers=False)
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                r = await http.post("/api/runs", json={"workflow": "flaky", "input": {}})
                rid = r.json()["run"]["id"]
                for _ in range(200):
                    if (await http.get(f"/api/runs/{rid}")).json()["run"]["status"] == "failed":
                        break
                    await asyncio.sleep(0.02)
        # Leaving the lifespan waited for the alert to be delivered.
    assert [m["details"]["run_id"] for m in hook.received] == [rid]
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"run flaky", "step charge"} <= names


def podium_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_serve_refuses_a_bad_alerts_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.yaml"
    bad.write_text("rules:\n  - {name: slow, kind: latency_slo}\n")
    proc = podium_cli("serve", "--db", "memory://", "--alerts", str(bad), cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "alerts.yaml: rules[0] (slow)" in proc.stderr and "needs seconds > 0" in proc.stderr
    proc = podium_cli("serve", "--db", "memory://", "--log-format", "xml", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "'xml' is not one of" in proc.stderr
