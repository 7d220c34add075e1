"""What a new user met with the HTTP API (2026-12-06, ninth session)."""

from __future__ import annotations

from typing import Any

from tests.server.flows import hello


async def test_a_json_body_sent_without_its_content_type_says_so(server: Any) -> None:
    """docs/goals.md: `curl -X POST .../api/goals -H "Authorization: ..." -d '{"goal": ...}'`. curl's
    -d sends the body as a form (application/x-www-form-urlencoded), and the answer was
    `body.goal: Field required`, for a body that holds `goal`. Now a body that does not match,
    sent with another content type, is answered with what was sent and the header to add."""
    async with server("memory://", workflows=[hello]) as (_, http):
        sent = await http.post(
            "/api/runs",
            content='{"workflow": "hello", "input": {"name": "Ada"}}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert sent.status_code == 422
        message = sent.json()["error"]["message"]
        assert "application/x-www-form-urlencoded" in message and "Content-Type: application/json" in message
        assert "curl" in message
        right = await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "Ada"}})
        assert right.status_code in (200, 201, 202), right.text
        wrong = await http.post("/api/runs", json={"workflow": 5})  # a JSON body that is wrong: as before
        assert wrong.status_code == 422 and "Content-Type" not in wrong.json()["error"]["message"]




async def test_a_mistyped_field_of_a_start_is_named_not_dropped(server: Any) -> None:
    """`POST /api/runs {"workflow": "hello", "inptu": {...}}` dropped `inptu` and started the run with
    no input (or answered that a required input field was missing). The start, fork and signal
    bodies now refuse a field they do not have, naming it."""
    async with server("memory://", workflows=[hello]) as (_, http):
        sent = await http.post("/api/runs", json={"workflow": "hello", "inptu": {"name": "Ada"}})
        assert sent.status_code == 422, sent.text
        assert "body.inptu" in sent.json()["error"]["message"]
        assert (await http.get("/api/runs")).json()["runs"] == []


async def test_a_mistyped_field_of_a_decision_or_switch_is_named_not_dropped(server: Any) -> None:
    """README: "an approver can also edit the payload". `POST /api/approvals/RUN/NAME {"approve":
    true, "paylod": {...}}` dropped the misspelt edit and approved the run with the payload as it
    was. The decision and kill-switch bodies now refuse a field they lack, naming it, and the run
    still waits for a decision."""
    from tests.server import flows
    from tests.server.test_api import wait_status

    async with server("memory://", workflows=flows.ALL) as (_, http):
        rid = (await http.post("/api/runs", json={"workflow": "review", "input": {"topic": "t"}})).json()["run"]["id"]
        await wait_status(http, rid, "waiting")
        name = (await http.get("/api/approvals")).json()["approvals"][0]["name"]
        typo = await http.post(f"/api/approvals/{rid}/{name}", json={"approve": True, "paylod": {"text": "edited"}})
        assert typo.status_code == 422 and "body.paylod" in typo.json()["error"]["message"], typo.text
        assert (await http.get(f"/api/runs/{rid}")).json()["run"]["status"] == "waiting"
        switch = await http.post("/api/switches", json={"scope": "workflow", "name": "review", "reson": "x"})
        assert switch.status_code == 422 and "body.reson" in switch.json()["error"]["message"], switch.text


async def test_a_mistyped_field_of_a_goal_is_named_not_dropped(server: Any) -> None:
    """`POST /api/goals {"goal": ..., "contxt": {...}}` dropped `contxt` and planned the goal without
    the caller's context (the new-user run-through's leftover). Refused now, naming the field,
    before any goal run starts."""
    async with server("memory://", workflows=[hello]) as (_, http):
        sent = await http.post("/api/goals", json={"goal": "check stock of a vendor", "contxt": {"vendor": "Acme"}})
        assert sent.status_code == 422, sent.text
        assert "body.contxt" in sent.json()["error"]["message"]
        assert (await http.get("/api/runs")).json()["runs"] == []
