"""Parts of the SQLite store kept out of :mod:`podium.storage.sqlite` (its size): the key-value
statements, and which runs are asked to cancel."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


class SQLiteKV:
    """The key-value table of :class:`~podium.storage.sqlite.SQLiteStore` (mixed into it)."""

    @property
    def db(self) -> sqlite3.Connection:  # SQLiteStore provides it
        raise NotImplementedError

    async def kv_put(self, namespace: str, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM kv WHERE ns=? AND key=?", (namespace, key))
        else:
            self.db.execute(
                "INSERT INTO kv (ns, key, value, updated_at) VALUES (?,?,?,strftime('%s','now')) "
                "ON CONFLICT (ns, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                (namespace, key, value),
            )

    async def kv_get(self, namespace: str, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE ns=? AND key=?", (namespace, key)).fetchone()
        return row[0] if row else None

    async def kv_list(self, namespace: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM kv WHERE ns=? ORDER BY key", (namespace,)).fetchall())

    async def kv_count(self, namespace: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM kv WHERE ns=?", (namespace,)).fetchone()[0])

    async def kv_incr(self, namespace: str, key: str, amount: float) -> float:
        # One statement: SQLite's write lock makes it atomic across processes.
        row = self.db.execute(
            "INSERT INTO kv (ns, key, value, updated_at) VALUES (?,?,CAST(? AS TEXT),strftime('%s','now')) "
            "ON CONFLICT (ns, key) DO UPDATE SET value=CAST(CAST(kv.value AS REAL) + ? AS TEXT), "
            "updated_at=excluded.updated_at RETURNING value",
            (namespace, key, float(amount), float(amount)),
        ).fetchone()
        return float(row[0])

    async def kv_swap(self, namespace: str, key: str, expected: str | None, value: str | None) -> bool:
        # One statement each: SQLite's write lock makes the comparison and the write one step.
        if expected is None and value is None:
            return await self.kv_get(namespace, key) is None
        args: tuple[str | None, ...]
        if expected is None:
            sql, args = (
                "INSERT INTO kv (ns, key, value, updated_at) VALUES (?,?,?,strftime('%s','now')) "
                "ON CONFLICT (ns, key) DO NOTHING",
                (namespace, key, value),
            )
        elif value is None:
            sql, args = "DELETE FROM kv WHERE ns=? AND key=? AND value=?", (namespace, key, expected)
        else:
            sql, args = (
                "UPDATE kv SET value=?, updated_at=strftime('%s','now') WHERE ns=? AND key=? AND value=?",
                (value, namespace, key, expected),
            )
        return self.db.execute(sql, args).rowcount == 1

_CANCELS = "SELECT id FROM runs WHERE cancel_requested=1 AND status IN (?,?,?) LIMIT ?"


def cancel_requests(db: sqlite3.Connection, run_ids: Sequence[str], unfinished: tuple[str, str, str]) -> list[str]:
    """Those of ``run_ids`` asked to cancel. Read through the partial index ``runs_cancel``: the
    unfinished runs asked to cancel (few), not one lookup per run an engine drives at every sweep;
    one lookup per run only when more are asked than a bound (a whole queue cancelled, driven by
    nobody yet), 500 to a statement (under SQLite's limit of bound parameters)."""
    if not run_ids:
        return []
    bound = 4 * len(run_ids) + 100
    asked = [r[0] for r in db.execute(_CANCELS, (*unfinished, bound + 1))]
    if len(asked) <= bound:
        mine = set(asked)
        return [rid for rid in run_ids if rid in mine]
    found: set[str] = set()
    for i in range(0, len(run_ids), 500):  # unfinished, as the index holds them: the answer is the same either way
        part = tuple(run_ids[i : i + 500])
        marks = ",".join("?" * len(part))
        sql = f"SELECT id FROM runs WHERE cancel_requested=1 AND status IN (?,?,?) AND id IN ({marks})"
        found.update(r[0] for r in db.execute(sql, (*unfinished, *part)))
    return [rid for rid in run_ids if rid in found]
