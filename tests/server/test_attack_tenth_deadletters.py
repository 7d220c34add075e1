"""The tenth attacker review (2026-12-07): dead letters written or edited in the store.

The attacker can write the database (the SQLite file, a PostgreSQL account) but does not hold the
audit key, kept outside it. A dead letter is replayed as whoever replays it, with the workflow and
payload its row holds: a row the attacker wrote, or edited, started the attacker's run under an
operator's name. Each test failed on the code before its fix (docs/status.md, "Rows still taken as
written, sealed (tenth session)")."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client

from . import flows


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


def sql(url: str, statement: str, *args: object) -> list[tuple[Any, ...]]:
    """What a writer of the store's database does (``?`` placeholders)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        rows = conn.execute(statement, args).fetchall()
        conn.commit()
        conn.close()
        return rows
    import psycopg

    with psycopg.connect(url) as pg:
        cur = pg.execute(statement.replace("?", "%s"), args)
        return cur.fetchall() if cur.description else []


def put_row(url: str, ns: str, key: str, value: str) -> None:
    sql(url, "DELETE FROM kv WHERE ns = ? AND key = ?", ns, key)
    sql(url, "INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)", ns, key, value, time.time())


def row(url: str, ns: str, key: str) -> str:
    ((value,),) = sql(url, "SELECT value FROM kv WHERE ns = ? AND key = ?", ns, key)
    return str(value)


async def _root(db: str) -> str:
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        return await setup.create_token("root")


async def _letters(db: str, root: str, server: Any) -> Any:
    """A server on ``db`` whose kill switch on ``tickets`` turned two events into dead letters."""
    async with Client(db, token=root) as admin:
        await admin.set_switch("workflow", "tickets", mode="pause", reason="incident")
    return server(db, workflows=flows.TRIGGERS, token=root)


async def test_attack_a_dead_letter_written_or_edited_in_the_store_is_not_replayed(server: Any, db: str) -> None:
    """The attacker writes a dead letter of their own (a copy of a real one under another id, and
    one made up) and edits the payload of a real one; an operator replays the dead letters after
    the incident: each started its run, as the operator, with the attacker's payload."""
    root = await _root(db)
    headers = {"Authorization": f"Bearer {root}"}
    async with await _letters(db, root, server) as (app, http):
        for key, subject in (("k1", "pay-10"), ("k2", "pay-20")):
            r = await http.post(
                "/api/events/ticket.created", headers={**headers, "Idempotency-Key": key}, json={"id": 1, "subject": subject}
            )
            assert r.status_code == 202 and r.json()["dead_lettered"], r.text
        letters = (await http.get("/api/deadletters", headers=headers)).json()["dead_letters"]
        one, two = (d["id"] for d in sorted(letters, key=lambda d: d["payload"]["subject"]))
        genuine = row(db, "deadletters", one)
        put_row(db, "deadletters", one, genuine.replace("pay-10", "pay-99999"))  # edited
        put_row(db, "deadletters", "copied0000000000000000", row(db, "deadletters", two).replace(two, "copied0000000000000000"))
        made_up = {
            "id": "madeup00000000000000000", "source": "event", "event": "ticket.created", "key": "x", "workflow": "tickets",
            "payload": {"id": 7, "subject": "pay-5000"}, "error": "paused", "error_type": "KillSwitchActive", "ts": time.time(),
        }  # fmt: skip
        put_row(db, "deadletters", made_up["id"], json.dumps(made_up))
        async with Client(db, token=root) as admin:
            await admin.clear_switch("workflow", "tickets")
        await app.state.client.governance.refresh()
        listed = {d["id"]: d for d in (await http.get("/api/deadletters", headers=headers)).json()["dead_letters"]}
        for rid in (one, "copied0000000000000000", "madeup00000000000000000"):
            r = await http.post(f"/api/deadletters/{rid}/replay", headers=headers)
            assert r.status_code == 409, (rid, r.text)
            message = r.json()["error"]["message"]
            assert "not sealed with this store's audit key" in message and "DELETE /api/deadletters" in message, message
            assert await app.state.client.store.get_run(rid) is None
            assert listed[rid]["problem"], listed[rid]  # the list says which may not be replayed
        assert listed[two]["problem"] is None
        put_row(db, "deadletters", one, genuine)  # the row as the engine wrote it replays
        r = await http.post(f"/api/deadletters/{one}/replay", headers=headers)
        assert r.status_code == 200, r.text
        assert (await app.state.client.wait(one, timeout=10)).status.value == "completed"
    async with Client(db, token=root) as admin:
        denied = [e for e in await admin.audit_log() if e.action == "access.denied" and e.target.startswith("deadletter:")]
    assert {e.target for e in denied} == {f"deadletter:{one}", "deadletter:copied0000000000000000", "deadletter:madeup00000000000000000"}
    assert all(e.actor == "root" and "record not backed by the audit log" in (e.data or "") for e in denied)


async def test_attack_a_dropped_dead_letter_put_back_is_not_replayed(server: Any, db: str) -> None:
    """An operator drops a dead letter (a payment the incident held that must not go out); the
    attacker had saved its row and writes it back; the next operator's replay started the run."""
    root = await _root(db)
    headers = {"Authorization": f"Bearer {root}"}
    async with await _letters(db, root, server) as (app, http):
        r = await http.post("/api/events/ticket.created", headers={**headers, "Idempotency-Key": "k1"}, json={"id": 1, "subject": "x"})
        (rid,) = r.json()["dead_lettered"]
        saved = row(db, "deadletters", rid)
        assert (await http.delete(f"/api/deadletters/{rid}", headers=headers)).status_code == 200
        put_row(db, "deadletters", rid, saved)
        async with Client(db, token=root) as admin:
            await admin.clear_switch("workflow", "tickets")
        await app.state.client.governance.refresh()
        r = await http.post(f"/api/deadletters/{rid}/replay", headers=headers)
        assert r.status_code == 409, r.text
        assert "was dropped by root" in r.json()["error"]["message"], r.text
        assert await app.state.client.store.get_run(rid) is None
