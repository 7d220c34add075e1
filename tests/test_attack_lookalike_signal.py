"""Attack (sixth session's item, left by the eighth session's reviews): in a store with users, a run
of a file that only calls itself by a deployed workflow's name is held by the strictest of that
name's policy and ``*``'s (its input and outputs are redacted as ``*`` says), but a signal or an
approver's decision sent to it was redacted by its name's policy alone: with ``*`` redacting
payloads and the name's policy not, the customer's e-mail address a signal carried was stored as
sent. The engine now marks such a run before its first step, and what is sent to it is redacted by
the strictest of the two (the stored signal and the decision's digest in the audit log alike)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from podium import Client, Policy, RunStatus
from podium.engine.loading import load_workflow
from podium.governance.audit import payload_hash

FLOW = """
from podium import Workflow

wf = Workflow("intake")


@wf.step
async def ask(ctx, input):
    details = await ctx.wait_for("details")
    decision = await ctx.approval({{"case": 1}}, title="check")
    return {{"seen": bool(details), "approved": decision["approved"], "marker": {marker!r}}}
"""
EMAIL = "alice.smith@example.com"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


async def _users(db: str) -> tuple[str, str]:
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.create_user("bob", ["approver"])
        bob = await admin.create_token("bob")
    return root, bob


async def _until(c: Client, run_id: str, waiting_for: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while True:
        run = await c.get(run_id)
        signals = await c.store.get_signals(run_id)
        if run.status is RunStatus.WAITING and waiting_for not in signals:
            events = await c.store.load_events(run_id)
            if any(waiting_for in (e.data or "") for e in events if str(getattr(e.type, "value", e.type)) == "run_waiting"):
                return
        assert loop.time() < end, f"the run never waited for {waiting_for}"
        await asyncio.sleep(0.01)


async def _send_both(c: Client, approver: Client, run_id: str) -> tuple[str | None, str | None]:
    await _until(c, run_id, "details")
    await c.signal(run_id, "details", {"email": EMAIL})
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while not (asked := [a for a in await approver.approvals() if a["run_id"] == run_id]):
        assert loop.time() < end, "the run never asked for an approval"
        await asyncio.sleep(0.01)
    (request,) = asked
    await approver.decide(run_id, request["name"], approve=True, payload={"case": 1, "contact": EMAIL})
    await c.result(run_id, timeout=30)
    signals = await c.store.get_signals(run_id)
    return signals["details"], signals[request["name"]]


async def test_attack_a_signal_and_a_decision_sent_to_a_look_alike_are_redacted_as_star_says(
    db: str, tmp_path: Path
) -> None:
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(redact=["payloads"]))
        await admin.set_policy("intake", Policy())  # the deployed intake keeps its payloads (set ahead)
    (tmp_path / "mine.py").write_text(textwrap.dedent(FLOW.format(marker="mine")))
    async with Client(db, token=root) as c, Client(db, token=bob) as approver:
        look_alike = await c.start(load_workflow(f"{tmp_path}/mine.py:wf"), None)
        signal, decision = await _send_both(c, approver, look_alike.id)
    assert signal is not None and decision is not None
    assert EMAIL not in signal and EMAIL not in decision, (signal, decision)
    async with Client(db, token=root) as admin:
        (entry,) = [e for e in await admin.audit_log() if e.action == "approval.decide" and e.target == look_alike.id]
        assert entry.details()["decision"] == payload_hash(decision)  # digest of what was stored
        # the deployed workflow of that name keeps what it is sent, as its policy says
        (tmp_path / "deployed").mkdir()
        (tmp_path / "deployed" / "intake.py").write_text(textwrap.dedent(FLOW.format(marker="deployed")))
        await admin.deploy(f"{tmp_path}/deployed/intake.py:wf")
    async with Client(db, token=root) as c, Client(db, token=bob) as approver:
        deployed = await c.start("intake", None)
        signal, decision = await _send_both(c, approver, deployed.id)
    assert signal is not None and EMAIL in signal and decision is not None and EMAIL in decision


async def test_attack_a_look_alikes_mark_deleted_in_the_store_still_holds(db: str, tmp_path: Path) -> None:
    """The tenth attacker review (docs/status.md, "Rows still taken as written, sealed (tenth
    session)"): the mark is a row of the store's key-value table (``runs_not_deployed``). The
    attacker, who can write the database but not the audit key, deletes it while the look-alike
    waits: the signal and the decision sent to it were then redacted by its name's policy alone,
    and the customer's address was stored as sent. The mark is now a signed entry too."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(redact=["payloads"]))
        await admin.set_policy("intake", Policy())
    (tmp_path / "mine.py").write_text(textwrap.dedent(FLOW.format(marker="mine")))
    async with Client(db, token=root) as c, Client(db, token=bob) as approver:
        look_alike = await c.start(load_workflow(f"{tmp_path}/mine.py:wf"), None)
        await _until(c, look_alike.id, "details")
        _unmark(db, look_alike.id)
        signal, decision = await _send_both(c, approver, look_alike.id)
    assert signal is not None and decision is not None
    assert EMAIL not in signal and EMAIL not in decision, (signal, decision)
    async with Client(db, token=root) as admin:
        denied = [e for e in await admin.audit_log() if e.action == "access.denied" and e.target == f"mark:{look_alike.id}"]
        assert denied and "record not backed by the audit log" in (denied[0].data or "")
        assert await admin.store.kv_get("runs_not_deployed", look_alike.id) == "1"  # marked again when it went on
        assert (await admin.verify_audit())[1] is None
        _unmark(db, look_alike.id)  # deleted again, once the run has ended: podium audit verify names it
        _, problem = await admin.verify_audit()
        assert problem is not None and f"run {look_alike.id} is not the deployed workflow" in problem, problem


def _unmark(db: str, run_id: str) -> None:
    """What a writer of the store's database does: delete the run's mark."""
    import sqlite3

    delete = "DELETE FROM kv WHERE ns = 'runs_not_deployed' AND key = ?"
    if db.startswith("sqlite:///"):
        conn = sqlite3.connect(db.removeprefix("sqlite:///"))
        conn.execute(delete, (run_id,))
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(db) as pg:
        pg.execute(delete.replace("?", "%s"), (run_id,))
