"""Chaos review (ninth session): PostgreSQL refusing new connections.

A server out of connection slots (``max_connections``, or a role's or database's ``CONNECTION
LIMIT``), or a database closed to connections (``ALLOW_CONNECTIONS false``, as during maintenance),
was reported with the hint for a typo: "check the URL: postgresql://user:password@host:5432/database".
Now the hint says what is full or closed and what to do."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from podium import ConfigError, open_store


@pytest.fixture
def limited_role(pg_url: str):  # type: ignore[no-untyped-def]
    """A role (no superuser: superusers ignore connection limits) allowed one connection."""
    name = f"podium_test_chaos9_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 1')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


async def test_no_connection_slot_left_says_so(pg_url: str, limited_role: str) -> None:
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(netloc=f"{limited_role}@{parts.hostname}:{parts.port or 5432}"))
    with psycopg.connect(url):  # the role's only slot, taken by another client
        store = open_store(url)
        with pytest.raises(ConfigError) as info:
            await store.open()
        await store.close()
    message = str(info.value)
    assert "too many connections" in message
    assert "CONNECTION LIMIT" in message and "max_connections" in message and "PgBouncer" in message
    assert "check the URL" not in message


async def test_a_database_closed_to_connections_says_so(pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            store = open_store(pg_url)
            with pytest.raises(ConfigError) as info:
                await store.open()
            await store.close()
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true' in str(info.value)
    assert "check the URL" not in str(info.value)
