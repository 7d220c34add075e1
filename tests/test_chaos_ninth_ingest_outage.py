"""Chaos review (ninth session): ``podium serve`` ingesting events while PostgreSQL kills its
sessions (a restart, a failover). A sender that is not answered 202 sends again with the same
idempotency key. Every event must end with exactly one run, a refusal must be a 503 that says the
store is unavailable (not a 500), and the audit log must verify.

Failed before: an event whose run's start failed on the store was dead-lettered and answered 202,
so the sender went away satisfied while no run existed (the event waited in the dead letters, in the
store that had just failed, for someone to replay it by hand)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import psycopg
from paused_workers import waiting_on_locks
from test_review_ingest import _event, _serve

from podium import Client
from podium.server.triggers import derived_id

APP = "podium_chaos_serve"


def _terminate(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (APP,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_an_event_whose_start_dies_in_flight_is_refused_not_dead_lettered(pg_url: str) -> None:
    proc, base = _serve(f"{pg_url}?application_name={APP}", execute=False)
    answers: Counter[int] = Counter()
    refusals: list[dict[str, Any]] = []
    n = 6
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

            async def send(i: int) -> dict[str, Any]:
                e = _event(i)
                for _ in range(50):
                    r = await http.post(
                        f"/api/events/{e['type']}", json=e["payload"], headers={"Idempotency-Key": e["idempotency_key"]}
                    )
                    answers[r.status_code] += 1
                    if r.status_code == 202:
                        return dict(r.json())
                    refusals.append(r.json())
                    await asyncio.sleep(0.05)  # a sender's back-off
                raise AssertionError(f"event {i} never accepted: {refusals[-3:]}")

            for i in range(n - 1):  # accepted as usual
                await send(i)
            with psycopg.connect(pg_url) as locker:  # the last event's start waits behind this lock...
                locker.execute("LOCK TABLE runs IN EXCLUSIVE MODE")
                last = asyncio.ensure_future(send(n - 1))
                await waiting_on_locks(pg_url, "the event's start never waited for the lock")
                assert _terminate(pg_url) >= 1  # ...and its session is killed in flight
                locker.rollback()
            answer = await last
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert answer["dead_lettered"] == [] and len(answer["runs"]) == 1, answer  # before: dead-lettered, 202
    assert answers[503] >= 1 and set(answers) == {202, 503}, (answers, refusals[:5])  # never a 500
    assert all(r["error"]["code"] == "store_unavailable" for r in refusals), refusals[:5]
    async with Client(pg_url, recover=False) as c:
        for i in range(n):
            rid = derived_id("event", "ticket.created", "tickets", f"key-{i}")
            assert await c.store.get_run(rid) is not None, i
        assert len(await c.store.list_runs(limit=100)) == n  # one run per key
        starts = Counter(e.target for e in await c.audit_log(limit=100_000) if e.action == "run.start")
        assert set(starts.values()) == {1} and len(starts) == n
        assert (await c.verify_audit())[1] is None
