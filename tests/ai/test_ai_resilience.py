"""Rate limits, retries honouring Retry-After, timeouts, circuit breakers and fallback chains.

A fake clock and sleep make the timing exact; models are scripted to fail as a provider would.
"""

from __future__ import annotations

import asyncio

import pytest

import podium
from podium import StepContext, ai
from podium.models import (
    AllModelsFailed,
    CircuitOpen,
    Gateway,
    Message,
    ModelNotAvailable,
    ProviderError,
    RateLimited,
    Request,
    register_provider,
)
from podium.models.testing import ScriptedModel
from podium.resilience import Backoff, BreakerPolicy, Limiter, RateLimit

REQ = Request(messages=(Message.user("hello"),), max_tokens=10)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def gateway(t: FakeTime, **kw) -> Gateway:
    kw.setdefault("retry", Backoff(max_attempts=3, initial=1.0, jitter=0.0))
    return Gateway(clock=t.clock, sleep=t.sleep, **kw)


async def test_requests_per_minute():
    t = FakeTime()
    limiter = Limiter(RateLimit(requests_per_minute=2), clock=t.clock, sleep=t.sleep)
    for _ in range(4):
        await limiter.acquire()
    assert t.slept == [30.0, 30.0]  # a bucket of 2, refilled at one request every 30 s


async def test_tokens_per_minute_and_settling():
    t = FakeTime()
    limiter = Limiter(RateLimit(tokens_per_minute=600), clock=t.clock, sleep=t.sleep)
    await limiter.acquire(500)
    limiter.settle(500, 600)  # the call used more than its estimate
    await limiter.acquire(300)
    assert t.slept == [30.0]  # 300 tokens at 10/s


async def test_concurrency_limit_through_the_gateway():
    running, peak = 0, 0

    async def slow(req):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return "done"

    gw = Gateway(limits={"scripted": RateLimit(concurrency=2)})
    model = gw.model(ScriptedModel(default=slow))
    await asyncio.gather(*(model.complete(REQ) for _ in range(6)))
    assert peak == 2


async def test_rate_limit_wait_is_in_the_trail():
    t = FakeTime()
    gw = gateway(t, limits={"scripted:scripted": RateLimit(requests_per_minute=1)})
    model = gw.model(ScriptedModel())
    await model.complete(REQ)
    r = await model.complete(REQ)
    assert r.trail == ({"model": "scripted:scripted", "rate_limit_wait": 60.0},)
    assert r.usage.latency == pytest.approx(60.0)


async def test_retry_honours_retry_after():
    t = FakeTime()
    scripted = ScriptedModel([(None, [RateLimited("slow down", retry_after=7.5), "ok"])])
    r = await gateway(t).model(scripted).complete(REQ)
    assert r.text == "ok" and t.slept == [7.5]
    assert r.trail[0]["retry_in"] == 7.5 and "RateLimited" in r.trail[0]["error"]


async def test_retry_backs_off_exponentially_and_stops_on_final_errors():
    t = FakeTime()
    err = ProviderError("503", status=503, retryable=True)
    scripted = ScriptedModel([(None, [err, err, "ok"])])
    assert (await gateway(t).model(scripted).complete(REQ)).text == "ok"
    assert t.slept == [1.0, 2.0]

    t2 = FakeTime()
    bad = ScriptedModel(default=ProviderError("400 bad request", status=400))
    with pytest.raises(ProviderError, match="400"):
        await gateway(t2).model(bad).complete(REQ)
    assert t2.slept == [] and len(bad.requests) == 1


async def test_a_retry_after_beyond_the_limit_is_not_waited_for():
    t = FakeTime()
    scripted = ScriptedModel(default=RateLimited("come back tomorrow", retry_after=86400))
    with pytest.raises(RateLimited):
        await gateway(t).model(scripted).complete(REQ)
    assert t.slept == []


async def test_timeout_is_a_retryable_provider_error():
    async def hang(req):
        await asyncio.sleep(10)

    gw = Gateway(timeout=0.05, retry=Backoff(max_attempts=2, initial=0))
    model = ScriptedModel(default=hang)
    with pytest.raises(ProviderError, match="did not answer within 0.05s") as err:
        await gw.model(model).complete(REQ)
    assert err.value.retryable and len(model.requests) == 2


