"""A YAML workflow's `webhook:` trigger is served by `podium serve` at its /hooks/... path: one run per
call (one per Idempotency-Key), the same authorization as POST /api/runs, and a clear 404 for a path
no workflow declares. Paths outside /hooks/ are refused when the file is validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium import yaml as podium_yaml

FLOW = """name: tickets-in
triggers:
  - webhook: /hooks/tickets
  - webhook: {path: /hooks/tickets/close, method: PUT}
steps:
  - id: take
    uses: set
    with: {subject: "{{ input.subject }}"}
"""


async def test_a_declared_webhook_starts_one_run_per_key(server: Any, store_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "tickets.yaml"
    flow.write_text(FLOW)
    async with server(store_url, workflows=[str(flow)]) as (app, http):
        r = await http.post("/hooks/tickets", json={"subject": "printer on fire"}, headers={"Idempotency-Key": "t-1"})
        assert r.status_code == 202, r.text
        first = r.json()
        assert first["workflow"] == "tickets-in" and first["duplicate"] is False
        again = await http.post("/hooks/tickets", json={"subject": "printer on fire"}, headers={"Idempotency-Key": "t-1"})
        assert again.json() == {**first, "duplicate": True}
        got = await app.state.client.result(first["run_id"], timeout=30)
        assert got == {"subject": "printer on fire"}
        put = await http.put("/hooks/tickets/close", json={"subject": "done"})
        assert put.status_code == 202 and put.json()["run_id"] != first["run_id"]
        wrong = await http.post("/hooks/tickets/close", json={})  # declared for PUT only
        assert wrong.status_code == 404 and "PUT /hooks/tickets/close" in wrong.json()["error"]["message"]
        missing = await http.post("/hooks/nothing", json={})
        assert missing.status_code == 404 and "POST /hooks/tickets" in missing.json()["error"]["message"]
        bad = await http.post("/hooks/tickets", content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad.status_code in (400, 422) and "Traceback" not in bad.text


async def test_a_webhook_needs_runs_start(server: Any, store_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "tickets.yaml"
    flow.write_text(FLOW)
    async with server(store_url, workflows=[str(flow)]) as (app, http):
        c = app.state.client
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        vic = await c.create_token("vic")
        assert (await http.post("/hooks/tickets", json={"subject": "x"})).status_code == 401  # users exist: a token is needed
        refused = await http.post("/hooks/tickets", json={"subject": "x"}, headers={"Authorization": f"Bearer {vic}"})
        assert refused.status_code == 403


def test_webhook_paths_live_under_hooks() -> None:
    text = FLOW.replace("/hooks/tickets\n", "/api/runs\n")
    problems = podium_yaml.validate_text(text)
    assert any("a webhook path is /hooks/" in p.message and p.line == 3 for p in problems), problems
