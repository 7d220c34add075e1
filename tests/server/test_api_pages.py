"""The routes the dashboard's pages read: entity search, a knowledge base's documents, a policy's
versions and decisions, capabilities with who may use them, business KPIs over time and cost per
workflow and day. Each answers real data, and 403 to a token without its permission."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from podium.governance.policy import Policy
from podium.memory import Memory, attach

from . import page_flows


def _offline_memory(app: Any) -> Memory:
    client = app.state.client
    return attach(client, Memory(client.store, embedder="hash:256"))


async def _tokens(c: Any, **scopes: list[str] | None) -> dict[str, dict[str, str]]:
    """An admin, plus one token per name narrowed to the given permissions."""
    await c.create_user("root", ["admin"])
    out = {"root": {"Authorization": f"Bearer {await c.create_token('root')}"}}
    for name, perms in scopes.items():
        out[name] = {"Authorization": f"Bearer {await c.create_token('root', name=name, scopes=perms)}"}
    return out


def _denied(r: Any, permission: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "permission_denied" and permission in r.json()["error"]["message"]


async def test_entity_search_and_documents(server: Any, store_url: str) -> None:
    async with server(store_url) as (app, http):
        mem = _offline_memory(app)
        await mem.remember("customer:42", "prefers email")
        await mem.relate("vendor:acme", "supplies", "product:bolt")
        await mem.upsert_entity("acme-corp", properties={"tier": "gold"})
        await mem.upsert_entity("Vendor:ACME_2", type="vendor")
        found = (await http.get("/api/graph", params={"search": "acme"})).json()["entities"]
        assert [e["id"] for e in found] == ["acme-corp", "Vendor:ACME_2", "vendor:acme"]
        assert found[0]["properties"] == {"tier": "gold"}
        typed = (await http.get("/api/graph", params={"search": "acme", "type": "vendor"})).json()["entities"]
        assert [e["id"] for e in typed] == ["Vendor:ACME_2", "vendor:acme"]
        every = (await http.get("/api/graph", params={"limit": 2})).json()["entities"]
        assert len(every) == 2
        wild = (await http.get("/api/graph", params={"search": "%"})).json()["entities"]
        assert wild == []  # the text is matched literally, never as a LIKE pattern

        r = await http.get("/api/kb/handbook/documents")
        assert r.status_code == 404 and "podium kb ingest" in r.json()["error"]["message"]
        for source, text in (("refunds.md", "# Refunds\n\nRefunds take 5 days."), ("intro.txt", "Welcome.")):
            added = await http.post(
                "/api/kb/handbook/documents", json={"source": source, "text": text, "type": "markdown"}
            )
            assert added.status_code == 201, added.text
        docs = (await http.get("/api/kb/handbook/documents")).json()
        assert [d["source"] for d in docs["documents"]] == ["intro.txt", "refunds.md"]
        assert docs["documents"][1]["title"] == "Refunds" and docs["documents"][1]["chunks"] >= 1

        h = await _tokens(app.state.client, runs=["runs.read"])
        _denied(await http.get("/api/graph", params={"search": "acme"}, headers=h["runs"]), "memory.read")
        _denied(await http.get("/api/kb/handbook/documents", headers=h["runs"]), "memory.read")
        assert (await http.get("/api/graph", headers=h["root"])).status_code == 200


async def test_policy_versions_and_decisions(server: Any) -> None:
    async with server("memory://") as (app, http):
        c = app.state.client
        h = await _tokens(c, viewer=["workflows.read"], runs=["runs.read"])
        root = h["root"]
        first = {
            "allowed_tools": ["search", "refund"],
            "approve_tools": ["refund"],
            "banned": ["guaranteed returns"],
        }
        assert (await http.put("/api/policies/support", json=first, headers=root)).status_code == 200
        second = {**first, "allowed_providers": ["local"], "on_violation": "approval"}
        assert (await http.put("/api/policies/support", json=second, headers=root)).status_code == 200
        assert (await http.delete("/api/policies/support", headers=root)).status_code == 200
        assert (await http.put("/api/policies/support", json=second, headers=root)).status_code == 200

        versions = (await http.get("/api/policies/support/history", headers=root)).json()["versions"]
        assert [v["by"] for v in versions] == ["root"] * 4
        assert [v["policy"] and v["policy"]["allowed_providers"] for v in versions] == [
            None,
            ["local"],
            None,
            ["local"],
        ]
        assert (
            versions[0]["policy"]["approve_tools"] == ["refund"] and versions[0]["seq"] < versions[1]["seq"]
        )
        assert (await http.get("/api/policies/other/history", headers=root)).json()["versions"] == []

        async def decide(**q: str) -> dict[str, Any]:
            r = await http.get("/api/policies/support/decision", params=q, headers=h["viewer"])
            assert r.status_code == 200, r.text
            return dict(r.json())

        d = await decide(tool="search")
        assert d["decision"] == "allowed" and d["applies"] == ["workflow 'support'"]
        d = await decide(tool="shell")
        assert d["decision"] == "refused" and "may not call tool 'shell'" in d["checks"][0]["reason"]
        assert (await decide(tool="refund"))["decision"] == "approval"
        d = await decide(provider="openai", answer="These are guaranteed returns!")
        assert [(x["check"], x["outcome"]) for x in d["checks"]] == [
            ("provider", "refused"),
            ("answer", "approval"),
        ]
        assert d["decision"] == "refused" and "banned" in d["checks"][1]["reason"]
        assert (await decide(provider="local", answer="A fair offer."))["decision"] == "allowed"
        await c.set_switch("provider", "local", reason="maintenance")
        d = await decide(provider="local")
        assert d["decision"] == "refused" and "maintenance" in d["checks"][0]["reason"]
        third = {**second, "allowed_connectors": ["crm.getContact", "crm.updateContact"], "approve_connectors": ["crm.updateContact"]}
        assert (await http.put("/api/policies/support", json=third, headers=root)).status_code == 200
        assert (await decide(connector="crm.getContact"))["decision"] == "allowed"
        assert (await decide(connector="crm.updateContact"))["decision"] == "approval"
        d = await decide(connector="crm.deleteContact")
        assert d["decision"] == "refused" and "may not call connector operation 'crm.deleteContact'" in d["checks"][0]["reason"]
        await c.set_switch("connector", "crm", mode="cancel", reason="CRM incident")  # a `pause`: below
        d = await decide(connector="crm.getContact")
        assert d["decision"] == "refused" and "CRM incident" in d["checks"][0]["reason"]
        await c.clear_switch("connector", "crm")
        await c.set_switch("workflow", "support", mode="cancel", reason="support incident")  # as a run's call
        d = await decide(connector="crm.getContact")
        assert d["decision"] == "refused" and "support incident" in d["checks"][0]["reason"]
        await c.clear_switch("workflow", "support")
        bad = await http.get("/api/policies/support/decision", params={"connector": "crm"}, headers=root)
        assert bad.status_code == 422 and "NAME.OPERATION" in bad.json()["error"]["message"]
        # no policy of its own and no default: every call is allowed
        free = await http.get("/api/policies/batch/decision", params={"tool": "shell"}, headers=root)
        assert free.json()["decision"] == "allowed" and free.json()["applies"] == []

        nothing = await http.get("/api/policies/support/decision", headers=root)
        assert nothing.status_code == 422 and "give a tool" in nothing.json()["error"]["message"]
        _denied(await http.get("/api/policies/support/history", headers=h["viewer"]), "audit.read")
        _denied(
            await http.get("/api/policies/support/decision", params={"tool": "x"}, headers=h["runs"]),
            "workflows.read",
        )


async def test_the_dry_run_says_paused_where_a_run_would_park(server: Any) -> None:
    """Under a ``pause`` kill switch a run's call parks (and goes on once the switch is cleared), but
    the dry run answered ``refused`` as if the step would fail: it answers ``paused``, with the switch,
    its reason and how to clear it; ``cancel`` stays ``refused``, the strictest outcome."""
    async with server("memory://") as (app, http):
        c = app.state.client
        policy = {"allowed_connectors": ["crm.getContact", "crm.updateContact"], "approve_connectors": ["crm.updateContact"]}
        assert (await http.put("/api/policies/support", json=policy)).status_code == 200

        async def decide(**q: str) -> dict[str, Any]:
            r = await http.get("/api/policies/support/decision", params=q)
            assert r.status_code == 200, r.text
            return dict(r.json())

        await c.set_switch("connector", "crm", reason="CRM incident")  # mode pause, the default
        d = await decide(connector="crm.getContact")
        assert d["decision"] == "paused" and d["checks"][0]["outcome"] == "paused", d
        reason = d["checks"][0]["reason"]
        assert "CRM incident" in reason and "park" in reason and "podium killswitch clear connector crm" in reason, reason
        # a refusal is stricter than a pause: the step would fail, whatever else parks
        assert (await decide(connector="crm.deleteContact"))["decision"] == "refused"
        await c.clear_switch("connector", "crm")
        await c.set_switch("workflow", "support", reason="support incident")
        d = await decide(connector="crm.updateContact")
        assert d["decision"] == "paused" and "podium killswitch clear workflow support" in d["checks"][0]["reason"], d
        await c.clear_switch("workflow", "support")
        await c.set_switch("agent", "*", reason="agents off")  # an agent parks before its next model call
        d = await decide(provider="local", agent="helper")
        assert d["decision"] == "paused" and "podium killswitch clear agent --all" in d["checks"][0]["reason"], d
        await c.set_switch("agent", "*", mode="cancel", reason="agents off")
        assert (await decide(provider="local", agent="helper"))["decision"] == "refused"
        await c.clear_switch("agent", "*")
        await c.set_switch("provider", "local", reason="maintenance")  # a model call fails, whatever the mode
        assert (await decide(provider="local"))["decision"] == "refused"
        spec = (await http.get("/openapi.json")).json()["components"]["schemas"]["PolicyDecision"]
        assert "paused" in json.dumps(spec), spec


async def test_the_dry_run_of_an_agents_call_uses_the_default_for_agents(server: Any) -> None:
    """The API's dry run answered "allowed" for an agent no ``agent:NAME`` policy names, where a run
    applies ``agent:*`` (a renamed agent); it now asks what a run asks."""
    async with server("memory://") as (app, http):
        await app.state.client.set_policy("agent:*", Policy(allowed_tools=["lookup"]))
        r = await http.get("/api/policies/support/decision", params={"tool": "refund", "agent": "renamed"})
        assert r.status_code == 200, r.text
        d = r.json()
    assert d["decision"] == "refused" and "agent:*" in d["applies"][0], d


async def test_capabilities_with_who_may_use_them(
    server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PODIUM_SKILLS", "tests.server.page_flows:skills")
    async with server("memory://") as (app, http):
        c = app.state.client
        await c.add_capability(
            "crm", "http", {"url": "https://crm.example.com/customers/{id}"}, description="CRM <b>lookup</b>"
        )
        await c.add_capability("docs", "files", {"root": str(tmp_path)})
        await c.set_policy("support", Policy(allowed_tools=["crm"]))
        await c.set_policy("billing", Policy(approve_tools=["crm"]))
        await c.create_user("sam", ["operator"])
        h = await _tokens(c, runs=["runs.read"])
        sam = {"Authorization": f"Bearer {await c.create_token('sam')}"}

        r = await http.get("/api/capabilities", headers=sam)
        assert r.status_code == 200, r.text
        d = r.json()
        caps = {x["name"]: x for x in d["capabilities"]}
        assert caps["crm"]["kind"] == "http" and caps["crm"]["tool"] is True
        assert (
            "crm.example.com" in caps["crm"]["summary"] and caps["crm"]["description"] == "CRM <b>lookup</b>"
        )
        assert caps["crm"]["policies"] == {"billing": "approval", "support": "allowed"}
        assert caps["docs"]["tool"] is False and caps["docs"]["policies"] == {"support": "refused"}
        assert d["managed_by"] == "tools.manage" and d["skills_source"] == "tests.server.page_flows:skills"
        skills = {s["name"]: s for s in d["skills"]}
        assert skills["draft_offer"]["usable"] is True and skills["draft_offer"]["roles"] == []
        assert skills["refund_order"]["usable"] is False and skills["refund_order"]["roles"] == ["finance"]
        await c.define_role("finance", ["workflows.read"])
        await c.create_user("fay", ["finance"])
        fay = {"Authorization": f"Bearer {await c.create_token('fay')}"}
        usable = {s["name"]: s["usable"] for s in (await http.get("/api/capabilities", headers=fay)).json()["skills"]}
        assert usable == {"draft_offer": True, "refund_order": True}
        _denied(await http.get("/api/capabilities", headers=h["runs"]), "workflows.read")

        monkeypatch.setenv("PODIUM_SKILLS", "tests.server.no_such_module:skills")
        broken = (await http.get("/api/capabilities", headers=sam)).json()
        assert broken["skills"] == [] and "no_such_module" in broken["skills_error"]


async def test_kpis_and_daily_costs(server: Any, store_url: str) -> None:
    flows = [page_flows.support, page_flows.triage]
    async with server(store_url, workflows=flows) as (app, http):
        c = app.state.client
        for i, rate in enumerate((0.91, 0.88, 0.93)):
            await c.run(
                page_flows.support,
                {"customer": f"customer:{i}", "rate": rate, "segment": "smb" if i else "enterprise"},
            )
        await c.run(page_flows.triage, {"subject": "site down", "size": 3})

        k = (await http.get("/api/kpis")).json()
        assert k["window"]["runs"] == 4 and k["window"]["truncated"] is False
        rates = [p for p in k["points"] if p["metric"] == "retention_rate"]
        assert [p["value"] for p in rates] == [0.91, 0.88, 0.93]
        assert [p["labels"] for p in rates] == [
            {"segment": "enterprise"},
            {"segment": "smb"},
            {"segment": "smb"},
        ]
        assert (
            {p["workflow"] for p in rates} == {"support"}
            and rates[0]["kind"] == "gauge"
            and rates[0]["step"] == "answer"
        )
        assert [p["ts"] for p in k["points"]] == sorted(p["ts"] for p in k["points"])
        counters = [p for p in k["points"] if p["kind"] == "counter"]
        assert sorted(p["metric"] for p in counters) == ["offers_sent"] * 3 + ["tickets_triaged"]
        only = (await http.get("/api/kpis", params={"metric": "offers_sent", "workflow": "support"})).json()
        assert len(only["points"]) == 3 and only["window"]["runs"] == 3
        newest = (await http.get("/api/kpis", params={"limit": 2})).json()["window"]
        assert newest == {**newest, "runs": 2, "truncated": True}

        costs = (await http.get("/api/costs")).json()
        today = time.strftime("%Y-%m-%d", time.gmtime())
        rows = {r["workflow"]: r for r in costs["days"]}
        assert {r["day"] for r in costs["days"]} == {today}
        usage = {wf: await c.usage(workflow=wf) for wf in ("support", "triage")}
        for wf, report in usage.items():
            total = report.total
            assert rows[wf]["calls"] == total.calls and rows[wf]["input_tokens"] == total.input_tokens
            assert rows[wf]["output_tokens"] == total.output_tokens
            assert rows[wf]["cost"] == pytest.approx(total.cost) and rows[wf]["unpriced"] == 0
        assert rows["support"]["runs"] == 3 and rows["triage"]["runs"] == 1
        assert costs["total"] == pytest.approx(sum(r["cost"] for r in rows.values()))

        from podium.engine.insights import daily_costs, kpis

        later = time.time() + 3 * 86_400  # three days on, the runs are out of a two-day window
        assert (await daily_costs(c, days=2, now=later)).days == []
        assert (await kpis(c, days=4, now=later)).window.runs == 4

        bad = await http.get("/api/costs", params={"days": 0})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        h = await _tokens(c, viewer=["workflows.read"])
        _denied(await http.get("/api/kpis", headers=h["viewer"]), "runs.read")
        _denied(await http.get("/api/costs", headers=h["viewer"]), "runs.read")


async def test_the_dry_run_says_whether_the_workflow_is_known(server: Any) -> None:
    """Found by the fifth session's new-user run-through: a dry run for a misspelt workflow answered
    ``allowed`` by the default policy, nothing saying the name is unknown. ``known`` says it."""
    async with server("memory://") as (_, http):
        r = await http.get("/api/policies/supprot/decision", params={"tool": "search"})
        assert r.status_code == 200 and r.json()["known"] is False, r.text
        assert (await http.put("/api/policies/supprot", json={"allowed_tools": []})).status_code == 200
        r = await http.get("/api/policies/supprot/decision", params={"tool": "search"})
        assert r.json()["known"] is True and r.json()["decision"] == "refused", r.text


async def test_a_dry_run_with_only_an_agent_says_what_to_add(server: Any) -> None:
    """A new user's run-through (fifth session): ``GET /api/policies/{wf}/decision?agent=helper``
    answered 422 "give a tool, a provider, a connector or an answer to check", without a word on
    ``agent``, so it read as if ``agent`` were not accepted. The message now says that ``agent``
    names who makes the call and shows the query with the call added; an empty ``agent`` is named
    as such."""
    async with server("memory://") as (_app, http):
        r = await http.get("/api/policies/support/decision", params={"agent": "helper"})
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "'agent' names who makes the call" in message, message
        assert "?agent=helper&tool=NAME" in message and "connector=NAME.OPERATION" in message, message
        r = await http.get("/api/policies/support/decision", params={"agent": "", "tool": "search"})
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "'agent' is empty" in message and "leave it out" in message, message
        ok = await http.get("/api/policies/support/decision", params={"agent": "helper", "tool": "search"})
        assert ok.status_code == 200 and ok.json()["decision"] == "allowed", ok.text


async def test_the_dry_run_answers_as_a_run_of_a_workflow_not_deployed_is_checked(server: Any) -> None:
    """Sixth session: with users, a run of a workflow that is not deployed is held by ``*`` as well
    as by its name's policy (any file may call itself by that name). The dry run answered with the
    name's policy alone: ``allowed`` where such a run is refused. It answers as the run is checked
    now, with ``deployed: false`` and the command that deploys it; once deployed, by its own."""
    async with server("memory://") as (app, http):
        c = app.state.client
        root = (await _tokens(c))["root"]
        await c.set_policy("*", Policy(allowed_connectors=["orders"]))
        await c.set_policy("checkout", Policy(allowed_connectors=["orders", "slack"]))
        r = await http.get("/api/policies/checkout/decision", params={"connector": "slack.post"}, headers=root)
        d = r.json()
        assert r.status_code == 200 and d["deployed"] is False and d["decision"] == "refused", r.text
        assert "not deployed" in d["checks"][0]["reason"] and "podium workflows deploy" in d["checks"][0]["reason"]
        assert len(d["applies"]) == 2
        await c.deploy('name: checkout\nsteps:\n  - id: save\n    uses: set\n    with: {text: "placed"}\n')
        d = (await http.get("/api/policies/checkout/decision", params={"connector": "slack.post"}, headers=root)).json()
        assert d["deployed"] is True and d["decision"] == "allowed" and d["applies"] == ["workflow 'checkout'"], d
