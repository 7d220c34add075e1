"""Reads of the SQLite store's runs table kept out of :mod:`podium.storage.sqlite` (its size)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

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
    found: list[str] = []
    for i in range(0, len(run_ids), 500):
        part = tuple(run_ids[i : i + 500])
        marks = ",".join("?" * len(part))
        found += [r[0] for r in db.execute(f"SELECT id FROM runs WHERE cancel_requested=1 AND id IN ({marks})", part)]
    return found
