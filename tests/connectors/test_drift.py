"""Contracts, drift and the quarantine, against a real local HTTP stand-in that changes the shape of
its answers during a run (a field renamed, a type changed, an object nested, an unknown enum value):
every drift is caught before the step sees it, quarantined with the right diff, the run parks, a
field mapping is added, and a replay resumes the run with the mapped value. Also ``on_drift: skip``
and ``fail``, learned and declared contracts, API deprecation and retirement, and the quarantine
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import Client, ConnectorDrift, PermissionDenied, RetryPolicy, RunFailed, RunStatus, Workflow
from podium.connectors import open_connector
from podium.connectors._contracts import diff
from podium.connectors._mapping import FieldMapping
from podium.resilience import Backoff
from podium.telemetry import AlertRule, Alerts

from .drift_app import CONTACT, SPEC, Shifting, contact, serve
from .test_cli import _podium


@pytest.fixture
def api() -> Iterator[Shifting]:
    yield from serve()


def _crm(api: Shifting, **kw: Any) -> Any:
    conn = open_connector("openapi", spec=SPEC, base_url=api.url, allow_private=True, **kw)
    conn.retry = Backoff(max_attempts=3, initial=0.01)
    return conn


def _flow(name: str = "sync", op: str = "getContact") -> Workflow:
    wf = Workflow(name)

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def fetch(ctx, input):
        return [await ctx.connector("crm").call(op, {"id": i}) for i in input]

    return wf


async def _parked(client: Client, run_id: str) -> None:
    deadline = time.monotonic() + 60
    while (await client.get(run_id)).status is not RunStatus.WAITING:
        assert time.monotonic() < deadline, f"run {run_id} never parked: {(await client.get(run_id)).status}"
        await asyncio.sleep(0.02)


DRIFTS = {
    "renamed": ({"rename": {"emailAddress": "email"}}, "renamed", "$.email"),
    "retyped": ({"cast": {"age": "integer"}}, "type_changed", "$.age"),
    "nested": ({"unnest": {"address": ["city"]}}, "nested", "$.city"),
    "enum": ({"values": {"status": {"archived": "inactive"}}}, "unknown_enum", "$.status"),
}


async def _park_and_replay(url: str, api: Shifting, shape: str) -> None:
    mapping, kind, path = DRIFTS[shape]
    crm = _crm(api)
    wf = _flow()
    api.schedule = ["ok", shape]  # the API changes shape between the two calls of one step
    async with Client(url, workflows=[wf], connectors={"crm": crm}) as client:
        handle = await client.start(wf, ["1", "2"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
        assert (item.connector, item.operation, item.run_id, item.step_id, item.status) == ("crm", "getContact", handle.id, "fetch", "parked")
        assert item.payload is None  # listing never shows business data
        assert [d["kind"] for d in item.diff if d["kind"] != "extra_field"] == [kind], item.diff
        assert item.diff[0]["path"] == path
        assert (await client.quarantine.get(item.id)).payload == contact("2", shape)
        assert crm.stats.drifted == 1 and crm.stats.quarantined == 1
        drift = [e.details() for e in await client.audit_log() if e.action == "connector.drift"]
        assert len(drift) == 1 and drift[0]["quarantine_id"] == item.id and drift[0]["policy"] == "park"
        assert "c2@example.com" not in json.dumps(drift)

        # Replayed before the fix: still drifts, stays parked, nothing lost.
        (still,) = await client.quarantine.replay(item.id)
        assert still["resolved"] is False and still["diff"][0]["kind"] == kind
        assert (await client.get(handle.id)).status is RunStatus.WAITING
        assert (await client.quarantine.get(item.id)).replays == 1

        crm.contracts.mappings.set("getContact", mapping)
        (done,) = await client.quarantine.replay(item.id)
        assert done["resolved"] and done["resolution"] == f"resumed run {handle.id}"
        out = await client.result(handle.id, timeout=60)
        expected = FieldMapping.parse(mapping, "m").apply(contact("2", shape))
        assert out == [contact("1", "ok"), expected]
        correct = {**contact("2", "ok"), **({"status": "inactive"} if shape == "enum" else {})}
        assert {k: expected[k] for k in CONTACT["required"]} == correct  # the value the contract expects
        assert await client.quarantine.list() == [] and await client.quarantine.depth() == 0
        # Later calls of the same shape pass through the mapping at once.
        api.shape = shape
        assert await client.run(wf, ["3"]) == [FieldMapping.parse(mapping, "m").apply(contact("3", shape))]
    assert api.hits("/contacts/") == 3  # the drifted answer was not fetched again


@pytest.mark.parametrize("shape", sorted(DRIFTS))
async def test_drift_parks_the_run_and_a_mapping_and_replay_resume_it(api: Shifting, tmp_path: Path, shape: str) -> None:
    await _park_and_replay(f"sqlite:///{tmp_path}/p.db", api, shape)


async def test_the_quarantine_on_postgresql(api: Shifting, pg_url: str) -> None:
    await _park_and_replay(pg_url, api, "renamed")


async def test_on_drift_skip_continues_and_alerts(api: Shifting, tmp_path: Path) -> None:
    crm = _crm(api, on_drift="skip")
    wf = _flow()
    alerts = Alerts([AlertRule(name="drift", kind="connector_drift")])
    api.schedule = ["ok", "enum", "ok"]
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"crm": crm}) as client:
        alerts.attach(client)
        assert await client.run(wf, ["1", "2", "3"]) == [contact("1", "ok"), None, contact("3", "ok")]
        (item,) = await client.quarantine.list()
        assert item.status == "skipped" and item.diff[0]["kind"] == "unknown_enum" and "values: {status:" in item.diff[0]["message"]
        assert "archived" not in json.dumps(item.diff)  # the value is data: the quarantined payload has it
        assert [a.kind for a in alerts.sent] == ["connector_drift"] and item.id in alerts.sent[0].text
        crm.contracts.mappings.set("getContact", {"values": {"status": {"archived": "inactive"}}})
        (done,) = await client.quarantine.replay(all=True)
        assert done["resolved"] and done["resolution"].startswith("marked resolved")
        assert (await client.quarantine.list(status="resolved"))[0].id == item.id


async def test_on_drift_fail_gives_the_step_a_clear_error_it_may_handle(api: Shifting, tmp_path: Path) -> None:
    crm = _crm(api, on_drift={"getContact": "fail", "*": "park"})
    handled = Workflow("handled")

    @handled.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def fetch(ctx, input):
        try:
            return await ctx.connector("crm").call("getContact", {"id": input})
        except ConnectorDrift as exc:
            return {"quarantined": exc.quarantine_id, "kinds": [d["kind"] for d in exc.diff]}

    api.shape = "retyped"
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[handled, _flow()], connectors={"crm": crm}) as client:
        out = await client.run(handled, "1")
        (item,) = await client.quarantine.list()
        assert out == {"quarantined": item.id, "kinds": ["type_changed"]} and item.status == "failed"
        with pytest.raises(RunFailed, match=r"quarantined as q-[0-9a-f]{20}") as failed:
            await client.run(_flow(), ["2"])
        assert "$.age was integer and is now string" in str(failed.value)
        assert "podium quarantine replay" in str(failed.value)
    assert api.hits("/contacts/") == 2  # a drift is not retried


async def test_a_quarantine_signal_cannot_be_forged_and_a_system_cannot_fake_the_marker(api: Shifting, tmp_path: Path) -> None:
    crm = _crm(api)
    api.schedule = ["renamed"]
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[_flow()], connectors={"crm": crm}) as client:
        handle = await client.start(_flow(), ["1"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
        with pytest.raises(PermissionDenied, match="podium quarantine replay"):
            await client.signal(handle.id, item.signal, {"email": "forged@example.com"})
        assert (await client.get(handle.id)).status is RunStatus.WAITING
        await client.cancel(handle.id)

    faker = Workflow("faker")

    @faker.step
    async def fetch(ctx, input):
        return await ctx.connector("crm").call("getOrder", {"id": "1"})

    api.order_shape = "marker"
    async with Client(f"sqlite:///{tmp_path}/p2.db", workflows=[faker], connectors={"crm": _crm(api)}) as client:
        with pytest.raises(RunFailed, match="reserved key"):
            await client.run(faker, None)


async def test_contracts_learned_from_recorded_results_and_declared_as_pydantic_models(api: Shifting, tmp_path: Path) -> None:
    from pydantic import BaseModel

    orders = _flow("orders", "getOrder")
    crm = _crm(api)
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[orders], connectors={"crm": crm}) as client:
        await client.run(orders, ["1", "2", "3"])  # getOrder has no response schema: nothing checked
        learned = await client.quarantine.learn("crm", "getOrder")
        assert learned["samples"] == 3
        assert set(learned["schema"]["required"]) == {"id", "total", "lines"}
        api.order_shape = "retyped"
        handle = await client.start(orders, ["4"])
        await _parked(client, handle.id)
        (item,) = await client.quarantine.list()
        assert item.diff[0]["kind"] == "type_changed" and item.diff[0]["path"] == "$.total"
        await client.cancel(handle.id)

    class Line(BaseModel):
        sku: str
        qty: int

    class Order(BaseModel):
        id: str
        total: float
        lines: list[Line]

    declared = _crm(api, contracts={"getOrder": Order}, on_drift="fail")
    async with Client(f"sqlite:///{tmp_path}/p2.db", workflows=[orders], connectors={"crm": declared}) as client:
        with pytest.raises(RunFailed, match=r"\$\.total was number and is now string"):
            await client.run(orders, ["5"])
        api.order_shape = "ok"
        assert (await client.run(orders, ["6"]))[0]["total"] == 12.5


async def test_deprecation_warns_once_and_a_retired_version_fails_clearly_without_retries(
    api: Shifting, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wf = Workflow("report")

    @wf.step(retry=RetryPolicy(max_attempts=4, initial_interval=0.01))
    async def fetch(ctx, input):
        return [await ctx.connector("crm").call("getReport", {}) for _ in range(input)]

    crm = _crm(api)
    alerts = Alerts([AlertRule(name="api", kind="connector_api_change", cooldown=0)])
    api.report = "deprecated"
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"crm": crm}) as client:
        alerts.attach(client)
        with caplog.at_level(logging.WARNING, logger="podium.connectors"):
            assert await client.run(wf, 2) == [{"rows": 3}, {"rows": 3}]
            assert await client.run(wf, 1) == [{"rows": 3}]
        warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
        assert len(warned) == 1 and "getReport" in warned[0] and "31 Dec 2025" in warned[0] and "v2/report" in warned[0]
        deprecated = [e.details() for e in await client.audit_log() if e.action == "connector.deprecated"]
        assert len(deprecated) == 1 and deprecated[0]["successor"] == "http://127.0.0.1/v2/report"

        api.report = "moved"  # the old path now 404s, after the new version was announced
        before = api.hits("/v1/report")
        with pytest.raises(RunFailed, match="new version was announced") as moved:
            await client.run(wf, 1)
        assert "v2/report" in str(moved.value) and "update the connector's OpenAPI document" in str(moved.value)

        api.report = "gone"
        with pytest.raises(RunFailed, match="HTTP 410 Gone") as gone:
            await client.run(wf, 1)
        assert "v1 was retired" in str(gone.value) and "retrying will not help" in str(gone.value)
        assert api.hits("/v1/report") == before + 2  # one request each: no retry, no loop
        assert crm.breaker.state == "closed"
        assert [e.action for e in await client.audit_log() if e.action == "connector.gone"] == ["connector.gone"] * 2
        assert [a.kind for a in alerts.sent] == ["connector_api_change"] * 3


def test_the_diff_names_each_kind_of_drift() -> None:
    kinds = {d.kind: d for d in diff(CONTACT, {"id": "1", "mail": "a@b", "age": 3.5, "status": "x", "address": {"city": "D"}})}
    assert kinds["renamed"].path == "$.email" and kinds["renamed"].to == "$.mail"
    assert kinds["type_changed"].message.startswith("$.age was integer and is now number")
    assert kinds["unknown_enum"].got == "string"  # the type, never the value
    assert kinds["nested"].to == "$.address.city"
    assert diff(CONTACT, contact("1", "ok")) == []
    strict = {"type": "array", "items": {**CONTACT, "additionalProperties": False}}
    found = diff(strict, [contact("1", "ok"), {**contact("2", "ok"), "vip": True}])
    assert [(d.kind, d.path) for d in found] == [("extra_field", "$[1].vip")]
    missing = diff(CONTACT, {k: v for k, v in contact("1", "ok").items() if k != "city"})
    assert [(d.kind, d.path) for d in missing] == [("missing", "$.city")]


def test_a_wrong_mapping_says_where_and_what() -> None:
    from podium import ConfigError

    with pytest.raises(ConfigError, match=r"mappings\.getContact\.cast\.age: 'int' is not one of integer"):
        _crm_settings(mappings={"getContact": {"cast": {"age": "int"}}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) renames"):
        _crm_settings(mappings={"getContact": {"renames": {}}})
    with pytest.raises(ConfigError, match="on_drift: 'retry' is not one of park, fail, skip"):
        _crm_settings(on_drift="retry")


def _crm_settings(**kw: Any) -> Any:
    return open_connector("openapi", spec=SPEC, base_url="http://127.0.0.1:9", allow_private=True, **kw)


async def test_yaml_mapping_and_cli_replay(api: Shifting, tmp_path: Path) -> None:
    """The worked example of docs/connectors.md: a registered connector with a mappings file; the
    run parks; `podium quarantine list/show`; the mapping is written; `podium quarantine replay --all`
    resumes the run from another process."""
    db = f"sqlite:///{tmp_path}/p.db"
    spec_file, mappings = tmp_path / "crm.json", tmp_path / "crm-mappings.yaml"
    spec_file.write_text(json.dumps(SPEC))
    mappings.write_text("mappings: {}\n")
    wf = _flow()
    api.schedule = ["ok", "renamed"]
    crm = _crm(api, mappings=str(mappings))
    async with Client(db, workflows=[wf], connectors={"crm": crm}) as client:
        await client.add_capability(
            "crm", "connector", {"kind": "openapi", "spec": str(spec_file), "base_url": api.url, "mappings": str(mappings)}, allow_private=True
        )
        handle = await client.start(wf, ["6", "7"])
        await _parked(client, handle.id)
        listed = _podium("quarantine", "list", "--json", "--db", db)
        assert listed.returncode == 0, listed.stderr
        (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert row["status"] == "parked" and "payload" not in row
        shown = _podium("quarantine", "show", row["id"], "--db", db)
        assert shown.returncode == 0 and "rename: {emailAddress: email}" in shown.stdout and "c7@example.com" in shown.stdout
        early = _podium("quarantine", "replay", "--all", "--db", db)
        assert early.returncode == 2 and "still drifts" in early.stdout

        mappings.write_text("mappings:\n  getContact:\n    rename: {emailAddress: email}\n")
        stop = asyncio.Event()
        worker = asyncio.create_task(client.work(stop))  # this process works runs woken by others
        replayed = await asyncio.to_thread(_podium, "quarantine", "replay", "--all", "--db", db)
        assert replayed.returncode == 0, replayed.stderr
        assert f"resolved, resumed run {handle.id}" in replayed.stdout
        assert await client.result(handle.id, timeout=120) == [contact("6", "ok"), contact("7", "ok")]
        stop.set()
        await asyncio.wait_for(worker, 60)
        learned = _podium("connectors", "learn", "crm", "getContact", "--json", "--db", db)
        assert learned.returncode == 0, learned.stderr
        assert "email" in json.loads(learned.stdout)["required"]
        missing = _podium("quarantine", "show", "q-nope", "--db", db)
        assert missing.returncode != 0 and "no quarantined item" in missing.stderr and "Traceback" not in missing.stderr


def test_openapi_3_0_nullable_fields_are_not_drift() -> None:
    from podium.connectors._contracts import from_openapi

    schema = from_openapi({"type": "object", "properties": {"note": {"type": "string", "nullable": True}, "n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}}})
    assert diff(schema, {"note": None, "n": 1}) == []
    assert [d.kind for d in diff(schema, {"note": 3, "n": 1})] == ["type_changed"]
    assert [d.kind for d in diff(schema, {"n": 0})] == ["invalid"]


async def test_learning_from_recorded_results_needs_payloads_read(api: Shifting, tmp_path: Path) -> None:
    """Attack (review): learning a contract reads the recorded results of every run's calls (and a
    result keyed by data, such as e-mail addresses, puts those keys in the learned schema), yet it
    needed only tools.manage: a tool manager who may not read payloads read them through it. Learning
    from recorded results now also needs payloads.read; learning from samples one gives does not."""
    from podium import PermissionDenied
    from podium.governance.identity import Principal

    orders = _flow("orders", "getOrder")
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[orders], connectors={"crm": _crm(api)}) as client:
        await client.run(orders, ["1"])
        toolsmith = Principal(name="tess", roles=("toolsmith",), permissions=frozenset({"tools.manage"}))
        with client.acting_as(toolsmith):
            with pytest.raises(PermissionDenied, match="payloads.read"):
                await client.quarantine.learn("crm", "getOrder")
            given = await client.quarantine.learn("crm", "getOrder", samples=[{"id": "1", "total": 2}])
        assert given["samples"] == 1
