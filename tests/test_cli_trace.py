"""``podium show RUN --trace`` (and ``--json``) as a user runs it: a real subprocess on a SQLite store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from test_cli import podium

import podium as pd


def _traced_run(db: str) -> str:
    from tests.server.trace_flows import support

    async def go() -> str:
        async with pd.Client(db) as c:
            text = "Refund order 7 for ana.lopez@example.com [link=http://evil.test]click[/link]"
            rid = (await c.start(support, {"text": text})).id
            for _ in range(1500):
                if (await c.get(rid)).status.value == "waiting":
                    break
                await asyncio.sleep(0.02)
            [req] = await c.approvals(run_id=rid)
            await c.decide(rid, req["name"], approve=True, comment="ok to send")
            await c.wait(rid, timeout=30)
            return rid

    return asyncio.run(go())


def test_show_trace_text_and_json(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    rid = _traced_run(db)

    out = podium("show", rid, "--trace", db=db).stdout
    assert f"Trace of run {rid}" in out and "2 model calls" in out and "640 cached" in out
    assert "route" in out and "→ billing (confidence 0.87, by classifier)" in out
    assert "openai:gpt-4o-mini" in out and "agent helper, iteration 2" in out
    assert "lookup_order" in out and '"status": "refunded"' in out
    assert "[EMAIL]" in out and "ana.lopez@example.com" not in out
    assert "[link=http://evil.test]click[/link]" in out  # model and user text is never rich markup
    assert "approved by local" in out and "ok to send" in out
    assert "timeline" in out and "triage" in out

    doc = json.loads(podium("show", rid, "--trace", "--json", db=db).stdout)
    assert [c["kind"] for c in doc["calls"]] == ["route", "model", "tool", "model", "approval"]
    assert doc["totals"]["model_calls"] == 2 and doc["run"]["id"] == rid

    missing = podium("show", "nope", "--trace", db=db, check=None)
    assert missing.returncode != 0 and "no run with id 'nope'" in missing.stderr
