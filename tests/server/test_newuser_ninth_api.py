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
