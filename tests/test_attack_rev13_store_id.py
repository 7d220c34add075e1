"""Thirteenth session: every seal names its store (the fix of ``test_attack_rev12_cross_store.py``).

A store has a random id, made with it and kept in the store (namespace ``podium.store``); every
seal's MAC covers it, and the id is pinned beside the head log (``audit-heads/STORE.id``), so that
one who writes the database cannot give production the id of a store whose rows they hold. Seals
made before ids existed are sealed again once, the first time a store opens after the upgrade, and
refused afterwards; ``podium db migrate-to`` seals the records it copies for the target.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium import AuthError, Client, StoreError
from podium._auditkey import AuditKeys, store_identity
from podium.storage._identity import NAMESPACE


def _sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url[len("sqlite:///") :])
        try:
            rows = db.execute(query, params).fetchall()
            db.commit()
        finally:
            db.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query.replace("?", "%s").encode(), params)
        return cur.fetchall() if cur.description else []


def _rows(url: str, ns: str) -> dict[str, str]:
    return dict(_sql(url, "SELECT key, value FROM kv WHERE ns = ?", (ns,)))  # type: ignore[arg-type]


def _put(url: str, ns: str, rows: dict[str, str]) -> None:
    for key, value in rows.items():
        _sql(
            url,
            "INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
            (ns, key, value),
        )


def _legacy(url: str, ns: str = "tokens") -> dict[str, str]:
    """The token rows of ``url`` as a release before store ids sealed them (a MAC per key only)."""
    keys = AuditKeys(None, store_identity(url))
    out = {}
    for key, value in _rows(url, ns).items():
        d = json.loads(value)
        d["mac"] = keys.mac(f"token\x1f{key}\x1f{d['entry']}")
        out[key] = json.dumps(d)
    return out


def _before_ids(url: str) -> None:
    """Make ``url`` look like a store of a release before store ids: no id row, no pin, its token rows
    and audit entries sealed and signed with the key alone."""
    _put(url, "tokens", _legacy(url))
    _legacy_entries(url)
    _sql(url, "DELETE FROM kv WHERE ns = ?", (NAMESPACE,))
    pin = AuditKeys(None, store_identity(url)).id_path
    assert pin is not None and pin.exists()
    pin.unlink()


@pytest.fixture(name="two", params=["sqlite", "postgres"])
def two_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(production, staging): two stores on the same audit key."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/prod.db", f"sqlite:///{tmp_path}/staging.db"
    make = request.getfixturevalue("pg_database")
    return make(), make()


async def _stores(prod: str, staging: str) -> str:
    """Both stores with a ``root`` admin and ``mallory``; a token of staging's root."""
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
    async with Client(staging, recover=False) as c:
        await c.create_user("root", ["admin"])
        return await c.create_token("root")


async def _admin(url: str, token: str) -> None:
    async with Client(url, token=token, recover=False) as c:
        await c.create_user("mallory", ["admin"])


async def test_attack_a_token_copied_from_another_store_is_refused(two: tuple[str, str]) -> None:
    prod, staging = two
    token = await _stores(prod, staging)
    _put(prod, "tokens", _rows(staging, "tokens"))
    with pytest.raises(AuthError):
        await _admin(prod, token)


async def test_attack_the_id_of_another_store_written_into_the_store_is_refused_at_open(two: tuple[str, str]) -> None:
    prod, staging = two
    token = await _stores(prod, staging)
    _put(prod, "tokens", _rows(staging, "tokens"))
    _put(prod, NAMESPACE, _rows(staging, NAMESPACE))  # production now claims to be staging
    with pytest.raises(StoreError, match=r"audit-heads.*\.id") as err:
        await _admin(prod, token)
    assert "not the id" in str(err.value)


async def test_attack_the_id_deleted_from_the_store_is_refused_at_open(two: tuple[str, str]) -> None:
    """Without its id the store would look like one of an earlier release, whose seals are sealed
    again on open: legacy rows put in by the attacker would be taken."""
    prod, staging = two
    token = await _stores(prod, staging)
    _put(prod, "tokens", _legacy(staging))
    _sql(prod, "DELETE FROM kv WHERE ns = ?", (NAMESPACE,))
    with pytest.raises(StoreError, match="deleted"):
        await _admin(prod, token)


