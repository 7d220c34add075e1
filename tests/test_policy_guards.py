"""Policies around every model call: output validators (block or ask), day and entity budgets,
PII redaction of prompts, answers and stored payloads, the agent kill switch, and the audit
records of model calls, tool calls and routing decisions."""

from __future__ import annotations

import asyncio
import json

import pytest

from podium import Client, RetryPolicy, RunFailed, RunStatus, StepContext, Workflow, ai
from podium.errors import ConfigError
from podium.governance.policy import Policy
from podium.models import Response, ToolCall, Usage
from podium.models.testing import ScriptedModel
from podium.tools import tool
from podium.validators import BannedContent, Tone, check_output


async def _wait_status(c: Client, run_id: str, status: RunStatus, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await c.get(run_id)).status is not status:
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} never became {status}"
        await asyncio.sleep(0.02)


def answering(text: str, name: str = "answerer") -> Workflow:
    model = ScriptedModel(default=text)
    wf = Workflow(name)

    @wf.step
    async def reply(ctx: StepContext, input):
        return (await ai.llm(ctx, f"Reply to: {input}", model=model)).text

    return wf


# -- output validators --------------------------------------------------------------------------


async def test_banned_content_blocks_the_answer_and_is_audited(store_url):
    wf = answering("Invest now: guaranteed returns of 20%!")
    async with Client(store_url) as c:
        await c.set_policy("answerer", Policy(banned=["guaranteed returns", "re:\\bwire\\s+money\\b"]))
        with pytest.raises(RunFailed, match="banned content: 'guaranteed returns'"):
            await c.run(wf, "should I invest?")
        [entry] = [e for e in await c.audit_log() if e.action == "policy.output"]
        assert entry.details()["problems"][0]["validator"] == "banned"
        await c.set_policy("answerer", Policy(banned=["wire money"]))
        assert await c.run(wf, "again") == "Invest now: guaranteed returns of 20%!"


async def test_a_failed_answer_can_be_passed_or_edited_by_a_person(store_url):
    wf = answering("You must wire money today.", name="edited")
    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("edited", Policy(banned=["wire money"], on_violation="approval"))
        handle = await c.start(wf, "hi")
        await _wait_status(c, handle.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=handle.id)
        assert "failed its checks" in req["title"] and req["payload"]["answer"] == "You must wire money today."
        await c.decide(handle.id, req["name"], approve=True, payload={"answer": "Please pay by card."})
        assert await c.result(handle.id, timeout=10) == "Please pay by card."

        rejected = await c.start(wf, "again")
        await _wait_status(c, rejected.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=rejected.id)
        await c.decide(rejected.id, req["name"], approve=False, comment="not our voice")
        with pytest.raises(RunFailed, match="rejected it: not our voice"):
            await c.result(rejected.id, timeout=10)


async def test_validators_run_once_per_answer_even_when_the_step_is_retried(store_url):
    model = ScriptedModel(default="fine answer")
    wf = Workflow("retried")
    attempts = []

    @wf.step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
    async def reply(ctx: StepContext):
        text = (await ai.llm(ctx, "hi", model=model)).text
        attempts.append(ctx.attempt)
        if ctx.attempt < 2:
            raise RuntimeError("flaky after the call")
        return text

    async with Client(store_url) as c:
        await c.set_policy("retried", Policy(banned=["forbidden"]))
        assert await c.run(wf) == "fine answer"
        history = await c.history((await c.list(workflow="retried"))[0].id)
        checks = [s for s in history.steps if s.step.endswith("llm.check")]
        assert len(checks) == 1 and len(model.requests) == 1 and attempts == [1, 2]


def test_bad_policies_say_what_is_wrong():
    with pytest.raises(ConfigError, match="unknown tone"):
        Policy(tone=["grumpy"])
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        Policy(banned=["re:(unclosed"])
    with pytest.raises(ConfigError, match="redact: unknown target"):
        Policy(redact=["logs"])
    with pytest.raises(ConfigError, match="max_entity_cost must be a finite number >= 0"):
        Policy(max_entity_cost=-1)
    with pytest.raises(ConfigError, match="tone_threshold must be between 0 and 1"):
        Policy(tone=["hostile"], tone_threshold=1.5)
    with pytest.raises(ConfigError, match="redact must be a list of strings"):
        Policy.from_dict({"redact": "prompts"})
    with pytest.raises(ConfigError, match="did you mean 'max_daily_cost'"):
        Policy.from_dict({"max_daily_costs": 3})


