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


HOSTILE = "ok\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x1b\\\x9b31m\x07done"


def _hostile_doc() -> dict:
    model = {"kind": "model", "call": "helper.model", "step": f"answer{HOSTILE}", "status": "completed",
             "model": f"openai:x{HOSTILE}", "prompt": [{"role": f"user{HOSTILE}", "content": HOSTILE,
             "tool_calls": [{"name": HOSTILE, "arguments": {"q": HOSTILE}}]}],
             "response": {"text": HOSTILE, "tool_calls": [{"name": HOSTILE, "arguments": HOSTILE}]},
             "trail": [HOSTILE], "agent": HOSTILE}  # fmt: skip
    tool = {"kind": "tool", "call": "t", "step": "answer", "status": "completed", "tool": HOSTILE,
            "arguments": {"x": HOSTILE}, "ok": True, "result": HOSTILE}
    approval = {"kind": "approval", "call": "signal:approval:x", "step": "review", "status": "completed",
                "title": HOSTILE, "approved": True, "by": HOSTILE, "comment": HOSTILE}
    return {"run": {"id": "r1", "workflow": HOSTILE, "version": "1", "status": "completed", "created_at": 1.0},
            "now": 2.0, "payloads_hidden": False,
            "totals": {"model_calls": 1, "tool_calls": 1, "input_tokens": 1, "output_tokens": 1, "cost": None, "latency": 0.1},
            "calls": [model, tool, approval], "children": [{"id": HOSTILE, "workflow": HOSTILE, "status": "completed"}],
            "timeline": [{"step": HOSTILE, "segments": [{"kind": "attempt", "start": 1.0, "end": 2.0}]}]}  # fmt: skip


def test_trace_text_cannot_drive_the_terminal() -> None:
    """The attack: a model answer, tool name, step id or approval comment holding terminal control
    sequences (clear the screen, OSC 52 writes the clipboard, an 8-bit CSI). Printed, they show as
    visible escapes; they never reach the terminal as controls."""
    import io

    from rich.console import Console

    from podium.cli._trace import as_json, show_trace

    buf = io.StringIO()
    show_trace(Console(file=buf, force_terminal=True, width=300), _hostile_doc(), full=True)
    out = buf.getvalue()
    for control in ("\x1b[2J", "\x1b]52", "\x9b", "\x07"):
        assert control not in out, repr(control)
    assert "ok\\x1b[2J" in out and "done" in out
    text = as_json(_hostile_doc())
    assert not any(c in text for c in ("\x1b", "\x9b", "\x07"))
    assert json.loads(text)["calls"][0]["response"]["text"] == HOSTILE  # the data itself is unchanged


def test_podium_runs_show_cannot_drive_the_terminal_either() -> None:
    """The same attack on the run view: a step's output and error message with control sequences
    and rich markup print as text."""
    import io

    from rich.console import Console

    from podium.cli._render import show_run

    wf = pd.Workflow("hostile-output")

    @wf.step
    async def answer(input: dict) -> str:
        return f"[link=http://evil.test]click[/link]{HOSTILE}"

    async def go() -> object:
        async with pd.Client("memory://") as c:
            run = await c.start(wf, {})
            await c.result(run.id, timeout=30)
            return await c.history(run.id)

    buf = io.StringIO()
    show_run(Console(file=buf, force_terminal=True, width=300), asyncio.run(go()), full=True)  # type: ignore[arg-type]
    out = buf.getvalue()
    for control in ("\x1b[2J", "\x1b]52", "\x9b", "\x07", "\x1b]8;"):  # \x1b]8; is a rich [link]
        assert control not in out, repr(control)
    assert "[link=http://evil.test]click[/link]" in out
