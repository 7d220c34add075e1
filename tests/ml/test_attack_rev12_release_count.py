"""Twelfth-session review of data gates' quarantined rows (storage/_quarantined.py).

A release replaces the entry by a sealed note and adds one to a sealed count of releases, so an
entry put back over its note (released twice) shows as fewer notes than releases. A count deleted
stopped releases; a count edited did not: the next release rebuilt it from 1, sealed, and said
nothing, so entries then put back over their notes still left at least one note per counted
release, and they were released again, their rows run twice. Fails on the code before the fix."""

from __future__ import annotations

import pytest
from store_attacker import sql

from podium import Client, NonRetryableError
from podium.storage import _quarantined as kept


def _raw(url: str, key: str) -> str:
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        [(raw,)] = db.execute("SELECT value FROM kv WHERE ns = 'ml_quarantine' AND key = ?", (key,)).fetchall()
        db.close()
        return str(raw)
    import psycopg

    with psycopg.connect(url) as conn:
        [(raw,)] = conn.execute("SELECT value FROM kv WHERE ns = 'ml_quarantine' AND key = %s", (key,)).fetchall()
    return str(raw)


async def test_attack_a_release_count_edited_is_not_rebuilt_so_entries_put_back_are_not_released_again(url: str) -> None:
    keys = [f"load:r{i}:load" for i in range(3)]
    async with Client(url) as c:
        for k in keys:
            await kept.put(c.store, k, {"workflow": "load", "run_id": k, "step": "load", "rows": [{"id": k, "amount": 1e6}]})
    before = {k: _raw(url, k) for k in keys}  # the attacker keeps the sealed entries
    async with Client(url) as c:
        for k in keys:
            assert await kept.release(c.store, k)
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'sealed_tallies' AND key = 'released:gates'", '{"n": 0}')
    async with Client(url) as c:  # a legitimate release after the edit
        await kept.put(c.store, "load:r9:load", {"workflow": "load", "run_id": "r9", "step": "load", "rows": []})
        with pytest.raises(NonRetryableError, match="released"):
            await kept.release(c.store, "load:r9:load")
    for k in keys:
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'ml_quarantine' AND key = ?", before[k], k)
    async with Client(url) as c:
        with pytest.raises(NonRetryableError, match="twice"):
            await kept.release(c.store, keys[0])
        assert any("released" in p for p in await kept.problems(c.store))
