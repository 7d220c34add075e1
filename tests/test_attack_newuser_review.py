"""A review of the new-user run-through's changes (2026-12-06): each test an attack or a regression
that failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import Client, DefinitionError, PermissionDenied

USES_LEDGR = """\
name: probe
steps:
  - id: get
    uses: connector
    with:
      connector: payroll_ledgr
      operation: query
      arguments: {table: pay}
"""


async def test_attack_a_deployer_who_may_not_read_the_registry_is_not_told_its_names(tmp_path: Path) -> None:
    """The registry of capabilities is read with ``workflows.read``. A principal who may deploy but
    not read it deployed files naming guesses, and the "did you mean" hint of the refusal named
    the registered capability nearest each guess: the registry, read one name at a time. A
    principal who may read it is still told."""
    db = f"sqlite:///{tmp_path}/p.db"
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.add_capability("payroll_ledger", "connector", {"kind": "sql", "url_env": "PAYROLL_URL"})
        await admin.define_role("author", ["workflows.deploy"])
        await admin.create_user("dana", ["author"])
        await admin.create_user("rita", ["author", "viewer"])
        dana, rita = await admin.create_token("dana"), await admin.create_token("rita")
    async with Client(db, token=dana) as c:
        with pytest.raises(PermissionDenied):
            await c.capabilities()
        with pytest.raises(DefinitionError) as refused:
            await c.deploy(USES_LEDGR, text_only=True)
        assert "'payroll_ledgr' is not registered" in str(refused.value)
        assert "payroll_ledger" not in str(refused.value), str(refused.value)
    async with Client(db, token=rita) as c:
        with pytest.raises(DefinitionError) as told:
            await c.deploy(USES_LEDGR, text_only=True)
        assert "did you mean 'payroll_ledger'?" in str(told.value)


def test_runs_show_of_a_run_parked_for_ages_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`runs show` names a parked run's timer deadline (new in this session). A Python step's
    ctx.sleep or wait_for takes any number of seconds (from the run's input, say): a deadline past
    year 9999 made `runs show` (and `podium run`'s last line) a traceback (datetime's 'year out of range')."""
    import asyncio

    from click.testing import CliRunner

    from podium import RunStatus, StepContext, Workflow
    from podium.cli import cli

    wf = Workflow("ages")

    @wf.step
    async def nap(input: dict, ctx: StepContext) -> None:
        await ctx.sleep(input["seconds"])

    db = f"sqlite:///{tmp_path}/ages.db"

    async def main() -> str:
        async with Client(db, workflows=[wf]) as client:
            handle = await client.start(wf, {"seconds": 1e15})
            await asyncio.wait_for(client.driving.settled(handle.id), 60)
            assert (await client.get(handle.id)).status is RunStatus.WAITING
            return handle.id

    run_id = asyncio.run(main())
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    shown = CliRunner().invoke(cli, ["runs", "show", run_id], env={"PODIUM_DB": db})
    assert shown.exception is None or isinstance(shown.exception, SystemExit), repr(shown.exception)
    assert "parked on a timer due" in shown.output, shown.output


def test_podium_run_of_a_yaml_file_with_a_sleep_step_still_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `sleep` step became a durable timer this session: a wait longer than waits.HOLD parks the
    run. `podium run FILE` of an existing file with such a sleep then exited 3 ("parked on a
    timer... a podium worker takes it on then") with no output, where it had slept and finished
    (exit 0). The foreground command waits for a run parked on a timer alone due within 5 minutes,
    and drives it on when due; the run stays durable (Ctrl-C leaves it parked). A longer one still
    exits 3 (test_a_parked_run_names_the_signal_it_waits_for)."""
    from click.testing import CliRunner

    from podium.cli import cli
    from podium.engine import waits, worker

    monkeypatch.setattr(waits, "HOLD", 0.2)  # the 1 s nap parks instead of being held in memory
    monkeypatch.setattr(worker, "EARLY", 0.2)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    (tmp_path / "nap.yaml").write_text(
        "name: nap\nsteps:\n  - id: rest\n    uses: sleep\n    with: {seconds: 1}\n"
        "  - id: after\n    uses: set\n    needs: rest\n    with: {woke: yes}\n"
    )
    ran = CliRunner().invoke(cli, ["run", str(tmp_path / "nap.yaml"), "--quiet"], env={"PODIUM_DB": f"sqlite:///{tmp_path}/n.db"})
    assert ran.exception is None or isinstance(ran.exception, SystemExit), repr(ran.exception)
    assert ran.exit_code == 0, ran.output
    assert '"woke": "yes"' in ran.output
