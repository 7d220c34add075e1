"""Attacker's review of "Seals and signatures name their store" (thirteenth session, revid).

The attacker writes production's database (but cannot read the key file) and is admin in a staging
store on the same audit key. Each test is an attack that worked before its fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_attack_rev13_store_id import (  # noqa: F401
    _admin,
    _before_ids,
    _entries,
    _insert_entries,
    _legacy_entries,
    _put,
    _rows,
    _source,
    _sql,
    _stores,
    two_fixture,
)

from podium import AuthError, Client, PermissionDenied, open_store
from podium.storage import _identity
from podium.storage._identity import KEY, NAMESPACE


def _stripped(url: str, ns: str = "tokens") -> dict[str, str]:
    """The rows of ``url`` with the store-naming part of each seal cut off (``KEYID:INNER``): the
    form of a seal of a release before store ids, INNER being the same in every store."""
    out = {}
    for key, value in _rows(url, ns).items():
        d = json.loads(value)
        d["mac"] = d["mac"].partition(".")[0]
        out[key] = json.dumps(d)
    return out


async def _open_on(url: str, key: Path) -> None:
    store = open_store(url)
    store.audit_key = str(key)
    await store.open()
    await store.close()


def _new_machine(audit_key: str, tmp_path: Path) -> Path:
    """The key file as a new engine host holds it: the same key, no ``audit-heads/`` beside it."""
    (tmp_path / "host2").mkdir()
    return Path(shutil.copy(audit_key, tmp_path / "host2" / "audit.key"))


async def test_attack_the_upgrade_re_seal_replayed_on_a_machine_that_never_opened_the_store(
    two: tuple[str, str], audit_key: str, tmp_path: Path
) -> None:
    """A staging token with its seal's outer part cut off reads as a seal of an earlier release;
    production's id row set back to ``resealing`` made the first open on any machine without the
    pin (a new engine host, a key folder restored without audit-heads) seal it again for production,
    where it then logged in as staging's admin, on every machine."""
    prod, staging = two
    token = await _stores(prod, staging)
    _put(prod, "tokens", _stripped(staging))
    rec = json.loads(_rows(prod, NAMESPACE)[KEY])
    _put(prod, NAMESPACE, {KEY: json.dumps({**rec, "state": "resealing"})})
    await _open_on(prod, _new_machine(audit_key, tmp_path))  # an engine started on a second host
    with pytest.raises(AuthError, match="token"):
        async with Client(prod, token=token, recover=False) as c:
            await c.create_user("mallory", ["admin"])


async def test_an_upgrade_that_dies_half_way_is_finished_by_the_next_open_on_its_machine(
    two: tuple[str, str], audit_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine that began the upgrade (its pin says so) seals the rest again at its next open; a
    machine that opens the store meanwhile seals nothing, and leaves the upgrade to it."""
    prod, _ = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        root = await c.create_token("root")
    _before_ids(prod)
    real = _identity.reseal

    async def dies(store: object, source: str | None = None) -> int:
        raise OSError("the process died")

    monkeypatch.setattr(_identity, "reseal", dies)
    with pytest.raises(OSError):
        await _open_on(prod, Path(audit_key))
    monkeypatch.setattr(_identity, "reseal", real)
    assert json.loads(_rows(prod, NAMESPACE)[KEY])["state"] == "resealing"
    await _open_on(prod, _new_machine(audit_key, tmp_path))  # another host: nothing sealed again there
    assert all("." not in json.loads(v)["mac"] for v in _rows(prod, "tokens").values())
    async with Client(prod, token=root, recover=False) as c:  # the machine that began it finishes it
        await c.create_user("carl", ["viewer"])
    assert json.loads(_rows(prod, NAMESPACE)[KEY])["state"] == "ready"
    assert all("." in json.loads(v)["mac"] for v in _rows(prod, "tokens").values())


async def test_attack_an_entry_of_an_earlier_release_copied_into_a_gap_before_the_upgrade_backs_nothing(
    two: tuple[str, str],
) -> None:
    """PostgreSQL numbers entries from blocks drawn ahead (a process's first entry skips the numbers
    another took), so a log has gaps below ``through``. An entry of staging's earlier release (signed
    with the key alone) numbered into one held as an entry of this store's own earlier release, and
    backed mallory's admin row."""
    prod, staging = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
        token, root = await c.create_token("mallory"), await c.create_token("root")
    for i in range(3):  # production's engines over time
        async with Client(prod, token=root, recover=False) as c:
            await c.create_user(f"p{i}", ["viewer"])
    _before_ids(prod)
    async with Client(prod, token=root, recover=False) as c:  # the upgrade
        assert (await c.verify_audit())[1] is None
    through = json.loads(_rows(prod, NAMESPACE)[KEY])["through"]
    seqs = {row[0] for row in _sql(prod, "SELECT seq FROM audit")}
    last_own = max(row[0] for row in _entries(prod, "user:mallory"))
    async with Client(staging, recover=False) as c:  # staging, still on the earlier release
        await c.create_user("root", ["admin"])
        for _ in range(through):
            await c.create_user("mallory", ["admin"])
    _legacy_entries(staging)
    fits = [row for row in _entries(staging, "user:mallory") if last_own < row[0] <= through and row[0] not in seqs]
    if not fits:  # SQLite numbers without gaps: nothing to fill
        assert prod.startswith("sqlite")
        return
    _insert_entries(prod, fits[-1:])
    _put(prod, "users", {"mallory": _rows(staging, "users")["mallory"]})
    with pytest.raises((PermissionDenied, AuthError)):
        await _admin(prod, token)


