"""Databases a benchmark creates for itself and drops afterwards: benchmarks never touch a database
they did not create. ``--server`` names a PostgreSQL server (its admin URL); the benchmark makes
``podium_bench_<random>`` there, works in it, and drops it, even when it fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def scratch_database(server: str | None, *, keep: bool = False) -> Iterator[str]:
    """A new, empty store URL: a fresh PostgreSQL database on ``server`` (an admin URL), or, with
    ``server`` None or ``sqlite``, a SQLite file in a new temporary folder. Removed on exit unless
    ``keep``."""
    if not server or server == "sqlite":
        folder = tempfile.mkdtemp(prefix="podium-bench-")
        try:
            yield f"sqlite:///{folder}/bench.db"
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
        return
    if not server.startswith(("postgresql://", "postgres://")):
        raise SystemExit(f"--server {server!r}: give a PostgreSQL admin URL (postgresql://user@host/postgres) or 'sqlite'")
    import psycopg

    name = f"podium_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        if keep:
            print(f"kept the benchmark database {name} on {server.rsplit('@', 1)[-1]}", flush=True)
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_from_env() -> str:
    return os.environ.get("PODIUM_BENCH_PG", DEFAULT_SERVER)
