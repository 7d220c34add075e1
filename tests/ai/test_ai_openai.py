"""The OpenAI-compatible provider against a real llama.cpp OpenAI-compatible server
(``python -m llama_cpp.server``) running SmolLM2-135M on 127.0.0.1: no mock."""

from __future__ import annotations

import pytest
from ai_helpers import free_port
from pydantic import BaseModel

import podium
from podium import StepContext, ai
from podium.models import Gateway, Message, ProviderError, Request, ToolSpec, get_model
from podium.resilience import Backoff


class Sentiment(BaseModel):
    sentiment: str
    score: float


LOOKUP = ToolSpec(
    name="get_order",
    description="Look up an order by its number.",
    parameters={"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]},
)


def server_model(url: str):
    return get_model("llamacpp:smollm2", base_url=url)


async def test_chat_completion(llama_server):
    model = server_model(llama_server)
    r = await model.complete(
        Request(messages=(Message.user("Say hello in one word."),), max_tokens=8, temperature=0.0)
    )
    assert r.text.strip() and r.model == "llamacpp:smollm2"
    assert r.usage.input_tokens > 5 and 0 < r.usage.output_tokens <= 8
    assert r.finish_reason in ("stop", "length")
    await model.aclose()


async def test_structured_output_json_object_with_schema(llama_server):
    r = await ai.llm(
        None,
        "The product broke after one day. Give the sentiment (positive or negative) and a score 0..1.",
        model=server_model(llama_server),
        output=Sentiment,
        max_tokens=40,
        temperature=0.0,
    )
    assert isinstance(r.output, Sentiment)


async def test_forced_tool_call(llama_server):
    model = server_model(llama_server)
    r = await model.complete(
        Request(
            messages=(Message.user("Where is my order 42?"),),
            tools=(LOOKUP,),
            tool_choice="get_order",
            max_tokens=30,
            temperature=0.0,
        )
    )
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0].name == "get_order" and isinstance(r.tool_calls[0].arguments.get("order_id"), int)


async def test_durable_call_in_a_workflow_records_usage(llama_server, tmp_path):
    gw = Gateway()
    wf = podium.Workflow("openai-compatible")

    @wf.step
    async def greet(ctx: StepContext):
        r = await ai.llm(ctx, "Say hi.", model=gw.model(server_model(llama_server)), max_tokens=6)
        return r.text

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        run_id = (await client.start(wf)).id
        assert await client.result(run_id)
        report = await ai.usage(client, run_id=run_id)
    assert report.total.output_tokens > 0 and report.total.cost == 0.0  # llamacpp is priced as free


async def test_http_errors_are_mapped(llama_server):
    wrong = get_model("llamacpp:smollm2", base_url=llama_server.replace("/v1", "/nope"))
    with pytest.raises(ProviderError) as err:
        await wrong.complete(Request(messages=(Message.user("x"),), max_tokens=2))
    assert err.value.status == 404 and not err.value.retryable

    down = get_model("llamacpp:smollm2", base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderError, match="cannot reach") as err2:
        await (
            Gateway(retry=Backoff(max_attempts=2, initial=0))
            .model(down)
            .complete(Request(messages=(Message.user("x"),)))
        )
    assert err2.value.retryable and len(err2.value.trail) == 2


def test_openai_request_body_and_response_shape():
    """What goes to api.openai.com for structured output and tools, and how its answer is read
    (the shapes of the Chat Completions API; llama.cpp's server only takes json_object)."""
    import httpx

    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            return httpx.Response(
                429, headers={"retry-after-ms": "1500"}, json={"error": {"message": "Rate limit reached"}}
            )
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_abc",
                                    "type": "function",
                                    "function": {"name": "get_order", "arguments": '{"order_id": 42}'},
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 57, "completion_tokens": 17, "total_tokens": 74},
            },
        )

    import asyncio

    slept = []

    async def sleep(s):
        slept.append(s)

    model = get_model("openai:gpt-4o-mini", api_key="sk-test", transport=httpx.MockTransport(handler))
    request = Request(
        messages=(Message.user("Where is order 42?"),),
        tools=(LOOKUP,),
        tool_choice="get_order",
        output_schema={"type": "object", "properties": {"x": {"type": "string"}}},
        output_name="Answer",
        max_tokens=50,
    )
    r = asyncio.run(Gateway(sleep=sleep).model(model).complete(request))
    body = __import__("json").loads(sent[0].content)
    assert str(sent[0].url) == "https://api.openai.com/v1/chat/completions"
    assert sent[0].headers["authorization"] == "Bearer sk-test"
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_order"}}
    assert (
        body["response_format"]["type"] == "json_schema"
        and body["response_format"]["json_schema"]["name"] == "Answer"
    )
    assert body["tools"][0]["function"]["parameters"] == LOOKUP.parameters
    assert slept == [1.5]  # retry-after-ms honoured
    assert r.tool_calls[0].arguments == {"order_id": 42} and r.finish_reason == "tool_calls"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (57, 17)
    assert r.usage.cost == pytest.approx((57 * 0.15 + 17 * 0.60) / 1e6)


def test_openai_structured_output_is_strict_and_optional_fields_come_back_absent():
    """Strict mode: every property required and nullable when optional, no extra properties; the
    model's null for an optional field is dropped so the caller's schema sees it absent."""
    import json

    import httpx

    from podium.models._strict import drop_optional_nulls, to_strict

    class Address(BaseModel):
        city: str
        zip: str | None = None

    class Contact(BaseModel):
        name: str
        age: int = 0
        address: Address
        tags: list[str] = []

    schema = Contact.model_json_schema()
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        answer = {"name": "Ada", "age": None, "address": {"city": "Paris", "zip": None}, "tags": None}
        return httpx.Response(200, json={"choices": [{"message": {"content": json.dumps(answer)}, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 5}})  # fmt: skip

    model = get_model("openai:gpt-4o-mini", api_key="sk-test", transport=httpx.MockTransport(handler))
    request = Request(messages=(Message.user("who?"),), output_schema=schema, output_name="Contact", max_tokens=50)
    r = __import__("asyncio").run(model.complete(request))
    spec = sent[0]["response_format"]["json_schema"]
    assert spec["strict"] is True
    strict = spec["schema"]
    assert strict["additionalProperties"] is False and set(strict["required"]) == {"name", "age", "address", "tags"}
    assert strict["properties"]["age"]["anyOf"][1] == {"type": "null"}
    address = strict["$defs"]["Address"]
    assert address["additionalProperties"] is False and set(address["required"]) == {"city", "zip"}
    assert Contact.model_validate_json(r.text) == Contact(name="Ada", address=Address(city="Paris", zip=None))
    assert json.loads(r.text)["address"] == {"city": "Paris", "zip": None}  # zip is nullable in the caller's schema: kept
    # a free-form mapping has no strict form: sent as it is, strict off
    _loose, ok = to_strict({"type": "object", "properties": {"meta": {"type": "object"}}})
    assert ok is False
    assert drop_optional_nulls("not json", schema) == "not json"
    compatible = get_model("vllm:qwen", base_url="http://127.0.0.1:9/v1")  # compatible servers: no strict field
    body = compatible.body(request)
    assert "strict" not in body["response_format"]["json_schema"]
