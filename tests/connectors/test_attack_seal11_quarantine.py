"""The connector quarantine edited in the store (helper seal11, eleventh session).

A drifted result waits in ``podium_quarantine`` until a person adds a field mapping and replays it:
the replay resumes the parked run with the item's payload, or, for a broker message
(operation ``event``), starts the item's workflow with it as the person replaying. The attacker
writes the database but does not hold the audit key: the payload of a parked item changed, or an
item of their own written in, was delivered by an operator's ``podium quarantine replay --all``.
Each test failed on the code before its fix (docs/status.md, "ML outcomes, quarantines and file
drop marks, sealed").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_attacker import pay_workflow, sql

from podium import Client, RunStatus

from .drift_app import Shifting, contact, serve
from .test_drift import _crm, _flow, _parked


@pytest.fixture
def api() -> Iterator[Shifting]:
    yield from serve()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


def _denied(entries: list, target: str) -> list:
    return [e for e in entries if e.action == "access.denied" and e.target == target]


async def test_attack_a_quarantined_payload_edited_in_the_store_is_not_delivered(url: str, api: Shifting) -> None:
    crm, wf = _crm(api), _flow()
    api.schedule = ["ok", "renamed"]
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        handle = await client.start(wf, ["1", "2"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
    forged = {**contact("2", "renamed"), "email": "attacker@evil.example"}
    sql(url, "UPDATE podium_quarantine SET payload = ? WHERE id = ?", json.dumps(forged), item.id)
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        crm.contracts.mappings.set("getContact", {"rename": {"emailAddress": "email"}})
        (done,) = await client.quarantine.replay(item.id)
        assert not done["resolved"], f"the edited payload was delivered to run {handle.id}: {done}"
        assert "not sealed" in done["problem"] and item.id in done["problem"], done
        assert (await client.get(handle.id)).status is RunStatus.WAITING
        assert len(_denied(await client.audit_log(), f"quarantine:{item.id}")) == 1
        shown = await client.quarantine.get(item.id)
        assert shown.problem and "not sealed" in shown.problem
        _, problem = await client.verify_audit()
        assert problem is not None and item.id in problem, problem


async def test_attack_a_quarantined_item_written_in_the_store_starts_nothing(url: str, api: Shifting) -> None:
    crm, wf, pay = _crm(api), _flow(), pay_workflow()
    async with Client(url, workflows=[wf, pay], connectors={"crm": crm}) as client:
        assert await client.quarantine.list() == []  # the quarantine table exists
    now = time.time()
    sql(
        url,
        "INSERT INTO podium_quarantine (id, connector, operation, run_id, step_id, workflow, policy, status, payload, "
        "diff, created_at, updated_at, replays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        "q-forged", "crm", "event", "forged-run", None, "pay", "fail", "failed", json.dumps({"amount": 1_000_000}),
        "[]", now, now,
    )  # fmt: skip
    async with Client(url, workflows=[wf, pay], connectors={"crm": crm}) as client:
        results = await client.quarantine.replay(all=True)
        assert await client.store.get_run("forged-run") is None, "the forged item started 'pay' as the operator"
        assert [r["resolved"] for r in results] == [False] and "not sealed" in results[0]["problem"]
        assert len(_denied(await client.audit_log(), "quarantine:q-forged")) == 1


async def test_attack_a_quarantined_item_deleted_in_the_store_is_named(url: str, api: Shifting) -> None:
    crm, wf = _crm(api), _flow()
    api.schedule = ["ok", "renamed"]
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        handle = await client.start(wf, ["1", "2"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
    sql(url, "DELETE FROM podium_quarantine WHERE id = ?", item.id)
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        _, problem = await client.verify_audit()
        assert problem is not None and item.id in problem and "deleted" in problem, problem


async def test_items_of_an_earlier_release_are_replayed_once_an_admin_seals_them(url: str, api: Shifting) -> None:
    import asyncio

    from click.testing import CliRunner

    from podium.cli import cli
    from podium.ml import quarantined, release

    crm, wf = _crm(api), _flow()
    api.schedule = ["ok", "renamed"]
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        handle = await client.start(wf, ["1", "2"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
    # as an earlier release kept them: no seal column value, a gate's rows as plain JSON, no count
    sql(url, "UPDATE podium_quarantine SET seal = NULL WHERE id = ?", item.id)
    gate_rows = {"workflow": "load", "run_id": "r1", "step": "load", "gate": "q", "at": 1.0, "reasons": {}, "rows": [{"id": 1}]}
    sql(url, "INSERT INTO kv (ns, key, value, updated_at) VALUES ('ml_quarantine', 'r1:load:0:0:q', ?, 0)", json.dumps(gate_rows))
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        crm.contracts.mappings.set("getContact", {"rename": {"emailAddress": "email"}})
        (refused,) = await client.quarantine.replay(item.id)
        assert not refused["resolved"] and "podium quarantine seal" in refused["problem"]
        assert "podium quarantine seal" in (await quarantined(client.store))[0]["problem"]
    out = await asyncio.to_thread(CliRunner().invoke, cli, ["quarantine", "seal"], env={"PODIUM_DB": url})
    assert out.exit_code == 0 and "sealed 1 quarantined item(s) and 1 entr" in out.output, out.output
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        crm.contracts.mappings.set("getContact", {"rename": {"emailAddress": "email"}})
        (done,) = await client.quarantine.replay(item.id)
        assert done["resolved"] and done["resolution"] == f"resumed run {handle.id}"
        assert await release(client.store, "r1:load:0:0:q") == [{"id": 1}]
        await client.result(handle.id, timeout=60)
        _, problem = await client.verify_audit()
        assert problem is None, problem
