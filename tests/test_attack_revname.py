"""Attacker's review of "one name per PostgreSQL store" (h-pgname; fourteenth session, revname).

A store's name keys its pin and head log on a machine. Two databases (or two sets of tables) given
one name do not merely refuse each other: a store made by an open (``fresh``) pins its new id over
the pin of the other one, whose database then passes with that id. These tests give each URL that
reaches other tables its own name, and check what held.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from podium import Client, StepContext, StoreError, Workflow
from podium._auditkey import AuditKeys, former_identity, store_identity
from podium.storage._identity import KEY, NAMESPACE


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGPORT", "PGDATABASE", "PGUSER", "PGHOST"):
        monkeypatch.delenv(var, raising=False)


def _wf() -> Workflow:
    wf = Workflow("revname")

    @wf.step
    async def only(ctx: StepContext, input):
        return input

    return wf


def _db(pg_url: str) -> str:
    return pg_url.rpartition("/")[2]


# -- names: what held, what was merged -------------------------------------------------------------


def test_what_reaches_another_database_keeps_its_own_name() -> None:
    """Held: a database name's case (PostgreSQL's names are case-sensitive), another port on
    localhost, a socket, a trailing slash, a ``host=`` or ``dbname=`` option, percent-encoding."""
    names = [
        "postgresql://localhost/prod",
        "postgresql://localhost/Prod",
        "postgresql://localhost:5433/prod",
        "postgresql:///prod",
        "postgresql://%2Ftmp/prod",
        "postgresql://localhost/prod/",
        "postgresql://localhost/prod%2F",
        "postgresql://localhost/prod?host=%2Ftmp",
        "postgresql://localhost/prod?dbname=staging",
        "postgresql://localhost/prod?hostaddr=10.0.0.1",
        "postgresql://127.0.0.2/prod",
    ]
    assert len({store_identity(u) for u in names}) == len(names) - 1  # prod/ and prod%2F: one database, "prod/"
    assert store_identity("postgresql://localhost/prod/") == store_identity("postgresql://localhost/prod%2F")


def test_an_option_given_twice_is_libpq_s_last_one() -> None:
    """Broke (fixed): the options were sorted as pairs, so ``port=5433&port=5432`` (libpq reaches
    5432) and ``port=5432&port=5433`` (5433) were one name."""
    a = store_identity("postgresql://localhost/db?port=5433&port=5432")
    b = store_identity("postgresql://localhost/db?port=5432&port=5433")
    assert a != b
    assert a == store_identity("postgresql://localhost/db?port=5432")
    assert store_identity("postgresql://localhost/db?dbname=a&dbname=b") == store_identity("postgresql://localhost/db?dbname=b")


@pytest.mark.parametrize(
    "options",
    [
        "-c%20SEARCH_PATH%3Dstaging",  # a setting's name is case-insensitive in PostgreSQL
        "--search-path%3Dstaging",  # "-" for "_" in a long option
        "-c%20search-path%3Dstaging",
        "-c%20role%3Dstaging",  # "$user" in the default search path: the role's schema
        "-c%20session_authorization%3Dstaging",
    ],
)
def test_options_that_choose_the_tables_keep_their_own_name(options: str) -> None:
    """Broke (fixed): only ``search_path`` spelled so kept ``options`` in the name."""
    assert store_identity(f"postgresql://localhost/db?options={options}") != store_identity("postgresql://localhost/db")


def test_options_that_do_not_choose_the_tables_are_still_dropped() -> None:
    assert store_identity("postgresql://localhost/db?options=-c%20statement_timeout%3D5000") == store_identity(
        "postgresql://localhost/db"
    )


def test_the_earlier_release_s_names_are_unchanged() -> None:
    """The fix changes today's names only: former names (where pins are moved from) are as that
    release wrote them."""
    assert former_identity("postgresql://u@localhost/db?port=5433&port=5432") == "postgresql://localhost/db?port=5432&port=5433"
    assert former_identity("postgresql://localhost/db?options=-c%20ROLE%3Dx") == "postgresql://localhost/db"


# -- the attack through a merged name --------------------------------------------------------------


@pytest.mark.postgres
async def test_a_store_in_another_schema_cannot_take_production_s_pin(pg_url: str, audit_key: str) -> None:
    """Production in schema ``public``; an insider's staging store in schema ``staging`` of the same
    database, reached with ``options=-c SEARCH_PATH=staging``. Both had one name: staging's first
    open (its schema made by it: a new id, a new pin) replaced production's pin with staging's id,
    and production's database, its id row set to staging's by whoever writes it, was accepted."""
    db = _db(pg_url)
    prod_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA staging")
    async with Client(prod_url) as c:
        await c.run(_wf(), 1)
        prod_id = c.store.audit_keys.store_id
    staging_url = f"{prod_url}?options=-c%20SEARCH_PATH%3Dstaging"
    async with Client(staging_url) as c:
        await c.run(_wf(), 2)
        staging_id = c.store.audit_keys.store_id
    assert staging_id != prod_id
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the attacker gives production staging's id
        (raw,) = conn.execute("SELECT value FROM public.kv WHERE ns = %s AND key = %s", (NAMESPACE, KEY)).fetchone()  # type: ignore[misc]
        rec = json.loads(raw)
        rec["id"] = staging_id
        conn.execute("UPDATE public.kv SET value = %s WHERE ns = %s AND key = %s", (json.dumps(rec), NAMESPACE, KEY))
    with pytest.raises(StoreError, match="is not the id this machine pinned|is the id of store"):
        async with Client(prod_url):
            pass
    pinned = AuditKeys(audit_key, store_identity(prod_url)).pinned()[0]
    assert pinned is not None and pinned[0] == prod_id  # production's pin is still production's


# -- left: a former name that env variables made ambiguous ----------------------------------------


def test_a_former_pin_is_not_moved_to_another_port_named_by_pgport(audit_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier release named ``postgresql://localhost/db`` without its port. Production (5432)
    pinned under it; opened first by this release with ``PGPORT=5433`` (another server, say
    staging), the URL's former name is production's, and its pin and head log move to the name of
    the server on 5433: production's pin then named staging's name, and its head log was gone from
    production's (broke, fixed: a former name libpq's environment fills in is not moved from)."""
    from podium.storage._identity import adopt_former_names

    url = "postgresql://localhost/db"
    old = AuditKeys(audit_key, str(former_identity(url)))
    old.pin("a" * 32, 0)
    old.note_head(1, "f" * 64)
    monkeypatch.setenv("PGPORT", "5433")
    staging = AuditKeys(audit_key, store_identity(url))
    adopt_former_names(staging, former_identity(url), fresh=False)
    assert staging.pinned()[0] is None  # production's pin was not taken by 5433's name
    assert old.pinned()[0] is not None and old.heads()[0] == [(1, "f" * 64)]
    alike = AuditKeys(audit_key, "postgresql://127.0.0.1/db")  # another spelling the earlier release pinned
    alike.pin("b" * 32, 0)
    old.id_path.unlink()  # type: ignore[union-attr]
    adopt_former_names(staging, None, fresh=False)
    assert staging.pinned()[0] is None and alike.pinned()[0] is not None
    monkeypatch.delenv("PGPORT")
    production = AuditKeys(audit_key, store_identity(url))
    adopt_former_names(production, None, fresh=False)  # without the variable: moved as before
    assert production.pinned()[0] == ("b" * 32, 0, False, "")


def test_libpq_s_environment_names_the_server_and_tables_an_url_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broke (fixed): ``postgresql:///db`` was one name whatever ``$PGHOST`` (another server), and
    ``$PGOPTIONS`` setting a search path (other tables) was left out."""
    socket = store_identity("postgresql:///db")
    monkeypatch.setenv("PGHOST", "staging.example.com")
    assert store_identity("postgresql:///db") == store_identity("postgresql://staging.example.com/db") != socket
    assert "staging" not in store_identity("postgresql:///db?host=%2Ftmp")  # a host option wins over $PGHOST
    monkeypatch.delenv("PGHOST")
    plain = store_identity("postgresql://localhost/db")
    monkeypatch.setenv("PGOPTIONS", "-c search_path=staging")
    assert store_identity("postgresql://localhost/db") != plain
    assert store_identity("postgresql://localhost/db?options=-c%20statement_timeout%3D1") == plain  # the URL's wins
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=5")
    assert store_identity("postgresql://localhost/db") == plain
