"""``podium worker --health-port``: a real worker process on SQLite, with JSON logs, probed over HTTP
on 127.0.0.1: /healthz, /readyz, and /metrics read with the official parser (and promtool)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import podium

from .prom import families, promtool_check, value

pytest.importorskip("uvicorn", reason="the worker's health port needs the server extra")

ROOT = Path(__file__).resolve().parents[2]
FLOWS = '''
import podium

wf = podium.Workflow("paid")


@wf.step
async def charge(ctx: podium.StepContext, input: dict) -> int:
    await ctx.metric("revenue_cents", input["cents"], kind="counter")
    return input["cents"]


@wf.step
def receipt(charge: int) -> str:
    return f"charged {charge}"
'''


class Worker:
    """A ``podium worker`` subprocess whose stderr lines are read as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "podium.cli", "worker", *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """The first JSON log line for which ``predicate`` holds (every stderr line must be JSON)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (not self.reader.is_alive() and self.lines.empty()):  # stderr closed
                pytest.fail(f"worker: no such log line; exit {self.proc.poll()}; got:\n{''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=min(left, 1))
            except queue.Empty:
                continue
            self.seen.append(line)
            record = json.loads(line)  # JSON logs: every line parses
            if predicate(record):
                return dict(record)

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return self.proc.returncode, out


def start_worker(tmp_path: Path, db: str) -> Worker:
    """``podium worker`` on ``db`` with JSON logs and a health port the OS picks."""
    (tmp_path / "wflows.py").write_text(FLOWS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), "PODIUM_LOG_FORMAT": "json"}
    env.pop("PODIUM_TOKEN", None)
    args = ["--db", db, "--health-port", "0", "--workflow", "wflows:wf", "--concurrency", "4", "--grace", "5"]
    return Worker(args, tmp_path, env)


def load_flows(folder: Path) -> podium.Workflow:
    """The workflow the worker runs, imported here too (to start its runs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("wflows", folder / "wflows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wf: podium.Workflow = module.wf
    return wf


async def test_worker_health_metrics_and_json_logs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    worker = start_worker(tmp_path, db)
    try:
        banner = worker.wait_for(lambda r: "health_port" in r)
        assert banner["logger"] == "podium.worker" and banner["message"].startswith("health on http://127.0.0.1:")
        base = f"http://127.0.0.1:{banner['health_port']}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/healthz")).json() == {"ok": True}
            assert (await http.get("/readyz")).json() == {"ok": True}

            async with podium.Client(db, execute=False) as c:
                handles = [await c.start(load_flows(tmp_path), {"cents": n}) for n in (12_345_678, 40)]
                for h in handles:
                    assert (await c.result(h.id, timeout=60)).startswith("charged ")
            done = worker.wait_for(lambda r: r.get("logger") == "podium.runs" and r.get("status") == "completed")
            assert done["workflow"] == "paid" and done["run_id"] in {h.id for h in handles}

            text = (await http.get("/metrics")).text
            fams = families(text)
            assert value(fams, "podium_worker_claims_total") == 2
            assert value(fams, "podium_runs_total", status="completed", workflow="paid") == 2
            assert value(fams, "podium_steps_total", status="completed", step="receipt", workflow="paid") == 2
            assert value(fams, "podium_business_revenue_cents_total", workflow="paid") == 12_345_718
            assert value(fams, "podium_runs_driving") is not None
            assert value(fams, "podium_worker_concurrency") == 4
            (info,) = fams["podium_worker_info"].samples
            assert info.value == 1 and info.labels["queues"] == "*" and info.labels["owner"].count(":") == 3
            assert "podium_queue_depth" not in fams  # the store's gauges are the API server's
            promtool_check(text)
    finally:
        code, out = worker.stop()
    assert code == 0, "".join(worker.seen)
    assert out == ""  # with JSON logs nothing goes to stdout: every line is a log record on stderr


async def test_worker_readiness_follows_its_store(pg_url: str, tmp_path: Path) -> None:
    """The worker's PostgreSQL database goes away: /readyz answers 503 (the JSON error shape)
    while /healthz stays 200 (the process is alive; restarting it would not bring the store back)."""
    import psycopg

    worker = start_worker(tmp_path, pg_url)
    try:
        banner = worker.wait_for(lambda r: "health_port" in r)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{banner['health_port']}", timeout=60) as http:
            assert (await http.get("/readyz")).status_code == 200
            server, name = pg_url.rsplit("/", 1)
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            r = await http.get("/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_unavailable"
            assert "not ready: the store" in r.json()["error"]["message"]
            assert (await http.get("/healthz")).status_code == 200
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()  # its store is gone: how it stops is not what this test is about
        worker.proc.communicate(timeout=60)


def test_health_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PODIUM_TOKEN", None)
        done = subprocess.run(
            [sys.executable, "-m", "podium.cli", "worker", "--db", f"sqlite:///{tmp_path}/p.db", "--health-port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"--health-port {port}: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
