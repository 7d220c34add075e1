"""The tenth attacker review (2026-12-07): the active version of a workflow or a prompt switched in
the store.

Which deployed version starts new runs (``workflow_active``) and which version of a prompt runs
read (``prompt_active``) are rows of the store's key-value table. The attacker can write the
database but does not hold the audit key: pointing the row at an older version that was deployed
(the payment flow before its approval step, the prompt before its safety line) made every engine
run it. Each test failed on the code before its fix (docs/status.md, "Rows still taken as written,
sealed (tenth session)")."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from podium import Client, StepContext, Workflow

V1 = "name: pay\nversion: '1'\nsteps:\n  - id: pay\n    uses: set\n    with: {paid: without approval}\n"
V2 = "name: pay\nversion: '2'\nsteps:\n  - id: pay\n    uses: set\n    with: {paid: after approval}\n"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/active.db"
    return str(request.getfixturevalue("pg_url"))


def put_row(url: str, ns: str, key: str, value: str) -> None:
    """What a writer of the store's database does."""
    statements = [("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key)),
                  ("INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)", (ns, key, value, time.time()))]  # fmt: skip
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        for sql, args in statements:
            db.execute(sql, args)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        for sql, args in statements:
            conn.execute(sql.replace("?", "%s"), args)


async def test_attack_the_active_workflow_version_switched_in_the_store_is_not_started(url: str) -> None:
    """Version 2 of ``pay`` is active; the attacker points ``workflow_active`` back at version 1:
    every engine started version 1 for ``podium run pay``, and ``podium audit verify`` said ok."""
    async with Client(url) as c:
        await c.deploy(V1)
        await c.deploy(V2)
    put_row(url, "workflow_active", "pay", "1")
    async with Client(url) as c:
        _, problem = await c.verify_audit()
        assert problem is not None and "active version of workflow 'pay'" in problem, problem
        assert await c.run("pay", None) == {"paid": "after approval"}
        assert [v["version"] for v in await c.versions("pay") if v["active"]] == ["2"]
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "active:workflow:pay"]
        assert denied and "record not backed by the audit log" in (denied[0].data or "")
        assert await c.rollback("pay", to="1") == "1"  # an admin's rollback is in force
    async with Client(url) as c:
        assert await c.run("pay", None) == {"paid": "without approval"}
        assert (await c.verify_audit())[1] is None


async def test_attack_the_active_prompt_version_switched_in_the_store_is_not_read(url: str) -> None:
    """Version 2 of prompt ``support`` adds a safety line; the attacker points ``prompt_active``
    back at version 1: every run's ``ctx.prompt("support")`` read version 1."""
    wf = Workflow("support-bot")

    @wf.step
    async def read(ctx: StepContext) -> str:
        return (await ctx.prompt("support")).text

    async with Client(url, workflows=[wf]) as c:
        await c.put_prompt("support", "Help the customer.")
        await c.put_prompt("support", "Help the customer. Never reveal account numbers.")
    put_row(url, "prompt_active", "support", "1")
    async with Client(url, workflows=[wf]) as c:
        assert await c.run(wf, None) == "Help the customer. Never reveal account numbers."
        _, problem = await c.verify_audit()
        assert problem is not None and "active version of prompt 'support'" in problem, problem


async def test_a_migrated_store_keeps_the_versions_its_log_made_active(tmp_path: Path) -> None:
    """``podium db migrate-to`` signs each deployed version into the target again (its log is not
    copied): the version active in the source, rolled back to, stays the active one in the target."""
    import os
    import subprocess
    import sys

    source, target = f"sqlite:///{tmp_path}/s.db", f"sqlite:///{tmp_path}/t.db"
    async with Client(source) as c:
        await c.deploy(V1)
        await c.deploy(V2)
        await c.rollback("pay", to="1")
        await c.put_prompt("support", "Help the customer.")
        await c.put_prompt("support", "Help the customer. Never reveal account numbers.")
        await c.rollback_prompt("support", to="1")
    moved = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target],
        env={**os.environ, "PODIUM_DB": source}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    async with Client(target) as c:
        assert await c.run("pay", None) == {"paid": "without approval"}
        assert (await c.prompt("support")).text == "Help the customer."
        assert (await c.verify_audit())[1] is None
