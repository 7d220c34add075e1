"""The eleventh review (2026-12-07): a refused caller of the HTTP API growing the audit log.

Vic, a viewer, asks 500 times for what a viewer may not do (reading the audit log): each refusal
was one more signed ``access.denied`` entry, at the rate the API answers. Now the first is written
at once and the repeats are counted into one summary when the server stops (docs/status.md,
"Refusals flooding the audit log (eleventh session)")."""

from __future__ import annotations

from typing import Any

from podium import Client

from . import flows


async def test_attack_500_refused_requests_add_one_entry_then_one_summary(server: Any, store_url: str) -> None:
    async with server(store_url, workflows=flows.ALL) as (app, http):
        c = app.state.client
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        root, vic = await c.create_token("root"), await c.create_token("vic")
        for _ in range(500):
            r = await http.get("/api/audit", headers={"Authorization": f"Bearer {vic}"})
            assert r.status_code == 403, r.text
        entries = (await http.get("/api/audit", headers={"Authorization": f"Bearer {root}"})).json()["entries"]
        assert [(e["actor"], e["action"]) for e in entries].count(("vic", "access.denied")) == 1
        store = c.store if store_url.startswith("memory") else store_url
    async with Client(store, token=root, recover=False) as admin:
        denied = [e for e in await admin.audit_log(limit=10_000) if e.action == "access.denied"]
        assert [e.actor for e in denied] == ["vic", "vic"] and denied[1].details()["repeated"] == 499
        assert (await admin.verify_audit())[1] is None