async def test_tone_validator_judges_meaning_with_the_local_embedder():
    pytest.importorskip("onnxruntime", reason="the tone validator needs the embeddings extra")
    tone = Tone(["hostile", "dismissive"])
    assert await tone.check("Thanks for your patience, your refund is on its way.") is None
    problem = await tone.check("Stop wasting our time with your stupid complaints, idiot.")
    assert problem is not None and "hostile" in problem
    assert await check_output("Figure it out yourself, not our problem.", [tone])
    banned = BannedContent(["free"])
    assert await banned.check("a carefree day") is None  # whole words only
    assert await banned.check("It's FREE!") is not None


# -- budgets per day and per entity -------------------------------------------------------------


def customer_workflow(model) -> Workflow:
    wf = Workflow("per-customer")

    @wf.step
    async def talk(ctx: StepContext, input):
        return (await ai.llm(ctx, "hello", model=model)).text

    return wf


async def test_entity_budget_stops_one_customer_not_the_others(store_url):
    model = ScriptedModel(default=Response(text="ok", usage=Usage(input_tokens=60, output_tokens=40, cost=0.01)))
    wf = customer_workflow(model)
    async with Client(store_url) as c:
        await c.set_policy("per-customer", Policy(max_entity_tokens=250, entity_field="customer.id"))
        for _ in range(3):
            assert await c.run(wf, {"customer": {"id": "acme"}}) == "ok"  # 100, 200, 300 tokens
        with pytest.raises(RunFailed, match="tokens of 250 today for entity 'acme'"):
            await c.run(wf, {"customer": {"id": "acme"}})
        assert await c.run(wf, {"customer": {"id": "globex"}}) == "ok"
        counters = await c.store.kv_list("spend")  # keyed by a digest: erasure has nothing to find there
        assert len([k for k in counters if k.startswith("entity:")]) == 4  # tokens and cost, two customers
        assert not [k for k in counters if "acme" in k or "globex" in k], counters
        budget = [e for e in await c.audit_log() if e.action == "policy.budget"]
        assert budget and "acme" in json.dumps(budget[-1].details())


async def test_daily_budget_is_shared_by_every_client_of_the_store(store_url):
    from podium import open_store

    model = ScriptedModel(default=Response(text="ok", usage=Usage(input_tokens=1, output_tokens=1, cost=0.4)))
    wf = customer_workflow(model)
    store = open_store(store_url) if store_url.startswith("memory") else store_url
    async with Client(store) as a, Client(store) as b:
        await a.set_policy("per-customer", Policy(max_daily_cost=1.0))
        await b.governance.refresh()
        assert await a.run(wf, {}) == "ok"
        assert await b.run(wf, {}) == "ok"
        assert await a.run(wf, {}) == "ok"  # $1.20 spent now
        with pytest.raises(RunFailed, match=r"\$1.2000 of \$1.0000 today"):
            await b.run(wf, {})


# -- redaction ----------------------------------------------------------------------------------


async def test_prompts_are_redacted_before_they_reach_the_model(store_url):
    model = ScriptedModel(default="Noted.")
    wf = Workflow("redacting")

    @wf.step
    async def ask(ctx: StepContext, input):
        return (await ai.llm(ctx, f"Customer wrote: {input}", model=model)).text

    async with Client(store_url) as c:
        await c.set_policy("redacting", Policy(redact=["prompts"]))
        await c.run(wf, "mail me at ana@example.com, card 4111 1111 1111 1111")
        sent = model.requests[-1].messages[-1].content
        assert "ana@example.com" not in sent and "[EMAIL]" in sent and "[CARD]" in sent


async def test_answers_and_stored_payloads_are_redacted(store_url):
    model = ScriptedModel(default="Call +44 20 7946 0958 or write to bob@example.org")
    wf = Workflow("stored")

    @wf.step
    async def ask(ctx: StepContext, input):
        return {"answer": (await ai.llm(ctx, "contact?", model=model)).text, "echo": input}

    async with Client(store_url) as c:
        await c.set_policy("stored", Policy(redact=["outputs", "payloads"]))
        out = await c.run(wf, {"email": "ana@example.com"})
        assert out["answer"] == "Call [PHONE] or write to [EMAIL]"
        assert out["echo"] == {"email": "[EMAIL]"}
        run = (await c.list(workflow="stored"))[0]
        stored = run.input + "".join(e.data or "" for e in await c.store.load_events(run.id))
        for secret in ("ana@example.com", "bob@example.org", "7946 0958"):  # not "7946": timestamps have digits
            assert secret not in stored


