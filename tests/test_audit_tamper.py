"""The attacker's matrix: an attacker who can write the database (but not the audit key file kept
outside it) edits the audit log, the runs table and the event logs directly, on SQLite and on
PostgreSQL. Every edit must be detected by ``verify_audit`` and, for unfinished runs, refused on
resume. What stays out of reach of these checks is listed in docs/governance.md ("What the audit
log protects against, and what it does not")."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podium import Client, RunStatus, StepContext, Workflow
from podium.errors import NonRetryableError
from podium.records import AuditEntry, chain_hash


def chain_body(prev_hash: str, e: AuditEntry) -> bytes:
    """What an entry's hash covers (the attacker knows the format: it is open source)."""
    return f"{prev_hash}\x1f{e.seq}\x1f{e.ts!r}\x1f{e.actor}\x1f{e.action}\x1f{e.target}\x1f{e.data}".encode()


HOLD_INPUT = 21  # the parked run's first step returns 42; the forged value is 999


def _flows() -> list[Workflow]:
    pay = Workflow("pay")

    @pay.step
    async def first(ctx: StepContext, input):
        if input == "boom":
            raise NonRetryableError("card declined")
        return {"amount": input}

    @pay.step
    async def second(ctx: StepContext, first):
        return {"paid": first["amount"]}

    hold = Workflow("hold")

    @hold.step
    async def a(ctx: StepContext, input):
        return input * 2

    @hold.step
    async def b(ctx: StepContext, a):
        got = await ctx.wait_for("go", timeout=3600, default=0)
        return a + got

    return [pay, hold]


