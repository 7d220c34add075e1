"""Attacker's review of "one name per store, also per schema" (fifteenth session, rev15n).

The name without schema was, under the previous release, the name of whichever store a URL reached:
also a role's store in its own schema (``"$user", public``). The gate of the change keeps a
schema-named store from taking a pin under the name without schema while another schema holds
Podium's tables; these tests turn it around: the store in ``public`` (whose name is the name
without schema) must not take, replace or drop the pin another schema's store had under it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from podium import Client, StepContext, StoreError, Workflow
from podium._auditkey import AuditKeys, store_identity
from podium.storage import _base


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGPORT", "PGDATABASE", "PGUSER", "PGHOST", "PGOPTIONS"):
        monkeypatch.delenv(var, raising=False)


def _wf() -> Workflow:
    wf = Workflow("schema_names_review")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


@pytest.fixture
def prod_role(pg_url: str) -> Iterator[str]:
    """Production's role, owning a schema of its name (its tables go there through ``"$user"``)."""
    name = f"podium_test_prod_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.postgres
async def test_a_new_store_in_public_does_not_replace_a_role_schema_store_s_pin(
    pg_url: str, prod_role: str, audit_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production in its role's schema, pinned by the previous release under the name without
    schema. Another role (or an insider on the same machine and key) opens the same database with
    its tables in ``public``: a new store, whose name is that name. Its open replaced production's
    pin with its own id (and took its head log), and production, refused under its new name until
    its URL names the schema, then pinned whatever id its database held (broke, fixed: refused)."""
    db = pg_url.rpartition("/")[2]
    prod_url = f"postgresql://{prod_role}@127.0.0.1:5432/{db}"
    other_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with monkeypatch.context() as m:
        m.setattr(_base, "in_schema", lambda name, schema: name)  # the previous release's names
        async with Client(prod_url) as c:
            await c.run(_wf(), 1)
            prod_id = c.store.audit_keys.store_id
    plain = AuditKeys(audit_key, store_identity(prod_url))
    assert plain.head_path is not None and plain.pinned()[0] is not None
    lines = plain.head_path.read_text()
    with pytest.raises(StoreError, match="may be another schema's store's"):
        async with Client(other_url):
            pass
    pinned = plain.pinned()[0]
    assert pinned is not None and pinned[0] == prod_id  # production's pin is still production's
    assert plain.head_path.read_text() == lines
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the store just made in public, dropped
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    async with Client(prod_url) as c:  # production moves its pin and head log to its own name
        assert c.store.audit_keys.store == f"{store_identity(prod_url)}#schema={prod_role}"
        assert c.store.audit_keys.store_id == prod_id
        assert (await c.governance.check_audit()).problem is None
    assert not plain.id_path.exists()  # type: ignore[union-attr]


@pytest.fixture
def mallory(pg_url: str) -> Iterator[str]:
    """A role that may create schemas in the test's database (nothing more)."""
    name = f"podium_test_mallory_{uuid.uuid4().hex[:8]}"
    db = pg_url.rpartition("/")[2]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'GRANT CREATE ON DATABASE "{db}" TO "{name}"')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f'DROP OWNED BY "{name}" CASCADE')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.postgres
async def test_a_schema_planted_under_production_s_role_name_does_not_take_its_new_tables(
    pg_url: str, mallory: str, audit_key: str
) -> None:
    """Someone who may only create schemas makes one named after production's role (``postgres``)
    with an empty ``schema_migrations`` of theirs: production's search path (``"$user", public``)
    finds it first, so its open made a new store in that schema (theirs: a trigger on their table
    runs as production), under a name no pin holds, and took it silently (its runs gone from view,
    its writes in their schema). Refused now, as a store found there with an id: a schema its role
    does not own is not taken for the role's own while the URL's store is pinned here."""
    db = pg_url.rpartition("/")[2]
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    async with Client(prod_url) as c:
        await c.run(_wf(), 1)
        prod_id = c.store.audit_keys.store_id
    with psycopg.connect(f"postgresql://{mallory}@127.0.0.1:5432/{db}", autocommit=True) as conn:
        conn.execute("CREATE SCHEMA postgres")
        conn.execute("CREATE TABLE postgres.schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
    with pytest.raises(StoreError, match="its tables are in schema 'postgres' of the database, not in 'public'"):
        async with Client(prod_url):
            pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA postgres CASCADE")
    async with Client(prod_url) as c:  # the schema dropped: production as before
        assert c.store.audit_keys.store_id == prod_id and c.store.audit_keys.store == store_identity(prod_url)
        assert len(await c.list()) == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    "shadow",
    [
        "CREATE TABLE postgres.runs (LIKE public.runs INCLUDING ALL)",
        "CREATE SEQUENCE postgres.audit_seq START 1000",
        "CREATE FUNCTION postgres.podium_signal_of(data TEXT, asked BOOLEAN) RETURNS TEXT LANGUAGE sql AS $$ SELECT NULL $$",
    ],
    ids=["table", "sequence", "function"],
)
async def test_a_table_of_the_store_hidden_by_the_search_path_is_refused(
    pg_url: str, mallory: str, audit_key: str, shadow: str
) -> None:
    """The schema of the ``kv`` table names the store; its other tables are reached by the search
    path one by one. Someone who may create schemas made one named after production's role with a
    ``runs`` of theirs: production opened under its name and pin, and read and wrote their table
    (its runs gone from view, new ones theirs to read; a sequence or function of the store likewise).
    Refused now, naming what hides what."""
    db = pg_url.rpartition("/")[2]
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    async with Client(prod_url) as c:
        await c.run(_wf(), 1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA postgres AUTHORIZATION "{mallory}"')
        conn.execute(shadow)
    with pytest.raises(StoreError, match=r"postgres\.(runs|audit_seq|podium_signal_of) hides"):
        async with Client(prod_url):
            pass
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the way the message gives: the store as it is
        conn.execute(f'ALTER ROLE postgres IN DATABASE "{db}" SET search_path = public')
    try:
        async with Client(prod_url) as c:
            assert len(await c.list()) == 1 and c.store.audit_keys.store == store_identity(prod_url)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'ALTER ROLE postgres IN DATABASE "{db}" RESET search_path')
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA postgres CASCADE")
    async with Client(prod_url) as c:
        assert len(await c.list()) == 1


