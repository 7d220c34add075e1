"""Model calls inside workflow steps: durable (never repeated), structured, accounted.

Engine-level behaviour is tested with the ScriptedModel, on memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel

import podium
from podium import RetryPolicy, StepContext, ai
from podium.models import Gateway, Message, OutputInvalid, Price, Request, Response, ToolCall, Usage
from podium.models.testing import ScriptedModel


class Ticket(BaseModel):
    intent: str
    urgent: bool


async def test_llm_call_is_durable_and_accounted(client):
    model = ScriptedModel([("summarise", "A short summary."), ("reply", "Dear customer, ...")])
    gw = Gateway(prices={"scripted": Price(input=1.0, output=2.0)})
    wf = podium.Workflow("durable-llm")
    seen = []

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def draft(ctx: StepContext, input):
        summary = await ai.llm(ctx, f"summarise {input}", model=gw.model(model))
        reply = await ai.llm(ctx, f"reply to {summary.text}", model=gw.model(model))
        seen.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("the step fails after its two model calls")
        return reply.text

    run_id = (await client.start(wf, "my invoice is wrong")).id
    assert await client.result(run_id) == "Dear customer, ..."
    assert seen == [1, 2]
    assert len(model.requests) == 2  # the retry got both answers from the log

    history = await client.history(run_id)
    logged = history.step("draft/llm").output
    assert isinstance(logged, Response) and logged.text == "A short summary."
    assert logged.model == "scripted:scripted"

    report = ai.usage_of(history)
    assert [c.call for c in report.calls] == ["llm", "llm-2"]
    total = report.total
    assert total.calls == 2 and total.input_tokens > 0 and total.output_tokens > 0
    assert total.cost == pytest.approx((total.input_tokens * 1.0 + total.output_tokens * 2.0) / 1e6)
    assert set(report.by_step()) == {"draft"}
    assert set(report.by_model()) == {"scripted:scripted"}
    # Queryable through the client, per run and per workflow.
    again = await client.run(wf, "second ticket")
    assert again == "Dear customer, ..."
    per_wf = await ai.usage(client, workflow="durable-llm")
    assert per_wf.model_calls == 4 and len(per_wf.by_run()) == 2
    assert (await ai.usage(client, run_id=run_id)).total == total


async def test_structured_output_validates_and_repairs(client):
    model = ScriptedModel([(None, ['{"intent": "billing"}', '{"intent": "billing", "urgent": true}'])])
    wf = podium.Workflow("structured")

    @wf.step
    async def extract(ctx: StepContext, input):
        r = await ai.llm(ctx, input, model=model, output=Ticket)
        return r.output

    out = await client.run(wf, "URGENT: charged twice")
    assert out == Ticket(intent="billing", urgent=True)
    first, repair = model.requests
    assert first.output_schema["required"] == ["intent", "urgent"]
    assert first.output_name == "Ticket"
    assert "urgent" in repair.messages[-1].content and "not valid" in repair.messages[-1].content
    assert [v.step for v in (await client.history((await client.list())[0].id)).steps][:2] == [
        "extract/llm",
        "extract/llm-2",
    ]


async def test_structured_output_gives_up_after_bounded_repairs():
    model = ScriptedModel(default="not json at all")
    with pytest.raises(OutputInvalid, match="no valid Ticket after 3 tries") as err:
        await ai.llm(None, "x", model=model, output=Ticket, repair=2)
    assert err.value.non_retryable
    assert len(model.requests) == 3


async def test_json_schema_output_and_fenced_json():
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["a", "b"]}, "score": {"type": "number"}},
        "required": ["label"],
    }
    model = ScriptedModel(default='```json\n{"label": "b", "score": 0.5}\n```')
    r = await ai.llm(None, "x", model=model, output=schema)
    assert r.output == {"label": "b", "score": 0.5}
    bad = ScriptedModel(default='{"label": "c"}')
    with pytest.raises(OutputInvalid, match="label"):
        await ai.llm(None, "x", model=bad, output=schema, repair=0)


async def test_dataclass_output_and_messages():
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    model = ScriptedModel(default={"x": 1, "y": 2})
    r = await ai.llm(
        None,
        messages=[Message.user("first"), Message.assistant("ok")],
        prompt="where?",
        system="Be brief.",
        model=model,
        output=Point,
    )
    assert r.output == Point(x=1, y=2)
    req = model.requests[0]
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "user"]


async def test_response_round_trips_through_the_log():
    from podium import _serde

    r = Response(
        text="t",
        tool_calls=(ToolCall(id="1", name="f", arguments={"a": 1}),),
        usage=Usage(input_tokens=3, output_tokens=4, latency=0.5, cost=0.1),
        model="m:x",
        trail=({"model": "m:x", "error": "boom"},),
    )
    assert _serde.loads(_serde.dumps(r)) == r
    req = Request(messages=[Message.user("x")], stop=["a"])
    assert isinstance(req.messages, tuple) and req.prompt == "x"


async def test_show_prints_usage(tmp_path):
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path}/p.db"
    wf = podium.Workflow("shown")

    @wf.step
    async def ask(ctx: StepContext):
        return (await ai.llm(ctx, "hello", model=ScriptedModel(default="hi there"))).text

    async with podium.Client(db) as c:
        run_id = (await c.start(wf)).id
        await c.result(run_id)
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "show", run_id, "--db", db],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    out = proc.stdout
    assert "usage: 1 calls" in out and "ask: 1 calls" in out
