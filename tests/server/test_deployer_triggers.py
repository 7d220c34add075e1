"""Whom a workflow's own triggers act as (fifth session): a schedule, a watched folder or a broker
message has no caller, so the server starts its runs; they start as whoever deployed the
workflow's active version (the signed ``workflow.deploy`` entry), never as the server's account.
Each attack test passed its attack on the code before the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium import Client
from podium.errors import AuthError

SCHEDULED = """\
name: nightly
version: "1"
triggers:
  - schedule: "0 2 * * *"
steps:
  - id: hello
    uses: set
    with: {said: "hi"}
"""

NIGHT = 1_800_000_000.0  # a fixed Unix time; the schedule fires at 02:00 UTC after it


async def _store(tmp_path: Path, author_roles: list[str]) -> tuple[str, dict[str, str]]:
    """A store with root (admin), the server's account ``svc`` (operator, worker) and ``dana``,
    who deploys workflows; their tokens."""
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.define_role("author", author_roles)
        await admin.create_user("svc", ["operator", "worker"], service=True)
        await admin.create_user("dana", ["author"])
        tokens = {n: await admin.create_token(n) for n in ("svc", "dana")}
    return db, {"root": root, **tokens}


async def _deploy(http: Any, token: str, text: str = SCHEDULED) -> None:
    r = await http.post(
        "/api/workflows",
        content=text,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"},
    )
    assert r.status_code in (200, 201), r.text


async def test_attack_a_deployer_who_may_not_start_runs_schedules_them_through_the_server(
    server: Any, tmp_path: Path
) -> None:
    """The attack: dana may deploy workflows but not start runs. She deploys one with a cron
    schedule; the server's account (an operator) started its runs every night, so dana ran
    whatever she liked with the server's roles. Now the schedule starts as dana, who may not: each
    fire is a dead letter naming her and the permission, and no run starts."""
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read"])
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        await _deploy(http, tokens["dana"])
        trig = app.state.triggers
        assert await trig.tick(NIGHT) == []  # first sight: counting starts
        assert await trig.tick(NIGHT + 86_400) == []
        letters = await trig.dead_letters()
        assert [d["workflow"] for d in letters] == ["nightly"], letters
        assert "dana" in letters[0]["error"] and "runs.start" in letters[0]["error"], letters[0]["error"]
        assert not await app.state.client.list(workflow="nightly", limit=5)


async def test_a_schedule_starts_as_its_deployer_and_stops_when_they_are_disabled(
    server: Any, tmp_path: Path
) -> None:
    """A deployer who may start runs: the scheduled run's signed start names them (so what it
    emits, asks or erases is theirs, not the server's). Disabled, their schedule stops: the next
    fire is a dead letter saying who and how to bring it back."""
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read", "runs.start"])
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        await _deploy(http, tokens["dana"])
        trig, c = app.state.triggers, app.state.client
        await trig.tick(NIGHT)
        [rid] = await trig.tick(NIGHT + 86_400)
        await c.wait(rid, timeout=20)
        starter = await c.governance.started_by(rid)
        assert starter is not None and starter.name == "dana"
        root = {"Authorization": f"Bearer {tokens['root']}"}
        [sched] = (await http.get("/api/triggers", headers=root)).json()["schedules"]
        assert sched["runs_as"] == "dana"
        async with Client(db, token=tokens["root"]) as admin:
            await admin.disable_user("dana")
        assert await trig.tick(NIGHT + 2 * 86_400) == []
        [letter] = await trig.dead_letters()
        assert "dana" in letter["error"] and "disabled" in letter["error"]
        assert "podium users enable dana" in letter["error"]
        [sched] = (await http.get("/api/triggers", headers=root)).json()["schedules"]
        assert sched["runs_as"].startswith("nobody:") and "disabled" in sched["runs_as"]
        # deployed again by someone who may start it: it fires again (the dead letter replays too)
        await _deploy(http, tokens["root"])
        [rid2] = await trig.tick(NIGHT + 3 * 86_400)
        starter = await c.governance.started_by(rid2)
        assert starter is not None and starter.name == "root"


async def test_a_deployers_scoped_token_bounds_what_their_schedule_may_do(server: Any, tmp_path: Path) -> None:
    """dana holds runs.start, but deployed with a token scoped to deploying: the schedule acts
    with what that deployment was allowed (the roles recorded with it), not all of dana's roles."""
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read"])
    async with Client(db, token=tokens["root"]) as admin:
        await admin.define_role("starter", ["runs.start", "runs.read", "workflows.read"])
        await admin.create_user("dana", ["author", "starter"])
        scoped = await admin.create_token("dana", name="ci", scopes=["workflows.deploy", "workflows.read"])
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        await _deploy(http, scoped)
        trig = app.state.triggers
        await trig.tick(NIGHT)
        assert await trig.tick(NIGHT + 86_400) == []
        [letter] = await trig.dead_letters()
        assert "dana" in letter["error"] and "runs.start" in letter["error"], letter["error"]
        # the fix it names is the one that works (granting dana a role would not: she has one)
        assert "deploy it again with a token whose scopes cover runs.start" in letter["error"], letter["error"]
        root = {"Authorization": f"Bearer {tokens['root']}"}
        [sched] = (await http.get("/api/triggers", headers=root)).json()["schedules"]
        assert sched["runs_as"].startswith("nobody:"), sched


