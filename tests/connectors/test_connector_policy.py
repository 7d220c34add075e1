"""Governance over business actions: a workflow's policy says which connectors and operations its
steps may call (``allowed_connectors``) and which need a person first (``approve_connectors``); a
``connector`` kill switch stops calls to a system at once. Every path that calls a connector from a
run goes through it (Python steps, ``uses: connector``, the messages a ``transact`` records for the
outbox relay)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from podium import Client, ConfigError, Policy, RunFailed, RunStatus, Workflow
from podium.connectors import open_connector
from podium.resilience import Backoff

from .conftest import Crm


def _api(crm: Crm, spec: dict[str, Any]) -> Any:
    conn = open_connector("openapi", spec=spec, base_url=crm.url, allow_private=True)
    conn.retry = Backoff(max_attempts=2, initial=0.01)
    return conn


async def _status(c: Client, run_id: str, status: RunStatus, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await c.get(run_id)).status is not status:
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} never became {status}"
        await asyncio.sleep(0.02)


def _signup() -> Workflow:
    wf = Workflow("signup")

    @wf.step
    async def create(ctx, input):
        found = await ctx.connector("crm").call("listContacts", {})
        made = await ctx.connector("crm").call("createContact", {"body": {"email": input}})
        return {"found": len(found) if isinstance(found, list) else found, "made": made}

    return wf


async def test_attack_a_policy_limits_the_connector_operations_a_workflow_may_call(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    """Before: a policy governed tools and models only; a workflow could call any operation of any
    connector its client held (a write where only reads were meant)."""
    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"crm": _api(crm, crm_spec)}) as c:
        await c.set_policy("signup", Policy(allowed_connectors=["crm.listContacts"]))
        with pytest.raises(RunFailed, match=r"may not call connector operation 'crm.createContact'.*allows: crm.listContacts"):
            await c.run(_signup(), "ada@example.com")
        assert crm.of("POST") == []  # the write never reached the system
        refusals = [e.details() for e in await c.audit_log() if e.action == "policy.refuse"]
        assert [(r["connector"], r["operation"]) for r in refusals] == [("crm", "createContact")]

        await c.set_policy("signup", Policy(allowed_connectors=["crm"]))  # a name alone: all its operations
        out = await c.run(_signup(), "ada@example.com")
        assert out["made"]["email"] == "ada@example.com" and len(crm.of("POST")) == 1


async def test_a_connector_operation_the_policy_names_waits_for_a_person(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"crm": _api(crm, crm_spec)}, poll_interval=0.02) as c:
        await c.set_policy("signup", Policy(approve_connectors=["crm.createContact"]))
        handle = await c.start(_signup(), "ada@example.com")
        await _status(c, handle.id, RunStatus.WAITING)
        assert crm.of("POST") == []
        [req] = await c.approvals(run_id=handle.id)
        assert req["payload"] == {
            "connector": "crm", "operation": "createContact", "arguments": {"body": {"email": "ada@example.com"}}
        }
        edited = {"connector": "crm", "operation": "createContact", "arguments": {"body": {"email": "ada@corp.example"}}}
        await c.decide(handle.id, req["name"], approve=True, payload=edited)
        out = await c.result(handle.id, timeout=10)
        assert out["made"]["email"] == "ada@corp.example"
        assert [p["body"]["email"] for p in crm.of("POST")] == ["ada@corp.example"]

        second = await c.start(_signup(), "eve@example.com")
        await _status(c, second.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=second.id)
        await c.decide(second.id, req["name"], approve=False, comment="not a customer")
        with pytest.raises(RunFailed, match="did not approve calling 'crm.createContact': not a customer"):
            await c.result(second.id, timeout=10)
        assert len(crm.of("POST")) == 1

        third = await c.start(_signup(), "bob@example.com")  # an edit may not swap the operation
        await _status(c, third.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=third.id)
        swapped = {"connector": "crm", "operation": "updateContact", "arguments": {"id": "1", "body": {}}}
        await c.decide(third.id, req["name"], approve=True, payload=swapped)
        with pytest.raises(RunFailed, match="edit of the call to 'crm.createContact' must keep its connector and operation"):
            await c.result(third.id, timeout=10)
        assert len(crm.of("POST")) == 1 and crm.of("PUT") == []


async def test_attack_a_connector_kill_switch_stops_calls_to_the_system(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    """Before: kill switches covered workflows, step kinds, providers and agents; a system behaving
    badly (or a data incident in it) could not be cut off from every workflow at once."""
    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"crm": _api(crm, crm_spec)}, poll_interval=0.02) as c:
        await c.set_switch("connector", "crm", mode="pause", reason="CRM incident 12")
        handle = await c.start(_signup(), "ada@example.com")
        await _status(c, handle.id, RunStatus.WAITING)
        assert [r for r in crm.of("GET") if r["path"] != "/openapi.json"] == [] and crm.of("POST") == []
        await c.clear_switch("connector", "crm")
        out = await c.result(handle.id, timeout=10)
        assert out["made"]["email"] == "ada@example.com" and len(crm.of("POST")) == 1

        await c.set_switch("connector", "crm", mode="cancel", reason="CRM incident 13")
        with pytest.raises(RunFailed, match=r"connector 'crm' is switched off \(CRM incident 13"):
            await c.run(_signup(), "eve@example.com")
        assert len(crm.of("POST")) == 1
        actions = [e.action for e in await c.audit_log()]
        assert "killswitch.set" in actions and "policy.refuse" in actions

        await c.clear_switch("connector", "crm")
        await c.set_switch("connector", "*", mode="cancel", reason="all systems")  # --all
        with pytest.raises(RunFailed, match="connector 'crm' is switched off"):
            await c.run(_signup(), "bob@example.com")


async def test_attack_transact_messages_are_connector_calls_the_policy_governs(tmp_path: Path) -> None:
    """Before: a workflow allowed only ``orders.transact`` could record an outbox message for any
    connector and operation, which the relay then delivered: a call the policy never saw."""
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/orders.db") as db:
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, total REAL)")
    orders = open_connector("sql", url=f"sqlite:///{tmp_path}/orders.db")
    wf = Workflow("place")

    @wf.step
    async def save(ctx, input):
        return await ctx.connector("orders").call("transact", {
            "writes": [{"op": "insert", "table": "orders", "values": {"id": input, "total": 10.0}}],
            "messages": [{"target": "crm", "operation": "deleteEverything", "arguments": {}}],
        })  # fmt: skip

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"orders": orders}) as c:
        await c.set_policy("place", Policy(allowed_connectors=["orders.transact", "crm.createContact"]))
        with pytest.raises(RunFailed, match=r"message 0 .*may not call connector operation 'crm.deleteEverything'"):
            await c.run(wf, "o-1")
        with sqlite3.connect(f"{tmp_path}/orders.db") as db:
            assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)  # nothing written

        await c.set_policy("place", Policy(allowed_connectors=["orders.transact", "crm"]))
        await c.run(wf, "o-2")
        with sqlite3.connect(f"{tmp_path}/orders.db") as db:
            assert db.execute("SELECT id FROM orders").fetchall() == [("o-2",)]
    await orders.close()


async def test_yaml_connector_steps_obey_the_policy(crm: Crm, crm_spec: dict[str, Any], tmp_path: Path) -> None:
    from podium import yaml as podium_yaml
    from podium.yaml import _registry
    from podium.yaml.connector_steps import connector_step

    kinds = _registry.StepTypes([*_registry.builtin_step_types(), connector_step], entry_points=False)
    flow = (
        "name: crm-sync\nsteps:\n  - id: create\n    uses: connector\n    with:\n      connector: crm\n"
        '      operation: createContact\n      arguments: {body: {email: "{{ input.email }}"}}\n'
    )
    (tmp_path / "crm.json").write_text(json.dumps(crm_spec))
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        spec = {"kind": "openapi", "spec": str(tmp_path / "crm.json"), "base_url": crm.url}
        await c.add_capability("crm", "connector", spec, allow_private=True)
        wf = podium_yaml.load_text(flow, registry=kinds, capabilities=await c.capabilities())
        await c.set_policy("crm-sync", Policy(allowed_connectors=["crm.getContact"]))
        with pytest.raises(RunFailed, match="may not call connector operation 'crm.createContact'"):
            await c.run(wf, {"email": "ada@example.com"})
        assert crm.of("POST") == []


def test_policy_connector_entries_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"allowed_connectors: 'crm\.' is not a connector name"):
        Policy(allowed_connectors=["crm."])
    with pytest.raises(ConfigError, match="approve_connectors must be a list of strings"):
        Policy.from_dict({"approve_connectors": "crm"})
    assert Policy.from_dict({"allowed_connectors": ["crm", "erp.getOrder"]}).allowed_connectors == ["crm", "erp.getOrder"]


async def test_attack_an_agents_connector_tool_is_a_connector_call(crm: Crm, crm_spec: dict[str, Any], tmp_path: Path) -> None:
    """Before: a connector's operations given to an agent as tools (``connector_tools``) were checked
    as tools only: ``allowed_connectors`` and a connector kill switch did not see them."""
    from podium import ai
    from podium.connectors import connector_tools
    from podium.models import Response, ToolCall
    from podium.models.testing import ScriptedModel

    def asks(req: Any) -> bool:
        return not any(m.role == "tool" for m in req.messages)

    args = {"body": {"email": "ada@example.com"}}
    model = ScriptedModel([(asks, [ToolCall(id="1", name="crm_createContact", arguments=args)])], default=Response(text="done"))
    wf = Workflow("agentic")

    @wf.step
    async def act(ctx, input):
        tools = connector_tools(_api(crm, crm_spec), "crm")
        result = await ai.Agent(model=model, tools=tools, max_iterations=3).run(ctx, input)
        return [(t.name, t.ok, t.error) for t in result.tool_calls]

    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.02) as c:
        await c.set_policy("agentic", Policy(allowed_connectors=["crm.listContacts"]))
        [(name, ok, error)] = await c.run(wf, "add ada")
        assert (name, ok) == ("crm_createContact", False) and "may not call connector operation 'crm.createContact'" in error
        assert crm.of("POST") == []

        await c.set_policy("agentic", None)
        await c.set_switch("connector", "crm", reason="CRM incident")
        handle = await c.start(wf, "add ada")
        await _status(c, handle.id, RunStatus.WAITING)
        assert crm.of("POST") == []
        await c.clear_switch("connector", "crm")
        [(name, ok, _)] = await c.result(handle.id, timeout=10)
        assert ok and len(crm.of("POST")) == 1


async def test_attack_an_agents_transact_tool_cannot_record_messages_the_policy_forbids(tmp_path: Path) -> None:
    """Before: a sql connector's ``transact`` given to an agent as a tool was checked as a call of
    ``orders.transact`` only; the outbox messages in its arguments (later calls of other systems,
    delivered by the relay) were not, so the model could record a call the policy forbids."""
    import sqlite3

    from podium import ai
    from podium.connectors import connector_tools
    from podium.models import Response, ToolCall
    from podium.models.testing import ScriptedModel

    with sqlite3.connect(f"{tmp_path}/orders.db") as db:
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, total REAL)")
    orders = open_connector("sql", url=f"sqlite:///{tmp_path}/orders.db")
    args = {
        "writes": [{"op": "insert", "table": "orders", "values": {"id": "o-1", "total": 1.0}}],
        "messages": [{"target": "payments", "operation": "refundAll", "arguments": {}}],
    }

    def asks(req: Any) -> bool:
        return not any(m.role == "tool" for m in req.messages)

    model = ScriptedModel([(asks, [ToolCall(id="1", name="orders_transact", arguments=args)])], default=Response(text="done"))
    wf = Workflow("agentic-orders")

    @wf.step
    async def act(ctx, input):
        result = await ai.Agent(model=model, tools=connector_tools(orders, "orders"), max_iterations=3).run(ctx, input)
        direct = await ai.call_tool(ctx, connector_tools(orders, "orders", only=["transact"])[0], args) if input == "direct" else None
        return [(t.name, t.ok, t.error) for t in result.tool_calls], direct

    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.02) as c:
        await c.set_policy("agentic-orders", Policy(allowed_connectors=["orders.transact"]))
        [(name, ok, error)], _ = await c.run(wf, "place")
        assert (name, ok) == ("orders_transact", False)
        assert "message 0 of orders.transact" in error and "'payments.refundAll'" in error
        with pytest.raises(RunFailed, match=r"message 0 of orders.transact.*'payments.refundAll'"):
            await c.run(wf, "direct")  # a tool called from step code (ai.call_tool)
        with sqlite3.connect(f"{tmp_path}/orders.db") as db:
            assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)  # nothing written, no message
        refusals = [e.details() for e in await c.audit_log() if e.action == "policy.refuse"]
        assert ("payments", "refundAll") in [(r.get("connector"), r.get("operation")) for r in refusals]
        assert all("o-1" not in json.dumps(r) for r in refusals)  # no argument values in the audit log
    await orders.close()


async def test_attack_a_transact_message_for_an_operation_that_needs_a_person_waits_for_one(tmp_path: Path) -> None:
    """Before: ``approve_connectors: [payments.refund]`` asked a person before a step called
    ``payments.refund``, but a ``transact`` that recorded an outbox message for it (a call the relay
    makes later) was written at once, with no person asked."""
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/orders.db") as db:
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, total REAL)")
    orders = open_connector("sql", url=f"sqlite:///{tmp_path}/orders.db")
    wf = Workflow("refund")

    @wf.step
    async def save(ctx, input):
        return await ctx.connector("orders").call("transact", {
            "writes": [{"op": "insert", "table": "orders", "values": {"id": input, "total": -500.0}}],
            "messages": [{"target": "payments", "operation": "refund", "arguments": {"amount": 500}}],
        })  # fmt: skip

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"orders": orders}, poll_interval=0.02) as c:
        await c.set_policy("refund", Policy(approve_connectors=["payments.refund"]))
        handle = await c.start(wf, "o-1")
        await _status(c, handle.id, RunStatus.WAITING)
        assert await orders.outbox_messages() == []  # nothing recorded before a person decides
        [req] = await c.approvals(run_id=handle.id)
        assert req["payload"]["operation"] == "transact" and "payments.refund" in req["title"]
        await c.decide(handle.id, req["name"], approve=False, comment="not this one")
        with pytest.raises(RunFailed, match="did not approve calling 'orders.transact'"):
            await c.result(handle.id, timeout=10)
        assert await orders.outbox_messages() == []
    await orders.close()


async def test_attack_a_workflow_or_global_kill_switch_stops_connector_calls_inside_a_step(tmp_path: Path) -> None:
    """Before: a connector call checked the ``connector`` switches only. A step paying invoices in a
    loop went on paying after ``podium killswitch set workflow payouts`` (or ``set all``), the
    incident's big red button, until the step ended: switches on workflows are read between steps."""
    from podium.connectors import Connector, Operation

    paid: list[int] = []
    client: list[Client] = []

    class Bank(Connector):
        kind = "bank"

        def operations(self) -> list[Operation]:
            return [Operation(name="pay")]

        async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
            paid.append(arguments["invoice"])
            if len(paid) == 1:  # the operator pulls the switch while the step runs
                await client[0].set_switch(*switch, mode="pause", reason="payout incident")
            return {"ok": True}

    wf = Workflow("payouts")

    @wf.step
    async def pay_all(ctx, input):
        return [await ctx.connector("bank").call("pay", {"invoice": i}) for i in range(3)]

    for switch in (("workflow", "payouts"), ("all", "*")):
        paid.clear()
        async with Client(f"sqlite:///{tmp_path}/{switch[0]}.db", connectors={"bank": Bank()}, poll_interval=0.02) as c:
            client[:] = [c]
            handle = await c.start(wf, None)
            await _status(c, handle.id, RunStatus.WAITING)
            assert paid == [0], f"{switch}: paid {paid} after the switch was set"
            await c.clear_switch(*switch)
            assert len(await c.result(handle.id, timeout=10)) == 3
            assert paid == [0, 1, 2]  # once each: the first call is not made again