async def test_seals_of_an_earlier_release_are_sealed_again_once_then_refused(two: tuple[str, str]) -> None:
    prod, staging = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        root = await c.create_token("root")
    _before_ids(prod)
    assert all("." not in json.loads(v)["mac"] for v in _rows(prod, "tokens").values())
    async with Client(prod, token=root, recover=False) as c:  # the upgrade: sealed again for this store
        await c.create_user("carl", ["viewer"])
    assert all("." in json.loads(v)["mac"] for v in _rows(prod, "tokens").values())
    # after the upgrade, a row sealed the old way (staging's, of an earlier release) is refused
    async with Client(staging, recover=False) as c:
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
    _put(prod, "tokens", _legacy(staging))
    with pytest.raises(AuthError):
        await _admin(prod, token)


async def test_a_store_deleted_and_created_again_opens_with_a_new_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    async with Client(url, recover=False) as c:
        await c.create_user("root", ["admin"])
    first = _rows(url, NAMESPACE)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path}/p.db{suffix}").unlink(missing_ok=True)
    async with Client(url, recover=False) as c:
        await c.create_user("root", ["admin"])
        assert await c.create_token("root")
    assert _rows(url, NAMESPACE) != first


def test_migrate_to_seals_the_copied_records_for_the_target(two: tuple[str, str], tmp_path: Path) -> None:
    """``podium db migrate-to`` copies tokens sealed for the source: the target seals them for itself
    (from SQLite to SQLite, and to PostgreSQL)."""
    import asyncio

    source, target = f"sqlite:///{tmp_path}/source.db", two[1]
    token = asyncio.run(_source(source))
    env = {**os.environ, "PODIUM_TOKEN": token, "PODIUM_DB": source}
    moved = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    asyncio.run(_admin(target, token))
    assert _rows(source, NAMESPACE) != _rows(target, NAMESPACE)