async def test_workflows_the_server_was_given_still_start_as_the_server(server: Any, tmp_path: Path) -> None:
    """A workflow the server's operator registered (not deployed into the store) has no deployer
    to act as: its schedule starts as the server, as before."""
    from . import flows

    db, tokens = await _store(tmp_path, ["workflows.read"])
    async with server(db, token=tokens["svc"], triggers=False, workflows=flows.TRIGGERS) as (app, _):
        trig, c = app.state.triggers, app.state.client
        await trig.tick(NIGHT)
        fired = await trig.tick(NIGHT + 86_400)
        assert fired, "the registered workflow's schedule fired"
        starter = await c.governance.started_by(fired[0])
        assert starter is not None and starter.name == "svc"


async def test_attack_a_user_named_local_deploys_a_schedule_that_runs_as_the_server(
    server: Any, tmp_path: Path
) -> None:
    """The attack (review of the fifth session): a deployment by ``local`` (the single user before
    users existed) starts its triggers as the server. A user an admin named ``local``, who may
    deploy but not start runs, deployed a schedule, and its runs started with the server's roles.
    Now only a deployment the local user made is the server's; the user ``local`` is a deployer as
    any other, and the fire is a dead letter naming them."""
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read"])
    async with Client(db, token=tokens["root"]) as admin:
        await admin.create_user("local", ["author"])
        tokens["local"] = await admin.create_token("local")
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        await _deploy(http, tokens["local"])
        trig = app.state.triggers
        assert await trig.tick(NIGHT) == []
        assert await trig.tick(NIGHT + 86_400) == []
        assert not await app.state.client.list(workflow="nightly", limit=5)
        letters = await trig.dead_letters()
        assert [d["workflow"] for d in letters] == ["nightly"], letters
        assert "'local', whose roles (author) may not start runs" in letters[0]["error"], letters[0]["error"]


