"""Who may change a model (fifth session): the workflows that own it. The attack test passed its
attack on the code before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")
pytest.importorskip("mlflow", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

import podium.yaml as pyaml
from podium import Client, RunFailed
from podium.ml import Registry
from podium.ml._owners import owners, set_owners

GOOD = [{"x": float(i), "y": int(i >= 10)} for i in range(20)]
WRONG = [{"x": float(i), "y": int(i < 10)} for i in range(20)]
HOLDOUT = [{"x": float(i) + 0.5, "y": int(i >= 10)} for i in range(20)]


def _flow(name: str, rows: list[dict[str, Any]], holdout: list[dict[str, Any]]) -> Any:
    return pyaml.load_text(f"""name: {name}
steps:
  - id: train
    uses: train
    with: {{model: churn, target: y, rows: {json.dumps(rows)}, holdout: {json.dumps(holdout)}}}
  - id: promote
    needs: [train]
    uses: promote
    with: {{model: churn, version: "{{{{ steps.train.output.version }}}}", target: y, holdout: {json.dumps(holdout)}}}
""")


async def test_attack_another_teams_workflow_retrains_and_promotes_a_model(tmp_path: Any, monkeypatch: Any) -> None:
    """The attack: team A's workflow trains and serves model ``churn``. Team B's workflow file
    trains ``churn`` on labels turned the wrong way round and promotes it on a holdout it supplies
    (also wrong way round, so the bad model "wins"): the champion every workflow scores with became
    team B's. Now the first workflow to change a model owns it; B's train step is refused, naming
    the owner and how an admin adds an owner, and the champion stays A's."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    flipped = [{**r, "y": 1 - r["y"]} for r in HOLDOUT]
    team_a, team_b = _flow("team-a", GOOD, HOLDOUT), _flow("team-b", WRONG, flipped)
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        out = await c.run(team_a, {})
        assert out["deployed"] and reg.champion("churn") == "1"
        assert await owners(c.store, "churn") == ["team-a"]
        with pytest.raises(RunFailed) as failed:
            await c.run(team_b, {})
        message = str(failed.value)
        assert "team-a" in message and "podium ml owners churn --add team-b" in message, message
        assert reg.champion("churn") == "1"
        assert len(reg.client.search_model_versions("name='churn'")) == 1  # nothing trained for B
        # an admin makes team B an owner too: its (wrong) model now trains, and the holdout decides
        assert await set_owners(c, "churn", add=["team-b"], remove=[]) == ["team-a", "team-b"]
        await c.run(team_b, {})
        assert len(reg.client.search_model_versions("name='churn'")) == 2
        actions = [(e.action, e.details().get("owners")) for e in await c.audit_log() if e.action.startswith("model.owner")]
        assert actions == [("model.owner", ["team-a"]), ("model.owners", ["team-a", "team-b"])]


def test_owners_from_the_cli(tmp_path: Any) -> None:
    """``podium ml owners``: shown to readers, changed with ``workflows.deploy``, audited."""
    import os
    import subprocess
    import sys

    from store_helpers import made_store

    db = made_store(f"sqlite:///{tmp_path}/podium.db")  # read commands do not make a store
    env = {**os.environ, "PODIUM_HOME": str(tmp_path)}
    env.pop("PODIUM_TOKEN", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from podium.cli import main; main()", "ml", "owners", *args, "--db", db],
            capture_output=True, text=True, env=env, timeout=120,
        )

    first = cli("churn")
    assert first.returncode == 0 and "no owner yet" in first.stdout, first.stderr
    added = cli("churn", "--add", "team-a", "--add", "team-b", "--json")
    assert added.returncode == 0 and json.loads(added.stdout) == ["team-a", "team-b"], added.stderr
    removed = cli("churn", "--remove", "team-a")
    assert removed.returncode == 0 and "owned by team-b" in removed.stdout, removed.stderr
    # mistakes are said, not audited as done (found by the fifth session's new-user run-through)
    for args, says in (
        (("--remove", "old-flow"), "'old-flow' is not an owner, so nothing was removed; its owners are: team-b"),
        (("--add", "x", "--remove", "x"), "x is both added and removed"),
        (("--add", " "), "is not a workflow name"),
    ):
        wrong = cli("churn", *args)
        assert wrong.returncode == 2 and says in wrong.stderr and "Traceback" not in wrong.stderr, wrong.stderr
    last = cli("churn", "--remove", "team-b")
    assert last.returncode == 0 and "no owner left" in last.stdout, last.stdout