async def test_pii_stays_on_local_models(store_url):
    remote = ScriptedModel(default="sure", provider="openai")
    wf = Workflow("pii-local")

    @wf.step
    async def ask(ctx: StepContext, input):
        return (await ai.llm(ctx, input, model=remote)).text

    async with Client(store_url) as c:
        await c.set_policy("pii-local", Policy(pii_local_only=True))
        assert await c.run(wf, "what is the capital of France?") == "sure"
        with pytest.raises(RunFailed, match="keeps it on local models"):
            await c.run(wf, "my card is 4111 1111 1111 1111")
        assert len(remote.requests) == 1


# -- the agent kill switch and the audit of calls and decisions ----------------------------------


@tool
def lookup(order_id: int) -> str:
    """Look an order up."""
    return f"order {order_id}: shipped"


async def test_agent_kill_switch_pauses_the_agent_and_clearing_resumes_it(store_url):
    seen = asyncio.Event()

    def first(req):
        seen.set()
        return not any(m.role == "tool" for m in req.messages)

    model = ScriptedModel([(first, [ToolCall(id="1", name="lookup", arguments={"order_id": 7})])], default="shipped")
    wf = Workflow("agentic")

    @wf.step
    async def answer(ctx: StepContext, input):
        agent = ai.Agent(model=model, tools=[lookup], name="helper", max_iterations=4)
        return (await agent.run(ctx, input)).output

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_switch("agent", "helper", mode="pause", reason="reviewing helper")
        handle = await c.start(wf, "where is order 7?")
        await _wait_status(c, handle.id, RunStatus.WAITING)
        assert not seen.is_set()  # paused before its first model call
        await c.clear_switch("agent", "helper")
        assert await c.result(handle.id, timeout=10) == "shipped"

        await c.set_switch("agent", "helper", mode="cancel", reason="misbehaving")
        with pytest.raises(RunFailed, match="agent 'helper' is switched off"):
            await c.run(wf, "again")
        actions = [e.action for e in await c.audit_log()]
        assert "killswitch.set" in actions and "policy.refuse" in actions


async def test_model_calls_tool_calls_and_routes_are_audited(store_url):
    model = ScriptedModel(
        [(lambda req: not any(m.role == "tool" for m in req.messages), [ToolCall(id="1", name="lookup", arguments={"order_id": 7})])],
        default=Response(text="shipped", usage=Usage(input_tokens=12, output_tokens=3, cost=0.001)),
        provider="openai",
        name="gpt-test",
    )
    router = ai.Router(
        routes={"orders": lambda ctx, x: x, "other": lambda ctx, x: x},
        rules=[ai.Rule(route="orders", match="order")],
        name="triage",
    )
    wf = Workflow("audited")

    @wf.step
    async def answer(ctx: StepContext, input):
        decision = await router.decide(ctx, input)
        result = await ai.Agent(model=model, tools=[lookup]).run(ctx, input)
        return [decision.route, result.output]

    async with Client(store_url) as c:
        assert await c.run(wf, "where is order 7?") == ["orders", "shipped"]
        log = await c.audit_log()
        calls = [e.details() for e in log if e.action == "model.call"]
        assert len(calls) == 2 and calls[-1]["input_tokens"] == 12 and calls[-1]["cost"] == 0.001
        assert len(calls[0]["prompt_hash"]) == 64 and calls[0]["tool_calls"] == ["lookup"]
        assert calls[0]["step"] == "answer" and calls[0]["workflow"] == "audited"
        [toolcall] = [e.details() for e in log if e.action == "tool.call"]
        assert toolcall["tool"] == "lookup" and toolcall["ok"] is True
        [route] = [e.details() for e in log if e.action == "route.decision"]
        assert route["route"] == "orders" and route["confidence"] == 1.0 and route["by"] == "rule"
        assert (await c.verify_audit())[1] is None


@tool
def refund(order_id: int) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


