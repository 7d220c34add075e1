"""The run trace (podium.engine.trace): prompts and arguments stored with the run's calls, redacted,
turned off by a setting, deleted with the run, and read back as model calls, tool calls, routing
decisions, agent iterations, approvals and a timeline. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

import podium
from podium import RetryPolicy, StepContext, ai
from podium.classifiers import Classification, Classifier
from podium.engine.trace import run_trace
from podium.governance.identity import Principal
from podium.models import Response, ToolCall, Usage
from podium.models.testing import ScriptedModel
from podium.tools import tool

KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c"
MAIL = "ana.lopez@example.com"


@tool
def lookup_order(order_id: int, api_key: str = "") -> dict:
    """Look up an order.

    Args:
        order_id: the order number
        api_key: the shop's key
    """
    return {"order_id": order_id, "status": "refunded"}


class Fixed(Classifier):
    labels = ["billing", "tech"]

    async def classify(self, text: str) -> Classification:
        return Classification(label="billing", confidence=0.83, method="fixed")


def _first(req):
    return req.messages[-1].role == "user"


def support_flow() -> tuple[podium.Workflow, ScriptedModel]:
    model = ScriptedModel(
        [
            (_first, ToolCall(id="c1", name="lookup_order", arguments={"order_id": 7, "api_key": KEY})),
            (None, Response(text="Refunded.", usage=Usage(input_tokens=50, output_tokens=3, cached_tokens=32))),
        ],
        provider="openai",
        name="gpt-4o-mini",
    )
    helper = ai.Agent(model=model, instructions="Answer about orders.", tools=[lookup_order], name="helper")
    router = ai.Router(routes={"billing": helper, "tech": helper}, classifier=Fixed(), threshold=0.5)
    wf = podium.Workflow("support-trace")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0.05))
    async def triage(ctx: StepContext, input: dict) -> str:
        if ctx.attempt == 1:
            raise ConnectionError("the ticket system did not answer")
        return (await router.decide(ctx, input["text"])).route

    @wf.step
    async def answer(ctx: StepContext, triage: str, input: dict) -> str:
        return str((await helper.run(ctx, input["text"])).output)

    @wf.step
    async def review(ctx: StepContext, answer: str) -> dict:
        return await ctx.approval({"answer": answer}, title="Send it?")

    return wf, model


async def _waiting(client, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while (await client.get(run_id)).status.value != "waiting":
        assert time.monotonic() < deadline, "the run never reached its approval"
        await podium_sleep()


async def podium_sleep() -> None:
    import asyncio

    await asyncio.sleep(0.02)


async def test_trace_shows_what_the_ai_did(client):
    wf, _ = support_flow()
    text = f"Where is my refund for order 7? Write to {MAIL}, my key is {KEY}"
    run_id = (await client.start(wf, {"text": text})).id
    await _waiting(client, run_id)

    live = await run_trace(client, run_id)  # while the run waits for a person
    [asked] = [c for c in live["calls"] if c["kind"] == "approval"]
    assert asked["status"] == "waiting" and asked["title"] == "Send it?"
    assert any(s["kind"] == "wait" and s["end"] is None for r in live["timeline"] for s in r["segments"])

    await client.decide(run_id, asked["name"], approve=True, comment="looks right")
    assert (await client.result(run_id, timeout=30))["approved"] is True
    trace = await run_trace(client, run_id)
    kinds = [(c["step"], c["kind"]) for c in trace["calls"]]
    assert kinds == [
        ("triage", "route"),
        ("answer", "model"),
        ("answer", "tool"),
        ("answer", "model"),
        ("review", "approval"),
    ]
    route, first, looked, second, approval = trace["calls"]
    assert (route["route"], route["confidence"], route["by"]) == ("billing", 0.83, "classifier")

    # Model calls: provider, model, the prompt as stored (redacted), the answer, usage, iterations.
    assert (first["provider"], first["model"]) == ("openai", "openai:gpt-4o-mini")
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["prompt"][0]["content"] == "Answer about orders."
    assert first["response"]["tool_calls"] == [{"name": "lookup_order", "arguments": {"order_id": 7, "api_key": "***"}}]
    assert first["tools"] == ["lookup_order"] and first["input_tokens"] > 0 and first["latency"] >= 0
    assert first["cost"] is not None and first["cost"] > 0  # priced from the gateway's table
    assert second["response"]["text"] == "Refunded." and second["cached_tokens"] == 32
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "tool"]
    assert (first["agent"], first["iteration"], looked["iteration"], second["iteration"]) == ("helper", 1, 1, 2)
    assert looked["tool"] == "lookup_order" and looked["ok"] is True
    assert looked["arguments"] == {"order_id": 7, "api_key": "***"}
    assert looked["result"] == {"order_id": 7, "status": "refunded"}

    # The approval: who, when, why.
    assert (approval["approved"], approval["by"], approval["comment"]) == (True, "local", "looks right")
    assert approval["decided_at"] >= approval["requested_at"] and approval["waited"] >= 0

    # Totals and the timeline: the failed first attempt of triage, its backoff, then the success.
    assert trace["totals"]["model_calls"] == 2 and trace["totals"]["tool_calls"] == 1
    assert trace["totals"]["cached_tokens"] == 32 and trace["prompts_stored"] is True
    rows = {r["step"]: r["segments"] for r in trace["timeline"]}
    attempts = [s for s in rows["triage"] if s["kind"] == "attempt"]
    assert [s["status"] for s in attempts] == ["retry", "completed"]
    assert "did not answer" in attempts[0]["error"]
    assert [s["kind"] for s in rows["triage"]].count("backoff") == 1
    assert any(s["kind"] == "wait" and s["end"] is not None for s in rows["review"])
    assert any(s["kind"] == "call" and s["label"] == "helper.model" for s in rows["answer"])


async def test_a_prompt_with_a_secret_and_an_email_is_stored_redacted(client):
    """The attack: a user (or a document) puts an API key and an e-mail address in the prompt. The
    model gets them (it is the user's call), the store does not."""
    wf, model = support_flow()
    text = f"Refund order 7. Mail {MAIL}. Authorization: Bearer abc.def.ghi and api_key={KEY}"
    run_id = (await client.start(wf, {"text": text})).id
    await _waiting(client, run_id)
    assert KEY in model.requests[0].messages[-1].content  # the model was sent the prompt as written

    stored = [e.data or "" for e in await client.store.load_events(run_id)]
    notes = [json.loads(d)["trace"] for d in stored if '"trace"' in d]
    assert len(notes) == 3  # two model calls, one tool call
    for note in notes:
        dumped = json.dumps(note)
        assert KEY not in dumped and MAIL not in dumped and "abc.def.ghi" not in dumped
    prompt = notes[0]["messages"][-1]["content"]
    assert "[EMAIL]" in prompt and "api_key=sk-***" in prompt and "Bearer ***" in prompt
    # Nor anywhere else in the log, but in the model's own answer (its tool call repeats the key: the
    # answer is the call's result, which a replay must get back as it was; a policy's redact: [outputs]
    # or [payloads] covers it).
    assert not any(MAIL in d for d in stored)
    assert [json.loads(d)["output"]["value"]["tool_calls"][0]["value"]["arguments"]["api_key"] for d in stored if KEY in d] == [KEY]

    trace = json.dumps(await run_trace(client, run_id))
    assert KEY not in trace and MAIL not in trace


async def test_trace_prompts_false_stores_no_prompt(client, monkeypatch):
    monkeypatch.setenv("PODIUM_TRACE_PROMPTS", "false")
    wf, _ = support_flow()
    run_id = (await client.start(wf, {"text": "order 7"})).id
    await _waiting(client, run_id)
    assert not any('"trace"' in (e.data or "") for e in await client.store.load_events(run_id))
    trace = await run_trace(client, run_id)
    models = [c for c in trace["calls"] if c["kind"] == "model"]
    assert len(models) == 2 and all(c["prompt"] is None for c in models)
    assert models[1]["response"]["text"] == "Refunded."  # the answer is the call's result: still there
    assert trace["prompts_stored"] is False


async def test_stored_prompts_go_with_the_run(client):
    """Retention: deleting a finished run (``podium memory prune``'s rule) deletes its trace."""
    wf, _ = support_flow()
    run_id = (await client.start(wf, {"text": "order 7"})).id
    await _waiting(client, run_id)
    [req] = await client.approvals(run_id=run_id)
    await client.decide(run_id, req["name"], approve=False, comment="no")
    await client.wait(run_id, timeout=30)
    assert any('"trace"' in (e.data or "") for e in await client.store.load_events(run_id))
    assert await client.store.delete_runs(await client.store.finished_run_ids(before=time.time() + 1)) == [run_id]
    assert await client.store.load_events(run_id) == []
    with pytest.raises(podium.NotFound):
        await run_trace(client, run_id)


async def test_without_payloads_read_the_trace_has_no_text(client):
    wf, _ = support_flow()
    run_id = (await client.start(wf, {"text": f"order 7 for {MAIL}"})).id
    await _waiting(client, run_id)
    reader = Principal(name="viewer", roles=("viewer",), permissions=frozenset({"runs.read"}))
    with client.acting_as(reader):
        trace = await run_trace(client, run_id)
    assert trace["payloads_hidden"] is True
    models = [c for c in trace["calls"] if c["kind"] == "model"]
    assert len(models) == 2 and all(c["prompt"] is None for c in models)
    assert "Refunded" not in json.dumps(trace)
    nobody = Principal(name="nobody", roles=(), permissions=frozenset())
    with client.acting_as(nobody), pytest.raises(podium.PermissionDenied):
        await run_trace(client, run_id)


async def test_connector_calls_keep_their_arguments(client):
    from podium.connectors import Connector, Operation

    class Crm(Connector):
        kind = "crm"

        def operations(self):
            return [Operation(name="update_contact", description="Update a contact")]

        async def call(self, operation, arguments, *, idempotency_key=None):
            return {"updated": arguments["id"]}

    client.add_connector("crm", Crm())
    wf = podium.Workflow("crm-trace")

    @wf.step
    async def sync(ctx: StepContext, input: dict) -> dict:
        return await ctx.connector("crm").call("update_contact", {"id": 3, "email": MAIL})

    run_id = (await client.start(wf, {})).id
    await client.result(run_id, timeout=30)
    [call] = (await run_trace(client, run_id))["calls"]
    assert (call["kind"], call["connector"], call["operation"]) == ("connector", "crm", "update_contact")
    assert call["arguments"] == {"id": 3, "email": "[EMAIL]"} and call["result"] == {"updated": 3}


async def test_connector_credentials_in_arguments_are_not_stored(client):
    """The attack: a step hands a connector a DSN with its password, a basic-auth header in a list,
    a secret-named field holding a mapping and a PEM key. None of them reaches the stored trace."""
    from podium.connectors import Connector, Operation

    class Db(Connector):
        kind = "db"

        def operations(self):
            return [Operation(name="copy", description="Copy a table")]

        async def call(self, operation, arguments, *, idempotency_key=None):
            return {"copied": True}

    client.add_connector("db", Db())
    wf = podium.Workflow("creds-trace")
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----"
    args = {"to": "postgresql://etl:Pa55w0rd-x@db.internal/shop", "headers": [["Authorization", "Basic ZXRsOlBhNTV3MHJk"]],
            "secret": {"value": "plain-s3cret-value"}, "tls": {"cert": "c.pem", "key": pem}}

    @wf.step
    async def sync(ctx: StepContext, input: dict) -> dict:
        return await ctx.connector("db").call("copy", args)

    run_id = (await client.start(wf, {})).id
    await client.result(run_id, timeout=30)
    stored = json.dumps([e.data for e in await client.store.load_events(run_id)])
    for leaked in ("Pa55w0rd-x", "ZXRsOlBhNTV3MHJk", "plain-s3cret-value", "MIIEvQIBADANBgkqhkiG9w0B"):
        assert leaked not in stored, leaked
    [call] = (await run_trace(client, run_id))["calls"]
    assert call["arguments"]["to"] == "postgresql://etl:***@db.internal/shop"


async def test_forget_erases_from_stored_prompts(client):
    """``podium forget`` (the store's payload redaction) reaches the stored prompts: a name the
    detectors do not know is erased from the trace like from every other payload."""
    wf, _ = support_flow()
    run_id = (await client.start(wf, {"text": "order 7 for Ana Quixote"})).id
    await _waiting(client, run_id)
    assert "Quixote" in json.dumps(await run_trace(client, run_id))
    await client.store.redact_payloads(["Ana Quixote"], "[ERASED]")
    trace = json.dumps(await run_trace(client, run_id))
    assert "Quixote" not in trace and "order 7 for [ERASED]" in trace


async def test_a_classification_with_its_confidence(client):
    wf = podium.Workflow("classify-trace")

    @wf.step
    async def label(ctx: StepContext, input: dict) -> str:
        return (await ai.classify(ctx, input["text"], Fixed())).label

    run_id = (await client.start(wf, {"text": "my invoice is wrong"})).id
    assert await client.result(run_id, timeout=30) == "billing"
    [c] = (await run_trace(client, run_id))["calls"]
    assert (c["kind"], c["label"], c["confidence"], c["method"]) == ("classify", "billing", 0.83, "fixed")


async def test_providers_report_prompt_cache_hits():
    """Cached input tokens (the trace's cache hits) as OpenAI and Anthropic report them, through the gateway."""
    import httpx

    from podium.models import Gateway, get_model

    def openai(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2048, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 1920}},
        })

    def anthropic(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "id": "m", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1500, "output_tokens": 2},
        })

    gw = Gateway()
    a = await ai.llm(None, "hello", model=gw.model(get_model("openai:gpt-4o-mini", api_key="sk-test", transport=httpx.MockTransport(openai))))
    b = await ai.llm(None, "hello", model=gw.model(get_model("anthropic:claude-3-5-haiku-latest", api_key="sk-ant-test", transport=httpx.MockTransport(anthropic))))
    assert (a.usage.input_tokens, a.usage.cached_tokens) == (2048, 1920)
    assert (b.usage.input_tokens, b.usage.cached_tokens) == (1510, 1500)
    assert (a.usage + b.usage).cached_tokens == 3420


