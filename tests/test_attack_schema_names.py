"""Two stores in two schemas of one database never share a name (fifteenth session).

A store's name keys its pin and head log on a machine, and leaves the URL's user out (one
database, one store, whoever connects). But PostgreSQL's default search path is ``"$user",
public``: a role owning a schema named after it has Podium's tables made and read there, another
store than the one in ``public``. Both had one name, and a false merge is a way past the pin: the
role's first open (a new store: a new id) pinned its id under production's name, and production's
database, its id row set to that id by whoever writes it, was accepted (the attack of
``tests/test_attack_revname.py``'s first item, by role). The name now gains the schema the tables
are in when it is not the one the name implies (``public``, or the first of the search path its
options set); pins and head logs under the name without it are moved only where no other schema of
the database holds a Podium store (``podium/storage/_names.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

from podium import Client, StepContext, StoreError, Workflow, open_store
from podium._auditkey import AuditKeys, store_identity
from podium.storage import _base
from podium.storage._identity import KEY, NAMESPACE, adopt_former_names
from podium.storage._names import implied_schema, in_schema


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGPORT", "PGDATABASE", "PGUSER", "PGHOST", "PGOPTIONS"):
        monkeypatch.delenv(var, raising=False)


def _wf() -> Workflow:
    wf = Workflow("schema_names")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


def _db(pg_url: str) -> str:
    return pg_url.rpartition("/")[2]


@pytest.fixture
def alice(pg_url: str) -> Iterator[str]:
    """A role owning a schema of its name in the test's database (its tables go there)."""
    name = f"podium_test_alice_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _plant(pg_url: str, role: str) -> None:
    """What the role does before its first open when production's tables are in ``public``
    already (it may not read them, so its open would fail): an empty ``schema_migrations`` of
    its own, so Podium makes a store in its schema."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{role}".schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)')
        conn.execute(f'ALTER TABLE "{role}".schema_migrations OWNER TO "{role}"')


def _set_id(pg_url: str, schema: str, sid: str) -> None:
    """What whoever writes the database does: set the id row of the store in ``schema``."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        q = f'SELECT value FROM "{schema}".kv WHERE ns = %s AND key = %s'
        (raw,) = conn.execute(q, (NAMESPACE, KEY)).fetchone()  # type: ignore[misc]
        rec = json.loads(raw)
        rec["id"] = sid
        conn.execute(f'UPDATE "{schema}".kv SET value = %s WHERE ns = %s AND key = %s', (json.dumps(rec), NAMESPACE, KEY))


def _previous_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name stores as the release before this one did (without their schema)."""
    monkeypatch.setattr(_base, "in_schema", lambda name, schema: name)


# -- the names -------------------------------------------------------------------------------------


def test_the_schema_a_name_implies() -> None:
    assert implied_schema("postgresql://localhost:5432/db") == "public"
    for options, schema in [
        ("-c search_path=staging", "staging"),
        ("-csearch_path=Staging,public", "staging"),  # an identifier not quoted is folded to lower case
        ('-c search_path="Staging"', "Staging"),
        ("--search-path=a -c SEARCH_PATH=b", "b"),  # the last setting wins
        ("-c role=x", "public"),
        ("-c search_path=$user,public", "$user"),  # a role's: never equal to a schema read, so named
    ]:
        name = store_identity(f"postgresql://localhost/db?options={quote(options)}")
        assert implied_schema(name) == schema, options
    plain = "postgresql://localhost:5432/db"
    assert in_schema(plain, "public") == plain and in_schema(plain, None) == plain
    assert in_schema(plain, "alice") == "postgresql://localhost:5432/db#schema=alice"
    assert in_schema(plain, "a#b") != in_schema(plain, "a") != in_schema("sqlite:///x", "a")
    staged = store_identity("postgresql://localhost/db?options=-c%20search_path%3Dstaging")
    assert in_schema(staged, "staging") == staged and in_schema(staged, "public") != staged


def test_pins_without_schema_are_left_where_another_schema_holds_a_store(
    audit_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither moved nor dropped (a new store's open drops the pin of its earlier name) while
    another schema holds tables of Podium; moved where none does; a pin named with a schema is
    never taken as another spelling of the name without it."""
    base = "postgresql://localhost:5432/db"
    prod = AuditKeys(audit_key, base)
    prod.pin("a" * 32, 0)
    prod.note_head(1, "f" * 64)
    spelled = AuditKeys(audit_key, "postgresql://127.0.0.1/db")  # an earlier release's spelling of it
    spelled.pin("a" * 32, 0)
    alice = AuditKeys(audit_key, in_schema(base, "alice"))
    assert alice.id_path is not None and prod.id_path is not None and spelled.id_path is not None
    for fresh in (True, False):
        adopt_former_names(alice, None, fresh=fresh, base=base, others=frozenset({"public"}))
        assert prod.pinned()[0] == ("a" * 32, 0, False, "") and prod.heads()[0] == [(1, "f" * 64)]
        assert spelled.id_path.exists() and not alice.id_path.exists() and alice.heads()[0] == []
    assert "is not moved to it" in caplog.text
    adopt_former_names(alice, None, fresh=False, base=base)  # no other schema: that name was this store's
    assert alice.pinned()[0] == ("a" * 32, 0, False, "") and alice.heads()[0] == [(1, "f" * 64)]
    assert not prod.id_path.exists()
    spelled.id_path.unlink()  # (else taken by the next open: another spelling, where no other schema is)
    adopt_former_names(prod, None, fresh=False)  # the store in public takes no pin named with a schema
    assert prod.pinned()[0] is None and alice.id_path.exists()