async def test_a_tool_the_policy_names_needs_a_person_first(store_url):
    def asks(req):
        return not any(m.role == "tool" for m in req.messages)

    model = ScriptedModel([(asks, [ToolCall(id="1", name="refund", arguments={"order_id": 7})])], default="done")
    wf = Workflow("guarded-tools")

    @wf.step
    async def answer(ctx: StepContext, input):
        result = await ai.Agent(model=model, tools=[lookup, refund], max_iterations=3).run(ctx, input)
        return [(t.name, t.ok, t.value, t.error) for t in result.tool_calls]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("guarded-tools", Policy(approve_tools=["refund"]))
        handle = await c.start(wf, "refund order 7")
        await _wait_status(c, handle.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=handle.id)
        assert req["payload"] == {"tool": "refund", "arguments": {"order_id": 7}}
        await c.decide(handle.id, req["name"], approve=True, payload={"tool": "refund", "arguments": {"order_id": 8}})
        assert await c.result(handle.id, timeout=10) == [["refund", True, "refunded 8", None]]

        second = await c.start(wf, "refund order 7 again")
        await _wait_status(c, second.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=second.id)
        await c.decide(second.id, req["name"], approve=False, comment="already refunded")
        [(name, ok, _, error)] = await c.result(second.id, timeout=10)
        assert (name, ok) == ("refund", False) and "did not approve calling tool 'refund': already refunded" in error


async def test_an_agent_has_its_own_policy(store_url):
    def asks(req):
        return not any(m.role == "tool" for m in req.messages)

    model = ScriptedModel([(asks, [ToolCall(id="1", name="refund", arguments={"order_id": 7})])], default="ok", provider="openai")
    wf = Workflow("two-agents")

    @wf.step
    async def answer(ctx: StepContext, input):
        out = []
        for name in ("junior", "senior"):
            result = await ai.Agent(model=model, tools=[lookup, refund], name=name, max_iterations=2).run(ctx, input)
            out.append([name, [(t.name, t.ok) for t in result.tool_calls]])
        return out

    async with Client(store_url) as c:
        await c.set_policy("agent:junior", Policy(allowed_tools=["lookup"]))
        assert await c.run(wf, "refund 7") == [["junior", [["refund", False]]], ["senior", [["refund", True]]]]
        [refusal] = [e.details() for e in await c.audit_log() if e.action == "policy.refuse"]
        assert refusal["agent"] == "junior" and refusal["tool"] == "refund"
        await c.set_policy("agent:senior", Policy(allowed_providers=["local"]))
        with pytest.raises(RunFailed, match="agent 'senior' may not call provider 'openai'"):
            await c.run(wf, "refund 7 again")


# -- regressions: what a resumed run must not do again ------------------------------------------


async def test_a_resumed_run_is_not_charged_or_checked_again_for_calls_it_replays(store_url):
    costly = Response(text="ok", usage=Usage(input_tokens=100, output_tokens=50, cost=0.0))
    model = ScriptedModel(default=costly)
    wf = Workflow("replayed-budget")

    @wf.step
    async def ask(ctx: StepContext):
        text = (await ai.llm(ctx, "hi", model=model)).text  # 150 tokens: the day's budget is now spent
        decision = await ctx.approval({"text": text}, title="send it?")
        return [text, decision["approved"]]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("replayed-budget", Policy(max_daily_tokens=100))
        handle = await c.start(wf)
        await _wait_status(c, handle.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=handle.id)
        await c.decide(handle.id, req["name"], approve=True)
        assert await c.result(handle.id, timeout=10) == ["ok", True]  # the replayed call is not re-checked
        assert len(model.requests) == 1
        budget = [e for e in await c.audit_log() if e.action == "policy.budget"]
        assert budget == []


async def test_the_run_budget_counts_calls_made_before_a_resume(store_url):
    costly = Response(text="ok", usage=Usage(input_tokens=100, output_tokens=50, cost=0.0))
    model = ScriptedModel(default=costly)
    wf = Workflow("resumed-budget")

    @wf.step
    async def first(ctx: StepContext):
        return (await ai.llm(ctx, "one", model=model)).text

    @wf.step
    async def second(ctx: StepContext, first):
        await ctx.wait_for("go")
        return (await ai.llm(ctx, "two", model=model)).text

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("resumed-budget", Policy(max_run_tokens=100))
        handle = await c.start(wf)
        await _wait_status(c, handle.id, RunStatus.WAITING)
        await c.signal(handle.id, "go")
        with pytest.raises(RunFailed, match="150 tokens of 100 for the run"):
            await c.result(handle.id, timeout=10)
        assert len(model.requests) == 1


