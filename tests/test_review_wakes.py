"""Parked runs woken from another process. SQLite files and PostgreSQL, real second processes.

- A run parked by a kill switch, woken by ``podium killswitch clear`` in one process and taken up
  by an engine in another whose cache of the switches was read before the clear (it reads them
  every ``poll_interval``). The moment is made, not waited for: that engine runs with a
  ``poll_interval`` of an hour, so its cache is the one it read when it opened (switch on), and it
  claims the woken run when the test tells it to (``Client.take_over``, the claim of ``podium worker``).
- A parked child run woken by a signal sent from another process, while ``Client.run`` of its
  parent waits in an embedded engine (not a worker)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from podium import Client, RunStatus, StepContext, Workflow
from podium.records import EventType

FLOW = textwrap.dedent(
    """
    from podium import StepContext, Workflow

    wf = Workflow("wake")

    @wf.step
    async def first(ctx: StepContext, input):
        return await ctx.wait_for("go")

    @wf.step
    async def second(ctx: StepContext, first):
        return f"done {first}"
    """
)

ENGINE = textwrap.dedent(
    """
    import asyncio, sys
    from podium import Client
    from wakeflow import wf

    async def main(url: str) -> None:
        async with Client(url, workflows=[wf], poll_interval=3600) as c:  # reads the switches once, here
            print("ready", flush=True)
            for line in sys.stdin:
                ids = await c.take_over()
                for rid in ids:
                    await c.driving.settled(rid)
                print("claimed", ",".join(ids), flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/wake.db"
    return str(request.getfixturevalue("pg_url"))


async def _parked_by_switch(c: Client, run_id: str) -> bool:
    events = await c.store.load_events(run_id)
    last = events[-1]
    return last.type == EventType.RUN_WAITING and "__killswitch__" in (last.data or "")


async def test_a_run_woken_by_a_clear_is_not_parked_again_by_an_engine_that_read_the_switch_before(
    url: str, tmp_path: Path
) -> None:
    """Failed before: the engine in the other process took up the woken run, met the switch still
    on in its cache at the step boundary and parked it again; the wake was spent, so the run stayed
    parked though no switch was on."""
    (tmp_path / "wakeflow.py").write_text(FLOW)
    (tmp_path / "engine.py").write_text(ENGINE)
    sys.path.insert(0, str(tmp_path))
    try:
        from wakeflow import wf  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("wakeflow", None)
    async with Client(url, workflows=[wf]) as a:
        run = await a.start(wf, "x")
        await a.driving.settled(run.id)
        await a.set_switch("workflow", "wake", reason="review")
        await a.signal(run.id, "go", "now")  # taken up here, parked at the next step by the switch
        await a.driving.settled(run.id)
        assert await _parked_by_switch(a, run.id)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.getcwd()}"}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "engine.py"), url],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"  # type: ignore[union-attr]
        async with Client(url, workflows=[wf], execute=False) as cli:  # podium killswitch clear
            assert await cli.clear_switch("workflow", "wake") == 1
            proc.stdin.write("claim\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            assert line == f"claimed {run.id}\n"
            done = await cli.get(run.id)
            assert not await _parked_by_switch(cli, run.id), "parked again by a switch that was cleared"
            assert done.status is RunStatus.COMPLETED, done
            assert json.loads(done.output or "null") == "done now"
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


SIGNAL = textwrap.dedent(
    """
    import asyncio, sys
    from podium import Client

    async def main(url: str, run_id: str) -> None:
        async with Client(url, execute=False) as c:
            assert await c.signal(run_id, "go", "now")

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_a_parked_child_woken_from_another_process_is_taken_up_by_the_engine_that_waits_for_it(
    url: str, tmp_path: Path
) -> None:
    """Failed before (timed out): the embedded engine driving the parent took the woken child up
    only when it next read its timers, up to 30 s (``timers.HORIZON / 2``) after the signal."""
    child = Workflow("wake-child")

    @child.step
    async def ask(ctx: StepContext, input):
        return await ctx.wait_for("go")

    parent = Workflow("wake-parent")
    parent.subworkflow("delegate", child, input=lambda input: input)
    (tmp_path / "sender.py").write_text(SIGNAL)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    async with Client(url, workflows=[parent, child]) as c:
        top = asyncio.ensure_future(c.run(parent, "x"))
        kid = None
        while kid is None or kid.status is not RunStatus.WAITING:  # state polling: the child parks
            assert not top.done(), top
            kids = await c.list(workflow="wake-child")
            kid = kids[0] if kids else None
            await asyncio.sleep(0.02)
        sent = await asyncio.create_subprocess_exec(sys.executable, str(tmp_path / "sender.py"), url, kid.id, env=env)
        assert await sent.wait() == 0
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(top), 10)
        except TimeoutError:
            pytest.fail("the woken child was not taken up within 10 s of the signal")
        assert time.monotonic() - t0 < 10
        assert (await c.get(kid.id)).status is RunStatus.COMPLETED