def test_attack_a_migration_target_given_the_id_of_another_store_here_is_refused(
    two: tuple[str, str], tmp_path: Path
) -> None:
    """The insider makes the database ``podium db migrate-to`` will copy production into, with
    staging's id row in it. The target's first open on this machine took that id (nothing was
    pinned for it yet), the copy sealed production's records for staging's id, and staging's
    token then logged in to the new production as staging's admin."""
    import asyncio
    import os
    import subprocess
    import sys

    prod, staging = two
    prod_root = asyncio.run(_source(prod))
    token = asyncio.run(_source(staging))
    target = f"sqlite:///{tmp_path}/target.db"
    elsewhere = tmp_path / "attacker" / "audit.key"  # the insider's own engine made the schema
    elsewhere.parent.mkdir()
    asyncio.run(_open_on(target, elsewhere))
    _put(target, NAMESPACE, _rows(staging, NAMESPACE))
    moved = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target],
        env={**os.environ, "PODIUM_DB": prod, "PODIUM_TOKEN": prod_root}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if moved.returncode == 0:
        _put(target, "tokens", _rows(staging, "tokens"))
        with pytest.raises(AuthError, match="token"):
            asyncio.run(_admin(target, token))
    else:
        assert "pinned" in moved.stderr and "migrate-to" in moved.stderr and "Traceback" not in moved.stderr, moved.stderr


async def test_attack_a_seal_of_a_store_on_this_release_cut_short_holds_in_no_store_of_an_earlier_one(
    two: tuple[str, str],
) -> None:
    """Staging is upgraded first, production later (the usual order). A staging seal with its outer
    part cut off was, in its inner part, exactly the seal an earlier release makes (the key's MAC of
    the row): production, still on the earlier release, took staging's token, and its upgrade then
    sealed it again for production, where it logged in as staging's admin for good."""
    from podium._auditkey import AuditKeys, store_identity

    prod, staging = two
    token = await _stores(prod, staging)
    _before_ids(prod)  # production still on the earlier release
    planted = _stripped(staging)
    keys = AuditKeys(None, store_identity(prod))
    for key, value in planted.items():
        d = json.loads(value)  # the check of the earlier release: the key's MAC of the row
        assert keys.verify_mac(f"token\x1f{key}\x1f{d['entry']}", d["mac"]) is False
    _put(prod, "tokens", planted)
    with pytest.raises(AuthError, match="token"):  # the upgrade
        await _admin(prod, token)


async def test_attack_an_entry_of_an_earlier_release_put_in_place_of_one_before_the_upgrade_backs_nothing(
    two: tuple[str, str],
) -> None:
    """An entry of production's earlier release deleted and staging's (earlier release too, signed
    with the key alone, numbered the same) put in its place held: numbers alone do not tell whose
    entry is there. Mallory's admin row was backed until ``podium audit verify`` found the chain broken."""
    prod, staging = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        await c.create_user("mallory", ["viewer"])
        token, root = await c.create_token("mallory"), await c.create_token("root")
        for i in range(40):
            await c.create_user(f"p{i}", ["viewer"])
    _before_ids(prod)
    async with Client(prod, token=root, recover=False) as c:  # the upgrade
        assert (await c.verify_audit())[1] is None
    through = json.loads(_rows(prod, NAMESPACE)[KEY])["through"]
    seqs = {row[0] for row in _sql(prod, "SELECT seq FROM audit")}
    last_own = max(row[0] for row in _entries(prod, "user:mallory"))
    async with Client(staging, recover=False) as c:  # staging, still on the earlier release
        await c.create_user("root", ["admin"])
        for _ in range(through):
            await c.create_user("mallory", ["admin"])
    _legacy_entries(staging)
    fits = [row for row in _entries(staging, "user:mallory") if last_own < row[0] <= through and row[0] in seqs]
    assert fits
    _sql(prod, "DELETE FROM audit WHERE seq = ?", (fits[-1][0],))
    _insert_entries(prod, fits[-1:])
    _put(prod, "users", {"mallory": _rows(staging, "users")["mallory"]})
    with pytest.raises((PermissionDenied, AuthError)):
        await _admin(prod, token)