async def test_each_fanned_out_answer_gets_its_own_decision(store_url):
    model = ScriptedModel(default="wire money now")
    wf = Workflow("fanned")

    @wf.step
    async def items():
        return [0, 1, 2]

    @wf.step(map="items")
    async def reply(ctx: StepContext, items):
        return (await ai.llm(ctx, f"item {items}", model=model)).text

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("fanned", Policy(banned=["wire money"], on_violation="approval"))
        handle = await c.start(wf)
        await _wait_status(c, handle.id, RunStatus.WAITING)
        requests = await c.approvals(run_id=handle.id)
        assert len({r["name"] for r in requests}) == 3
        for i, r in enumerate(sorted(requests, key=lambda r: r["name"])):
            await c.decide(handle.id, r["name"], approve=True, payload={"answer": f"edited {i}"})
        assert sorted(await c.result(handle.id, timeout=10)) == ["edited 0", "edited 1", "edited 2"]


async def test_two_guarded_tool_calls_in_one_step_each_get_their_own_decision(store_url):
    calls = iter([[ToolCall(id="1", name="refund", arguments={"order_id": 1})], [ToolCall(id="2", name="refund", arguments={"order_id": 2})]])

    def reply(req):
        n = sum(1 for m in req.messages if m.role == "tool")
        return next(calls) if n < 2 else "done"

    model = ScriptedModel([(None, reply)])
    wf = Workflow("two-refunds")

    @wf.step
    async def answer(ctx: StepContext, input):
        result = await ai.Agent(model=model, tools=[refund], max_iterations=4).run(ctx, input)
        return [t.value for t in result.tool_calls]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("two-refunds", Policy(approve_tools=["refund"]))
        handle = await c.start(wf, "refund both")
        for order in (1, 2):
            await _wait_status(c, handle.id, RunStatus.WAITING)
            [req] = await c.approvals(run_id=handle.id)
            assert req["payload"]["arguments"] == {"order_id": order}
            await c.decide(handle.id, req["name"], approve=True)
            await asyncio.sleep(0.05)
        assert await c.result(handle.id, timeout=10) == ["refunded 1", "refunded 2"]


async def test_llm_classifiers_and_routers_go_through_the_policy(store_url):
    from podium.classifiers import LLMClassifier

    model = ScriptedModel(default={"label": "billing", "confidence": 0.9}, provider="openai")
    classifier = LLMClassifier({"billing": "money", "tech": "bugs"}, model=model)
    router = ai.Router(routes={"billing": lambda ctx, x: "to billing", "tech": lambda ctx, x: "to tech"}, classifier=classifier, name="desk")
    wf = Workflow("classified")

    @wf.step
    async def sort(ctx: StepContext, input):
        c = await ai.classify(ctx, input, classifier)
        routed = await router.run(ctx, input)
        return [c.label, routed.output]

    async with Client(store_url) as c:
        await c.set_policy("classified", Policy(redact=["prompts"]))
        assert await c.run(wf, "refund ana@example.com") == ["billing", "to billing"]
        assert all("ana@example.com" not in m.content for r in model.requests for m in r.messages)
        calls = [e.details() for e in await c.audit_log() if e.action == "model.call"]
        assert [call["step"] for call in calls] == ["sort", "sort"]
        await c.set_policy("classified", Policy(allowed_providers=["local"]))
        with pytest.raises(RunFailed, match="may not call provider 'openai'"):
            await c.run(wf, "another")


async def test_payload_redaction_covers_approval_requests_and_decisions(store_url):
    wf = Workflow("redacted-approvals")

    @wf.step
    async def ask(ctx: StepContext, input):
        decision = await ctx.approval({"note": "customer bob@example.org called"}, title="ok?")
        return decision["payload"]

    async with Client(store_url, poll_interval=0.02) as c:
        await c.set_policy("redacted-approvals", Policy(redact=["payloads"]))
        handle = await c.start(wf, {})
        await _wait_status(c, handle.id, RunStatus.WAITING)
        [req] = await c.approvals(run_id=handle.id)
        assert req["payload"] == {"note": "customer [EMAIL] called"}
        await c.decide(handle.id, req["name"], approve=True, payload={"note": "call ana@example.com back"})
        assert await c.result(handle.id, timeout=10) == {"note": "call [EMAIL] back"}
        stored = "".join(e.data or "" for e in await c.store.load_events(handle.id))
        stored += json.dumps(await c.store.get_signals(handle.id))
        assert "example.org" not in stored and "ana@example.com" not in stored
