"""Review of the scale layer (2026-12-06, seventh session): two senders posting one idempotency key
at the same moment to two servers on one PostgreSQL database. "A key belongs to the sender that used
it first" (docs/server.md): the one whose post did not start the run must be refused (409), not
told "duplicate" with its data never run.

The moment is made, not waited for: a transaction of the test holds the key's run id (inserted,
not committed), so both servers pass their check (no run under the key yet) and then wait behind
it in their own insert; the test sees both wait in ``pg_stat_activity``, then rolls back."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from paused_workers import waiting_on_locks

from podium import Client
from podium.server.routes_runs import idempotent_run_id
from podium.server.triggers import derived_id

from . import flows
from .test_attack_tokens_triggers import _root


async def _waiting_on_locks(url: str, n: int) -> None:
    await waiting_on_locks(url, "the servers' inserts never waited behind the held run id", n, timeout=60)


@pytest.mark.parametrize("surface", ["event", "run"])
async def test_two_senders_racing_on_one_key_the_second_is_refused(server: Any, pg_url: str, surface: str) -> None:
    """Failed before (both surfaces): the sender whose insert lost was answered 202 ``duplicate``
    (an event) or 201 with the other sender's run (``POST /api/runs``), its own data never run."""
    root = await _root(pg_url)
    async with Client(pg_url, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("mallory", ["operator"])
        await admin.create_user("bank", ["operator"], service=True)
        tokens = {n: await admin.create_token(n) for n in ("svc", "mallory", "bank")}
    key = "inv-4711"
    if surface == "event":
        rid, workflow = derived_id("event", "ticket.created", "tickets", key), "tickets"
    else:
        rid, workflow = idempotent_run_id("run", "", "hello", key), "hello"
    hold = psycopg.connect(pg_url)  # a transaction that holds the key's run id
    try:
        hold.execute(
            "INSERT INTO runs (id, workflow, version, status, created_at) VALUES (%s, %s, 'x', 'pending', 0)", (rid, workflow)
        )
        async with server(pg_url, workflows=flows.ALL, token=tokens["svc"]) as (_, one), server(
            pg_url, workflows=flows.ALL, token=tokens["svc"]
        ) as (_, two):

            def post(http: Any, who: str, subject: str) -> Any:
                headers = {"Authorization": f"Bearer {tokens[who]}", "Idempotency-Key": key}
                if surface == "event":
                    sent = http.post("/api/events/ticket.created", headers=headers, json={"id": 1, "subject": subject})
                else:
                    sent = http.post("/api/runs", headers=headers, json={"workflow": "hello", "input": {"name": subject}})
                return asyncio.ensure_future(sent)

            m, b = post(one, "mallory", "mallory's"), post(two, "bank", "site down")
            await _waiting_on_locks(pg_url, 2)
            hold.rollback()
            answers = {"mallory": await m, "bank": await b}
    finally:
        hold.close()
    ok = 202 if surface == "event" else 201
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [ok, 409], {w: (r.status_code, r.text) for w, r in answers.items()}
    loser = next(r for r in answers.values() if r.status_code == 409)
    assert loser.json()["error"]["code"] == "idempotency_key_taken", loser.text
    winner = next(r for r in answers.values() if r.status_code == ok).json()
    assert (winner["runs"] if surface == "event" else [winner["run"]["id"]]) == [rid], winner