async def test_circuit_breaker_opens_probes_and_closes():
    t = FakeTime()
    err = ProviderError("502", status=502, retryable=True)
    scripted = ScriptedModel([(None, [err, err, "probe ok"])])
    gw = gateway(t, retry=Backoff(max_attempts=1), breaker=BreakerPolicy(failures=2, reset_after=30))
    model = gw.model(scripted)
    for _ in range(2):
        with pytest.raises(ProviderError):
            await model.complete(REQ)
    breaker = gw.breaker("scripted:scripted")
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen, match="open"):
        await model.complete(REQ)
    assert len(scripted.requests) == 2  # failed fast: the provider was not called
    t.now += 31
    r = await model.complete(REQ)
    assert r.text == "probe ok" and breaker.state == "closed"
    assert {"model": "scripted:scripted", "breaker": "half_open", "note": "probe call"} in r.trail
    assert {"model": "scripted:scripted", "breaker": "closed", "note": "probe succeeded"} in r.trail
    assert [s for _, s, _ in breaker.transitions] == ["open", "half_open", "closed"]


async def test_failed_probe_opens_the_circuit_again():
    t = FakeTime()
    err = ProviderError("502", status=502, retryable=True)
    gw = gateway(t, retry=Backoff(max_attempts=1), breaker=BreakerPolicy(failures=1, reset_after=5))
    model = gw.model(ScriptedModel(default=err))
    with pytest.raises(ProviderError) as first:
        await model.complete(REQ)
    assert first.value.trail[-1]["breaker"] == "open"
    t.now += 6
    with pytest.raises(ProviderError):
        await model.complete(REQ)  # the probe
    assert gw.breaker("scripted:scripted").state == "open"


async def test_fallback_chain_and_its_trail_in_the_run_log(client):
    register_provider(
        "primary",
        lambda name, **kw: ScriptedModel(
            name=name, provider="primary", default=ProviderError("503 overloaded", status=503, retryable=True)
        ),
    )
    register_provider(
        "backup", lambda name, **kw: ScriptedModel(name=name, provider="backup", default="from backup")
    )
    gw = Gateway(retry=Backoff(max_attempts=2, initial=0), breaker=BreakerPolicy(failures=2, reset_after=60))
    wf = podium.Workflow("fallbacks")

    @wf.step
    async def answer(ctx: StepContext):
        first = await ai.llm(ctx, "q1", model="primary:big|backup:small", gateway=gw)
        second = await ai.llm(ctx, "q2", model="primary:big|backup:small", gateway=gw)
        return [first.text, first.model, second.trail]

    text, model, second_trail = await client.run(wf)
    assert text == "from backup" and model == "backup:small"
    assert second_trail[0]["error"].startswith("CircuitOpen")  # the breaker opened on the first call
    history = await client.history((await client.list(workflow="fallbacks"))[0].id)
    trail = history.step("answer/llm").output.trail
    assert [e.get("breaker") for e in trail if "error" in e] == [None, "open"]
    assert {"model": "primary:big", "fallback": "backup:small"} in trail


async def test_fallback_to_local_when_a_key_is_missing():
    register_provider(
        "offline", lambda name, **kw: ScriptedModel(name=name, provider="offline", default="local answer")
    )
    gw = Gateway(fallbacks={"anthropic:claude-3-5-haiku-latest": ["offline:tiny"]})
    r = await gw.model("anthropic:claude-3-5-haiku-latest").complete(REQ)
    assert r.text == "local answer"
    assert "ModelNotAvailable" in r.trail[0]["error"] and "ANTHROPIC_API_KEY" in r.trail[0]["error"]


async def test_all_models_failed():
    gw = Gateway(retry=Backoff(max_attempts=1))
    chain = gw.model(
        [
            ScriptedModel(name="a", default=ProviderError("down", retryable=True)),
            ScriptedModel(name="b", default=ModelNotAvailable("no file")),
        ][0]
    )
    with pytest.raises(ProviderError):
        await chain.complete(REQ)
    from podium.models import FallbackModel

    both = FallbackModel(
        [
            gw.guard(ScriptedModel(name="a", default=ProviderError("down", retryable=True))),
            gw.guard(ScriptedModel(name="b", default=ModelNotAvailable("no file"))),
        ]
    )
    with pytest.raises(
        AllModelsFailed, match="scripted:a: ProviderError: down; scripted:b: ModelNotAvailable: no file"
    ) as err:
        await both.complete(REQ)
    assert err.value.retryable  # one of them may come back


async def test_a_final_failure_logs_its_trail(client):
    gw = Gateway(retry=Backoff(max_attempts=2, initial=0), breaker=BreakerPolicy(failures=2, reset_after=60))
    model = ScriptedModel(default=ProviderError("502 bad gateway", status=502, retryable=True))
    wf = podium.Workflow("failing-model")

    @wf.step
    async def ask(ctx: StepContext):
        return (await ai.llm(ctx, "hi", model=gw.model(model))).text

    run_id = (await client.start(wf)).id
    with pytest.raises(podium.RunFailed, match="502"):
        await client.result(run_id)
    error = (await client.history(run_id)).step("ask/llm").error
    assert "podium gateway trail" in error["traceback"] and '"breaker": "open"' in error["traceback"]