async def test_attack_a_file_that_calls_itself_the_owner_changes_the_model(tmp_path: Any, monkeypatch: Any) -> None:
    """The attack (review of the fifth session): owners are workflow names, and with users a name
    is a workflow's own only once deployed (a run of another definition under a deployed name is
    refused). Model ``churn`` is owned by ``team-a``, not deployed yet; bob, an operator, writes a
    file of his own that calls itself ``team-a`` and trains and promotes ``churn`` on wrong labels:
    the owner check passed on the name alone. Now, in a store with users, only a deployed workflow
    may change a model; team-a, once deployed, may."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("PODIUM_ML_APPROVE", raising=False)
    reg = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.create_user("bob", ["operator"])
        bob = await admin.create_token("bob")
        assert await set_owners(admin, "churn", add=["team-a"], remove=[]) == ["team-a"]
    flipped = [{**r, "y": 1 - r["y"]} for r in HOLDOUT]
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(_flow("team-a", WRONG, flipped), {})
        assert "deploy" in str(failed.value), failed.value
    assert not reg.client.search_model_versions("name='churn'")  # nothing trained for bob
    text = f"""name: team-a
steps:
  - id: train
    uses: train
    with: {{model: churn, target: y, rows: {json.dumps(GOOD)}, holdout: {json.dumps(HOLDOUT)}}}
