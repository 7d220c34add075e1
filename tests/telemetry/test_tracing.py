"""OpenTelemetry spans: one per run, step attempt and model or tool call, with GenAI attributes."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the 'otel' extra: pip install 'podium[otel]'")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import podium
from podium import RetryPolicy, StepContext, ai
from podium.models import Gateway, Price
from podium.models.testing import ScriptedModel
from podium.telemetry import instrument
from podium.tools import tool


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def by_name(exporter):
    return {s.name: s for s in exporter.get_finished_spans()}


async def test_span_tree_of_a_run_with_a_model_call(client, spans):
    provider, exporter = spans
    model = ScriptedModel([("summarise", "A summary.")])
    gw = Gateway(prices={"scripted": Price(input=1.0, output=2.0)})
    wf = podium.Workflow("triage")

    @tool
    def lookup(customer: str) -> str:
        """Find a customer."""
        return f"gold:{customer}"

    @wf.step
    async def fetch(input: dict) -> str:
        return input["text"]

    @wf.step
    async def summarise(ctx: StepContext, fetch: str) -> str:
        reply = await ai.llm(ctx, f"summarise {fetch}", model=gw.model(model))
        tier = await ai.call_tool(ctx, lookup, {"customer": "ada"})
        return f"{reply.text} {tier}"

    handle = instrument(client, provider)
    run_id = (await client.start(wf, {"text": "my invoice is wrong"})).id
    assert await client.result(run_id) == "A summary. gold:ada"
    handle.uninstrument()

    got = by_name(exporter)
    assert set(got) == {"run triage", "step fetch", "step summarise", "chat scripted", "execute_tool lookup"}
    run, fetch_s, summ = got["run triage"], got["step fetch"], got["step summarise"]
    chat, tool_s = got["chat scripted"], got["execute_tool lookup"]
    # One trace; the run is the root, steps under it, calls under their step.
    assert len({s.context.trace_id for s in got.values()}) == 1
    assert run.parent is None
    assert fetch_s.parent.span_id == run.context.span_id
    assert summ.parent.span_id == run.context.span_id
    assert chat.parent.span_id == summ.context.span_id
    assert tool_s.parent.span_id == summ.context.span_id
    # Timings come from the events and nest.
    assert run.start_time <= fetch_s.start_time <= fetch_s.end_time <= summ.start_time
    assert summ.start_time <= chat.start_time <= chat.end_time <= tool_s.start_time <= summ.end_time
    assert summ.end_time <= run.end_time
    # Attributes.
    assert run.attributes["podium.run.id"] == run_id
    assert run.attributes["podium.workflow.name"] == "triage"
    assert run.attributes["podium.run.status"] == "completed"
    assert summ.attributes["podium.step.id"] == "summarise"
    assert summ.attributes["podium.step.attempt"] == 1
    a = chat.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "scripted" and a["gen_ai.system"] == "scripted"
    assert a["gen_ai.request.model"] == "scripted" and a["gen_ai.response.model"] == "scripted"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["podium.usage.cost_usd"] > 0
    assert a["podium.call.name"] == "llm"
    assert tool_s.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_s.attributes["gen_ai.tool.name"] == "lookup"
    for s in got.values():
        assert s.status.status_code is StatusCode.UNSET
    assert run.kind is SpanKind.INTERNAL


async def test_failures_give_error_spans(client, spans):
    provider, exporter = spans
    wf = podium.Workflow("flaky")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def charge(input: dict) -> None:
        raise ConnectionError("card processor down")

    instrument(client, provider)
    run_id = (await client.start(wf, {})).id
    with pytest.raises(podium.RunFailed):
        await client.result(run_id)

    steps = [s for s in exporter.get_finished_spans() if s.name == "step charge"]
    assert [s.attributes["podium.step.status"] for s in steps] == ["retrying", "failed"]
    assert [s.attributes["podium.step.attempt"] for s in steps] == [1, 2]
    for s in steps:
        assert s.status.status_code is StatusCode.ERROR
        assert "card processor down" in s.status.description
        assert s.attributes["error.type"].endswith("ConnectionError")
        assert s.events[0].name == "exception"
    run = by_name(exporter)["run flaky"]
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["podium.run.status"] == "failed"


async def test_a_skipped_step_and_a_failed_model_call(client, spans):
    provider, exporter = spans
    from podium.models import ProviderError

    model = ScriptedModel([(None, ProviderError("overloaded", retryable=False))])
    wf = podium.Workflow("skips")

    @wf.step(on_error="continue")
    async def ask(ctx: StepContext) -> str:
        return (await ai.llm(ctx, "hi", model=Gateway().model(model))).text

    @wf.step(when=lambda ask: ask == "never")
    async def later(ask: str) -> str:
        return ask

    instrument(client, provider)
    run_id = (await client.start(wf, {})).id
    await client.wait(run_id)
    got = by_name(exporter)
    assert got["step later"].attributes["podium.step.status"] == "skipped"
    call = next(s for s in exporter.get_finished_spans() if s.attributes.get("podium.call.name") == "llm")
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert call.parent.span_id == got["step ask"].context.span_id


async def test_a_run_that_waits_for_an_approval_and_a_sub_workflow(client, spans):
    provider, exporter = spans
    child = podium.Workflow("child")

    @child.step
    async def inner(input: dict) -> int:
        return 1

    wf = podium.Workflow("refunds")

    @wf.step
    async def approve(ctx: StepContext) -> dict:
        decision = await ctx.approval({"amount": 90}, title="refund?")
        await ctx.run_workflow(child, {})
        return decision

    instrument(client, provider)
    run_id = (await client.start(wf, {})).id
    for _ in range(100):
        if await client.approvals():
            break
        await asyncio.sleep(0.02)
    await client.decide(run_id, (await client.approvals())[0]["name"], approve=True)
    await client.wait(run_id)

    got = exporter.get_finished_spans()
    runs = [s for s in got if s.name == "run refunds"]
    # One span per stretch of running: until it waits, then from the resume to the end, one trace.
    assert [s.attributes["podium.run.status"] for s in runs] == ["waiting", "completed"]
    assert runs[1].parent.span_id == runs[0].context.span_id
    assert len({s.context.trace_id for s in got}) == 1
    steps = [s for s in got if s.name == "step approve"]
    assert [s.attributes["podium.step.status"] for s in steps] == ["waiting", "completed"]
    assert steps[0].events[0].name == "podium.wait"
    wait = next(s for s in got if s.name == "wait approval:approve")
    assert wait.parent.span_id == steps[1].context.span_id and wait.attributes["podium.waited_seconds"] >= 0
    child_run = next(s for s in got if s.name == "run child")
    assert child_run.parent.span_id == runs[1].context.span_id  # under the parent run
