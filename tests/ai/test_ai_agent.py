"""Agents (model + instructions + tools loop), Python and HTTP tools, routing: engine-level
behaviour with the ScriptedModel, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

import podium
from podium import RetryPolicy, StepContext, ai
from podium.classifiers import Classification, Classifier
from podium.models import ToolCall, ToolError
from podium.models.testing import ScriptedModel
from podium.resilience import Backoff
from podium.tools import HttpTool, tool


def first_turn(req):
    return req.messages[-1].role == "user"


@tool
def get_order(order_id: int) -> dict:
    """Look up an order.

    Args:
        order_id: the order number
    """
    return {"order_id": order_id, "status": "shipped"}


def test_function_tool_schema_from_signature():
    assert get_order.name == "get_order" and get_order.description == "Look up an order."
    assert get_order.parameters == {
        "additionalProperties": False,
        "properties": {"order_id": {"description": "the order number", "type": "integer"}},
        "required": ["order_id"],
        "type": "object",
    }
    assert get_order(7)["order_id"] == 7  # still callable as a function


async def test_function_tool_validates_arguments():
    assert (await get_order.call({"order_id": "42"}))["order_id"] == 42  # coerced
    with pytest.raises(ToolError, match="order_id"):
        await get_order.call({"order": 1})


async def test_agent_loop_is_durable_across_a_step_retry(client):
    calls = []

    @tool
    def charge(amount: float) -> str:
        """Charge the customer."""
        calls.append(amount)
        return "charged"

    model = ScriptedModel(
        [
            (first_turn, ToolCall(id="c1", name="charge", arguments={"amount": 9.5})),
            (None, "Done: charged 9.50."),
        ]
    )
    agent = ai.Agent(model=model, instructions="Bill the customer.", tools=[charge], name="biller")
    wf = podium.Workflow("agent-retry")

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def bill(ctx: StepContext, input):
        result = await agent.run(ctx, input)
        if ctx.attempt == 1:
            raise ConnectionError("crash after the agent finished its calls")
        return result.output

    run_id = (await client.start(wf, "bill order 7")).id
    assert await client.result(run_id) == "Done: charged 9.50."
    assert calls == [9.5]  # the charge was not repeated
    assert len(model.requests) == 2  # neither were the model calls
    steps = [v.step for v in (await client.history(run_id)).steps]
    assert steps[:3] == ["bill/biller.model", "bill/biller.charge", "bill/biller.model-2"]


async def test_stop_condition_max_iterations_and_token_budget():
    loop = ScriptedModel(default=ToolCall(id="x", name="get_order", arguments={"order_id": 1}))
    r = await ai.Agent(model=loop, tools=[get_order], max_iterations=3).run(None, "go")
    assert r.stop_reason == "max_iterations" and r.iterations == 3 and len(r.tool_calls) == 3

    r = await ai.Agent(model=loop, tools=[get_order], stop=lambda turn: turn.iteration == 1).run(None, "go")
    assert r.stop_reason == "stop_condition" and r.iterations == 2

    r = await ai.Agent(model=loop, tools=[get_order], max_tokens=30).run(None, "go")
    assert r.stop_reason == "max_tokens" and r.usage.total_tokens >= 30


async def test_tool_errors_go_back_to_the_model():
    model = ScriptedModel(
        [
            (first_turn, ToolCall(id="a", name="nope", arguments={})),
            (
                lambda r: "no tool named" in r.messages[-1].content,
                ToolCall(id="b", name="get_order", arguments={}),
            ),
            (lambda r: "invalid arguments" in r.messages[-1].content, "I need the order number."),
        ]
    )
    r = await ai.Agent(model=model, tools=[get_order]).run(None, "status?")
    assert r.output == "I need the order number."
    assert [t.ok for t in r.tool_calls] == [False, False]


class Verdict(BaseModel):
    approve: bool
    reason: str


async def test_structured_final_output_with_repair():
    model = ScriptedModel(
        [
            (first_turn, ToolCall(id="1", name="final_result", arguments={"approve": True})),
            (None, ToolCall(id="2", name="final_result", arguments={"approve": True, "reason": "ok"})),
        ]
    )
    r = await ai.Agent(model=model, output=Verdict).run(None, "approve?")
    assert r.output == Verdict(approve=True, reason="ok") and r.iterations == 2
    assert model.requests[0].tool_choice == "required"
    assert "invalid final result" in model.requests[1].messages[-1].content


class Handler(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        if "/flaky/" in self.path and type(self).hits == 1:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["content-length"])))
        body = f"got {data['text']}".encode()
        self.send_response(200 if data["text"] != "bad" else 400)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_base():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_http_tools(http_base, client):
    orders = HttpTool("order", f"{http_base}/flaky/{{order_id}}", method="GET", description="Get an order")
    echo = HttpTool(
        "echo",
        f"{http_base}/echo",
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    )
    assert orders.parameters["required"] == ["order_id"]
    wf = podium.Workflow("http-tools")

    @wf.step
    async def use(ctx: StepContext):
        a = await ai.call_tool(
            ctx, orders, {"order_id": 5, "expand": "items"}, retry=Backoff(max_attempts=2, initial=0)
        )
        b = await ai.call_tool(ctx, echo, {"text": "hi"})
        try:
            await ai.call_tool(ctx, echo, {"text": "bad"})
        except ToolError as exc:
            return [a, b, str(exc)]

    a, b, err = await client.run(wf)
    assert a == {"path": "/flaky/5?expand=items"} and b == "got hi"
    assert "HTTP 400" in err
    history = await client.history((await client.list(workflow="http-tools"))[0].id)
    logged = history.step("use/tool.order").output
    assert logged.ok and len(logged.trail) == 1 and "503" in logged.trail[0]["error"]


class Fixed(Classifier):
    def __init__(self, label: str, confidence: float) -> None:
        self.labels = ["billing", "tech"]
        self.result = Classification(label=label, confidence=confidence, method="fixed")

    async def classify(self, text: str) -> Classification:
        return self.result


async def test_router_rules_classifier_threshold_and_default(client):
    child = podium.Workflow("tech-child")

    @child.step
    async def fix(input):
        return f"tech handled {input}"

    billing = ai.Agent(model=ScriptedModel(default="billing agent reply"), name="billing")

    def general(ctx, input):
        return f"general handled {input}"

    def router(label, confidence):
        return ai.Router(
            routes={"billing": billing, "tech": child, "general": general},
            rules=[ai.Rule(route="tech", match="outage")],
            classifier=Fixed(label, confidence),
            threshold=0.7,
            default="general",
        )

    wf = podium.Workflow("routing")

    @wf.step
    async def route(ctx: StepContext, input):
        result = await router(input["label"], input["confidence"]).run(ctx, input["text"])
        d = result.decision
        return [
            d.route,
            d.by,
            d.escalate,
            result.output if isinstance(result.output, str) else result.output.output,
        ]

    assert await client.run(wf, {"text": "invoice wrong", "label": "billing", "confidence": 0.9}) == [
        "billing",
        "classifier",
        False,
        "billing agent reply",
    ]
    assert await client.run(wf, {"text": "invoice?", "label": "billing", "confidence": 0.4}) == [
        "general",
        "default",
        True,
        "general handled invoice?",
    ]
    assert await client.run(wf, {"text": "big outage", "label": "billing", "confidence": 0.99}) == [
        "tech",
        "rule",
        False,
        "tech handled big outage",
    ]
    runs = await client.list(workflow="routing")
    decision = (await client.history(runs[-1].id)).step("route/route").output
    assert isinstance(decision, ai.RouteDecision)


async def test_llm_router_over_route_descriptions():
    model = ScriptedModel(default={"label": "tech", "confidence": 0.8})
    router = ai.Router(
        routes={
            "billing": ai.Agent(model=model, description="Invoices, refunds, payments"),
            "tech": ai.Agent(model=ScriptedModel(default="rebooted"), description="Outages and bugs"),
        },
        classifier=model,
    )
    d = await router.decide(None, "the site is down")
    assert (d.route, d.by, d.confidence) == ("tech", "classifier", 0.8)
    prompt = model.requests[0].messages[0].content
    assert "billing: Invoices, refunds, payments" in prompt and model.requests[0].output_schema is not None
    with pytest.raises(ValueError, match="not a route"):
        ai.Router(routes={"a": model}, default="b")


async def test_agent_with_an_http_tool(http_base):
    echo = HttpTool(
        "echo",
        f"{http_base}/echo",
        description="Echo a text",
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    )
    model = ScriptedModel(
        [
            (first_turn, ToolCall(id="h1", name="echo", arguments={"text": "ping"})),
            (None, "The service said: got ping"),
        ]
    )
    result = await ai.Agent(model=model, tools=[echo]).run(None, "ping the service")
    assert result.output == "The service said: got ping"
    assert result.tool_calls[0].value == "got ping"
    assert model.requests[0].tools[0].name == "echo"


async def test_one_answer_cannot_make_an_agent_call_tools_without_end():
    """Attack (review): ``max_iterations`` bounded the model calls, not the tool calls: one answer
    (a prompt injection in a retrieved page, say) asking for a thousand calls got a thousand calls
    of a real tool in one iteration. ``max_tool_calls`` (default 32) bounds them per run of the
    agent; the calls past it are not run, the model is told why, and the agent ends there."""
    ran: list[int] = []

    @tool
    def lookup(n: int) -> str:
        """Look a number up."""
        ran.append(n)
        return "ok"

    flood = [ToolCall(id=f"c{i}", name="lookup", arguments={"n": i}) for i in range(1000)]
    model = ScriptedModel(default=flood)
    r = await ai.Agent(model=model, tools=[lookup]).run(None, "go")
    assert r.stop_reason == "max_tool_calls" and len(ran) == 32, (r.stop_reason, len(ran))
    refused = [t for t in r.tool_calls if not t.ok]
    assert len(refused) == 1000 - 32 and "max_tool_calls" in (refused[0].error or "")
    r = await ai.Agent(model=model, tools=[lookup], max_tool_calls=3, max_iterations=2).run(None, "go")
    assert r.stop_reason == "max_tool_calls" and len(ran) == 32 + 3


async def test_a_policy_bounds_an_agents_tool_calls_below_its_own(tmp_path):
    """Left by the review above: the bound was the agent's own (chosen by whoever wrote the step).
    A workflow's or an agent's policy (``max_tool_calls``) now lowers it; the lowest holds."""
    from podium import Client, ConfigError, Policy, Workflow

    ran: list[int] = []

    @tool
    def lookup(n: int) -> str:
        """Look a number up."""
        ran.append(n)
        return "ok"

    model = ScriptedModel(default=[ToolCall(id=f"c{i}", name="lookup", arguments={"n": i}) for i in range(50)])
    wf = Workflow("flooded")

    @wf.step
    async def answer(ctx, input):
        r = await ai.Agent(model=model, tools=[lookup], name="helper", max_tool_calls=10, max_iterations=1).run(ctx, input)
        return r.stop_reason

    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("flooded", Policy(max_tool_calls=4))
        assert await c.run(wf, "go") == "max_tool_calls" and len(ran) == 4
        await c.set_policy("agent:helper", Policy(max_tool_calls=2))
        ran.clear()
        assert await c.run(wf, "go") == "max_tool_calls" and len(ran) == 2
        await c.set_policy("flooded", None)
        await c.set_policy("agent:helper", Policy(max_tool_calls=100))  # cannot raise the agent's own
        ran.clear()
        await c.run(wf, "go")
        assert len(ran) == 10
    with pytest.raises(ConfigError, match="max_tool_calls must be a whole number >= 0"):
        Policy(max_tool_calls=-1)
