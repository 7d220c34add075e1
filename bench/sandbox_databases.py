"""The sandbox company on each database it runs on: how long it takes to start (create the tables,
seed the sample company) and how long its systems take to answer a write and a read.

    python bench/sandbox_databases.py [--requests 200] [--server postgresql://postgres@127.0.0.1:5432/postgres]

Prints one JSON line per database (sqlite, postgresql, mariadb): start seconds, and p50/p95 of
``POST /tickets`` (a row, its ``received`` entry and its event in one transaction) and ``GET
/tickets/{id}``, sequential, over HTTP on 127.0.0.1. PostgreSQL and MariaDB databases are created for
the run and dropped after; a server that does not answer is reported and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from _scratch import scratch_database, server_from_env

from podium.sandbox import Sandbox


@contextlib.contextmanager
def mariadb() -> Iterator[str]:
    import pymysql

    name = f"podium_bench_{uuid.uuid4().hex[:12]}"

    def admin() -> pymysql.Connection:  # type: ignore[type-arg]
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)

    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1] * 1000, 2)


def measure(kind: str, url: str | None, n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        started = time.perf_counter()
        with Sandbox(Path(folder) / "company", database=url) as company, httpx.Client(timeout=30) as web:
            start = time.perf_counter() - started
            desk = company.urls["support_desk"]
            writes, reads = [], []
            for i in range(n):
                t = time.perf_counter()
                r = web.post(f"{desk}/tickets", json={"customer_id": "C001", "message": f"ticket {i}"})
                writes.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text
                t = time.perf_counter()
                assert web.get(f"{desk}/tickets/{r.json()['ticket_id']}").status_code == 200
                reads.append(time.perf_counter() - t)
            assert len(company.received("support_desk")) == n
    return {"bench": "sandbox_databases", "database": kind, "requests": n, "start_s": round(start, 2),
            "write_p50_ms": pct(writes, 50), "write_p95_ms": pct(writes, 95),
            "read_p50_ms": pct(reads, 50), "read_p95_ms": pct(reads, 95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--server", default=server_from_env(), help="PostgreSQL admin URL")
    args = parser.parse_args()
    print(json.dumps(measure("sqlite", None, args.requests)), flush=True)
    for kind, make in (("postgresql", lambda: scratch_database(args.server)), ("mariadb", mariadb)):
        try:
            with make() as url:
                print(json.dumps(measure(kind, url, args.requests)), flush=True)
        except Exception as exc:  # a server that does not answer: say so, measure the others
            print(json.dumps({"bench": "sandbox_databases", "database": kind, "skipped": f"{type(exc).__name__}: {exc}"}))


if __name__ == "__main__":
    main()