@pytest.mark.postgres
async def test_every_relation_and_function_of_a_store_is_checked_for_shadows(pg_url: str, audit_key: str) -> None:
    """The names :data:`podium.storage._names.OBJECTS` checks are every table, view and sequence a
    store's migrations make (a new one left out would be hidden unseen), and its functions are named
    ``podium_``."""
    from podium.storage._names import OBJECTS

    async with Client(f"postgresql://postgres@127.0.0.1:5432/{pg_url.rpartition('/')[2]}"):
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rels = {r for (r,) in conn.execute(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind <> 'i'"
        )}  # fmt: skip
        funcs = {f for (f,) in conn.execute("SELECT proname::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace")}
    assert rels and rels <= set(OBJECTS), rels - set(OBJECTS)
    assert funcs and all(f.startswith("podium_") for f in funcs), funcs


@pytest.mark.postgres
async def test_a_role_whose_name_needs_quoting_has_its_own_schema_named(pg_url: str, audit_key: str) -> None:
    """Sound: a role named with capitals and ``#`` owning its schema: the name gains it quoted (no
    other name reads the same), and it counts as the role's own (a new store there is taken, next
    to production's pin)."""
    from urllib.parse import quote

    role = f"Podium_Test_Q#{uuid.uuid4().hex[:6]}"
    db = pg_url.rpartition("/")[2]
    async with Client(f"postgresql://postgres@127.0.0.1:5432/{db}"):
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')
        conn.execute(f'CREATE TABLE "{role}".schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)')
        conn.execute(f'ALTER TABLE "{role}".schema_migrations OWNER TO "{role}"')  # (it may not read production's)
    url = f"postgresql://{quote(role, safe='')}@127.0.0.1:5432/{db}"
    try:
        async with Client(url) as c:
            await c.run(_wf(), 1)
            assert c.store.audit_keys.store == f"{store_identity(url)}#schema={quote(role, safe='')}"
            assert "#" not in c.store.audit_keys.store.partition("#schema=")[2]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
async def test_a_new_machine_does_not_make_production_s_store_in_a_planted_schema(
    pg_url: str, mallory: str, audit_key: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted schema again, met by a machine that never opened the store (a new worker): no
    pin says anything, and its open made a new store in the planted schema (split from the other
    machines', in their schema). A new store is not made in a schema its URL does not name and its
    role does not own."""
    db = pg_url.rpartition("/")[2]
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with monkeypatch.context() as m:
        m.setenv("PODIUM_AUDIT_KEY", str(tmp_path / "machine-a" / "audit.key"))
        async with Client(prod_url) as c:
            await c.run(_wf(), 1)
    with psycopg.connect(f"postgresql://{mallory}@127.0.0.1:5432/{db}", autocommit=True) as conn:
        conn.execute("CREATE SCHEMA postgres")
        conn.execute("CREATE TABLE postgres.schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
    with pytest.raises(StoreError, match="its tables were just made in schema 'postgres'.*its role does not own"):
        async with Client(prod_url):
            pass
    assert not list((AuditKeys(audit_key, "x").id_path.parent).glob("*.id"))  # type: ignore[union-attr]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA postgres CASCADE")
    async with Client(prod_url) as c:  # on the store the other machine uses
        assert len(await c.list()) == 1