"""
    async with Client(db, token=root) as admin:
        await admin.deploy(text)
        await admin.run("team-a", {})  # deployed: its name is its own
    assert len(reg.client.search_model_versions("name='churn'")) == 1


async def test_two_workflows_claiming_a_new_model_at_once_leave_one_owner(pg_url: str) -> None:
    """Review (fifth session): claiming an unowned model was a read, then a write: two workflows
    changing a new model at the same moment (two engines on PostgreSQL) both saw no owner, both
    went on, and the owner was whichever wrote last. The claim is now one atomic step in the
    store: one workflow owns it, the other is refused before it changes anything."""
    import asyncio

    from podium import StepContext, Workflow
    from podium.ml._owners import check_owner

    arrived: list[str] = []
    both = asyncio.Event()

    def claimer(name: str) -> Workflow:
        wf = Workflow(name)

        @wf.step
        async def claim(ctx: StepContext, input: Any) -> str:
            arrived.append(name)
            if len(arrived) == 2:
                both.set()
            await both.wait()  # the two steps reach the claims together
            for model in input["models"]:
                await check_owner(ctx, model, "train")
            return "claimed"

        return wf

    models = [f"m{i}" for i in range(8)]
    async with Client(pg_url) as a, Client(pg_url) as b:
        runs = await asyncio.gather(
            a.start(claimer("team-a"), {"models": models}), b.start(claimer("team-b"), {"models": models})
        )
        outcomes = []
        for client, run in zip((a, b), runs, strict=True):
            try:
                outcomes.append(await client.result(run.id, timeout=60))
            except RunFailed as exc:
                outcomes.append(str(exc))
        owned = {m: await owners(a.store, m) for m in models}
    assert all(len(o) == 1 for o in owned.values()), owned
    assert outcomes.count("claimed") <= 1, outcomes
    assert any("belongs to" in str(o) for o in outcomes), outcomes
    for name, outcome in zip(("team-a", "team-b"), outcomes, strict=True):
        if outcome == "claimed":  # the workflow that went on owns every model it went on with
            assert all(o == [name] for o in owned.values()), (name, owned)


async def test_an_owner_added_twice_is_listed_once() -> None:
    """Review of the last fixes (fifth session): ``podium ml owners churn --add a --add a`` (a
    script that adds the owners it knows, one of them twice) stored ``["a", "a"]``: the model was
    shown as "owned by a, a" and the audit entry named both. An owner is listed once."""
    async with Client("memory://") as client:
        assert await set_owners(client, "churn", add=["team-a", "team-a", "team-b"], remove=[]) == ["team-a", "team-b"]
        assert await owners(client.store, "churn") == ["team-a", "team-b"]


def _claimer(name: str, models: list[str], *, gate: Any = None, spin: float = 0.0) -> Any:
    """A workflow ``name`` whose one step claims ``models`` (``check_owner``, as train does):
    after ``gate`` is set, if given; with ``spin``, a model owned by another workflow is asked again
    (for up to ``spin`` seconds) until its owner is removed. Returns what came of each model."""
    import asyncio

    from podium import StepContext, Workflow
    from podium.errors import CapabilityDenied
    from podium.ml._owners import check_owner

    wf = Workflow(name)

    @wf.step
    async def claim(ctx: StepContext, input: Any) -> dict[str, str]:
        if gate is not None:
            await gate.wait()

        async def one(model: str) -> str:
            deadline = asyncio.get_running_loop().time() + spin
            while True:
                try:
                    await check_owner(ctx, model, "train")
                    return "claimed"
                except CapabilityDenied as exc:
                    if "belongs to" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                        return str(exc)

        return dict(zip(models, await asyncio.gather(*(one(m) for m in models)), strict=True))

    return wf


def test_a_claim_that_stopped_half_way_leaves_the_model_to_the_next_workflow(tmp_path: Any) -> None:
    """Review of the last fixes (fifth session): the claim was a counter, then the owner list. A
    run that stopped between the two (its process killed) left the counter at 1 and no owner:
    every workflow that trained the model was refused ("claimed but names no owner") until an
    admin added an owner, while ``podium ml owners churn`` said "no owner yet; the first workflow
    ... becomes its owner". The claim is now one compare-and-set write of the owner list, so it
    cannot stop half-way, and a model left so by an earlier release goes to the next workflow
    that changes it, as ``podium ml owners`` says."""
    import asyncio
    import os
    import subprocess
    import sys

    from store_helpers import made_store

    db = made_store(f"sqlite:///{tmp_path}/podium.db")  # read commands do not make a store
    env = {**os.environ, "PODIUM_HOME": str(tmp_path)}
    env.pop("PODIUM_TOKEN", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from podium.cli import main; main()", "ml", "owners", *args, "--db", db],
            capture_output=True, text=True, env=env, timeout=120,
        )

    async def main() -> tuple[Any, list[str]]:
        async with Client(db) as c:
            await c.store.kv_incr("model_claims", "churn", 1)  # the claim's counter, then the process died
            shown = cli("churn")
            assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
            run = await c.run(_claimer("team-a", ["churn"]), {})
            return shown.stdout, [run["churn"], *await owners(c.store, "churn")]

    shown, (outcome, *owned) = asyncio.run(main())
    assert "no owner yet" in shown, shown
    assert outcome == "claimed", outcome
    assert owned == ["team-a"]
    after = cli("churn")
    assert after.returncode == 0 and "owned by team-a" in after.stdout, after.stdout + after.stderr


async def test_an_admins_add_racing_a_first_claim_keeps_both(pg_url: str) -> None:
    """Review of the last fixes (fifth session): ``podium ml owners M --add W`` read the owner list
    and wrote it back. A workflow's first claim landing between the two was overwritten: the
    workflow went on to train a model it did not own, or (the other order) the admin's owner was
    lost. Both writes are now compare-and-set: every model ends owned by the admin's workflow, and
    by the claiming one wherever it went on."""
    import asyncio

    models = [f"m{i}" for i in range(12)]
    gate = asyncio.Event()
    async with Client(pg_url) as admin, Client(pg_url) as worker:
        run = await worker.start(_claimer("team-a", models, gate=gate), {})

        async def add(model: str) -> list[str]:
            return await set_owners(admin, model, add=["team-x"], remove=[])

        gate.set()
        await asyncio.gather(*(add(m) for m in models))
        outcome = await worker.result(run.id, timeout=60)
        owned = {m: await owners(admin.store, m) for m in models}
    for m in models:
        assert "team-x" in owned[m], (m, owned[m], outcome[m])
        if outcome[m] == "claimed":
            assert "team-a" in owned[m], (m, owned[m])
        else:
            assert "belongs to" in outcome[m], outcome[m]


async def test_removing_the_last_owner_while_a_workflow_claims_lets_it_claim(pg_url: str) -> None:
    """Review of the last fixes (fifth session): removing a model's last owner deleted the owner
    list, then reset the claim counter. A workflow claiming between the two took a second ticket
    and, after waiting 5 s for an owner list that never came, was refused ("claimed but names no
    owner"). Removal is now one compare-and-set of the list: a workflow that saw the model
    owned is refused naming that owner, one that saw it free claims it."""
    import asyncio

    models = [f"m{i}" for i in range(8)]
    async with Client(pg_url) as admin, Client(pg_url) as worker:
        assert all(v == "claimed" for v in (await admin.run(_claimer("team-old", models), {})).values())
        run = await worker.start(_claimer("team-a", models, spin=30.0), {})  # asks again while team-old owns them
        for _ in range(500):
            if any(e.type == "step_started" for e in await admin.store.load_events(run.id)):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for m in models:
            await set_owners(admin, m, add=[], remove=["team-old"])
        outcome = await worker.result(run.id, timeout=60)
        owned = {m: await owners(admin.store, m) for m in models}
    assert all(o == "claimed" for o in outcome.values()), outcome
    assert all(o == ["team-a"] for o in owned.values()), owned


async def test_a_claim_numbered_after_an_admins_add_but_committed_first_is_not_taken(pg_url: str) -> None:
    """Sixteenth session (a CI failure: model claimed, its owner entry lost). On PostgreSQL an audit
    entry drew its number (``nextval``), then inserted itself, with nothing held in between: the
    admin's ``--add`` took number N, the workflow's claim took N+1 and committed first, the claimer
    read the log (its claim alone: no owner before it) and went on; then the admin's entry landed at
    N, before the claim, and the log said the model was the admin's workflow's only. Driven here
    explicitly: the admin's insert waits, after its number is drawn, until the claim has either
    finished or is seen waiting for it. Now the entries of one target are numbered and written under
    a lock on that target: the claim waits, is numbered after the admin's entry, and is refused."""
    import asyncio
    import contextlib

    import psycopg

    paused, go = asyncio.Event(), asyncio.Event()

    class Held:  # the admin's connection: its audit insert for model:m0 waits for ``go``
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        async def execute(self, sql: Any, params: Any = None) -> Any:
            if str(sql).startswith("INSERT INTO audit") and params and params[4] == "model:m0" and not go.is_set():
                paused.set()
                await go.wait()
            return await self._conn.execute(sql, params)

    async with Client(pg_url) as admin, Client(pg_url) as worker:
        opened = admin.store._connection

        @contextlib.asynccontextmanager
        async def held() -> Any:
            async with opened() as conn:
                yield Held(conn)

        admin.store._connection = held  # type: ignore[method-assign]
        adding = asyncio.ensure_future(set_owners(admin, "m0", add=["team-x"], remove=[]))
        await asyncio.wait({adding, asyncio.ensure_future(paused.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert paused.is_set(), adding.result()  # the admin's entry is numbered, not written
        gate = asyncio.Event()
        run = await worker.start(_claimer("team-a", ["m0"], gate=gate), {})
        gate.set()

        async def claim_waits() -> None:  # the claim's audit write waits for the admin's (fixed code)
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
                while not await (await conn.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )).fetchone():
                    await asyncio.sleep(0.01)

        finished = asyncio.ensure_future(worker.result(run.id, timeout=60))
        waiting = asyncio.ensure_future(claim_waits())
        await asyncio.wait({finished, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        go.set()
        await adding
        outcome = (await finished)["m0"]
        owned = await owners(admin.store, "m0")
    assert "team-x" in owned, owned
    if outcome == "claimed":  # the workflow went on: it must own the model (it did not: the bug)
        assert "team-a" in owned, (outcome, owned)
    else:
        assert "belongs to" in outcome and owned == ["team-x"], (outcome, owned)