async def test_attack_an_approval_does_not_answer_a_retried_call_with_other_arguments(tmp_path: Path) -> None:
    """Before: an approved call that then failed was asked again, when its step was retried, under
    the same approval name: the recorded decision answered it whatever its arguments had become. An
    amount read from another system (20 when approved, 20,000 by the retry) was paid unapproved."""
    from podium import RetryPolicy
    from podium.connectors import Connector, Operation
    from podium.errors import ConnectorError

    paid: list[int] = []
    source = {"amount": 20}

    class Bank(Connector):
        kind = "bank"
        retry = Backoff(max_attempts=1)  # the step's retry makes the next attempt

        def operations(self) -> list[Operation]:
            return [Operation(name="pay")]

        async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
            if not paid and source["amount"] == 20:
                source["amount"] = 20_000  # the attacker's change, while the first attempt fails
                raise ConnectorError("bank: not now", retryable=True)
            paid.append(arguments["amount"])
            return {"ok": True}

    wf = Workflow("payout")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0.01))
    async def pay(ctx, input):
        return await ctx.connector("bank").call("pay", {"amount": source["amount"]})

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"bank": Bank()}, poll_interval=0.02) as c:
        await c.set_policy("payout", Policy(approve_connectors=["bank.pay"]))
        handle = await c.start(wf, None)
        await _status(c, handle.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=handle.id)
        assert req["payload"]["arguments"] == {"amount": 20}
        await c.decide(handle.id, req["name"], approve=True)
        for _ in range(500):  # the retried step asks about its new arguments
            if [r for r in await c.approvals(run_id=handle.id) if r["name"] != req["name"]]:
                break
            await asyncio.sleep(0.02)
        assert paid == [], f"paid {paid} under the approval of 20"
        [again] = await c.approvals(run_id=handle.id)
        assert again["payload"]["arguments"] == {"amount": 20_000}
        await c.decide(handle.id, again["name"], approve=False)
        with pytest.raises(RunFailed, match="did not approve"):
            await c.result(handle.id, timeout=10)
    assert paid == []


