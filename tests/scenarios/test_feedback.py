"""The feedback scenario end to end: embedding classifiers decide sentiment and topic, the embedded
model writes the cluster summary, and the executive alert goes out through a connector (a real SMTP
server on 127.0.0.1, or the recorded outbox when the client holds none)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from podium import Client, RunFailed
from podium.connectors import open_connector

from .conftest import needs_local
from .test_feedback_person import _park

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "scenarios" / "data"


def _messages(tmp_path: Path, texts: list[str], labels: list[str] | None = None) -> str:
    path = tmp_path / "messages.jsonl"
    rows = [{"text": t, **({"sentiment": labels[i]} if labels else {})} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@needs_local
async def test_negative_cluster_alerts_the_executives_by_email(tmp_path, monkeypatch):
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed (pip install aiosmtpd)")
    from telemetry.receivers import SmtpServer

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    texts = ["My parcel is two weeks late and the tracking has not moved.",
             "The box arrived crushed and the vase inside was broken.",
             "Love the new headphones, great sound!",
             "What are your opening hours on Saturday?"]
    inp = {"messages": _messages(tmp_path, texts, ["negative", "negative", "positive", "neutral"]),
           "max_tokens": 24, "alert_to": "ceo@example.com"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SmtpServer(port) as smtp:
        mail = open_connector("smtp", host="127.0.0.1", port=port, sender="podium@example.com",
                              allowed_recipients=["ceo@example.com"])
        async with Client(f"sqlite:///{tmp_path}/p.db", connectors={"exec_alerts": mail}) as c:
            out = await c.run(feedback.workflow, inp)
        assert [m["sentiment"] for m in out["messages"]] == ["negative", "negative", "positive", "neutral"]
        assert all(0 < m["sentiment_confidence"] <= 1 and m["topic"] for m in out["messages"])
        assert out["quality"]["sentiment_accuracy"] == 1.0
        [cluster] = out["clusters"]
        assert cluster["topic"] == "delivery" and cluster["negative"] == 2 and cluster["summary"]
        assert out["alerts"] == [{"topic": "delivery", "to": "ceo@example.com", "negative": 2}]
        [(_, rcpt, msg)] = smtp.messages
        assert rcpt == ["ceo@example.com"] and msg["Subject"] == "Negative feedback cluster: delivery"
        assert "2 of 4 messages are negative about delivery" in msg.get_content()


@needs_local
async def test_no_cluster_no_alert_and_the_recorded_outbox(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import _common, feedback

    inp = {"messages": str(DATA / "feedback_messages.jsonl"), "max_tokens": 24, "min_cluster": 2}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(feedback.workflow, inp)
        req = await _park(c, handle.id)  # the sample's unsure message ("Where is my package?...": 0.53)
        await c.decide(handle.id, req["name"], approve=True, comment="labels as proposed")
        out = await c.result(handle.id, timeout=600)
    assert len(out["messages"]) == 8 and all(m["sentiment"] in ("positive", "neutral", "negative") for m in out["messages"])
    assert "quality" not in out and out["review"]["asked"] == len(req["payload"]["messages"]) >= 1
    sent = _common.outbox_messages(tmp_path / "scenarios-outbox.db")
    assert [a["topic"] for a in out["alerts"]] == [m["subject"].rpartition(": ")[2] for m in sent] != []

    one = _messages(tmp_path, ["Great service, thank you!", "The app crashes when I pay."])
    async with Client(f"sqlite:///{tmp_path}/p2.db") as c:
        out = await c.run(feedback.workflow, {"messages": one, "outbox": str(tmp_path / "o2.db")})
    assert out["clusters"] == [] and out["alerts"] == []  # one complaint is not a cluster


async def test_a_bad_messages_file_fails_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    bad = tmp_path / "m.jsonl"
    bad.write_text('{"text": "fine"}\n{"message": "wrong field"}\n')
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(RunFailed, match=r"m.jsonl:2: field\(s\) text missing or not text"):
            await c.run(feedback.workflow, {"messages": str(bad)})
