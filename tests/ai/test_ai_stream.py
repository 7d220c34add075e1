"""Token streaming: providers stream text, a workflow's model call publishes it live on the run's token
topic, and the durable record stays the whole answer, logged once and never streamed again on replay.

The engine-level semantics are tested with the ScriptedModel (it streams word by word) on every store;
the real local model and the real llama.cpp server stream in the tests at the end.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from ai_helpers import LLAMA_SKIP

import podium
from podium import Policy, RetryPolicy, StepContext, ai
from podium.models import (
    Gateway,
    Message,
    Model,
    ProviderError,
    Request,
    Response,
    ToolSpec,
    Usage,
    get_model,
)
from podium.models.anthropic import AnthropicModel
from podium.models.testing import ScriptedModel

needs_llama = pytest.mark.skipif(bool(LLAMA_SKIP), reason=LLAMA_SKIP or "")


class Collect:
    """A TextSink that keeps what it is sent."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.restarts = 0

    async def text(self, delta: str) -> None:
        self.pieces.append(delta)

    async def restart(self) -> None:
        self.restarts += 1
        self.pieces.clear()


async def listen(client: podium.Client) -> list[dict[str, Any]]:
    """Every token event this client's store delivers, in order."""
    seen: list[dict[str, Any]] = []
    await client.on(ai.token_topic("*"), lambda _topic, payload: seen.append(payload))
    return seen


def text_of(events: list[dict[str, Any]], stream: str) -> str:
    return "".join(e["text"] for e in events if e["stream"] == stream and e["kind"] == "text")


async def test_a_streamed_call_is_published_live_and_logged_once(client):
    model = ScriptedModel([("sea", "The sea is wide and the waves are high today.")])
    wf = podium.Workflow("stream-once")
    attempts: list[int] = []

    @wf.step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
    async def write(ctx: StepContext, input):
        answer = await ai.llm(ctx, "Write about the sea.", model=Gateway().model(model))
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("the step fails after its model call")
        return answer.text

    events = await listen(client)
    run_id = (await client.start(wf, {})).id
    assert await client.result(run_id) == "The sea is wide and the waves are high today."
    assert attempts == [1, 2] and len(model.requests) == 1  # the retry replayed the logged answer

    starts = [e for e in events if e["kind"] == "start"]
    assert len(starts) == 1, "a replayed call must not stream again"
    s = starts[0]
    assert (s["run_id"], s["step"], s["call"], s["attempt"]) == (run_id, "write", "llm", 1)
    assert text_of(events, s["stream"]) == "The sea is wide and the waves are high today."
    assert [e["kind"] for e in events if e["stream"] == s["stream"]][-1] == "end"
    assert events[-1]["finish"] == "stop"
    # The durable record is the whole answer, logged once.
    history = await client.history(run_id)
    logged = [e for e in history.events if e.step == "write/llm" and e.type == "step_completed"]
    assert len(logged) == 1
    assert history.step("write/llm").output.text == "The sea is wide and the waves are high today."


async def test_structured_and_tool_calls_do_not_stream_unless_asked(client):
    model = ScriptedModel([("json", {"intent": "billing"}), (None, "plain words here")])
    wf = podium.Workflow("stream-kinds")

    @wf.step
    async def calls(ctx: StepContext, input):
        await ai.llm(ctx, "json please", model=model, output={"type": "object"})
        await ai.llm(ctx, "and words", model=model, stream=False)
        await ai.llm(ctx, "forced json", model=model, output={"type": "object"}, stream=True)
        return "ok"

    events = await listen(client)
    await client.run(wf, {})
    assert [e["call"] for e in events if e["kind"] == "start"] == ["llm-3"]


async def test_a_retry_after_streamed_text_tells_the_consumer_to_start_again():
    class Flaky(Model):
        provider, name = "flaky", "m"

        def __init__(self) -> None:
            self.calls = 0

        async def complete(self, request: Request) -> Response:
            raise AssertionError("streamed calls use stream()")

        async def stream(self, request: Request, sink: Any) -> Response:
            self.calls += 1
            await sink.text("half an ans")
            if self.calls == 1:
                raise ProviderError("the connection dropped mid-stream", provider="flaky", retryable=True)
            await sink.text("wer")
            return Response(text="half an answer", model=self.spec, usage=Usage(output_tokens=3))

    from podium.resilience import Backoff

    gw = Gateway(retry=Backoff(max_attempts=3, initial=0, jitter=0))
    sink = Collect()
    answer = await ai.llm(None, "hi", model=gw.model(Flaky()), on_text=sink)
    assert answer.text == "half an answer" and sink.restarts == 1 and "".join(sink.pieces) == "half an answer"
    assert any(t.get("retryable") for t in answer.trail)


async def test_a_fallback_restarts_the_stream_on_the_next_model():
    class Broken(Model):
        provider, name = "broken", "m"

        async def complete(self, request: Request) -> Response:
            raise AssertionError

        async def stream(self, request: Request, sink: Any) -> Response:
            await sink.text("garbage")
            raise ProviderError("broke", provider="broken", retryable=False)

    from podium.models import FallbackModel

    chain = FallbackModel([Broken(), ScriptedModel(default="fine answer")])
    sink = Collect()
    answer = await chain.stream(Request(messages=(Message.user("x"),)), sink)
    assert answer.text == "fine answer" and sink.restarts == 1 and "".join(sink.pieces) == "fine answer"


