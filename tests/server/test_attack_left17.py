"""The sixteenth session's left items on the server's surfaces (seventeenth session), each an attack
that failed before its fix.

1. The single event's ``Idempotency-Key`` header had no length limit of its own (uvicorn's header
   limit bounded it, some tens of kilobytes), while a batch's keys are capped at 200 characters:
   the key is kept with the run it starts (audited, compared on every post of it). The same cap
   holds for the header now, on events, a workflow's webhook and ``POST /api/runs``.
2. A dead letter kept for a broker message that could not be read (nested too deep, or over the
   trigger's ``max_message_bytes``) has no payload: replaying it started the workflow with ``null``
   as its input (a run nobody sent). The replay is refused now (409 ``unreadable``), saying the
   message could not be read and to discard the letter; the list says so in ``problem``.
3. ``GET /api/runs/stream`` (the runs list's live stream) shadowed a run whose id is exactly
   ``stream`` (an id chosen in Python): its page answered with the stream of every run instead. Such
   an id is refused at start now (every surface starts through ``Client.start``), and a test holds
   the reserved ids to the literal routes under ``/api/runs/``.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import podium

from . import flows
from .test_webhooks import FLOW as HOOK


async def test_attack_a_single_events_idempotency_key_of_any_length(server: Any, store_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "tickets.yaml"
    flow.write_text(HOOK)  # POST /hooks/tickets (and PUT /hooks/tickets/close)
    long_key = "k" * 201
    async with server(store_url, workflows=[*flows.TRIGGERS, str(flow)]) as (_, http):
        posts = {
            "event": lambda key: http.post(
                "/api/events/ticket.created", json={"id": 1, "subject": "s"}, headers={"Idempotency-Key": key}
            ),
            "webhook": lambda key: http.post("/hooks/tickets", json={"subject": "s"}, headers={"Idempotency-Key": key}),
            "run": lambda key: http.post(
                "/api/runs", json={"workflow": "tickets", "input": {"id": 1, "subject": "s"}}, headers={"Idempotency-Key": key}
            ),
        }
        for what, post in posts.items():
            r = await post(long_key)
            assert r.status_code == 422, (what, r.status_code, r.text[:300])
            message = r.json()["error"]["message"]
            assert "Idempotency-Key" in message and "200" in message and "201" in message, (what, message)
            ok = await post("k" * 200)  # the batch's limit: taken
            assert ok.status_code in (201, 202), (what, ok.text[:300])
        body_key = await http.post(
            "/api/runs", json={"workflow": "tickets", "input": {"id": 1, "subject": "s"}, "idempotency_key": long_key}
        )
        assert body_key.status_code == 422 and "idempotency_key" in body_key.text, body_key.text[:300]
        runs = (await http.get("/api/runs", params={"limit": 500})).json()["runs"]
        assert len(runs) == 3  # one per surface, none for a refused key


NOINPUT = podium.Workflow("orders17")


@NOINPUT.step
async def handle(ctx: Any, input: Any) -> Any:
    return {"got": input}


async def test_attack_replaying_an_unreadable_messages_dead_letter_starts_a_run_with_null(
    server: Any, store_url: str
) -> None:
    import redis.asyncio as aioredis

    from podium.connectors import Consumer, open_connector
    from podium.storage._letters import DEADLETTERS, seal

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"Redis does not answer on 127.0.0.1:6379 ({exc}): start redis-server")
    stream = f"left17-{uuid.uuid4().hex[:10]}"
    r = aioredis.from_url("redis://127.0.0.1:6379/0")
    conn = open_connector("redis", url="redis://127.0.0.1:6379/0")
    try:
        async with server(store_url, workflows=[NOINPUT]) as (app, http):
            client = app.state.client
            source = {"stream": stream, "deliver": "all", "claim_idle": 0.2, "max_message_bytes": 150_000}
            consumer = Consumer(client, conn, workflow=NOINPUT.name, source=source, name="bus")
            await consumer.poll(timeout=0.2)
            await r.xadd(stream, {"payload": "[" * 50_000 + "]" * 50_000, "message_id": "deep-1"})
            await r.xadd(stream, {"payload": json.dumps({"n": "x" * 200_000}), "message_id": "big-2"})
            for _ in range(20):
                await consumer.poll(timeout=0.3)
                if consumer.dead_lettered == 2:
                    break
            # and one kept by the previous release, without the mark (its error says why)
            old = {
                "id": "old-unreadable", "source": "redis:bus", "event": stream, "key": "deep-0", "workflow": NOINPUT.name,
                "payload": None, "error": f"bus: message 'deep-0' from {stream!r}: unreadable message: its JSON body "
                "(100,000 characters) is nested deeper than the JSON reader allows; the publisher should send flatter JSON",
                "error_type": "ConnectorError", "ts": time.time(),
            }  # fmt: skip
            await client.store.kv_put(DEADLETTERS, old["id"], seal(client.store, old))
            listed = (await http.get("/api/deadletters")).json()["dead_letters"]
            assert len(listed) == 3, listed
            for letter in listed:
                assert letter["payload"] is None
                assert letter["problem"] and "could not be read" in letter["problem"], letter
                r2 = await http.post(f"/api/deadletters/{letter['id']}/replay")
                assert r2.status_code == 409, (letter["id"], r2.text[:300])
                error = r2.json()["error"]
                assert error["code"] == "unreadable", error
                assert "could not be read" in error["message"] and f"DELETE /api/deadletters/{letter['id']}" in error["message"]
                assert await client.store.get_run(letter["id"]) is None  # no run with a null input
            assert len((await http.get("/api/deadletters")).json()["dead_letters"]) == 3  # kept, to be discarded
            gone = await http.delete(f"/api/deadletters/{listed[0]['id']}")
            assert gone.status_code == 200
    finally:
        await conn.close()
        await r.delete(stream)
        await r.aclose()


async def test_attack_a_run_named_like_a_literal_route_is_never_reached(server: Any, store_url: str) -> None:
    from podium.engine.client import RESERVED_RUN_IDS

    async with server(store_url, workflows=[NOINPUT]) as (app, http):
        client = app.state.client
        paths = app.openapi()["paths"]  # every route (also those of routers mounted by others)
        literal = {p.removeprefix("/api/runs/") for p in paths if p.startswith("/api/runs/") and "{" not in p}
        assert literal and literal <= RESERVED_RUN_IDS, literal  # every literal route's id is refused
        with pytest.raises(podium.ConfigError) as refused:
            await client.start(NOINPUT, {}, run_id="stream")
        message = str(refused.value)
        assert "'stream'" in message and "GET /api/runs/stream" in message and "another id" in message, message
        assert await client.store.get_run("stream") is None
        h = await client.start(NOINPUT, {}, run_id="streams")  # only the exact segment is reserved
        assert (await http.get("/api/runs/streams")).json()["run"]["id"] == h.id
