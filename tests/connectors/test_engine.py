"""Connectors inside runs: ``ctx.connector(name).call(...)`` is a durable, audited sub-step; a call
that succeeded is never made again (retried step, or a run resumed by another engine); the
idempotency key is stable; ``uses: connector`` only names a connector an admin registered."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from podium import Client, NotFound, RetryPolicy, RunFailed, RunStatus, StepError, Workflow
from podium import yaml as podium_yaml
from podium.connectors import arguments_hash, open_connector
from podium.resilience import Backoff
from podium.yaml import _registry
from podium.yaml.connector_steps import connector_step

from .conftest import Crm


def _api(crm: Crm, spec: dict[str, Any]) -> Any:
    conn = open_connector("openapi", spec=spec, base_url=crm.url, allow_private=True)
    conn.retry = Backoff(max_attempts=3, initial=0.01)
    return conn


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/podium.db"


async def test_a_succeeded_call_is_not_repeated_when_the_step_retries(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    wf = Workflow("signup")
    keys: list[str] = []

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def create(ctx, input):
        made = await ctx.connector("crm").call("createContact", {"body": {"email": input}})
        keys.append(ctx.idempotency_key)
        if ctx.attempt == 1:
            raise StepError("something after the call failed")
        return made

    async with Client(_db(tmp_path), workflows=[wf], connectors={"crm": _api(crm, crm_spec)}) as client:
        out = await client.run(wf, "ada@example.com")
    assert out == {"email": "ada@example.com", "id": "1"}
    assert len(keys) == 2 and keys[0] == keys[1]
    posts = crm.of("POST")
    assert len(posts) == 1, posts
    assert posts[0]["headers"]["Idempotency-Key"] == f"{keys[0]}/connector:crm.createContact"


async def test_a_resumed_run_does_not_repeat_a_finished_call(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    """The run parks after the call; the engine stops; another engine takes the run up, the step
    runs again from its start and gets the logged answer."""
    wf = Workflow("handover")
    runs: list[int] = []

    @wf.step
    async def create(ctx, input):
        runs.append(ctx.attempt)
        made = await ctx.connector("crm").call("createContact", {"body": {"email": input}})
        second = await ctx.connector("crm").call("createContact", {"body": {"email": "2-" + input}})
        go = await ctx.wait_for("go")
        return {"made": made["id"], "second": second["id"], "go": go}

    async with Client(_db(tmp_path), workflows=[wf], connectors={"crm": _api(crm, crm_spec)}) as c1:
        handle = await c1.start(wf, "ada@example.com")
        deadline = time.monotonic() + 10
        while (await c1.get(handle.id)).status is not RunStatus.WAITING:  # parked: holds no engine
            assert time.monotonic() < deadline, "the run never parked"
            await asyncio.sleep(0.01)
    assert len(crm.of("POST")) == 2
    async with Client(_db(tmp_path), workflows=[wf], connectors={"crm": _api(crm, crm_spec)}) as c2:
        await c2.signal(handle.id, "go", "yes")
        out = await c2.result(handle.id, timeout=30)
    assert out == {"made": "1", "second": "2", "go": "yes"}
    assert len(runs) == 2 and len(crm.of("POST")) == 2  # the step ran twice, each call once
    labels = [p["headers"]["Idempotency-Key"].rsplit("/", 1)[1] for p in crm.of("POST")]
    assert labels == ["connector:crm.createContact", "connector:crm.createContact-2"]


async def test_audit_records_the_call_but_never_the_values(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    wf = Workflow("audited")
    secret = "very-private@example.com"

    @wf.step
    async def create(ctx, input):
        return await ctx.connector("crm").call("createContact", {"body": {"email": secret, "name": "Grace"}})

    async with Client(_db(tmp_path), workflows=[wf], connectors={"crm": _api(crm, crm_spec)}) as client:
        await client.run(wf, None)
        entries = [e for e in await client.audit_log() if e.action == "connector.call"]
    assert len(entries) == 1
    d = entries[0].details()
    assert d["connector"] == "crm" and d["operation"] == "createContact" and d["outcome"] == "ok"
    assert d["arguments_sha256"] == arguments_hash({"body": {"email": secret, "name": "Grace"}})
    assert isinstance(d["latency"], float)
    text = json.dumps([e.details() for e in entries]) + repr(entries)
    assert secret not in text and "Grace" not in text


async def test_retry_after_inside_the_call_and_a_4xx_fails_the_step_at_once(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    wf = Workflow("flaky")

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def poke(ctx, input):
        return await ctx.connector("crm").call(input["op"], input["args"])

    async with Client(_db(tmp_path), workflows=[wf], connectors={"crm": _api(crm, crm_spec)}) as client:
        crm.failures = [(503, {"Retry-After": "0.2"})]
        assert await client.run(wf, {"op": "flaky", "args": {}}) == {"ok": True}
        assert len([r for r in crm.requests if r["path"] == "/flaky"]) == 2
        with pytest.raises(RunFailed, match="HTTP 404"):
            await client.run(wf, {"op": "getContact", "args": {"id": "404"}})
        assert len([r for r in crm.requests if r["path"] == "/contacts/404"]) == 1  # not retried
        outcomes = [e.details()["outcome"] for e in await client.audit_log() if e.action == "connector.call"]
    assert outcomes == ["ok", "failed"]


async def test_an_unknown_connector_name_fails_the_step(tmp_path: Path) -> None:
    wf = Workflow("nothing")

    @wf.step
    async def use(ctx, input):
        return await ctx.connector("erp").call("x", {})

    async with Client(_db(tmp_path), workflows=[wf]) as client:
        with pytest.raises(RunFailed, match="connector 'erp'"):
            await client.run(wf, None)
    assert issubclass(NotFound, Exception)


# -- uses: connector ----------------------------------------------------------------------------

FLOW = """name: crm-sync
steps:
  - id: create
    uses: connector
    with:
      connector: {name}
      operation: createContact
      arguments: {{body: {{email: "{{{{ input.email }}}}"}}}}