async def test_attack_a_pause_turned_into_a_cancel_fails_the_runs_it_parked(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    """Before (review of the day's diff): runs parked by a connector ``pause`` stayed parked when
    the switch was turned into a ``cancel``, and clearing it later let them make the call after
    all. Setting a cancel now wakes the paused runs: they meet the cancel and fail, calling nothing."""
    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"crm": _api(crm, crm_spec)}, poll_interval=0.02) as c:
        await c.set_switch("connector", "crm", mode="pause", reason="CRM incident")
        handle = await c.start(_signup(), "ada@example.com")
        await _status(c, handle.id, RunStatus.WAITING)
        await c.set_switch("connector", "crm", mode="cancel", reason="CRM incident: stop for good")
        with pytest.raises(RunFailed, match="connector 'crm' is switched off"):
            await c.result(handle.id, timeout=10)
        await c.clear_switch("connector", "crm")
        assert crm.of("POST") == []


async def test_a_connector_switch_on_one_operation_is_refused_not_ignored(tmp_path: Path) -> None:
    """Before: `podium killswitch set connector crm.updateContact` was stored and reported as set,
    but switches are looked up by connector name: it stopped nothing."""
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(ConfigError, match=r"names a whole system \(podium killswitch set connector crm\)"):
            await c.set_switch("connector", "crm.updateContact", mode="cancel")
        assert await c.switches() == {}


