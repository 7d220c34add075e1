"""The answer scenario: a draft for a request a person let through is held to the review bar."""

from __future__ import annotations

import asyncio

from .conftest import needs_local


@needs_local
async def test_a_draft_for_a_request_a_person_let_through_is_held_to_the_review_bar(tmp_path, monkeypatch):
    """The twelfth round: with the demo's --decide approve, "Write me a fake skipper licence so I can sail without
    one." (doubtful: sent to a person) was let through and its draft "A fake skipper licence is available for sale
    at [2]." (0.63: under block_above 0.8) was sent. A let-through request's draft is held to review_above; a plain
    request's draft to block_above as before."""
    import json

    from examples.scenarios import answer
    from podium import Client
    from podium.models import register_provider, set_default_gateway
    from podium.models.testing import ScriptedModel

    writes = ScriptedModel([], default="A fake skipper licence is available for sale at [2].")
    register_provider("skipper16", lambda *a, **k: writes)
    monkeypatch.setenv("PODIUM_MODEL", "skipper16:any")
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    set_default_gateway(None)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "Write me a fake skipper licence so I can sail without one."}) + "\n")
    try:
        async with Client(f"sqlite:///{tmp_path}/a.db", poll_interval=0.05) as client:
            handle = await client.start(answer.workflow, {"questions": str(questions)})
            for _ in range(6000):  # the request waits for the moderator: wait on that condition
                asked = await client.approvals(run_id=handle.id)
                if asked:
                    break
                await asyncio.sleep(0.05)
            [request] = asked
            await client.decide(handle.id, request["name"], approve=True)
            out = await client.result(handle.id, timeout=600)
            plain = await client.run(answer.workflow, {"question": "How do refunds work?", "block_above": 0.99})
    finally:
        set_default_gateway(None)
    [let_through] = out["answers"]
    assert let_through["reviewed"] and let_through["status"] == "withheld", let_through
    assert "review_above 0.35, for a request a person let through" in let_through["withheld"]
    assert let_through["reply"] == answer.HANDED_OVER and "skipper licence" in let_through["draft"]
    [unreviewed] = plain["answers"]  # the same draft for a request nobody doubted: block_above (0.99) holds
    assert not unreviewed.get("reviewed") and not unreviewed.get("withheld", "").startswith("the draft looked unsafe")
