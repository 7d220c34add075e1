"""Chaos review (ninth session): PostgreSQL sessions killed under a running worker.

A real ``podium worker``-like process drives a run on PostgreSQL; the test makes the worker's write
of a step's completion wait behind a row lock it holds, then terminates every session of the
worker (``pg_terminate_backend``: what a server restart, a failover or an administrator does), so
that the write fails in flight. The worker must carry on: the run resumes from its log within
seconds, not after the lease runs out, with every finished step run once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from paused_workers import load_flows, step_log, until, waiting_on_locks

from podium import Client, RunStatus

FLOWS = textwrap.dedent(
    """
    import asyncio, os
    from podium import StepContext, Workflow

    wf = Workflow("pg_outage", version="1")


    @wf.step
    async def one(ctx: StepContext, input):
        note("one")
        go = os.environ["CHAOS_GO"]
        while not os.path.exists(go):  # the test takes its lock first
            await asyncio.sleep(0.01)
        return input


    @wf.step
    async def two(ctx: StepContext, one):
        note("two")
        return one + 1
    """
)

WORKER = textwrap.dedent(
    """
    import asyncio, logging, sys
    from podium import Client
    import chaos_outage_flows

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    async def main(url: str) -> None:
        # A lease far longer than the test waits: only a hand-back lets the run go on in time.
        async with Client(url, workflows=[chaos_outage_flows.wf], lease_seconds=120, poll_interval=0.1) as c:
            await c.work(asyncio.Event(), concurrency=4)

    asyncio.run(main(sys.argv[1]))
    """
)


APP = "podium_chaos_worker"


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("CHAOS_GO", str(tmp_path / "go"))
    return load_flows(tmp_path, monkeypatch, "chaos_outage_flows", FLOWS)


def _terminate_worker(url: str) -> int:
    """Terminate every session of the worker (its pool, its LISTEN connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (APP,),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_write_killed_in_flight_hands_the_run_back_at_once(pg_url: str, flows: ModuleType, tmp_path: Path) -> None:
    """Failed before: the worker logged "engine error" with a traceback, stopped driving the run
    and kept its lease: nobody could take the run until the lease ran out (here 120 s; 30 s by
    default), although the worker was alive and the database back within milliseconds."""
    (tmp_path / "worker.py").write_text(WORKER)
    with open(tmp_path / "worker.err", "w") as err:
        await _drive_through_outage(pg_url, flows, tmp_path, err)


async def _drive_through_outage(pg_url: str, flows: ModuleType, tmp_path: Path, err: Any) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), f"{pg_url}?application_name={APP}"], stderr=err, env=env)
    try:
        async with Client(pg_url, execute=False, workflows=[flows.wf]) as c:
            run_id = (await c.start(flows.wf, 1)).id

            async def step_one_running() -> bool:
                assert proc.poll() is None, (tmp_path / "worker.err").read_text()
                return [s for s, _ in step_log(tmp_path)] == ["one"]

            await until("step one running on the worker", step_one_running)
            with psycopg.connect(pg_url) as locker:  # a transaction: holds the run's row
                locker.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))
                (tmp_path / "go").touch()
                await waiting_on_locks(pg_url, "the worker's write of step one never waited for the lock")
                assert _terminate_worker(pg_url) >= 2  # its write waiting, and its LISTEN
                locker.rollback()
            done = await c.wait(run_id, timeout=60)  # its lease: 120 s
        assert done.status is RunStatus.COMPLETED, done.error
        calls = [s for s, _ in step_log(tmp_path)]
        assert calls.count("two") == 1 and calls.count("one") in (1, 2), calls  # one: in flight, may run again
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "worker.err").read_text()
    assert "Traceback" not in log and "engine error" not in log, log
    assert "store failed" in log, log