"""


@pytest.fixture
def kinds() -> Any:
    return _registry.StepTypes([*_registry.builtin_step_types(), connector_step], entry_points=False)


async def test_yaml_refuses_an_unregistered_connector_with_file_and_line(kinds: Any, tmp_path: Path) -> None:
    flow = tmp_path / "sync.yaml"
    flow.write_text(FLOW.format(name="crm"))
    problems = podium_yaml.validate_file(flow, registry=kinds, capabilities={})
    assert problems and problems[0].line == 6 and problems[0].code == "capability", problems
    assert "connector 'crm' is not registered" in problems[0].message
    assert "podium connectors add crm" in (problems[0].hint or "")
    templated = podium_yaml.validate_text(FLOW.format(name='"{{ input.which }}"'), registry=kinds, capabilities={})
    assert templated and "cannot be a template" in templated[0].message


async def test_yaml_refuses_a_templated_operation(kinds: Any) -> None:
    """Attack (review): the connector's name could not be a template, but its operation could: a run's
    input ("{{ input.op }}") chose between the query the author wrote and any other operation of that
    connector (a SQL connector's `transact`, an API's delete). The operation is written in the file."""
    flow = FLOW.format(name="crm").replace("operation: createContact", 'operation: "{{ input.op }}"')
    problems = podium_yaml.validate_text(flow, registry=kinds, capabilities={})
    assert any("operation cannot be a template" in p.message and p.line == 7 for p in problems), problems


async def test_yaml_runs_a_registered_connector(kinds: Any, crm: Crm, crm_spec: dict[str, Any], tmp_path: Path) -> None:
    spec_file = tmp_path / "crm.json"
    spec_file.write_text(json.dumps(crm_spec))
    async with Client(_db(tmp_path)) as client:
        await client.add_capability(
            "crm", "connector", {"kind": "openapi", "spec": str(spec_file), "base_url": crm.url}, allow_private=True
        )
        wf = podium_yaml.load_text(FLOW.format(name="crm"), registry=kinds, capabilities=await client.capabilities())
        out = await client.run(wf, {"email": "yaml@example.com"})
        assert out == {"email": "yaml@example.com", "id": "1"}
        # Removed from the registry: the next run is refused before anything is sent.
        await client.remove_capability("crm")
        with pytest.raises(RunFailed, match="not registered"):
            await client.run(wf, {"email": "again@example.com"})
    assert len(crm.of("POST")) == 1


async def test_a_connector_capability_refuses_a_password_in_its_url(tmp_path: Path) -> None:
    from podium import ConfigError

    async with Client(_db(tmp_path)) as client:
        with pytest.raises(ConfigError, match="url_env"):
            await client.add_capability("db", "connector", {"kind": "sql", "url": "postgresql://u:secret@h/db"})
        with pytest.raises(ConfigError, match="its kind"):
            await client.add_capability("db", "connector", {"kind": "ftp"})
        cap = await client.add_capability("db", "connector", {"kind": "sql", "url_env": "ORDERS_DB"})
    assert cap.summary == "sql connector $ORDERS_DB"


async def test_a_webhook_capability_refuses_its_url_in_the_registry(tmp_path: Path) -> None:
    """Attack (review): a webhook's URL is its credential (anyone holding a Slack incoming-webhook URL
    can post to the channel), and the capability registry is readable by every workflow reader:
    `podium connectors add slack webhook --set url=https://hooks.slack.com/services/T0/B0/XYZ` kept
    it there for any viewer. A webhook now names the environment variable that holds its URL."""
    from podium import ConfigError

    async with Client(_db(tmp_path)) as client:
        with pytest.raises(ConfigError, match="url_env") as err:
            await client.add_capability(
                "slack", "connector", {"kind": "webhook", "url": "https://hooks.slack.com/services/T0/B0/XYZ"}
            )
        assert "XYZ" not in str(err.value)
        assert await client.capabilities() == {}
        cap = await client.add_capability("slack", "connector", {"kind": "webhook", "url_env": "SLACK_URL"})
    assert cap.summary == "webhook connector $SLACK_URL"