async def test_an_agent_stores_each_message_once(client):
    """An agent's later calls store only the messages their previous call did not: the log grows
    with the conversation, not with its square, and the trace still shows each call's whole prompt."""
    model = ScriptedModel(
        [
            (lambda r: len(r.messages) == 2, ToolCall(id="a", name="lookup_order", arguments={"order_id": 1})),
            (lambda r: len(r.messages) == 4, ToolCall(id="b", name="lookup_order", arguments={"order_id": 2})),
            (None, "Both refunded."),
        ],
        provider="openai",
        name="gpt-4o-mini",
    )
    helper = ai.Agent(model=model, instructions="Answer about orders.", tools=[lookup_order], name="helper")
    wf = podium.Workflow("agent-trace")

    @wf.step
    async def answer(ctx: StepContext, input: dict) -> str:
        return str((await helper.run(ctx, input["text"])).output)

    run_id = (await client.start(wf, {"text": "orders 1 and 2?"})).id
    assert await client.result(run_id, timeout=30) == "Both refunded."
    stored = [json.loads(e.data)["trace"] for e in await client.store.load_events(run_id)
              if e.data and '"trace"' in e.data and '"kind":"model"' in e.data]
    assert [(n.get("earlier", 0), len(n["messages"])) for n in stored] == [(0, 2), (2, 2), (4, 2)]
    models = [c for c in (await run_trace(client, run_id))["calls"] if c["kind"] == "model"]
    assert [len(c["prompt"]) for c in models] == [2, 4, 6]
    assert [m["role"] for m in models[2]["prompt"]] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert models[2]["prompt"][:4] == models[1]["prompt"]


