"""Operations (tenth session): every PostgreSQL connection Podium opens has TCP keepalives and a
``tcp_user_timeout``, so a server cut off without a reset (a partition) is noticed in well under a
minute rather than after the kernel's two hours; a setting in the URL wins.

Read back from the sockets themselves (getsockopt on the connection's file descriptor), over TCP
to the real server at 127.0.0.1:5432."""

from __future__ import annotations

import socket
from typing import Any

import pytest

pytest.importorskip("psycopg")

from podium import open_store
from podium._sqldb import open_database


def _tcp(conn: Any) -> dict[str, int]:
    """The keepalive settings of a psycopg connection's socket."""
    sock = socket.socket(fileno=socket.dup(conn.pgconn.socket))
    try:
        assert sock.family in (socket.AF_INET, socket.AF_INET6), "the test needs a TCP connection (host=127.0.0.1)"
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }
    finally:
        sock.close()


def _noticed_within(opts: dict[str, int]) -> float:
    """Seconds of silence after which the kernel gives the connection up."""
    assert opts["keepalive"], opts
    return max(opts["idle"] + opts["interval"] * opts["count"], opts["user_timeout_ms"] / 1000)


async def test_store_connections_have_keepalives_and_a_user_timeout(pg_url: str) -> None:
    store = open_store(pg_url)
    await store.open()
    try:
        async with store._connection() as conn:  # a pooled connection, as every statement uses
            pooled = _tcp(conn)
        await store.wait_for_work(0.01)  # the worker's LISTEN connection
        assert store._listener is not None
        listening = _tcp(store._listener)
    finally:
        await store.close()
    for opts in (pooled, listening):
        assert opts["keepalive"] == 1
        assert opts["user_timeout_ms"] > 0, opts
        assert _noticed_within(opts) < 45, opts


async def test_the_memory_tables_connections_have_them_too(pg_url: str) -> None:
    db = open_database(pg_url)
    await db._connect()
    try:
        async with db._pool.connection() as conn:
            opts = _tcp(conn)
    finally:
        await db._disconnect()
    assert opts["keepalive"] == 1 and opts["user_timeout_ms"] > 0
    assert _noticed_within(opts) < 45, opts


async def test_a_keepalive_setting_in_the_url_wins(pg_url: str) -> None:
    store = open_store(f"{pg_url}?keepalives_idle=120&tcp_user_timeout=90000")
    await store.open()
    try:
        async with store._connection() as conn:
            opts = _tcp(conn)
            application = (await (await conn.execute("SHOW application_name")).fetchone() or [""])[0]
    finally:
        await store.close()
    assert opts["idle"] == 120 and opts["user_timeout_ms"] == 90000
    assert opts["keepalive"] == 1 and opts["interval"] == 5 and opts["count"] == 3  # the others still set
    assert application == "podium"


async def test_keepalives_can_be_switched_off_in_the_url(pg_url: str) -> None:
    store = open_store(f"{pg_url}?keepalives=0")
    await store.open()
    try:
        async with store._connection() as conn:
            opts = _tcp(conn)
    finally:
        await store.close()
    assert opts["keepalive"] == 0