def test_policy_connector_entries_that_match_no_call_are_refused() -> None:
    """Before: 'crm.*' (read as "every operation") was stored and matched nothing: in
    approve_connectors it asked nobody."""
    with pytest.raises(ConfigError, match=r"'crm\.\*' is not a connector name.*'crm' alone covers every operation"):
        Policy(approve_connectors=["crm.*"])
    for entry in ("crm.update.Contact", "crm.update-contact", ".crm", "crm/x"):
        with pytest.raises(ConfigError, match="is not a connector name or NAME.OPERATION"):
            Policy(allowed_connectors=[entry])
    assert Policy(allowed_connectors=["crm-2", "erp.get_order", "x_1.Op2"]).allowed_connectors == ["crm-2", "erp.get_order", "x_1.Op2"]


async def test_attack_a_run_input_cannot_steer_a_yaml_transacts_messages_past_the_policy(tmp_path: Path) -> None:
    """The attack: a workflow file's ``transact`` takes its outbox messages from the run's input
    (a template), so whoever starts the run names the target the relay will later call. The
    policy sees the messages as they are after the templates: a forbidden target is refused,
    nothing is written; an allowed one goes through."""
    import sqlite3

    from podium import yaml as podium_yaml
    from podium.yaml import _registry
    from podium.yaml.connector_steps import connector_step

    with sqlite3.connect(f"{tmp_path}/orders.db") as db:
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, total REAL)")
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), connector_step], entry_points=False)
    flow = (
        "name: place\nsteps:\n  - id: save\n    uses: connector\n    with:\n      connector: orders\n"
        "      operation: transact\n      arguments:\n"
        '        writes: [{op: insert, table: orders, values: {id: "{{ input.id }}", total: 1.0}}]\n'
        '        messages: "{{ input.messages }}"\n'
    )
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.add_capability("orders", "connector", {"kind": "sql", "url": f"sqlite:///{tmp_path}/orders.db"})
        wf = podium_yaml.load_text(flow, registry=kinds, capabilities=await c.capabilities())
        await c.set_policy("place", Policy(allowed_connectors=["orders.transact", "slack.post"]))
        bad = [{"target": "payments", "operation": "refundAll", "arguments": {}}]
        with pytest.raises(RunFailed, match="may not call connector operation 'payments.refundAll'"):
            await c.run(wf, {"id": "o-1", "messages": bad})
        good = [{"target": "slack", "operation": "post", "arguments": {"text": "placed"}}]
        await c.run(wf, {"id": "o-2", "messages": good})
    with sqlite3.connect(f"{tmp_path}/orders.db") as db:
        assert db.execute("SELECT id FROM orders").fetchall() == [("o-2",)]


