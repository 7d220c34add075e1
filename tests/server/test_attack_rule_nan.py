"""A threshold rule on a field holding NaN (a model's or a risk API's broken score) started nothing
without a word: NaN is neither above nor below the threshold, so ``risk > 0.8`` (and ``risk <= 0.8``)
let it pass unseen, and ``risk != 0`` started the run on it. A posted event holding NaN is refused
(422, as before); an event a run emitted (``ctx.emit``, no JSON on the way) is kept as a dead letter
for each rule that cannot decide, saying why (the attacker's review
of the seventeenth session, left item)."""

from __future__ import annotations

from typing import Any

from . import flows

RULES = [
    {"name": "churn", "when": "churn_score > 0.8", "workflow": "retention", "event": "customer.*"},
    {"name": "nonzero", "when": "churn_score != 0", "workflow": "retention", "event": "customer.*"},
]
NAN = '{"customer": "b", "churn_score": NaN}'


async def test_a_posted_event_whose_rule_field_is_nan_is_refused(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS, rules=RULES) as (_app, http):
        for body in (NAN, NAN.replace("NaN", "Infinity")):
            answer = await http.post("/api/events/customer.scored", content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 422, answer.text
            assert "churn_score" in answer.text and ("NaN" in answer.text or "Infinity" in answer.text), answer.text
        batch = '{"events": [{"type": "customer.scored", "idempotency_key": "k1", "payload": {"churn_score": NaN}}]}'
        answer = await http.post("/api/events", content=batch, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and "NaN" in answer.text, answer.text
        assert (await http.get("/api/runs", params={"workflow": "retention"})).json()["runs"] == []
        ok = await http.post("/api/events/customer.scored", json={"customer": "b", "churn_score": 0.93})
        assert ok.status_code == 202 and len(ok.json()["runs"]) == 2  # numbers decide as before


async def test_an_emitted_event_whose_rule_field_is_nan_is_a_dead_letter_saying_why(server: Any) -> None:
    async with server("memory://", workflows=flows.TRIGGERS, rules=RULES) as (app, http):
        await app.state.triggers._on_emitted("customer.scored", {"customer": "b", "churn_score": float("nan"), "idempotency_key": "e1"})
        letters = await app.state.triggers.dead_letters()
        assert {letter["source"] for letter in letters} == {"rule:churn", "rule:nonzero"}, letters
        assert all("not a number" in letter["error"] and "churn_score" in letter["error"] for letter in letters)
        assert (await http.get("/api/runs", params={"workflow": "retention"})).json()["runs"] == []
