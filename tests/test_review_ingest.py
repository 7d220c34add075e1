"""Review of the scale layer (2026-12-06, seventh session): event ingest against a real ``podium
serve`` killed with SIGKILL. Posts go out concurrently (single events and batches, every key sent
twice); the server is killed as soon as a chosen number of answers came back, with others still in
flight. Every event that was answered 202 must have its run (an answer is given only once the run
is durable: group commit must not acknowledge before its commit), each key exactly one run, and the
audit log of the killed server (a writer that crashed between anchors) must verify."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium import Client
from podium.server.triggers import derived_id

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ingest.db"
    return str(request.getfixturevalue("pg_url"))


def _serve(url: str, execute: bool) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    args = ["serve", "--db", url, "--port", str(port), "--log-level", "warning", "-w", "tests.server.flows:tickets"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", *args, *([] if execute else ["--no-execute"])],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=5) as http:
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "podium serve did not get ready"
            time.sleep(0.05)


def _event(i: int) -> dict[str, Any]:
    return {"type": "ticket.created", "idempotency_key": f"key-{i}", "payload": {"id": i, "subject": f"s{i}"}}


@pytest.mark.parametrize("execute", [False, True], ids=["no-execute", "executing"])
async def test_no_acknowledged_event_is_lost_when_the_server_is_killed(url: str, execute: bool) -> None:
    proc, base = _serve(url, execute)
    acked: list[str] = []
    enough = asyncio.Event()
    n_single, n_batches, per_batch = 60, 12, 10
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def single(i: int) -> None:
                e = _event(i)
                for _ in range(2):  # a sender that retries with the same key
                    r = await http.post(f"/api/events/{e['type']}", json=e["payload"], headers={"Idempotency-Key": e["idempotency_key"]})
                    if r.status_code == 202:
                        acked.append(e["idempotency_key"])
                    if len(acked) >= 40:
                        enough.set()

            async def batch(b: int) -> None:
                events = [_event(1000 + b * per_batch + j) for j in range(per_batch)]
                for _ in range(2):
                    r = await http.post("/api/events", json={"events": events + events[:2]})
                    if r.status_code == 202:
                        acked.extend(e["idempotency_key"] for e in events)
                    if len(acked) >= 40:
                        enough.set()

            posts = [asyncio.ensure_future(single(i)) for i in range(n_single)]
            posts += [asyncio.ensure_future(batch(b)) for b in range(n_batches)]
            await asyncio.wait([asyncio.ensure_future(enough.wait()), *posts], return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait_for(enough.wait(), 60)
            os.kill(proc.pid, signal.SIGKILL)  # answers are still in flight
            known = list(acked)  # every answer received before the kill
            await asyncio.gather(*posts, return_exceptions=True)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert known
    async with Client(url, recover=False) as c:
        for key in set(known):
            rid = derived_id("event", "ticket.created", "tickets", key)
            assert await c.store.get_run(rid) is not None, f"acknowledged event {key} has no run"
        starts = [e for e in await c.audit_log(limit=100_000) if e.action == "run.start"]
        per_run: dict[str, int] = {}
        for e in starts:
            per_run[e.target] = per_run.get(e.target, 0) + 1
        assert set(per_run.values()) == {1}, "a key started its run twice"
        runs = await c.store.list_runs(limit=100_000)
        assert len(runs) == len(per_run)  # every run has its start anchor, no run two
        assert await c.verify_audit() == (len(await c.audit_log(limit=100_000)), None)
