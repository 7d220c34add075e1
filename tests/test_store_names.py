"""One name per store, whatever its URL's spelling (fourteenth session, h-pgname).

A store's name is the key of its pin and head log on a machine (``audit-heads/HASH.id``,
``.jsonl``). One PostgreSQL database reached as ``localhost``, ``127.0.0.1`` and
``127.0.0.1:5432`` had three names, and once pinned under one it was refused under another as "a
copy of that store". The spellings of one database are one name now (``podium/_auditkey.py::store_identity``);
pins and head logs written under the name an earlier release gave a URL are moved to the new name
at open (``podium/storage/_identity.py::adopt_former_names``), and still checked: a copy is
refused as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podium import Client, StepContext, StoreError, Workflow
from podium._auditkey import AuditKeys, former_identity, store_identity
from podium.storage import _base, _identity
from podium.storage._identity import KEY, NAMESPACE, adopt_former_names


def _wf() -> Workflow:
    wf = Workflow("names")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGPORT", "PGDATABASE", "PGUSER", "PGHOST"):
        monkeypatch.delenv(var, raising=False)


def _spellings(db: str) -> list[str]:
    return [
        f"postgresql://postgres@localhost/{db}",
        f"postgresql://postgres@127.0.0.1/{db}",
        f"postgresql://postgres@127.0.0.1:5432/{db}",
    ]


# -- the names -------------------------------------------------------------------------------------


def test_the_spellings_of_one_postgresql_database_are_one_name() -> None:
    one = store_identity("postgresql://postgres@localhost/db")
    assert one == "postgresql://localhost:5432/db"
    for url in [
        *_spellings("db"),
        "postgres://postgres@127.0.0.1:5432/db",  # libpq's other scheme
        "postgresql://LocalHost:5432/db",  # a host name's case
        "postgresql://api:secret@[::1]/db",  # IPv6 loopback, another role
        "postgresql://[0:0:0:0:0:0:0:1]:5432/db",
        "postgresql://[::ffff:127.0.0.1]/db",
        "postgresql://127.0.0.1:05432/db",
        "postgresql://127.0.0.1/%64b",  # the database's name percent-encoded
        "postgresql://127.0.0.1/db?application_name=worker&sslmode=prefer",
    ]:
        assert store_identity(url) == one, url
    assert store_identity("postgresql://DB.Example.COM/db") == store_identity("postgresql://db.example.com:5432/db")
    assert store_identity("postgresql://a,B:5433/db") == "postgresql://a:5432,b:5433/db"  # each host of a list


def test_what_may_be_another_server_or_database_keeps_its_own_name() -> None:
    """Conservative: only what certainly reaches the same database is merged."""
    names = [
        "postgresql://localhost/db",
        "postgresql://localhost:5433/db",  # another port
        "postgresql://127.0.0.2/db",  # another loopback address: may be another server
        "postgresql:///db",  # the Unix socket: not certainly the server on 127.0.0.1:5432
        "postgresql://%2Fvar%2Frun%2Fpostgresql/db",  # a socket folder...
        "postgresql://%2Fvar%2Frun%2FPostgreSQL/db",  # ...whose case matters
        "postgresql://localhost/db?host=/run/postgresql",
        "postgresql://db.example.com/db",
        "postgresql://localhost/other",
        "postgresql://localhost/db?options=-c%20search_path%3Dother",
        "postgresql://[2001:db8::1]/db",
    ]
    assert len({store_identity(u) for u in names}) == len(names)
    assert store_identity("postgresql:///db") == store_identity("postgresql://:5432/db")  # the socket, one port


def test_an_omitted_port_or_database_is_the_one_libpq_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPORT", "5433")
    assert store_identity("postgresql://localhost/db") == store_identity("postgresql://localhost:5433/db")
    assert store_identity("postgresql://localhost/db") != store_identity("postgresql://localhost:5432/db")
    monkeypatch.delenv("PGPORT")
    assert store_identity("postgresql://postgres@localhost") == store_identity("postgresql://localhost/postgres")
    assert store_identity("postgresql://alice@localhost") != store_identity("postgresql://bob@localhost")
    monkeypatch.setenv("PGDATABASE", "app")
    assert store_identity("postgresql://postgres@localhost") == store_identity("postgresql://localhost/app")


def test_sqlite_names_are_unchanged(tmp_path: Path) -> None:
    """SQLite's name was the file's real path already: a symlink names the file it leads to."""
    (tmp_path / "real.db").touch()
    (tmp_path / "link.db").symlink_to(tmp_path / "real.db")
    real = f"sqlite:///{tmp_path / 'real.db'}"
    assert store_identity(f"sqlite:///{tmp_path / 'link.db'}") == store_identity(real) == "sqlite:///" + os.path.realpath(tmp_path / "real.db")
    assert former_identity(real) == store_identity(real)  # nothing to move


async def test_a_sqlite_store_through_a_symlink_is_one_store(tmp_path: Path, audit_key: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    async with Client(f"sqlite:///{tmp_path}/data/p.db") as c:
        await c.run(_wf(), 1)
    async with Client(f"sqlite:///{tmp_path}/alias/p.db") as c:
        await c.run(_wf(), 2)
        assert (await c.governance.check_audit()).problem is None
    assert len(list((Path(audit_key).parent / "audit-heads").glob("*.id"))) == 1


# -- moving pins written under an earlier name (no database needed) -------------------------------


def test_a_pin_under_the_new_name_is_never_replaced_by_one_under_an_earlier_name(audit_key: str) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/db"
    new, old = AuditKeys(audit_key, store_identity(url)), AuditKeys(audit_key, str(former_identity(url)))
    assert new.store != old.store and new.id_path != old.id_path
    new.pin("a" * 32, 0)
    old.pin("b" * 32, 0)
    adopt_former_names(new, old.store, fresh=False)
    assert new.pinned()[0] == ("a" * 32, 0, False, "")
    assert old.pinned()[0] == ("b" * 32, 0, False, "")  # left, with a warning: not ours to judge
    old.pin("a" * 32, 0)  # the same id: the old one is only a leftover
    adopt_former_names(new, old.store, fresh=False)
    assert old.id_path is not None and not old.id_path.exists()


def test_a_pin_under_an_earlier_name_not_signed_with_the_key_is_refused_not_moved(audit_key: str) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/db"
    new, old = AuditKeys(audit_key, store_identity(url)), AuditKeys(audit_key, str(former_identity(url)))
    old.pin("b" * 32, 0)
    assert old.id_path is not None and new.id_path is not None
    rec = json.loads(old.id_path.read_text())
    old.id_path.write_text(json.dumps(rec | {"id": "c" * 32}))  # written by someone without the key
    with pytest.raises(StoreError, match=r"not signed with the audit key .*earlier release"):
        adopt_former_names(new, old.store, fresh=False)
    assert not new.id_path.exists()


def test_a_store_made_again_drops_the_pin_of_its_url_s_earlier_name(audit_key: str) -> None:
    """Its schema made by this open: the pin under the name its URL had is the deleted store's (as a
    pin under its own name is: a new id and pin); the head log is kept, as under its own name."""
    url = "postgresql://postgres@127.0.0.1:5432/db"
    new, old = AuditKeys(audit_key, store_identity(url)), AuditKeys(audit_key, str(former_identity(url)))
    old.pin("b" * 32, 0)
    old.note_head(1, "hmac:x:1")
    adopt_former_names(new, old.store, fresh=True)
    assert old.id_path is not None and not old.id_path.exists() and new.id_path is not None and not new.id_path.exists()
    assert new.heads()[0] == [(1, "hmac:x:1")]


def test_a_broken_pin_under_an_earlier_name_beside_a_pin_under_the_new_one_is_left(audit_key: str) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/db"
    new, old = AuditKeys(audit_key, store_identity(url)), AuditKeys(audit_key, str(former_identity(url)))
    new.pin("a" * 32, 0)
    assert old.id_path is not None
    old.id_path.write_text("{")
    adopt_former_names(new, old.store, fresh=False)  # the new pin is what bind checks
    assert new.pinned()[0] == ("a" * 32, 0, False, "") and old.id_path.exists()


def test_pins_under_other_spellings_are_taken_once_agreeing_and_refused_disagreeing(audit_key: str) -> None:
    """At the first open under the new name, pins of this machine under any spelling of the store."""
    name = store_identity("postgresql://localhost/db")
    a = AuditKeys(audit_key, "postgresql://127.0.0.1:5432/db")
    b = AuditKeys(audit_key, "postgresql://localhost/db")
    other = AuditKeys(audit_key, "postgresql://127.0.0.1:5432/other")  # another database: not touched
    for k in (a, b, other):
        k.pin("a" * 32, 0)
    a.note_head(1, "hmac:x:1")
    b.note_head(2, "hmac:x:2")
    new = AuditKeys(audit_key, name)
    adopt_former_names(new, None, fresh=False)
    assert new.pinned()[0] == ("a" * 32, 0, False, "")
    assert sorted(new.heads()[0]) == [(1, "hmac:x:1"), (2, "hmac:x:2")] and not new.heads()[1]
    assert all(p is not None and not p.exists() for k in (a, b) for p in (k.id_path, k.head_path))
    assert other.pinned()[0] is not None
    assert new.id_path is not None
    new.id_path.unlink()
    a.pin("a" * 32, 0)
    b.pin("b" * 32, 0)
    with pytest.raises(StoreError, match="several spellings") as err:
        adopt_former_names(new, None, fresh=False)
    assert str(a.id_path) in str(err.value) and str(b.id_path) in str(err.value)
    assert not new.id_path.exists()


def test_head_log_lines_not_signed_are_moved_as_they_are(audit_key: str) -> None:
    old = AuditKeys(audit_key, "postgresql://127.0.0.1:5432/db")
    new = AuditKeys(audit_key, store_identity("postgresql://127.0.0.1/db"))
    old.note_head(1, "hmac:x:1")
    assert old.head_path is not None
    with old.head_path.open("a") as fh:
        fh.write('{"seq": 2, "hash": "hmac:x:2", "mac": "000000000000:00"}\nnot json\n')
    assert new.adopt_heads(old) == 3
    heads, bad = new.heads()
    assert heads == [(1, "hmac:x:1")] and len(bad) == 2  # still reported by podium audit verify


def test_a_checkpoint_written_under_an_earlier_name_is_still_read(audit_key: str, tmp_path: Path) -> None:
    old = AuditKeys(audit_key, "postgresql://127.0.0.1:5432/db")
    old.checkpoint(tmp_path / "cp.jsonl", 3, "hmac:x:3")
    AuditKeys(audit_key, "postgresql://127.0.0.1:5432/other").checkpoint(tmp_path / "cp.jsonl", 4, "hmac:x:4")
    new = AuditKeys(audit_key, store_identity("postgresql://localhost/db"))
    assert new.heads(tmp_path / "cp.jsonl") == ([(3, "hmac:x:3")], [])


# -- PostgreSQL ------------------------------------------------------------------------------------


def _earlier_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name stores as the release before one name per store did (and move nothing)."""
    monkeypatch.setattr(_base, "store_identity", lambda url: former_identity(url) or url)
    monkeypatch.setattr(_identity, "adopt_former_names", lambda *a, **k: None)