async def test_a_workflow_or_global_pause_parks_a_model_call_inside_a_step(tmp_path: Path) -> None:
    """Before (found by the fifth session's operator review): a ``pause`` on the workflow (or
    ``all``) set while a step made model calls failed the step at its next call, saying the
    *provider* was switched off; a connector call in the same place parked. Now a model call parks
    the run too, and clearing the switch resumes it where it stopped."""
    from podium import ai
    from podium.models import Response
    from podium.models.testing import ScriptedModel

    asked: list[str] = []
    client: list[Client] = []
    model = ScriptedModel(default=Response(text="ok"))
    wf = Workflow("writer")

    @wf.step
    async def write(ctx, input):
        out = []
        for i in range(3):
            out.append((await ai.llm(ctx, f"draft {i}", model=model)).text)
            asked.append(f"draft {i}")
            if i == 0 and not pulled:  # the operator pulls the switch while the step runs (once)
                pulled.append(switch)
                await client[0].set_switch(*switch, mode="pause", reason="model incident")
        return out

    for switch in (("workflow", "writer"), ("all", "*")):
        asked.clear()
        pulled: list[Any] = []
        async with Client(f"sqlite:///{tmp_path}/{switch[0]}.db", poll_interval=0.02) as c:
            client[:] = [c]
            handle = await c.start(wf, None)
            await _status(c, handle.id, RunStatus.WAITING)
            assert asked == ["draft 0"], f"{switch}: {asked} after the switch was set"
            await c.clear_switch(*switch)
            assert await c.result(handle.id, timeout=10) == ["ok", "ok", "ok"]
            assert asked == ["draft 0", "draft 0", "draft 1", "draft 2"]  # the step again; its first call recorded