def test_long_texts_are_cut_after_redaction():
    from podium.engine.waits import TRACE_TEXT_LIMIT, trace_note

    text = "x" * (TRACE_TEXT_LIMIT - 10) + f" {MAIL} and the rest"
    kept = json.loads(trace_note({"messages": [{"role": "user", "content": text}]}))["messages"][0]["content"]
    assert "lopez" not in kept and "[EM" in kept and kept.endswith("more characters]")
    assert len(kept) < TRACE_TEXT_LIMIT + 40


def test_a_huge_note_is_not_stored_whole():
    """The attack: one call whose arguments are many texts (each under the per-text cut), 50 MB in
    all, written into the run's log and sent whole with every read of the trace. A note over the
    limit keeps what was called, and says how much was left out."""
    from podium.engine.waits import TRACE_NOTE_LIMIT, trace_note

    rows = [f"row {i} " + "x" * 19_000 for i in range(2_500)]
    note = trace_note({"kind": "tool", "tool": "bulk_load", "arguments": {"rows": rows}, "agent": "loader"})
    assert len(note) < TRACE_NOTE_LIMIT
    kept = json.loads(note)
    assert (kept["kind"], kept["tool"], kept["agent"]) == ("tool", "bulk_load", "loader")
    assert "arguments" not in kept and kept["omitted"] > 40_000_000
    small = json.loads(trace_note({"kind": "tool", "tool": "t", "arguments": {"a": "b"}}))
    assert small == {"kind": "tool", "tool": "t", "arguments": {"a": "b"}}
