"""Rows a data gate quarantined, edited in the store (helper seal11, eleventh session).

A gate's ``quarantine`` rule sets bad records aside (``ml_quarantine``) for a person to look at
(:func:`podium.ml.quarantined`) and release (:func:`podium.ml.release`: the rows leave the store
and are run again). The attacker writes the database but does not hold the audit key: rows of
their own written in, or a quarantined record changed, were released as what the gate set aside;
a record deleted was hidden from the person; a released entry put back was released twice. Each
test failed on the code before its fix (docs/status.md, "ML outcomes, quarantines and file drop
marks, sealed").
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from store_attacker import sql

from podium import Client, NonRetryableError, Workflow
from podium.ml import Gate, Range, quarantined, release

ROWS = [{"id": f"c{i}", "amount": 50.0} for i in range(10)] + [{"id": "c10", "amount": 99999.0}]


def _load() -> Workflow:
    wf = Workflow("load")

    @wf.step(gate=Gate(name="q", rules=[Range(column="amount", min=0, max=500, on="quarantine")]))
    def load(input: Any) -> Any:
        return input

    return wf


async def _set_aside(url: str) -> str:
    async with Client(url) as c:
        assert len(await c.run(_load(), ROWS)) == 10
        [entry] = await quarantined(c.store)
        return str(entry["key"])


def _stored(url: str, key: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_raw(url, key))
    return out


def _raw(url: str, key: str) -> str:
    """The row's text as stored, byte for byte."""
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        [(raw,)] = db.execute("SELECT value FROM kv WHERE ns = 'ml_quarantine' AND key = ?", (key,)).fetchall()
        db.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            [(raw,)] = conn.execute("SELECT value FROM kv WHERE ns = 'ml_quarantine' AND key = %s", (key,)).fetchall()
    return str(raw)


@pytest.mark.parametrize("how", ["edited", "written"])
async def test_attack_quarantined_rows_changed_in_the_store_are_not_released(url: str, how: str) -> None:
    key = await _set_aside(url)
    entry = _stored(url, key)
    entry["rows"] = [{"id": "c10", "amount": 400.0, "iban": "attacker"}]  # looks fine now, released as the gate's
    if how == "written":
        key = "forged:load:0:0:q"
        entry = {k: v for k, v in entry.items() if k != "$seal"}
        sql(url, "INSERT INTO kv (ns, key, value, updated_at) VALUES ('ml_quarantine', ?, ?, 0)", key, json.dumps(entry))
    else:
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_quarantine' AND key = ?", json.dumps(entry), key)
    async with Client(url) as c:
        shown = {e["key"]: e for e in await quarantined(c.store)}
        assert "not sealed" in (shown[key].get("problem") or ""), shown[key]
        with pytest.raises(NonRetryableError, match="not sealed") as refused:
            rows = await release(c.store, key)
            pytest.fail(f"the {how} rows were released: {rows}")
        assert key in str(refused.value)
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == f"quarantine:rows:{key}"]
        assert len(denied) == 1 and "not sealed" in (denied[0].data or "")
        _, problem = await c.verify_audit()
        assert problem is not None and key in problem, problem


async def test_attack_quarantined_rows_deleted_in_the_store_are_named(url: str) -> None:
    key = await _set_aside(url)
    sql(url, "DELETE FROM kv WHERE ns = 'ml_quarantine' AND key = ?", key)
    async with Client(url) as c:
        assert await quarantined(c.store) == []
        _, problem = await c.verify_audit()
        assert problem is not None and "quarantined" in problem and "missing" in problem, problem


@pytest.mark.parametrize("count", ["kept", "deleted"])
async def test_attack_released_rows_put_back_are_not_released_again(url: str, count: str) -> None:
    key = await _set_aside(url)
    before = _raw(url, key)
    async with Client(url) as c:
        assert [r["id"] for r in await release(c.store, key)] == ["c10"]
        assert await quarantined(c.store) == []
        with pytest.raises(NonRetryableError, match="already released"):
            await release(c.store, key)
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_quarantine' AND key = ?", before, key)
    if count == "deleted":  # the count of releases too, so that one fewer note does not show
        sql(url, "DELETE FROM kv WHERE ns = 'sealed_tallies' AND key = 'released:gates'")
    async with Client(url) as c:
        with pytest.raises(NonRetryableError, match="put back") as refused:
            rows = await release(c.store, key)
            pytest.fail(f"released twice: {rows}")
        assert key in str(refused.value) or "released" in str(refused.value)
        assert [e for e in await c.audit_log() if e.action == "access.denied" and e.target == f"quarantine:rows:{key}"]
        _, problem = await c.verify_audit()
        assert problem is not None and "released" in problem, problem
