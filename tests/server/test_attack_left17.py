"""The sixteenth session's left items on the server's surfaces (seventeenth session), each an attack
that failed before its fix.

1. The single event's ``Idempotency-Key`` header had no length limit of its own (uvicorn's header
   limit bounded it, some tens of kilobytes), while a batch's keys are capped at 200 characters:
   the key is kept with the run it starts (audited, compared on every post of it). The same cap
   holds for the header now, on events, a workflow's webhook and ``POST /api/runs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import flows

HOOK = """name: tickets-in17
triggers:
  - webhook: /hooks/tickets17
steps:
  - id: take
    uses: set
    with: {subject: "{{ input.subject }}"}
"""


async def test_attack_a_single_events_idempotency_key_of_any_length(server: Any, store_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "tickets.yaml"
    flow.write_text(HOOK)
    long_key = "k" * 201
    async with server(store_url, workflows=[*flows.TRIGGERS, str(flow)]) as (_, http):
        posts = {
            "event": lambda key: http.post(
                "/api/events/ticket.created", json={"id": 1, "subject": "s"}, headers={"Idempotency-Key": key}
            ),
            "webhook": lambda key: http.post("/hooks/tickets17", json={"subject": "s"}, headers={"Idempotency-Key": key}),
            "run": lambda key: http.post(
                "/api/runs", json={"workflow": "tickets", "input": {"id": 1, "subject": "s"}}, headers={"Idempotency-Key": key}
            ),
        }
        for what, post in posts.items():
            r = await post(long_key)
            assert r.status_code == 422, (what, r.status_code, r.text[:300])
            message = r.json()["error"]["message"]
            assert "Idempotency-Key" in message and "200" in message and "201" in message, (what, message)
            ok = await post("k" * 200)  # the batch's limit: taken
            assert ok.status_code in (201, 202), (what, ok.text[:300])
        body_key = await http.post(
            "/api/runs", json={"workflow": "tickets", "input": {"id": 1, "subject": "s"}, "idempotency_key": long_key}
        )
        assert body_key.status_code == 422 and "idempotency_key" in body_key.text, body_key.text[:300]
        runs = (await http.get("/api/runs", params={"limit": 500})).json()["runs"]
        assert len(runs) == 3  # one per surface, none for a refused key