# -- the attack ------------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_role_s_own_schema_cannot_take_production_s_pin(pg_url: str, alice: str, audit_key: str) -> None:
    """Production in ``public`` (user postgres); the role ``alice``, owning schema ``alice``, opens
    the same database: its tables are made in its schema, a store of its own with its own id. It
    had production's name: its pin replaced production's, and production's database given alice's
    id by whoever writes it was accepted (broke, fixed: the names differ now)."""
    db = _db(pg_url)
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    alice_url = f"postgresql://{alice}@127.0.0.1:5432/{db}"
    async with Client(prod_url) as c:
        await c.run(_wf(), 1)
        prod_id = c.store.audit_keys.store_id
        assert c.store.audit_keys.store == store_identity(prod_url)  # the common case: its name as before
    _plant(pg_url, alice)
    async with Client(alice_url) as c:
        await c.run(_wf(), 2)
        alice_id = c.store.audit_keys.store_id
        assert c.store.audit_keys.store == f"{store_identity(alice_url)}#schema={alice}"
    with psycopg.connect(pg_url, autocommit=True) as conn:  # alice's tables are in alice's schema
        assert conn.execute("SELECT to_regclass(%s)", (f'"{alice}".kv',)).fetchone() != (None,)
    assert alice_id != prod_id
    _set_id(pg_url, "public", str(alice_id))
    with pytest.raises(StoreError, match="is not the id this machine pinned|is the id of store"):
        async with Client(prod_url):
            pass
    pinned = AuditKeys(audit_key, store_identity(prod_url)).pinned()[0]
    assert pinned is not None and pinned[0] == prod_id  # production's pin is still production's
    _set_id(pg_url, "public", str(prod_id))
    async with Client(prod_url) as c:  # both open, each as itself
        assert (await c.governance.check_audit()).problem is None
    async with Client(alice_url) as c:
        assert c.store.audit_keys.store_id == alice_id
        assert (await c.governance.check_audit()).problem is None
    store = open_store(alice_url)
    early = store.audit_keys  # taken before the open (a ledger, say): the same keys, named anew
    assert early.store == store_identity(alice_url)
    async with store:
        assert store.audit_keys is early and early.store_id == alice_id
        assert early.store.endswith(f"#schema={alice}") and early.id_path is not None and early.id_path.exists()


