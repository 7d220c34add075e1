"""A kill switch or policy whose row was deleted before an engine started (tenth session).

The attacker can write the database but does not hold the audit key. The ninth session's engines
kept a deleted row's switch or policy in force if they had read it; an engine started after the
deletion did not know the name, so did not look it up, and ran the switched-off workflow. Each test
here succeeded as an attack before the fix (docs/status.md, "Kill switches and policies named by the
log (tenth session)")."""

from __future__ import annotations

from typing import Any

import pytest
from store_attacker import pay_workflow, root_token, sql

from podium import Client, KillSwitchActive, Policy

STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)


@STORES
@pytest.mark.parametrize("scope,name", [("workflow", "pay"), ("all", "*")])
async def test_attack_a_switch_row_deleted_before_an_engine_starts_still_holds(store_url: str, scope: str, name: str) -> None:
    url = store_url
    root = await root_token(url)
    wf = pay_workflow()
    async with Client(url, token=root, workflows=[wf]) as c:
        await c.set_switch(scope, name, reason="incident 42")
    sql(url, "DELETE FROM kv WHERE ns = ?", "switches")
    async with Client(url, token=root, workflows=[wf]) as c:  # started after the deletion
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await c.start(wf, 1)
        assert f"{scope}:{name}" in await c.switches()
        await c.clear_switch(scope, name)
    async with Client(url, token=root, workflows=[wf]) as c:  # cleared through governance: gone for good
        assert await c.run(wf, 1) == 1


@STORES
async def test_attack_a_policy_row_deleted_before_an_engine_starts_still_holds(store_url: str) -> None:
    url = store_url
    root = await root_token(url)
    async with Client(url, token=root) as c:
        await c.set_policy("pay", Policy(max_run_tokens=10))
        await c.set_policy("old", Policy(max_run_tokens=5))
        await c.set_policy("old", None)  # removed through governance: not in force
    sql(url, "DELETE FROM kv WHERE ns = ?", "policies")
    async with Client(url, token=root) as c:
        policy = c.policy_for("pay")
        assert policy is not None and policy.max_run_tokens == 10
        assert "old" not in await c.policies()


@STORES
async def test_a_cleared_switch_costs_no_lookup_at_each_refresh(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names the log holds are looked up again only when their last entry or their row changes."""
    url = store_url
    root = await root_token(url)
    async with Client(url, token=root) as c:
        await c.set_switch("workflow", "pay", reason="incident 42")
        await c.clear_switch("workflow", "pay")
        await c.governance.refresh()
        looked: list[str] = []
        real = c.store.audit_for

        async def audit_for(target: str) -> Any:
            looked.append(target)
            return await real(target)

        monkeypatch.setattr(c.store, "audit_for", audit_for)
        await c.governance.refresh()
        await c.governance.refresh()
        assert "workflow:pay" not in looked, looked


async def test_governing_heads_name_each_switch_and_policy_target_with_its_newest_entry(store_url: str) -> None:
    """The store's index of governing entries, on every store (memory, SQLite, PostgreSQL): each
    target with a stamp of its entries' seqs (review: not the newest seq, which a planted entry
    could hold still), and the entries themselves in one read."""
    from podium.records import GOVERNING_ACTIONS, governing_stamps

    async with Client(store_url) as c:
        await c.set_switch("workflow", "pay", reason="r")
        await c.set_policy("pay", Policy(max_run_tokens=3))
        await c.clear_switch("workflow", "pay")
        await c.set_switch("kind", "llm", reason="r")
        heads = await c.store.governing_heads()
        governing = [e for e in await c.store.read_audit() if e.action in GOVERNING_ACTIONS]
        assert heads == governing_stamps((e.target, e.seq) for e in governing) and set(heads) == {"workflow:pay", "kind:llm"}
        assert [e.seq for e in await c.store.governing_entries()] == [e.seq for e in governing]
