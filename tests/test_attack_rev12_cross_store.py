"""Twelfth-session review: sealed rows moved between two stores that share one audit key file.

Every row the engine seals (API tokens, ML outcomes and predictions, quarantined rows, file marks,
dead letters, fire times, learned contracts) is sealed per key, not per store: the MAC covers the
row's kind, key and text, and nothing names the store. The default key file
(``~/.podium/audit.key``) is shared by every store an OS user opens, so one who writes a store's
database and can have rows sealed in another store on the same key (a staging server, a local
store) copies them across and they held. Fixed in the thirteenth session: every seal names the
store's id (``podium/storage/_identity.py``); more attacks on it in
``tests/test_attack_rev13_store_id.py``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from podium import Client


def _copy(src: Path, dst: Path, ns: str) -> None:
    rows = sqlite3.connect(src).execute("SELECT ns, key, value, updated_at FROM kv WHERE ns = ?", (ns,)).fetchall()
    db = sqlite3.connect(dst)
    db.executemany("INSERT OR REPLACE INTO kv (ns, key, value, updated_at) VALUES (?,?,?,?)", rows)
    db.commit()
    db.close()


async def test_attack_a_token_minted_in_another_store_on_the_same_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_AUDIT_KEY", str(tmp_path / "audit.key"))
    prod, staging = tmp_path / "prod.db", tmp_path / "staging.db"
    async with Client(f"sqlite:///{prod}", recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
    async with Client(f"sqlite:///{staging}", recover=False) as c:  # a store mallory runs, on the same key
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
    _copy(staging, prod, "tokens")
    from podium import AuthError

    with pytest.raises(AuthError):
        async with Client(f"sqlite:///{prod}", token=token, recover=False) as c:
            await c.create_user("mallory", ["admin"])


async def test_attack_outcomes_copied_from_another_store_on_the_same_key_are_not_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
    from podium.ml import record_outcome
    from podium.ml._predict import measured

    monkeypatch.setenv("PODIUM_AUDIT_KEY", str(tmp_path / "audit.key"))
    prod, staging = tmp_path / "prod.db", tmp_path / "staging.db"
    for path, label in ((prod, 0), (staging, 1)):
        async with Client(f"sqlite:///{path}", recover=False) as c:
            for i in range(10):
                await record_outcome(c.store, "churn", f"C{i}", label)
    _copy(staging, prod, "ml_outcomes")  # every label flipped, with seals that hold
    async with Client(f"sqlite:///{prod}", recover=False) as c:
        _, problems = await measured(c.store, "churn")
        assert problems, "outcomes sealed for another store were measured as this one's"
