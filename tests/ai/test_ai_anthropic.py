"""The Anthropic provider against the Messages API wire format.

These tests replay request/response fixtures (tests/ai/data/anthropic_messages.json) through an
httpx transport: each request Podium sends is compared field for field with the recorded request
body and headers, and the recorded API response (or error envelope) is returned. The fixtures follow
the real API exchange exactly; they were written in that format rather than captured live, because
the tests (and this machine) have no network access.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from podium import ai
from podium.models import (
    Gateway,
    Message,
    ModelNotAvailable,
    ProviderError,
    RateLimited,
    Request,
    ToolSpec,
    get_model,
)
from podium.resilience import Backoff
from podium.tools import tool

FIXTURES = json.loads((Path(__file__).parent / "data" / "anthropic_messages.json").read_text())


def replay(name: str) -> tuple[httpx.MockTransport, list[dict]]:
    exchanges = list(FIXTURES[name])
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert exchanges, "more requests than recorded"
        ex = exchanges.pop(0)
        body = json.loads(request.content)
        sent.append(body)
        assert str(request.url) == "https://api.anthropic.com/v1/messages"
        for key, value in ex["request"]["headers"].items():
            assert request.headers[key] == value, key
        if ex["request"]["body"] is not None:
            assert body == ex["request"]["body"]
        r = ex["response"]
        return httpx.Response(r["status"], headers=r["headers"], json=r["body"])

    return httpx.MockTransport(handler), sent


def model(transport):
    return get_model("anthropic:claude-3-5-haiku-latest", api_key="sk-ant-test", transport=transport)


class Ticket(BaseModel):
    intent: str
    urgent: bool


async def test_text_with_system_prompt():
    transport, _ = replay("text")
    r = await ai.llm(
        None,
        "Summarise: the parcel arrived late and damaged.",
        system="You are a support assistant. Be brief.",
        model=model(transport),
        max_tokens=256,
        temperature=0.0,
    )
    assert r.text == "Your parcel was delivered late and arrived damaged."
    assert r.finish_reason == "stop" and r.model == "anthropic:claude-3-5-haiku-latest"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (31, 12)
    assert r.usage.cost == pytest.approx((31 * 0.80 + 12 * 4.00) / 1e6)  # from the default price table


async def test_tool_use_round_trip_in_an_agent():
    transport, sent = replay("tool_use")

    @tool
    def get_order(order_id: int) -> dict:
        """Look up an order by its number."""
        return {"order_id": order_id, "status": "shipped"}

    agent = ai.Agent(
        model=model(transport),
        instructions="You help customers with orders.",
        tools=[get_order],
        max_tokens_per_call=None,
    )
    result = await agent.run(None, "Where is order 42?")
    assert result.output == "Order 42 has shipped." and result.stop_reason == "done"
    assert result.usage.input_tokens == 402 + 489 and result.iterations == 2
    assert len(sent) == 2


async def test_structured_output_by_forced_tool_use():
    transport, _ = replay("structured")
    r = await ai.llm(
        None,
        "URGENT: I was charged twice for my order.",
        model=model(transport),
        output=Ticket,
        max_tokens=200,
    )
    assert r.output == Ticket(intent="billing", urgent=True)
    assert json.loads(r.text) == {"intent": "billing", "urgent": True}


async def test_rate_limit_and_overload_are_retried_honouring_retry_after():
    transport, _ = replay("rate_limited")
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    gw = Gateway(retry=Backoff(max_attempts=3, initial=0.5, jitter=0), sleep=sleep)
    r = await gw.model(model(transport)).complete(Request(messages=(Message.user("hi"),)))
    assert r.text == "Hello!"
    assert slept == [3.0, 1.0]  # Retry-After of the 429, then backoff after the 529
    assert [e.get("status") for e in r.trail] == [429, 529]


async def test_errors_map_to_provider_errors():
    transport, _ = replay("invalid")
    with pytest.raises(ProviderError, match="invalid|maximum allowed") as err:
        await model(transport).complete(Request(messages=(Message.user("x"),), max_tokens=100000))
    assert err.value.status == 400 and not err.value.retryable and not isinstance(err.value, RateLimited)
    with pytest.raises(ModelNotAvailable, match="ANTHROPIC_API_KEY"):
        await get_model("anthropic:claude-3-5-haiku-latest").complete(Request(messages=(Message.user("x"),)))


def test_request_body_merges_parallel_tool_results():
    m = get_model("anthropic:claude-3-5-haiku-latest", api_key="k")
    from podium.models import ToolCall

    calls = (ToolCall(id="a", name="f", arguments={}), ToolCall(id="b", name="f", arguments={}))
    body = m.body(
        Request(
            messages=(
                Message.user("go"),
                Message.assistant("", calls),
                Message.tool("1", tool_call_id="a", name="f"),
                Message.tool("2", tool_call_id="b", name="f"),
            ),
            tools=(ToolSpec(name="f"),),
            tool_choice="required",
            stop=("END",),
        )
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in body["messages"][2]["content"]] == ["a", "b"]
    assert body["tool_choice"] == {"type": "any"} and body["stop_sequences"] == ["END"]