async def test_attack_a_child_run_escapes_its_parents_connector_policy(
    crm: Crm, crm_spec: dict[str, Any], tmp_path: Path
) -> None:
    """The attack: workflow ``signup-readonly``'s policy lets it only read the CRM; its author adds
    a sub-workflow (no policy of its own names it, so only ``*``'s applies) whose step writes to the
    CRM. Each run was under its own workflow's policy only, so the child wrote. Now a child run is
    under its parents' policies too (every one must allow a call): the write is refused and never
    reaches the system."""
    child = Workflow("crm-writer")

    @child.step
    async def write(ctx, input):
        return await ctx.connector("crm").call("createContact", {"body": {"email": input}})

    parent = Workflow("signup-readonly")
    parent.subworkflow("writer", child, input=lambda input: input)
    async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"crm": _api(crm, crm_spec)}) as c:
        await c.set_policy("signup-readonly", Policy(allowed_connectors=["crm.listContacts"]))
        with pytest.raises(RunFailed, match=r"signup-readonly.*may not call connector operation 'crm.createContact'"):
            await c.run(parent, "ada@example.com")
        assert crm.of("POST") == []
        await c.set_policy("signup-readonly", Policy(allowed_connectors=["crm"]))
        out = await c.run(parent, "ada@example.com")
        assert out["email"] == "ada@example.com" and len(crm.of("POST")) == 1
