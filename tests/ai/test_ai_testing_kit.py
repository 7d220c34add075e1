"""The users' testing kit: ScriptedModel rules, and cassettes that record and replay model and tool calls."""

from __future__ import annotations

import json
import re

import pytest

import podium
from podium import StepContext, ai
from podium.models import CassetteMiss, Message, RateLimited, Request, ToolCall
from podium.models.testing import Cassette, ScriptedModel
from podium.tools import tool


def req(text: str, **kw) -> Request:
    return Request(messages=(Message.user(text),), **kw)


async def test_scripted_rules():
    model = ScriptedModel(
        [
            ("refund", "Refunded."),
            (re.compile(r"order #(\d+)"), ToolCall(id="1", name="lookup", arguments={"id": 7})),
            (lambda r: r.output_schema is not None, {"label": "billing"}),
            ("flaky", [RateLimited("slow down"), "recovered"]),
        ],
        default="Sorry?",
    )
    assert (await model.complete(req("I want a REFUND"))).text == "Refunded."
    assert (await model.complete(req("where is order #12"))).tool_calls[0].name == "lookup"
    assert json.loads((await model.complete(req("x", output_schema={"type": "object"}))).text) == {
        "label": "billing"
    }
    with pytest.raises(RateLimited):
        await model.complete(req("flaky"))
    assert (await model.complete(req("flaky"))).text == "recovered"
    assert (await model.complete(req("flaky"))).text == "recovered"  # the last reply repeats
    assert (await model.complete(req("hello"))).text == "Sorry?"
    assert len(model.requests) == 7


async def test_cassette_records_then_replays_offline(tmp_path, client):
    path = tmp_path / "cassettes" / "triage.json"
    real_model = ScriptedModel(default="a real answer")
    calls = []

    @tool
    def search(query: str) -> list:
        """Search the knowledge base."""
        calls.append(query)
        return [f"doc about {query}"]

    def workflow(cassette: Cassette) -> podium.Workflow:
        model = cassette.model(real_model)
        kb = cassette.tool(search)
        wf = podium.Workflow("cassette")

        @wf.step
        async def answer(ctx: StepContext, input):
            docs = await ai.call_tool(ctx, kb, {"query": input})
            return [(await ai.llm(ctx, f"{input}: {docs}", model=model)).text, docs]

        return wf

    with Cassette(path, mode="record") as rec:
        assert await client.run(workflow(rec), "refunds") == ["a real answer", ["doc about refunds"]]
    assert len(real_model.requests) == 1 and calls == ["refunds"]
    saved = json.loads(path.read_text())
    assert [e["kind"] for e in saved["interactions"]] == ["tool", "model"]

    replay = Cassette(path, mode="replay")
    assert await client.run(workflow(replay), "refunds") == ["a real answer", ["doc about refunds"]]
    assert len(real_model.requests) == 1 and calls == ["refunds"]  # nothing real was called
    assert replay.hits == 2

    with pytest.raises(podium.RunFailed, match="no recording"):
        await client.run(workflow(Cassette(path, mode="replay")), "something new")


async def test_cassette_auto_mode_records_only_misses(tmp_path):
    model = ScriptedModel(default="x")
    cassette = Cassette(tmp_path / "c.json", mode="auto")
    wrapped = cassette.model(model)
    await wrapped.complete(req("a"))
    await wrapped.complete(req("a"))
    await wrapped.complete(req("b"))
    cassette.save()
    assert len(model.requests) == 2 and cassette.hits == 1
    with pytest.raises(CassetteMiss, match="PODIUM_CASSETTE=record"):
        await Cassette(tmp_path / "c.json").model(model).complete(req("c"))
