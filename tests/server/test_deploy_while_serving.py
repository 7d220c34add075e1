"""Workflows deployed into the store by another process (``podium workflows deploy``) while the
server runs: the server used to know only what it loaded at its start, so ``POST /api/runs`` of a
new workflow answered 404 "known: none" until a restart, and a new version of a workflow it served
was never started. On a miss (and when the store's active version is not the one it serves) the
server looks the workflow up in the store, as at its start, after the caller's permission."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium import Client

from .test_api import wait_status

FLOW = 'name: late\nversion: "{v}"\nsteps:\n  - id: say\n    uses: set\n    with: {{text: "{text}"}}\n'


async def _deploy(db: str, tmp_path: Path, version: str, text: str, token: str | None = None) -> None:
    """``podium workflows deploy`` from another client of the same store."""
    path = tmp_path / f"late-{version}.yaml"
    path.write_text(FLOW.format(v=version, text=text))
    async with Client(db, token=token, recover=False, execute=False) as other:
        await other.deploy(str(path))


async def test_a_workflow_deployed_while_the_server_runs_starts_without_a_restart(server: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/podium.db"
    async with server(db) as (_app, http):
        before = await http.post("/api/runs", json={"workflow": "late", "input": {}})
        assert before.status_code == 404 and "known: none" in before.text, before.text
        await _deploy(db, tmp_path, "1", "one")
        r = await http.post("/api/runs", json={"workflow": "late", "input": {}})
        assert r.status_code == 201, r.text
        done = await wait_status(http, r.json()["run"]["id"], "completed")
        assert done["run"]["version"] == "1" and "one" in str(done["run"]["output"])
        assert (await http.get("/api/workflows/late")).status_code == 200
        assert "late" in [w["name"] for w in (await http.get("/api/workflows")).json()["workflows"]]

        await _deploy(db, tmp_path, "2", "two")  # a new version, deployed elsewhere, starts new runs
        r = await http.post("/api/runs", json={"workflow": "late", "input": {}})
        assert r.status_code == 201, r.text
        done = await wait_status(http, r.json()["run"]["id"], "completed")
        assert done["run"]["version"] == "2" and "two" in str(done["run"]["output"])
        old = await http.post("/api/runs", json={"workflow": "late", "version": "1", "input": {}})
        assert old.status_code == 201 and old.json()["run"]["version"] == "1", old.text
        missing = await http.post("/api/runs", json={"workflow": "late", "version": "9", "input": {}})
        assert missing.status_code == 404 and "version 9" in missing.text, missing.text
        await _deploy(db, tmp_path, "3", "three")  # the listing (the dashboard's) shows it too
        (listed,) = [w for w in (await http.get("/api/workflows")).json()["workflows"] if w["name"] == "late"]
        assert listed["version"] == "3" and listed["versions"] == ["1", "2", "3"], listed


async def test_a_caller_who_may_not_start_it_does_not_make_the_server_load_it(server: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as local:
        await local.create_user("root", ["admin"])
        await local.create_user("vic", ["viewer"])
        root, vic = await local.create_token("root"), await local.create_token("vic")
    async with server(db, token=root) as (app, http):
        await _deploy(db, tmp_path, "1", "one", token=root)
        r = await http.post("/api/runs", json={"workflow": "late", "input": {}}, headers={"Authorization": f"Bearer {vic}"})
        assert r.status_code == 403 and "runs.start" in r.text, r.text
        assert app.state.client.registry.latest("late") is None  # refused before anything was loaded
        r = await http.post("/api/runs", json={"workflow": "late", "input": {}}, headers={"Authorization": f"Bearer {root}"})
        assert r.status_code == 201, r.text


EVENTED = "name: evented\nversion: \"1\"\ntriggers:\n  - event: parcel.late\nsteps:\n  - id: say\n    uses: set\n    with: {text: \"{{ input.ref }}\"}\n"


async def test_the_triggers_of_a_workflow_deployed_elsewhere_start_without_a_restart(
    server: Any, tmp_path: Path
) -> None:
    """``podium workflows deploy`` from another process while the server runs: the workflow could
    be started by name, but its triggers (an event subscription here; schedules, webhooks and
    watched folders alike) were read only at the start or after a deploy through this server's
    API, so an event posted for it started nothing until a restart. The trigger loop now follows
    the store's deployments."""
    import asyncio

    db = f"sqlite:///{tmp_path}/podium.db"
    async with server(db, trigger_interval=0.05) as (app, http):
        path = tmp_path / "evented.yaml"
        path.write_text(EVENTED)
        async with Client(db, recover=False, execute=False) as other:
            await other.deploy(str(path))
        for _ in range(200):  # the next ticks of the trigger loop
            if app.state.triggers.subscribers("parcel.late"):
                break
            await asyncio.sleep(0.05)
        r = await http.post("/api/events/parcel.late", json={"ref": "P-17"})
        assert r.status_code == 202 and r.json()["runs"], r.text
        done = await wait_status(http, r.json()["runs"][0], "completed")
        assert "P-17" in str(done["run"]["output"])


async def test_only_a_deployer_starts_another_version_than_the_active_one(server: Any, tmp_path: Path) -> None:
    """Fifteenth session (the surfaces review's left item): ``POST /api/runs`` with a ``version``
    started any deployed version, one rolled back for harm included, for anyone who may start runs.
    Choosing a version other than the active one is a deployer's decision now (``workflows.deploy``)."""
    db = f"sqlite:///{tmp_path}/podium.db"
    async with Client(db) as local:
        await local.create_user("root", ["admin"])
        await local.create_user("olga", ["operator"])
        root, olga = await local.create_token("root"), await local.create_token("olga")
    await _deploy(db, tmp_path, "1", "one", token=root)
    await _deploy(db, tmp_path, "2", "two", token=root)
    async with Client(db, token=root, recover=False, execute=False) as admin:
        await admin.rollback("late")  # version 2 withdrawn: 1 is active again
    as_olga, as_root = {"Authorization": f"Bearer {olga}"}, {"Authorization": f"Bearer {root}"}
    async with server(db, token=root) as (_app, http):
        r = await http.post("/api/runs", json={"workflow": "late", "version": "2", "input": {}}, headers=as_olga)
        assert r.status_code == 403 and "workflows.deploy" in r.text, r.text
        for body in ({"workflow": "late", "input": {}}, {"workflow": "late", "version": "1", "input": {}}):
            r = await http.post("/api/runs", json=body, headers=as_olga)  # the active version: as before
            assert r.status_code == 201 and r.json()["run"]["version"] == "1", r.text
        r = await http.post("/api/runs", json={"workflow": "late", "version": "2", "input": {}}, headers=as_root)
        assert r.status_code == 201 and r.json()["run"]["version"] == "2", r.text