class Scenario:
    """A store with finished runs (two completed, one failed) and one run parked on a signal."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: dict[str, str] = {}

    async def build(self) -> None:
        pay, hold = _flows()
        async with Client(self.url, workflows=[pay, hold]) as c:
            self.ids["ok"] = (h := await c.start(pay, 100)).id
            await h.result()
            self.ids["ok2"] = (h := await c.start(pay, 200)).id
            await h.result()
            self.ids["failed"] = (h := await c.start(pay, "boom")).id
            assert (await h.wait()).status is RunStatus.FAILED
            self.ids["held"] = (h := await c.start(hold, HOLD_INPUT)).id
            for _ in range(200):
                if (await c.get(h.id)).status is RunStatus.WAITING:
                    break
                await asyncio.sleep(0.02)
            assert (await c.get(h.id)).status is RunStatus.WAITING
            for _ in range(500):  # the park's anchor is written just after the status changes
                if any(e.action == "run.checkpoint" and e.target == h.id for e in await c.audit_log()):
                    break
                await asyncio.sleep(0.02)
            assert await c.verify_audit() == (len(await c.audit_log()), None)

    # -- raw access, as the attacker has it ------------------------------------------------------

    def sql(self, *statements: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if self.url.startswith("sqlite"):
            db = sqlite3.connect(self.url[len("sqlite:///") :])
            for st in statements:
                rows = db.execute(st, params).fetchall()
            db.commit()
            db.close()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                for st in statements:
                    cur = conn.execute(st.replace("?", "%s"), params)  # type: ignore[arg-type]
                    rows = cur.fetchall() if cur.description else []
        return rows

    def audit(self) -> list[AuditEntry]:
        return [
            AuditEntry(seq=r[0], ts=r[1], actor=r[2], action=r[3], target=r[4], data=r[5], prev_hash=r[6], hash=r[7])
            for r in self.sql("SELECT seq, ts, actor, action, target, data, prev_hash, hash FROM audit ORDER BY seq")
        ]

    def put_entry(self, e: AuditEntry) -> None:
        self.sql(
            "INSERT INTO audit (seq, ts, actor, action, target, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
            params=(e.seq, e.ts, e.actor, e.action, e.target, e.data, e.prev_hash, e.hash),
        )

    def rechain(self, entries: list[AuditEntry], sign: Callable[[str, AuditEntry], str]) -> None:
        """Rewrite the whole log with hashes the attacker can compute."""
        prev = "0" * 64
        for e in entries:
            e.prev_hash = prev
            e.hash = prev = sign(prev, e)
        self.sql("DELETE FROM audit")
        for e in entries:
            self.put_entry(e)

    def append_forged(self, action: str, target: str, data: dict[str, Any], sign: str = "plain") -> None:
        last = self.audit()[-1]
        e = AuditEntry(seq=last.seq + 1, ts=last.ts + 1, actor="memory", action=action, target=target, data=json.dumps(data), prev_hash=last.hash)
        e.hash = _sign(sign, last.hash, e)
        self.put_entry(e)

    def events_of(self, run: str) -> list[tuple[Any, ...]]:
        return self.sql("SELECT seq, type, step, data FROM events WHERE run_id=? ORDER BY seq", params=(self.ids[run],))


ATTACKER_KEY = b"not the real key, which the attacker cannot read...."


def _sign(how: str, prev: str, e: AuditEntry) -> str:
    if how == "plain":  # the legacy unkeyed hash: anyone can compute it
        return chain_hash(prev, e)
    if how == "own-key":  # HMAC under a key of the attacker's, with its own key id
        kid = hashlib.sha256(ATTACKER_KEY).hexdigest()[:12]
        return f"hmac:{kid}:{hmac.new(ATTACKER_KEY, chain_body(prev, e), hashlib.sha256).hexdigest()}"
    # "real-kid": HMAC under the attacker's key, but claiming the real key's id
    real = Path(os.environ["PODIUM_AUDIT_KEY"])
    kid = hashlib.sha256(bytes.fromhex(real.read_text().strip())).hexdigest()[:12] if real.exists() else "0" * 12
    return f"hmac:{kid}:{hmac.new(ATTACKER_KEY, chain_body(prev, e), hashlib.sha256).hexdigest()}"


def _finished_digest_edit(s: Scenario) -> None:
    s.sql("UPDATE events SET data = REPLACE(data, '100', '999') WHERE run_id = ? AND type = 'step_completed'", params=(s.ids["ok"],))


async def _regrow(s: Scenario) -> None:
    """After a truncation, the engine goes on writing: more (genuinely keyed) entries than were cut."""
    pay, hold = _flows()
    async with Client(s.url, workflows=[pay, hold]) as c:
        for i in range(3):
            await c.run(pay, i)


def _forged_redact(s: Scenario, sign: str) -> None:
    from podium.governance.audit import run_digest
    from podium.records import Event

    _finished_digest_edit(s)
    rows = s.sql("SELECT seq, type, ts, step, iteration, idx, attempt, data FROM events WHERE run_id=? ORDER BY seq", params=(s.ids["ok"],))
    events = [Event(run_id=s.ids["ok"], seq=r[0], type=r[1], ts=r[2], step=r[3], iteration=r[4], index=r[5], attempt=r[6], data=r[7]) for r in rows]
    s.append_forged("run.redact", s.ids["ok"], {"digest": run_digest(events), "events": len(events), "reason": "podium forget"}, sign)


def _edit_and_rechain(s: Scenario, sign: str) -> None:
    entries = s.audit()
    entries[1].actor = "mallory"
    s.rechain(entries, lambda prev, e: _sign(sign, prev, e))


#: name -> (the edit, whether the held (unfinished) run must then refuse to resume)
ATTACKS: dict[str, tuple[Callable[[Scenario], Any], bool]] = {
    "audit: edit an entry's actor": (lambda s: s.sql("UPDATE audit SET actor='mallory' WHERE seq=2"), False),
    "audit: edit a run.end's details": (lambda s: s.sql("UPDATE audit SET data=REPLACE(data, 'completed', 'cancelled') WHERE action='run.end'"), False),
    "audit: delete an entry in the middle": (lambda s: s.sql("DELETE FROM audit WHERE seq=3"), False),
    "audit: swap two entries": (lambda s: s.sql("UPDATE audit SET seq=-2 WHERE seq=2", "UPDATE audit SET seq=2 WHERE seq=3", "UPDATE audit SET seq=3 WHERE seq=-2"), False),
    "audit: append a forged entry (plain SHA-256)": (lambda s: s.append_forged("user.put", "user:mallory", {"roles": ["admin"]}), False),
    "audit: append a forged entry (attacker's key)": (lambda s: s.append_forged("user.put", "user:mallory", {}, "own-key"), False),
    "audit: append a forged entry (real key id, wrong key)": (lambda s: s.append_forged("user.put", "user:mallory", {}, "real-kid"), False),
    "audit: delete the last entries": (lambda s: s.sql("DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)"), False),
    "audit: delete the whole log": (lambda s: s.sql("DELETE FROM audit"), False),
    "audit: delete the last entries, then the engine writes more": (lambda s: (s.sql("DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)"), _regrow(s))[1], False),
    "audit: edit, then rebuild the chain as plain SHA-256": (lambda s: _edit_and_rechain(s, "plain"), False),
    "audit: edit, then rebuild the chain with the attacker's key": (lambda s: _edit_and_rechain(s, "own-key"), False),
    "audit: edit, then rebuild the chain claiming the real key id": (lambda s: _edit_and_rechain(s, "real-kid"), False),
    "runs: edit a finished run's input": (lambda s: s.sql("UPDATE runs SET input='555' WHERE id=?", params=(s.ids["ok"],)), False),
    "runs: edit a finished run's output": (lambda s: s.sql("UPDATE runs SET output='{\"paid\": 1}' WHERE id=?", params=(s.ids["ok"],)), False),
    "runs: edit a finished run's status": (lambda s: s.sql("UPDATE runs SET status='failed' WHERE id=?", params=(s.ids["ok"],)), False),
    "runs: edit a failed run's error": (lambda s: s.sql("UPDATE runs SET error='{\"message\": \"ok\"}' WHERE id=?", params=(s.ids["failed"],)), False),
    "runs: delete a finished run": (lambda s: s.sql("DELETE FROM events WHERE run_id=?", "DELETE FROM runs WHERE id=?", params=(s.ids["ok2"],)), False),
    "events: edit a finished run's step output": (_finished_digest_edit, False),
    "events: delete a finished run's event": (lambda s: s.sql("DELETE FROM events WHERE run_id=? AND type='step_completed' AND step='second'", params=(s.ids["ok"],)), False),
    "events: add an event after a run ended": (lambda s: s.sql("INSERT INTO events (run_id, seq, type, ts, step, iteration, attempt, data) SELECT run_id, seq + 1, type, ts, step, iteration, attempt, data FROM events WHERE run_id=? AND seq = (SELECT MAX(seq) FROM events WHERE run_id=?)", params=(s.ids["ok"], s.ids["ok"])), False),
    "forged run.prune hiding a deleted run (plain hash)": (lambda s: (s.sql("DELETE FROM events WHERE run_id=?", "DELETE FROM runs WHERE id=?", params=(s.ids["ok2"],)), s.append_forged("run.prune", s.ids["ok2"], {"cutoff": 0})), False),
    "forged run.redact hiding an edit (plain hash)": (lambda s: _forged_redact(s, "plain"), False),
    "forged run.redact hiding an edit (real key id, wrong key)": (lambda s: _forged_redact(s, "real-kid"), False),
    "unfinished: edit a recorded step output, then resume": (lambda s: s.sql("UPDATE events SET data = REPLACE(data, '42', '999') WHERE run_id=? AND type='step_completed'", params=(s.ids["held"],)), True),
    "unfinished: edit the run's input, then resume": (lambda s: s.sql("UPDATE runs SET input='499' WHERE id=?", params=(s.ids["held"],)), True),
    "unfinished: delete its events, then resume": (lambda s: s.sql("DELETE FROM events WHERE run_id=? AND seq > 1", params=(s.ids["held"],)), True),
    "unfinished: mark it completed with a forged output": (lambda s: s.sql("UPDATE runs SET status='completed', output='999' WHERE id=?", params=(s.ids["held"],)), False),
}


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tamper.db"
    return request.getfixturevalue("pg_url")


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_tampering_is_detected(backend_url: str, attack: str) -> None:
    s = Scenario(backend_url)
    await s.build()
    edit, resume_refused = ATTACKS[attack]
    result = edit(s)
    if asyncio.iscoroutine(result):
        await result
    pay, hold = _flows()
    async with Client(backend_url, workflows=[pay, hold], recover=False) as c:
        problem = (await c.verify_audit())[1]
        assert problem, f"not detected: {attack}"
    if resume_refused:
        async with Client(backend_url, workflows=[pay, hold]) as c:
            await c.signal(s.ids["held"], "go", 1)
            run = await c.wait(s.ids["held"], timeout=20)
        assert run.status is RunStatus.FAILED, f"{attack}: the run resumed and ended {run.status} with {run.output}"
        assert run.error and "history does not match its audit digest" in run.error
        assert run.output is None