async def _source(url: str) -> str:
    async with Client(url, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
        return await c.create_token("root")


_AUDIT = "seq, ts, actor, action, target, data, prev_hash, hash, chain, cseq"


def _entries(url: str, target: str) -> list[tuple[Any, ...]]:
    return _sql(url, f"SELECT {_AUDIT} FROM audit WHERE target = ?", (target,))


def _insert_entries(url: str, rows: list[tuple[Any, ...]]) -> None:
    for row in rows:
        _sql(url, f"INSERT INTO audit ({_AUDIT}) VALUES ({', '.join('?' * len(row))})", row)


async def _mallory_admin_in_staging(staging: str, pad: int) -> None:
    async with Client(staging, recover=False) as c:
        await c.create_user("root", ["admin"])
        for i in range(pad):  # staging's entries numbered past production's
            await c.create_user(f"pad{i}", ["viewer"])
        await c.create_user("mallory", ["admin"])


async def test_attack_an_audit_entry_copied_from_another_store_backs_nothing(two: tuple[str, str]) -> None:
    """Found while fixing the rows (thirteenth session): the audit log's entries were signed per key
    too. Mallory, a viewer in production and an admin in a staging store on the same key, copied
    staging's signed ``user.put`` of her (numbered past production's last entry) into production's
    audit table and her admin row beside it: the log backed the row, and she was admin."""
    from podium import PermissionDenied

    prod, staging = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
        token = await c.create_token("mallory")
    await _mallory_admin_in_staging(staging, 30)
    _insert_entries(prod, _entries(staging, "user:mallory"))
    _put(prod, "users", {"mallory": _rows(staging, "users")["mallory"]})
    with pytest.raises((PermissionDenied, AuthError)):
        await _admin(prod, token)


async def test_attack_an_entry_of_an_earlier_release_copied_past_the_upgrade_backs_nothing(two: tuple[str, str]) -> None:
    """Entries signed before store ids (per key) hold up to the last entry the store had when it was
    upgraded; one copied in from another store's earlier release, numbered after that, does not."""
    from podium import PermissionDenied

    prod, staging = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
        token, root = await c.create_token("mallory"), await c.create_token("root")
    _before_ids(prod)
    await _mallory_admin_in_staging(staging, 30)
    _legacy_entries(staging)  # staging still runs the earlier release: its entries are signed per key
    async with Client(prod, token=root, recover=False) as c:  # the upgrade
        assert (await c.verify_audit())[1] is None
    _insert_entries(prod, _entries(staging, "user:mallory"))
    _put(prod, "users", {"mallory": _rows(staging, "users")["mallory"]})
    with pytest.raises((PermissionDenied, AuthError)):
        await _admin(prod, token)


def _legacy_entries(url: str) -> None:
    """Sign every entry of ``url`` as a release before store ids did (with the key alone)."""
    import hashlib
    import hmac

    from podium.records import AuditEntry, chain_body

    keys = AuditKeys(None, store_identity(url))
    kid, raw = keys.current()  # type: ignore[misc]
    was: dict[str, str] = {}
    for row in _sql(url, f"SELECT {_AUDIT} FROM audit ORDER BY seq"):
        e = AuditEntry(**dict(zip(_AUDIT.split(", "), row, strict=True)))
        e.prev_hash = was.get(e.prev_hash, e.prev_hash)
        for old, new in was.items():  # an anchor names the heads of the chains it anchors
            e.data = e.data.replace(old, new)
        tag = hmac.new(raw, chain_body(e.prev_hash, e), hashlib.sha256).hexdigest()
        was[e.hash] = f"hmac:{kid}:{tag}"
        _sql(url, "UPDATE audit SET prev_hash = ?, hash = ?, data = ? WHERE seq = ?", (e.prev_hash, was[e.hash], e.data, e.seq))
    assert keys.head_path is not None
    keys.head_path.unlink(missing_ok=True)  # its lines name the hashes as they were


async def test_every_sealed_kind_holds_after_the_upgrade_from_seals_without_an_id(tmp_path: Path) -> None:
    """The upgrade moves every seal of the namespaces ``_identity.SEALED`` names, whatever the row:
    rows of each kind, sealed the old way (the key's MAC of the text), hold again after the first open."""
    import re

    from podium.connectors import _learned, _ledger
    from podium.governance import capabilities
    from podium.governance.accounts import seal_token, unseal_token
    from podium.governance.identity import TokenRecord
    from podium.server import _file_marks, _fire_times
    from podium.storage import _letters, _sealed, open_store

    url = f"sqlite:///{tmp_path}/p.db"
    rec = TokenRecord(name="t", user="root", scopes=None, created_at=1.0)
    cap = capabilities.make_capability("crm", "http", {"url": "https://crm.example/api/{id}", "method": "GET"})
    letter = {"id": "L1", "source": "s", "event": "e", "key": "k", "workflow": "w", "payload": {"a": 1}, "ts": 1.0}
    rows = {
        ("tokens", "h1"): lambda s: seal_token(s, "h1", rec),
        ("deadletters", "L1"): lambda s: _letters.seal(s, letter),
        ("schedules", "nightly"): lambda s: _fire_times.seal(s, "nightly", 1000.0),
        ("connector.contracts", "crm.get"): lambda s: _learned.seal(s, "crm.get", {"type": "object"}, 3),
        ("ml_outcomes", "churn:C1"): lambda s: _sealed.seal(s, "outcome", "churn:C1", {"outcome": 1}),
        ("filedrops", "f|1|2"): lambda s: _file_marks.seal(s, "f|1|2", "run-1"),
        ("outbox_sent", "fp"): lambda s: _ledger.Ledger(s, sealed=True).delivered_note("fp"),
        ("capabilities", "crm"): lambda s: capabilities.seal(s, cap),
    }
    store = open_store(url)
    async with store:
        for (ns, key), make in rows.items():
            await store.kv_put(ns, key, make(store))
    bound = re.compile(r"([0-9a-f]{12}:[0-9a-f]{32})\.[0-9a-f]{16}")
    for ns, key in rows:
        assert bound.search(_rows(url, ns)[key]), f"{ns}: no seal bound to the store"
    store = open_store(url)
    async with store:  # the same rows as an earlier release sealed them: the key's MAC of the text alone
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(AuditKeys, "seal", AuditKeys.mac)
            for (ns, key), make in rows.items():
                await store.kv_put(ns, key, make(store))
    for ns, key in rows:
        assert not bound.search(_rows(url, ns)[key]), f"{ns}: a seal bound to the store is left"
    _before_ids(url)
    store = open_store(url)
    async with store:  # the upgrade
        got = {(ns, key): await store.kv_get(ns, key) or "" for ns, key in rows}
        assert unseal_token(store, "h1", got["tokens", "h1"]) == rec
        assert _letters.open_letter(store, "L1", got["deadletters", "L1"])[1] is None
        assert _fire_times.open_state(store, "nightly", got["schedules", "nightly"]) == (1000.0, True)
        assert _learned.open_contract(store, "crm", "get", got["connector.contracts", "crm.get"])[1] is None
        assert _sealed.opened(store, "outcome", "churn:C1", got["ml_outcomes", "churn:C1"])[1]
        assert _file_marks.holds(store, "f|1|2", "run-1", got["filedrops", "f|1|2"])
        assert isinstance(_ledger._reading(got["outbox_sent", "fp"], "fp", store.audit_keys), float)
        assert capabilities.unseal(store, "crm", got["capabilities", "crm"]) == cap