async def test_a_policy_that_checks_answers_keeps_them_from_streaming(client):
    model = ScriptedModel(default="Call me at 555-0100, mail ann@example.com")
    wf = podium.Workflow("stream-redacted")

    @wf.step
    async def talk(ctx: StepContext, input):
        return (await ai.llm(ctx, "hello", model=model, stream=True)).text

    await client.set_policy("stream-redacted", Policy(redact=["outputs"]))
    events = await listen(client)
    out = await client.run(wf, {})
    assert "ann@example.com" not in out
    assert events == [], "unredacted text must not reach consumers before the policy saw it"


async def test_on_text_outside_a_workflow_gets_the_pieces():
    pieces: list[str] = []
    answer = await ai.llm(None, "x", model=ScriptedModel(default="one two three"), on_text=pieces.append)
    assert pieces == ["one ", "two ", "three"] and answer.text == "one two three"


async def test_anthropic_stream_is_gathered_into_the_same_response():
    """The Messages API's event stream (as the API documents it), replayed by a transport."""
    events = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 21}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    body = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    model = AnthropicModel("claude-x", api_key="k", transport=httpx.MockTransport(handler))
    tool = ToolSpec(name="weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    sink = Collect()
    r = await model.stream(Request(messages=(Message.user("weather?"),), tools=(tool,)), sink)
    assert sent[0]["stream"] is True
    assert sink.pieces == ["Let me ", "check."] and r.text == "Let me check."
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("weather", {"city": "Paris"})]
    assert r.finish_reason == "tool_calls" and (r.usage.input_tokens, r.usage.output_tokens) == (12, 21)


# -- the real local model and the real llama.cpp server ------------------------------------------------


@needs_llama
async def test_the_local_model_streams_in_a_workflow(tmp_path):
    wf = podium.Workflow("stream-local")

    @wf.step
    async def write(ctx: StepContext, input):
        return (await ai.llm(ctx, "Write two sentences about the sea.", model="local:smollm2-135m",
                             max_tokens=48, temperature=0)).text  # fmt: skip

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        events = await listen(client)
        run_id = (await client.start(wf, {})).id
        text = await client.result(run_id, timeout=300)
        history = await client.history(run_id)
    stream = next(e["stream"] for e in events if e["kind"] == "start")
    assert len(text) > 40 and text_of(events, stream) == text
    assert sum(1 for e in events if e["kind"] == "text") >= 2, "the text came in more than one piece"
    usage = history.step("write/llm").output.usage
    assert usage.output_tokens > 10 and usage.input_tokens > 10


@needs_llama
async def test_the_local_model_stream_equals_its_whole_answer():
    model = get_model("local:smollm2-135m")
    request = Request(messages=(Message.user("Name three colours."),), max_tokens=24, temperature=0)
    whole = await model.complete(request)
    sink = Collect()
    streamed = await model.stream(request, sink)
    # (The two texts may differ: the second call reuses the first one's cached prompt, and a 135M
    # model's close logits can tip another way. The counting must agree.)
    assert streamed.text == "".join(sink.pieces) and len(sink.pieces) > 3
    assert streamed.usage.input_tokens == whole.usage.input_tokens
    assert streamed.usage.output_tokens == len(model.llama.tokenize(streamed.text.encode(), False))


async def test_openai_compatible_stream_against_the_llama_cpp_server(llama_server):
    model = get_model("llamacpp:smollm2", base_url=llama_server, structured="json_object")
    request = Request(messages=(Message.user("Name three colours."),), max_tokens=24, temperature=0)
    sink = Collect()
    streamed = await model.stream(request, sink)
    assert streamed.text == "".join(sink.pieces) and len(sink.pieces) > 3
    # llama.cpp's server sends no token counts in a stream: estimated, and said so in the trail
    assert streamed.usage.output_tokens == len(sink.pieces)
    assert any("estimated" in str(t.get("note", "")) for t in streamed.trail)
    weather = ToolSpec(name="weather", parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]})  # fmt: skip
    forced = Request(messages=(Message.user("Weather in Paris?"),), tools=(weather,), tool_choice="weather",
                     max_tokens=40, temperature=0)  # fmt: skip
    called = await model.stream(forced, Collect())
    assert [c.name for c in called.tool_calls] == ["weather"] and called.finish_reason == "tool_calls"
    assert called.tool_calls[0].arguments.get("city")


async def test_a_cancelled_local_stream_stops_generating():
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    model = get_model("local:smollm2-135m")
    sink = Collect()
    task = asyncio.create_task(
        model.stream(Request(messages=(Message.user("Count to one thousand."),), max_tokens=400), sink)
    )
    deadline = asyncio.get_running_loop().time() + 120
    while not sink.pieces:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    n = len(sink.pieces)
    await asyncio.sleep(0.3)
    assert len(sink.pieces) == n and n < 400  # nothing more after the cancellation returned
    # and the model is free again (its lock released)
    again = await model.complete(Request(messages=(Message.user("Hi"),), max_tokens=4))
    assert again.usage.output_tokens > 0
