"""Learned connector contracts edited in the store (helper seal10b, tenth session).

A learned contract (``podium connectors learn``; key-value namespace ``connector.contracts``) is
what a business system's results are validated against when none is declared. The attacker writes
the database but does not hold the audit key: loosening it (a schema every value matches) or
deleting it let a result of another shape (a total turned into a string) into the run. Each test
failed on the code before its fix (docs/status.md, "Drift references, fire times and learned
contracts, sealed")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_attacker import sql

from podium import Client, RunFailed

from .drift_app import Shifting, serve
from .test_drift import _crm, _flow


@pytest.fixture
def api() -> Iterator[Shifting]:
    yield from serve()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


SAMPLES = [{"id": "1", "total": 12.5, "lines": [{"sku": "a", "qty": 1}]}]


@pytest.mark.parametrize("how", ["loosened", "deleted", "older put back"])
async def test_attack_a_learned_contract_changed_in_the_store_does_not_loosen_validation(api: Shifting, url: str, how: str) -> None:
    orders = _flow("orders", "getOrder")
    async with Client(url, workflows=[orders], connectors={"crm": _crm(api, on_drift="fail")}) as c:
        await c.quarantine.learn("crm", "getOrder", samples=[{**SAMPLES[0], "total": "12.50"}])  # a first, wrong guess
        older = await c.store.kv_get("connector.contracts", "crm.getOrder")
        await c.quarantine.learn("crm", "getOrder", samples=SAMPLES)
    if how == "older put back":
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'connector.contracts'", older)
    elif how == "loosened":
        sql(url, "UPDATE kv SET value = ? WHERE ns = 'connector.contracts'", json.dumps({"schema": {}, "samples": 1, "learned_at": 0}))
    else:
        sql(url, "DELETE FROM kv WHERE ns = 'connector.contracts'")
    api.order_shape = "retyped"
    async with Client(url, workflows=[orders], connectors={"crm": _crm(api, on_drift="fail")}) as c:
        with pytest.raises(RunFailed, match="learned contract of getOrder") as failed:
            await c.run(orders, ["4"])
        assert "podium connectors learn crm getOrder" in str(failed.value)
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "contract:crm.getOrder"]
        assert denied and "record not backed by the audit log" in (denied[0].data or "")
        _, problem = await c.verify_audit()
        assert problem is not None and "learned contract of getOrder" in problem, problem
        api.order_shape = "ok"
        await c.quarantine.learn("crm", "getOrder", samples=SAMPLES)  # learned again: in force
        assert (await c.run(orders, ["5"]))[0]["total"] == 12.5
        api.order_shape = "retyped"
        with pytest.raises(RunFailed, match=r"\$\.total was number and is now string"):
            await c.run(orders, ["6"])


async def test_attack_a_refused_contract_is_audited_once_then_counted(api: Shifting, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loosened row stays: each reread of it (every 30 s per process; here at every call) was
    one more ``access.denied`` entry. Now the first, and on close one summary counting the others
    (eleventh session, "Refusals flooding the audit log")."""
    monkeypatch.setattr("podium.connectors._contracts._LEARNED_TTL", 0.0)
    orders = _flow("orders", "getOrder")
    async with Client(url, workflows=[orders], connectors={"crm": _crm(api, on_drift="fail")}) as c:
        await c.quarantine.learn("crm", "getOrder", samples=SAMPLES)
    sql(url, "UPDATE kv SET value = ? WHERE ns = 'connector.contracts'", json.dumps({"schema": {}, "samples": 1, "learned_at": 0}))
    api.order_shape = "retyped"
    async with Client(url, workflows=[orders], connectors={"crm": _crm(api, on_drift="fail")}) as c:
        for i in range(5):
            with pytest.raises(RunFailed, match="learned contract of getOrder"):
                await c.run(orders, [str(i)])
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "contract:crm.getOrder"]
        assert len(denied) == 1, len(denied)
    async with Client(url, workflows=[orders]) as c:
        denied = [e for e in await c.audit_log() if e.action == "access.denied" and e.target == "contract:crm.getOrder"]
        assert len(denied) == 2 and denied[1].details()["repeated"] >= 4