def _db(pg_url: str) -> str:
    return pg_url.rpartition("/")[2]


@pytest.mark.postgres
async def test_three_spellings_open_one_postgresql_store(pg_url: str, audit_key: str) -> None:
    db = _db(pg_url)
    for i, url in enumerate([*_spellings(db), f"postgres://postgres@127.0.0.1/{db}"]):
        async with Client(url) as c:
            await c.run(_wf(), i)
    async with Client(_spellings(db)[0]) as c:
        assert (await c.governance.check_audit()).problem is None
        entries = await c.audit_log()
        heads, bad = c.store.audit_keys.heads()
    folder = Path(audit_key).parent / "audit-heads"
    assert len(list(folder.glob("*.id"))) == 1 and len(list(folder.glob("*.jsonl"))) == 1
    assert not bad and {h for h in heads} == {(e.seq, e.hash) for e in entries}


@pytest.mark.postgres
async def test_a_pin_of_an_earlier_release_is_moved_and_still_checked(
    pg_url: str, audit_key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Pinned by the earlier release under ``127.0.0.1:5432``; the next release opens it as
    ``localhost``: the pin moves and is what the database's id is checked against (an id set to
    another one by whoever writes the database is refused); the head log moves and still catches
    an entry deleted; a checkpoint written before still counts."""
    db = _db(pg_url)
    spelled = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with monkeypatch.context() as m:
        _earlier_release(m)
        async with Client(spelled) as c:
            for i in range(3):
                await c.run(_wf(), i)
            last = (await c.audit_log())[-1]
            c.store.audit_keys.checkpoint(tmp_path / "cp.jsonl", last.seq, last.hash)
            sid = c.store.audit_keys.store_id
    old = AuditKeys(audit_key, str(former_identity(spelled)))
    new = AuditKeys(audit_key, store_identity(spelled))
    assert old.id_path is not None and old.id_path.exists() and new.id_path is not None and not new.id_path.exists()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:  # whoever writes the database gives it another id
        row = conn.execute("SELECT value FROM kv WHERE ns = %s AND key = %s", (NAMESPACE, KEY)).fetchone()
        assert row is not None
        conn.execute("UPDATE kv SET value = %s WHERE ns = %s AND key = %s", (row[0].replace(sid, "f" * 32), NAMESPACE, KEY))
    with pytest.raises(StoreError, match="is not the id this machine pinned"):
        async with Client(f"postgresql://postgres@localhost/{db}"):
            pass
    assert not old.id_path.exists() and new.pinned()[0] is not None and new.pinned()[0][0] == sid  # type: ignore[index]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE kv SET value = %s WHERE ns = %s AND key = %s", (row[0], NAMESPACE, KEY))
    async with Client(f"postgresql://postgres@localhost/{db}") as c:
        check = await c.governance.check_audit(checkpoints=[str(tmp_path / "cp.jsonl")])
        assert check.problem is None
        assert c.store.audit_keys.heads(tmp_path / "cp.jsonl")[0] == [(last.seq, last.hash)]
        entries = await c.audit_log()
    assert old.head_path is not None and not old.head_path.exists()
    assert {(e.seq, e.hash) for e in entries} <= set(new.heads()[0])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM audit WHERE seq = %s", (entries[-1].seq,))
    async with Client(spelled, recover=False) as c:
        problem = (await c.governance.check_audit()).problem or ""
    assert f"entry {entries[-1].seq} was deleted" in problem and str(new.head_path) in problem


@pytest.mark.postgres
@pytest.mark.parametrize("pinned_by", ["this release", "the earlier release"])
async def test_a_copy_under_another_database_name_is_still_refused(
    pg_url: str, pg_database, audit_key: str, monkeypatch: pytest.MonkeyPatch, pinned_by: str
) -> None:
    db = _db(pg_url)
    with monkeypatch.context() as m:
        if pinned_by == "the earlier release":
            _earlier_release(m)
        async with Client(f"postgresql://postgres@127.0.0.1:5432/{db}") as c:
            await c.run(_wf(), 1)
    copy = _db(pg_database(f'TEMPLATE "{db}"'))
    for url in (f"postgresql://postgres@localhost/{copy}", f"postgresql://postgres@127.0.0.1:5432/{copy}"):
        with pytest.raises(StoreError, match="the database is a copy of that store"):
            async with Client(url):
                pass
    async with Client(f"postgresql://postgres@localhost/{db}") as c:  # the original still opens
        assert (await c.governance.check_audit()).problem is None
