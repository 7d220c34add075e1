"""Review of the scale layer (2026-12-06, seventh session): claims and leases against real
processes. A worker paused (SIGSTOP) past its lease, whose run another engine took over meanwhile,
must not start a step once it runs again (the step it was in the middle of is the documented
exception: docs/durability.md, "What no step on two workers at once means"); a worker killed with
SIGKILL while it holds a run must not lose it.

Each point is reached by the process itself, not by timing: the paused worker stops itself from
its event listener right after its first step's completion is written, and the test waits for the
states it needs (stopped, lease expired, step started) before it goes on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from paused_workers import load_flows, proc_state, step_log, until
from test_audit_chains import Log

from podium import Client, RunStatus

FLOWS = textwrap.dedent(
    """
    import asyncio, os
    from podium import StepContext, Workflow

    wf = Workflow("stale_lease", version="1")
    RELEASE = None  # set by the engine that should hold step two open (an asyncio.Event)


    @wf.step
    async def one(ctx: StepContext, input):
        note("one")
        if os.environ.get("REVIEW_HANG"):  # the worker that is killed here never gets further
            await asyncio.Event().wait()
        return input


    @wf.step
    async def two(ctx: StepContext, one):
        note("two")
        if RELEASE is not None:
            await RELEASE.wait()
        return one + 1
    """
)

PAUSED_WORKER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from podium import Client
    import review_flows

    async def main(url: str, run_id: str) -> None:
        async with Client(url, workflows=[review_flows.wf], lease_seconds=1.5, poll_interval=0.05) as c:
            def pause_after_one(ev):
                if ev.type == "step_completed" and ev.step == "one":
                    os.kill(os.getpid(), signal.SIGSTOP)  # written, and step two not started yet

            c.subscribe(pause_after_one)
            await c.start(review_flows.wf, 1, run_id=run_id)
            ex = c.driving.get(run_id)
            if ex is not None:
                await asyncio.shield(ex.finished)
            print("stopped driving", flush=True)
            os._exit(0)  # no hand-back on close: the run is another engine's now

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from podium import Client
    import review_flows

    async def main(url: str) -> None:
        async with Client(url, workflows=[review_flows.wf], lease_seconds=30):  # claims the pending run on open
            await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/leases.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_flows(tmp_path, monkeypatch, "review_flows", FLOWS)


async def test_a_worker_paused_past_its_lease_starts_no_step_after_it_wakes(
    url: str, flows: ModuleType, tmp_path: Path
) -> None:
    """Failed before: the paused engine, woken after another took its run over, called step two
    (which it had not started) at once, since a step's start writes nothing: two engines ran step
    two at the same time, although docs/durability.md allows that only for a step already running
    when the pause began. Now an engine whose lease may have run out renews it before it starts a
    step, and stops driving the run when the renewal finds another owner."""
    (tmp_path / "paused.py").write_text(PAUSED_WORKER)
    run_id = "stale-lease-run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    a = subprocess.Popen(
        [sys.executable, str(tmp_path / "paused.py"), url, run_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        async def paused() -> bool:
            assert a.poll() is None, a.communicate()
            return proc_state(a.pid) == "T"

        await until("the worker to stop itself after step one", paused)
        async with Client(url, workflows=[flows.wf], recover=False) as b:
            run = await b.store.get_run(run_id)
            assert run is not None and run.owner and run.lease_expires_at is not None

            async def expired() -> bool:
                return time.time() > run.lease_expires_at + 0.1  # type: ignore[operator]

            await until("the paused worker's lease to expire", expired)
            flows.RELEASE = asyncio.Event()
            assert await b.take_over([run_id]) == [run_id]

            async def b_runs_two() -> bool:
                return ("two", os.getpid()) in step_log(tmp_path)

            await until("the new owner to start step two", b_runs_two)
            os.kill(a.pid, signal.SIGCONT)  # the paused worker goes on, step two still running here
            out, err = await asyncio.to_thread(a.communicate, timeout=60)
            assert b"stopped driving" in out, err.decode()[-3000:]
            flows.RELEASE.set()
            assert await b.result(run_id, timeout=30) == 2
        twos = [pid for step, pid in step_log(tmp_path) if step == "two"]
        assert twos == [os.getpid()], f"step two ran on {twos} (the paused worker is {a.pid})"
    finally:
        if a.poll() is None:
            os.kill(a.pid, signal.SIGCONT)
            a.kill()
            a.wait()
        flows.RELEASE = None


async def test_a_run_whose_worker_is_killed_mid_step_is_taken_up_again(url: str, flows: ModuleType, tmp_path: Path) -> None:
    """Checked and sound: a worker killed with SIGKILL while it holds a run (lease 30 s, far from
    expiring) loses nothing: an engine on the same host sees the owner's process gone and takes the
    run at once; the step in flight runs again, the others once."""
    (tmp_path / "worker.py").write_text(WORKER)
    async with Client(url, workflows=[flows.wf], execute=False) as api:
        run_id = (await api.start(flows.wf, 1)).id
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()]), "REVIEW_HANG": "1"}
    w = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), url], env=env, stderr=subprocess.PIPE)
    try:

        async def in_step_one() -> bool:
            assert w.poll() is None, w.communicate()
            return ("one", w.pid) in step_log(tmp_path)

        await until("the worker to be inside step one", in_step_one)
        os.kill(w.pid, signal.SIGKILL)
        w.wait()
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    async with Client(url, workflows=[flows.wf]) as b:  # recovers on open
        assert await b.result(run_id, timeout=30) == 2
        assert (await b.get(run_id)).status is RunStatus.COMPLETED
    steps = step_log(tmp_path)
    assert steps == [("one", w.pid), ("one", os.getpid()), ("two", os.getpid())], steps


async def test_leases_are_renewed_when_the_rest_of_the_sweep_fails(url: str, flows: ModuleType) -> None:
    """Failed before: the engine's sweep renewed leases last, after reading kill switches and
    policies, in one try block; a policy row this release cannot read (one written by a newer
    release, with a field it does not know) made every sweep fail before the renewal, so a healthy
    engine's leases ran out under its running steps, for another worker to take over and run the
    same steps again. The renewal now comes first and fails only on its own account."""
    from podium.governance.policy import POLICIES

    flows.RELEASE = asyncio.Event()
    try:
        async with Client(url, workflows=[flows.wf], lease_seconds=1.5, poll_interval=0.05) as c:
            await c.store.kv_put(POLICIES, "stale_lease", '{"a_field_of_a_newer_release": true}')
            run_id = (await c.start(flows.wf, 1)).id

            async def in_two() -> bool:
                return ("two", os.getpid()) in step_log(Path(os.environ["REVIEW_LOG"]).parent)

            await until("step two to start", in_two)
            first = (await c.store.get_run(run_id)).lease_expires_at  # type: ignore[union-attr]

            async def renewed() -> bool:
                now = (await c.store.get_run(run_id)).lease_expires_at  # type: ignore[union-attr]
                return now is not None and first is not None and now > first + 1.0

            await until("the lease to be renewed while step two runs", renewed, timeout=15)
            flows.RELEASE.set()
            assert await c.result(run_id, timeout=30) == 2
    finally:
        flows.RELEASE = None


async def test_a_run_whose_end_just_committed_is_not_taken_for_a_lost_lease(url: str, flows: ModuleType) -> None:
    """Failed before: a run's end clears its owner in the store before its executor goes on (the
    commit's answer comes back a turn of the event loop later, on PostgreSQL through the group
    commit); a heartbeat in between found the lease gone, logged "lease lost to another engine",
    counted it in the worker's metrics, and cancelled the executor in the middle of its end (the
    listeners and audit subscribers then missed the run's end). Seen about 20 times a minute with
    three engines on one PostgreSQL database. Here the store is put in that state (the run ended,
    no owner: what the end's commit writes) while the executor has not moved on, and the heartbeat
    runs: it must leave the run alone. A run another engine holds is still stopped."""
    from podium.engine.worker import _renew

    flows.RELEASE = asyncio.Event()
    try:
        async with Client(url, workflows=[flows.wf], lease_seconds=30, poll_interval=3600) as c:
            run_id = (await c.start(flows.wf, 1)).id

            async def in_two() -> bool:
                return ("two", os.getpid()) in step_log(Path(os.environ["REVIEW_LOG"]).parent)

            await until("step two to start", in_two)
            log = Log(url)
            log.sql("UPDATE runs SET status = 'completed', owner = NULL, lease_expires_at = NULL WHERE id = ?", params=(run_id,))
            await _renew(c, [run_id])
            assert c.claims.lost == 0 and run_id in c.driving  # not stopped
            log.sql("UPDATE runs SET status = 'running', owner = 'elsewhere:1:ns:0', lease_expires_at = ? WHERE id = ?", params=(time.time() + 30, run_id))
            await _renew(c, [run_id])
            assert c.claims.lost == 1
            await c.driving.settled(run_id)
            assert run_id not in c.driving  # another engine holds it: stopped here
    finally:
        flows.RELEASE = None
