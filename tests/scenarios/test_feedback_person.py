"""Feedback: what the classifiers cannot decide goes to a person through a real approval, never to an
automatic alert: a message whose sentiment confidence is under ``review_below``, a negative one whose
topic is unsure, and one in a language the English classifiers were not trained on (the support
scenario's test of known words, shared in ``_common``). A clear English message is still decided."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from podium import Client, RunFailed, RunStatus

from .conftest import needs_local

FRESH = Path(__file__).parent / "data" / "feedback_fresh.jsonl"
CLEAR = ["My parcel is two weeks late and the tracking has not moved.",
         "The box arrived crushed and the vase inside was broken."]
UNSURE = "Refund showed up on my card yesterday, cheers"  # positive, but sentiment confidence 0.39
GERMAN = "Das Paket kam zwei Wochen zu spät und der Karton war kaputt."
OTHER_LANGUAGES = [
    (GERMAN, "negative", "delivery"),
    ("Die Jacke ist super, vielen Dank!", "positive", "product"),
    ("Ich warte seit einem Monat auf meine Rückerstattung.", "negative", "billing"),
    ("Le colis est arrivé en retard et la boîte était abîmée.", "negative", "delivery"),
    ("Très bon service client, merci beaucoup.", "positive", "service"),
    ("L'application plante à chaque paiement.", "negative", "app"),
    ("El pedido llegó tarde y nadie responde a mis correos.", "negative", "delivery"),
    ("Me encantan las botas, muy cómodas.", "positive", "product"),
    ("Me cobraron dos veces el mismo pedido.", "negative", "billing"),
]


def _messages(path: Path, texts: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\r\n" for t in texts), encoding="utf-8")
    return str(path)


async def _park(c: Client, run_id: str) -> dict:
    """Wait until the run parks on its review; return the one approval it asks for."""
    for _ in range(12000):
        status = (await c.get(run_id)).status
        if status is RunStatus.WAITING:
            [req] = await c.approvals(run_id=run_id)
            return req
        assert status in (RunStatus.PENDING, RunStatus.RUNNING), f"the run ended ({status}) without asking a person"
        await asyncio.sleep(0.05)
    raise AssertionError("the run neither parked nor ended")


@needs_local
async def test_a_low_confidence_message_and_a_german_one_go_to_a_person_not_to_an_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    inp = {"messages": _messages(tmp_path / "m.jsonl", [*CLEAR, UNSURE, GERMAN]), "min_cluster": 3, "max_tokens": 8}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(feedback.workflow, inp)
        req = await _park(c, handle.id)
        queued = {m["text"]: m for m in req["payload"]["messages"]}
        assert set(queued) == {UNSURE, GERMAN}  # the clear ones are decided by the classifiers
        assert "sentiment confidence" in queued[UNSURE]["why"] and "language" in queued[GERMAN]["why"]
        assert req["role"] == "customer-care" and "2 feedback message(s)" in req["title"]
        await c.decide(handle.id, req["name"], approve=False, comment="not sure either")
        out = await c.result(handle.id, timeout=600)
    rows = {m["text"]: m for m in out["messages"]}
    assert [rows[t]["decided_by"] for t in CLEAR] == ["classifier", "classifier"]
    assert rows[UNSURE]["decided_by"] is None and rows[GERMAN]["decided_by"] is None  # rejected: left out
    assert rows[GERMAN]["to_person"] and rows[CLEAR[0]]["to_person"] == []
    assert out["clusters"] == [] and out["alerts"] == []  # two clear complaints are not a cluster of 3
    assert out["review"] == {"asked": 2, "by": out["review"]["by"], "approved": False, "left_out": 2}
    assert out["sentiment_counts"] == {"positive": 0, "neutral": 0, "negative": 2}

    # approved with the person's own labels: the German complaint joins the delivery cluster and is alerted
    async with Client(f"sqlite:///{tmp_path}/p2.db", poll_interval=0.05) as c:
        handle = await c.start(feedback.workflow, {**inp, "outbox": str(tmp_path / "o.db")})
        req = await _park(c, handle.id)
        edited = {**req["payload"], "messages": [
            {**m, "sentiment": "negative", "topic": "delivery"} if m["text"] == GERMAN else m
            for m in req["payload"]["messages"]]}
        await c.decide(handle.id, req["name"], approve=True, comment="checked", payload=edited)
        out = await c.result(handle.id, timeout=600)
    rows = {m["text"]: m for m in out["messages"]}
    assert rows[GERMAN]["decided_by"] == "person" and rows[GERMAN]["sentiment"] == "negative"
    assert rows[UNSURE]["decided_by"] == "person" and rows[UNSURE]["sentiment"] == "positive"  # as proposed
    assert out["alerts"] == [{"topic": "delivery", "to": "exec@example.com", "negative": 3}]


@needs_local
async def test_a_clear_english_message_is_still_decided_without_a_person(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    texts = [CLEAR[0], "Love the new headphones, great sound!", ""]
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        out = await asyncio.wait_for(c.run(feedback.workflow, {"messages": _messages(tmp_path / "m.jsonl", texts),
                                                                "min_cluster": 3}), 600)
    assert [m["decided_by"] for m in out["messages"]] == ["classifier", "classifier", "rule"]
    assert [m["sentiment"] for m in out["messages"]] == ["negative", "positive", "neutral"]
    assert all(m["to_person"] == [] for m in out["messages"]) and out["review"] == {"asked": 0}


@needs_local
async def test_the_threshold_comes_from_the_input_and_a_bad_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    path = _messages(tmp_path / "m.jsonl", [UNSURE])
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        out = await asyncio.wait_for(c.run(feedback.workflow, {"messages": path, "review_below": 0.3}), 600)
        assert out["messages"][0]["decided_by"] == "classifier"  # 0.39 is enough when the owner says 0.3
        with pytest.raises(RunFailed, match=r"input field 'review_below': 'high' is not a number from 0 to 1"):
            await c.run(feedback.workflow, {"messages": path, "review_below": "high"})


@needs_local
def test_other_languages_go_to_a_person_and_the_fresh_english_messages_do_not_for_language(tmp_path):
    """On the unseen data the classifiers were right 0/3 on German, French and Spanish messages and
    decided them anyway."""
    from examples.scenarios import feedback

    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"text": t, "sentiment": s, "topic": top}, ensure_ascii=False) + "\n"
                             for t, s, top in OTHER_LANGUAGES), encoding="utf-8")
    got = asyncio.run(feedback.evaluate(str(other)))
    assert got["to_person"] == len(OTHER_LANGUAGES) and got["auto_sentiment_accuracy"] is None, got
    english = asyncio.run(feedback.evaluate(str(FRESH)))
    assert english["unfamiliar"] == 0, english


@needs_local
def test_the_measured_figures_on_fifty_fresh_messages():
    """docs/scenarios.md states these (python examples/scenarios/feedback.py tests/scenarios/data/feedback_fresh.jsonl)."""
    from examples.scenarios import feedback

    got = asyncio.run(feedback.evaluate(str(FRESH)))
    assert got["messages"] == 50 and got["unfamiliar"] == 0, got
    # the classifiers alone: 41/50 sentiments, 45/50 topics; 26 go to a person (14 before negatives under
    # alert_review_below went too, eighth session; 21 before the words' second reading, fourteenth session), all 24
    # of the others are right (30 of 36, then 25 of 29, before)
    assert abs(got["sentiment_accuracy"] - 0.82) <= 0.02 and abs(got["topic_accuracy"] - 0.9) <= 0.02, got
    assert abs(got["to_person_share"] - 0.52) <= 0.04 and got["auto_sentiment_accuracy"] >= 0.96, got