async def test_an_upgrade_whose_machine_is_gone_is_finished_where_the_key_holder_says_so(
    two: tuple[str, str], audit_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, _ = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
        root = await c.create_token("root")
    _before_ids(prod)

    async def dies(store: object, source: str | None = None) -> int:
        raise OSError("the process died")

    with monkeypatch.context() as mp:
        mp.setattr(_identity, "reseal", dies)
        with pytest.raises(OSError):
            await _open_on(prod, Path(audit_key))
    sid = json.loads(_rows(prod, NAMESPACE)[KEY])["id"]
    host2 = _new_machine(audit_key, tmp_path)  # the machine that began it is gone
    monkeypatch.setenv(_identity.FINISH_ENV, "0" * 32)  # another store's id: nothing
    await _open_on(prod, host2)
    assert json.loads(_rows(prod, NAMESPACE)[KEY])["state"] == "resealing"
    monkeypatch.setenv(_identity.FINISH_ENV, sid)
    async with Client(prod, token=root, recover=False, audit_key=host2) as c:
        await c.create_user("carl", ["viewer"])
    assert json.loads(_rows(prod, NAMESPACE)[KEY])["state"] == "ready"


async def test_attack_entries_put_in_while_an_upgrade_waits_to_be_finished_are_not_taken(
    two: tuple[str, str], audit_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that died half-way, its id row then deleted and an entry put in the log: the
    machine that began it made the id row again from the log as it is now, and took the entry put
    in as one of the store's earlier release."""
    from podium import StoreError

    prod, _ = two
    async with Client(prod, recover=False) as c:
        await c.create_user("root", ["admin"])
    _before_ids(prod)

    async def dies(store: object, source: str | None = None) -> int:
        raise OSError("the process died")

    with monkeypatch.context() as mp:
        mp.setattr(_identity, "reseal", dies)
        with pytest.raises(OSError):
            await _open_on(prod, Path(audit_key))
    through = json.loads(_rows(prod, NAMESPACE)[KEY])["through"]
    _sql(prod, "DELETE FROM kv WHERE ns = ?", (NAMESPACE,))
    row = list(_entries(prod, "user:root")[0])
    row[0], row[8], row[9] = through + 7, None, None  # an entry numbered after the log's last
    _insert_entries(prod, [tuple(row)])
    with pytest.raises(StoreError, match="pinned"):
        await _open_on(prod, Path(audit_key))


@pytest.mark.postgres
async def test_one_database_under_its_connection_options_is_one_store(pg_url: str, audit_key: str) -> None:
    """Operator's path (CI's chaos tests found it): a worker connecting with
    ``?application_name=...`` (or a timeout, or ``sslmode``), or as another role, was refused as "a
    copy of store ..." once the store was pinned under its plain URL: options that do not change
    which database is reached are not part of its name. Options that do (``host``, ``port``,
    ``dbname``...) are."""
    from podium._auditkey import store_identity

    async with Client(pg_url):
        pass
    for options in ("?application_name=worker-2", "?connect_timeout=5&sslmode=prefer&options=-c%20statement_timeout%3D300"):
        async with Client(pg_url + options) as c:
            assert c.store.audit_keys.store == store_identity(pg_url)
    base, _, db = pg_url.rpartition("/")
    assert store_identity(f"{base}/{db}?host=/run/postgresql") != store_identity(pg_url)
    assert store_identity(f"{base}/{db}?dbname=other&application_name=x") == store_identity(f"{base}/{db}?dbname=other")
    assert store_identity(f"{base}/{db}?options=-c%20search_path%3Dother") != store_identity(pg_url)
    assert store_identity(pg_url.replace("postgres@", "api_role:secret@")) == store_identity(pg_url)  # one database