@pytest.mark.postgres
async def test_production_s_pin_and_head_log_are_never_moved_to_a_role_s_schema(
    pg_url: str, alice: str, audit_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production pinned by the previous release (its name without a schema: today's). The role's
    store is made next to it (a new store) and opened again, after its id row was set to
    production's: the pin and head log under the name without schema may be production's (its
    tables are in ``public``), so neither is moved, dropped nor taken: alice's store, holding
    production's id, is refused, and production still opens with its own pin and head log."""
    db = _db(pg_url)
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    alice_url = f"postgresql://{alice}@127.0.0.1:5432/{db}"
    with monkeypatch.context() as m:
        _previous_release(m)
        async with Client(prod_url) as c:
            await c.run(_wf(), 1)
            prod_id = c.store.audit_keys.store_id
    prod = AuditKeys(audit_key, store_identity(prod_url))
    assert prod.id_path is not None and prod.head_path is not None
    lines = prod.head_path.read_text()
    _plant(pg_url, alice)
    async with Client(alice_url) as c:  # a new store in alice's schema: prod's pin not dropped
        await c.run(_wf(), 2)
        alice_id = c.store.audit_keys.store_id
    assert prod.pinned()[0] is not None and prod.pinned()[0][0] == prod_id  # type: ignore[index]
    assert prod.head_path.read_text() == lines
    _set_id(pg_url, alice, str(prod_id))
    with pytest.raises(StoreError, match="is not the id this machine pinned"):
        async with Client(alice_url):
            pass
    own = AuditKeys(audit_key, f"{store_identity(alice_url)}#schema={alice}").id_path
    assert own is not None
    own.unlink()  # its own pin deleted: a name read from the database is not pinned while the name without it is
    with pytest.raises(StoreError, match=f"its tables are in schema '{alice}' of the database, not in 'public'"):
        async with Client(alice_url):
            pass
    named = f"{alice_url}?options=-csearch_path%3D{alice}"  # the schema named in the URL: pinned as any new name
    with pytest.raises(StoreError, match="is the id of store"):  # but not with production's id
        async with Client(named):
            pass
    assert prod.pinned()[0] is not None and prod.pinned()[0][0] == prod_id  # type: ignore[index]
    _set_id(pg_url, alice, str(alice_id))
    async with Client(named) as c:
        assert c.store.audit_keys.store == store_identity(named) and c.store.audit_keys.store_id == alice_id
    assert prod.head_path.read_text() == lines
    async with Client(prod_url) as c:
        assert (await c.governance.check_audit()).problem is None


@pytest.mark.postgres
async def test_a_schema_named_after_production_s_role_cannot_point_it_at_other_tables(pg_url: str, audit_key: str) -> None:
    """The name read from the database, turned on production: someone who may create schemas makes
    one named after production's role (``postgres``) with a ``kv`` holding an id this machine never
    pinned (a store of another machine on the same key, say). Production's search path (``"$user",
    public``) finds that ``kv`` first: its name gains the schema, under which nothing is pinned, and
    its first open would pin the id found. Refused: the name without the schema is pinned here."""
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{_db(pg_url)}"
    async with Client(prod_url) as c:
        await c.run(_wf(), 1)
        prod_id = c.store.audit_keys.store_id
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA postgres")
        conn.execute("CREATE TABLE postgres.kv (LIKE public.kv INCLUDING ALL)")
        conn.execute("INSERT INTO postgres.kv SELECT * FROM public.kv")
    _set_id(pg_url, "postgres", "e" * 32)
    with pytest.raises(StoreError, match="its tables are in schema 'postgres' of the database, not in 'public'"):
        async with Client(prod_url):
            pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA postgres CASCADE")
    async with Client(prod_url) as c:  # the search path restored: production as before
        assert c.store.audit_keys.store_id == prod_id and c.store.audit_keys.store == store_identity(prod_url)


@pytest.mark.postgres
async def test_a_role_s_store_pinned_by_the_previous_release_keeps_its_pin_and_head_log(
    pg_url: str, alice: str, audit_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role's store alone in its database (nothing in ``public``), pinned by the previous
    release under the name without its schema: that name was this store's only, so its pin and head
    log move to the new name at the first open, and still catch a deleted entry."""
    db = _db(pg_url)
    alice_url = f"postgresql://{alice}@127.0.0.1:5432/{db}"
    with monkeypatch.context() as m:
        _previous_release(m)
        async with Client(alice_url) as c:
            for i in range(3):
                await c.run(_wf(), i)
            sid = c.store.audit_keys.store_id
    old = AuditKeys(audit_key, store_identity(alice_url))
    new = AuditKeys(audit_key, f"{store_identity(alice_url)}#schema={alice}")
    assert old.id_path is not None and old.id_path.exists() and new.id_path is not None
    async with Client(alice_url) as c:
        assert c.store.audit_keys.store == new.store and c.store.audit_keys.store_id == sid
        assert (await c.governance.check_audit()).problem is None
        entries = await c.audit_log()
    assert not old.id_path.exists() and new.pinned()[0] is not None and new.pinned()[0][0] == sid  # type: ignore[index]
    assert old.head_path is not None and not old.head_path.exists()
    assert {(e.seq, e.hash) for e in entries} <= set(new.heads()[0])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{alice}".audit WHERE seq = %s', (entries[-1].seq,))
    async with Client(alice_url, recover=False) as c:
        problem = (await c.governance.check_audit()).problem or ""
    assert f"entry {entries[-1].seq} was deleted" in problem


@pytest.mark.postgres
async def test_options_choosing_the_schema_keep_their_name(pg_url: str, audit_key: str) -> None:
    """The common case with a schema of its own: ``?options=-csearch_path=podium`` names its
    schema already, so its name is as before (no pin moves)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA podium")
    url = f"postgresql://postgres@127.0.0.1:5432/{_db(pg_url)}?options=-csearch_path%3Dpodium"
    async with Client(url) as c:
        await c.run(_wf(), 1)
        assert c.store.audit_keys.store == store_identity(url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('podium.kv')").fetchone() != (None,)