async def test_an_event_subscription_listens_again_after_its_session_is_killed(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed before: ``client.on`` (and ``podium serve``'s event triggers) on PostgreSQL
    listened through one connection whose task ended with it, silently: after a server restart or
    a failover no event reached the handler again until the process restarted."""
    got: list[int] = []
    async with Client(f"{pg_url}?application_name={APP}") as sub, Client(pg_url) as pub:
        await sub.on("chaos.*", lambda topic, payload: got.append(payload))
        await pub.emit("chaos.a", 0)
        await until("the first event", lambda: _true(bool(got)))
        assert _terminate_worker(pg_url) >= 1
        sent = 0

        async def delivered() -> bool:
            nonlocal sent
            sent += 1
            await pub.emit("chaos.a", sent)  # NOTIFY is not stored: the ones sent before it listens again are lost
            await asyncio.sleep(0.05)
            return len(got) > 1

        await until("an event after the session was killed", delivered, timeout=30)
    said = [r.getMessage() for r in caplog.records if r.name == "podium.events"]
    assert any("listening session ended" in m for m in said) and any("listening again" in m for m in said), said


async def _true(value: bool) -> bool:
    return value


TOKEN_WORKER = textwrap.dedent(
    """
    import asyncio, logging, os, sys
    from podium import Client
    from podium.governance import identity
    from podium.storage.postgres import PostgresStore
    import chaos_outage_flows

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    identity.RECHECK_SECONDS = 0.1  # its token is checked again at once: the outage finds the check

    async def main(url: str) -> None:
        store = PostgresStore(url, timeout=1)  # a short wait for a connection: the outage is seen at once
        async with Client(store, workflows=[chaos_outage_flows.wf], token=os.environ["CHAOS_TOKEN"], poll_interval=0.05) as c:
            await c.work(asyncio.Event(), concurrency=4)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_worker_with_a_token_outlives_a_database_outage(pg_url: str, flows: ModuleType, tmp_path: Path) -> None:
    """The database closed to connections for a while (``ALLOW_CONNECTIONS false`` and every session
    of the worker terminated: what a server restart or a failover looks like to it). Failed before: a
    worker acting with a token checks it again every few seconds; that read failed with a
    ``StoreError``, which its claim loop let out as if the token had been refused: the worker
    process died, and nothing claimed runs once the database was back."""
    (tmp_path / "go").touch()  # step one does not wait here
    name = pg_url.rsplit("/", 1)[1]
    async with Client(pg_url) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(pg_url, token=root, execute=False) as admin:
        await admin.create_user("w", ["worker"], service=True)
        token = await admin.create_token("w")
    (tmp_path / "token_worker.py").write_text(TOKEN_WORKER)
    env = {
        **os.environ,
        "CHAOS_TOKEN": token,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp_path / "worker.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(tmp_path / "token_worker.py"), f"{pg_url}?application_name={APP}"], stderr=err, env=env
        )
        try:
            async with Client(pg_url, token=root, execute=False, workflows=[flows.wf]) as c:
                first = (await c.start(flows.wf, 1)).id
                assert (await c.wait(first, timeout=60)).status is RunStatus.COMPLETED
                with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin_db:
                    admin_db.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                    try:
                        _terminate_worker(pg_url.rsplit("/", 1)[0] + "/postgres")

                        async def token_check_failed() -> bool:
                            assert proc.poll() is None, log.read_text()[-3000:]  # before: the worker died
                            return "checking this worker's token failed" in log.read_text()

                        await until("the worker's token check meeting the outage", token_check_failed)
                    finally:
                        admin_db.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                second = (await c.start(flows.wf, 2)).id  # claimed by the worker once the database is back
                assert (await c.wait(second, timeout=60)).status is RunStatus.COMPLETED
            assert proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


async def test_a_statement_timeout_in_the_url_turns_a_hung_write_into_a_hand_back(
    pg_url: str, flows: ModuleType, tmp_path: Path
) -> None:
    """A write that hangs (here behind a lock another client holds and does not let go) holds its
    run for as long as it hangs: the worker's lease renewals, on other connections, go on. With
    ``statement_timeout`` in the store URL (docs/operations.md) the write fails after that time, the
    run is handed back and finishes once the lock is gone. Checked and found sound (no change)."""
    (tmp_path / "worker.py").write_text(WORKER)
    url = f"{pg_url}?application_name={APP}&options=-c%20statement_timeout%3D300"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "worker.err"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), url], stderr=err, env=env)
        try:
            async with Client(pg_url, execute=False, workflows=[flows.wf]) as c:
                run_id = (await c.start(flows.wf, 1)).id

                async def step_one_running() -> bool:
                    assert proc.poll() is None, log.read_text()
                    return [s for s, _ in step_log(tmp_path)] == ["one"]

                await until("step one running on the worker", step_one_running)
                with psycopg.connect(pg_url) as locker:
                    locker.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))
                    (tmp_path / "go").touch()
                    await until("the hung write timing out", lambda: _true("the store failed" in log.read_text()))
                    locker.rollback()
                done = await c.wait(run_id, timeout=60)  # its lease: 120 s
            assert done.status is RunStatus.COMPLETED, done.error
            assert "statement timeout" in log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
