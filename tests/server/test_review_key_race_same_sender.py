"""Review of run lineage and leases (2026-12-06, seventh session): the 409 ``idempotency_key_taken``
answer to a sender that lost a race for a key must not reach the sender that owns the key. A client
that retries (a timeout, a load balancer's retry) posts its own key twice at the same moment, to two
servers on one PostgreSQL database: one post starts the run, the other must be answered as a
duplicate of it, never 409. The moment is made as in test_review_key_race.py: a transaction of the
test holds the key's run id until both servers wait behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from podium import Client
from podium.server.routes_runs import idempotent_run_id
from podium.server.triggers import derived_id

from . import flows
from .test_attack_tokens_triggers import _root
from .test_review_key_race import _waiting_on_locks


@pytest.mark.parametrize("surface", ["event", "run"])
async def test_one_sender_racing_itself_on_its_key_gets_the_duplicate_answer(server: Any, pg_url: str, surface: str) -> None:
    """Checked and sound: both posts are by ``bank``; one starts the run, the other is answered as
    its duplicate (202 ``duplicate`` / 201 with ``duplicate: true`` and the same run), one run."""
    root = await _root(pg_url)
    async with Client(pg_url, token=root) as admin:
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("bank", ["operator"], service=True)
        tokens = {n: await admin.create_token(n) for n in ("svc", "bank")}
    key = "inv-4712"
    if surface == "event":
        rid, workflow = derived_id("event", "ticket.created", "tickets", key), "tickets"
    else:
        rid, workflow = idempotent_run_id("run", "", "hello", key), "hello"
    hold = psycopg.connect(pg_url)
    try:
        hold.execute(
            "INSERT INTO runs (id, workflow, version, status, created_at) VALUES (%s, %s, 'x', 'pending', 0)", (rid, workflow)
        )
        async with server(pg_url, workflows=flows.ALL, token=tokens["svc"]) as (_, one), server(
            pg_url, workflows=flows.ALL, token=tokens["svc"]
        ) as (_, two):

            def post(http: Any) -> Any:
                headers = {"Authorization": f"Bearer {tokens['bank']}", "Idempotency-Key": key}
                if surface == "event":
                    sent = http.post("/api/events/ticket.created", headers=headers, json={"id": 1, "subject": "site down"})
                else:
                    sent = http.post("/api/runs", headers=headers, json={"workflow": "hello", "input": {"name": "bank"}})
                return asyncio.ensure_future(sent)

            first, again = post(one), post(two)
            await _waiting_on_locks(pg_url, 2)
            hold.rollback()
            answers = [await first, await again]
            repeat = await post(one)  # and a later retry, once the run exists
    finally:
        hold.close()
    ok = 202 if surface == "event" else 201
    assert [r.status_code for r in [*answers, repeat]] == [ok, ok, ok], [(r.status_code, r.text) for r in [*answers, repeat]]
    if surface == "event":
        assert sorted(len(r.json()["duplicates"]) for r in answers) == [0, 1], [r.json() for r in answers]
        assert repeat.json()["duplicates"] == [rid]
    else:
        assert sorted(r.json()["duplicate"] for r in answers) == [False, True]
        assert {r.json()["run"]["id"] for r in [*answers, repeat]} == {rid} and repeat.json()["duplicate"] is True