async def test_attack_a_server_whose_token_is_revoked_fires_no_schedule(
    server: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """Found by the fifth session's new-user run-through: the server's own token was revoked (its
    host was lost); it handed back its runs and stopped claiming, but its schedules went on
    firing, starting runs as their deployer, since those starts act as the deployer, not as the
    server. A server whose token is refused now fires nothing (its schedules count the missed
    times again when it starts with a valid token: the misfire policy decides)."""
    from podium.governance import identity

    monkeypatch.setattr(identity, "RECHECK_SECONDS", 0.1)
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read", "runs.start"])
    async with Client(db, token=tokens["root"]) as admin:
        server_token = await admin.create_token("svc", name="host-9")
    async with server(db, token=server_token, triggers=False) as (app, http):
        await _deploy(http, tokens["dana"])
        trig = app.state.triggers
        await trig.tick(NIGHT)
        async with Client(db, token=tokens["root"]) as admin:
            await admin.revoke_token("svc", "host-9")
        import asyncio

        await asyncio.sleep(0.2)  # past the recheck
        assert await trig.tick(NIGHT + 86_400) == []
        async with Client(db, token=tokens["root"]) as admin:
            assert not await admin.list(workflow="nightly", limit=5)


async def test_a_deployer_who_lost_the_deploys_role_is_told_which_roles_were_recorded(server: Any, tmp_path: Path) -> None:
    """Review of the last fixes (fifth session): dana deployed with her full token (roles author and
    starter recorded); an admin then moved her from starter to another role that starts runs. The
    dead letter said her token's scopes left no role (roles recorded with the deploy: author only):
    no token was scoped, and starter, the role that was recorded, was not named. It names the roles
    recorded and the ones of them she still holds."""
    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read"])
    async with Client(db, token=tokens["root"]) as admin:
        await admin.define_role("starter", ["runs.start", "runs.read", "workflows.read"])
        await admin.define_role("launcher", ["runs.start", "runs.read", "workflows.read"])
        await admin.create_user("dana", ["author", "starter"])
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        await _deploy(http, tokens["dana"])
        async with Client(db, token=tokens["root"]) as admin:
            await admin.create_user("dana", ["author", "launcher"])
        trig = app.state.triggers
        await trig.tick(NIGHT)
        assert await trig.tick(NIGHT + 86_400) == []
        [letter] = await trig.dead_letters()
        error = letter["error"]
        assert "recorded with the deploy: author, starter" in error and "scopes left" not in error, error
        assert "deploy it again" in error, error


async def test_a_long_audit_history_is_not_read_again_at_every_ask(server: Any, tmp_path: Path) -> None:
    """Attacker review of the fifth session: whom a trigger acts as was found by reading and
    verifying every audit entry of the workflow, at each fire, and a broker trigger asks before
    each poll (every second): a workflow with a long history cost a scan a second. The server keeps
    the deploy entry found for a few seconds (governance/deployers.py ``CACHE_SECONDS``); the
    deployer's standing is read at every ask (test_a_schedule_starts_as_its_deployer_and_stops_when_they_are_disabled,
    and tests/connectors/test_broker_triggers.py for a broker trigger)."""
    import time

    db, tokens = await _store(tmp_path, ["workflows.deploy", "workflows.read", "runs.read", "runs.start"])
    async with server(db, token=tokens["svc"], triggers=False) as (app, http):
        async with Client(db, token=tokens["root"]) as admin:  # the history of earlier versions
            for i in range(4000):
                await admin.governance.record("workflow.deploy", "workflow:nightly", version=f"0.{i}", hash="0", roles=["author"])
        await _deploy(http, tokens["dana"])  # the active one: deployed last
        trig = app.state.triggers
        t0 = time.perf_counter()
        who = await trig.as_deployer("nightly")
        first = time.perf_counter() - t0
        assert who is not None and who.name == "dana"
        t0 = time.perf_counter()
        for _ in range(20):
            assert (await trig.as_deployer("nightly")).name == "dana"
        twenty = time.perf_counter() - t0
        assert twenty < 3 * first, f"20 asks took {twenty:.3f} s, the first {first:.3f} s: each read the history again"
        async with Client(db, token=tokens["root"]) as admin:
            await admin.disable_user("dana")
        try:
            await trig.as_deployer("nightly")
            raise AssertionError("a disabled deployer was still returned")
        except AuthError as exc:
            assert "disabled" in str(exc)
