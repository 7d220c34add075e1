"""The :class:`Gateway`: every model call goes through rate limits, a circuit breaker, retries with
backoff, a timeout and a fallback chain, and comes back with its latency and cost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..resilience import (
    Backoff,
    BreakerPolicy,
    CircuitBreaker,
    Clock,
    Limiter,
    RateLimit,
    Sleep,
    is_retryable,
    retry_call,
)
from ._base import Model, Request, Response, TextSink
from ._errors import AllModelsFailed, CircuitOpen, ModelError, ProviderError
from ._prices import Price, configured_prices, find_price


def estimate_tokens(request: Request) -> int:
    """A cheap upper-side guess of a call's tokens (4 characters a token), for the token budget."""
    chars = sum(len(m.content) + 16 for m in request.messages)
    chars += sum(len(t.description) + len(str(t.parameters)) for t in request.tools)
    return chars // 4 + (request.max_tokens or 256)


def _failure(spec: str, exc: BaseException, attempt: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": spec, "error": f"{type(exc).__name__}: {exc}"[:500]}
    if attempt is not None:
        entry["attempt"] = attempt
    status = getattr(exc, "status", None)
    if status is not None:
        entry["status"] = status
    entry["retryable"] = is_retryable(exc)
    return entry


class _Attempts:
    """A sink passed through retries and fallbacks: an attempt after one that sent text first tells
    the consumer to forget that text (:meth:`TextSink.restart`)."""

    def __init__(self, sink: TextSink) -> None:
        self.sink = sink
        self.sent = False

    async def next_attempt(self) -> None:
        if self.sent:
            self.sent = False
            await self.sink.restart()

    async def text(self, delta: str) -> None:
        if delta:
            self.sent = True
            await self.sink.text(delta)

    async def restart(self) -> None:
        self.sent = False
        await self.sink.restart()


class GuardedModel(Model):
    """A model behind a limiter, a breaker, retries and a timeout; fills in latency and cost."""

    def __init__(self, model: Model, gateway: Gateway) -> None:
        self.inner = model
        self.gateway = gateway
        self.provider = model.provider
        self.name = model.name
        self.native_structured_output = model.native_structured_output
        self.steer_agents = model.steer_agents
        self.breaker = gateway.breaker(model.spec)
        self.limiter = gateway.limiter(model.spec)

    async def complete(self, request: Request) -> Response:
        return await self._guarded(request, None)

    async def stream(self, request: Request, sink: TextSink) -> Response:
        return await self._guarded(request, _Attempts(sink))

    async def _guarded(self, request: Request, sink: _Attempts | None) -> Response:
        gw = self.gateway
        spec = self.spec
        trail: list[dict[str, Any]] = []
        t0 = gw.clock()
        estimate = estimate_tokens(request)

        async def once() -> Response:
            wait = self.breaker.allow()
            if wait is not None:
                raise CircuitOpen(
                    f"the circuit breaker of {spec} is open ({self.breaker.transitions[-1][2]}); "
                    f"next probe in {wait:.1f}s",
                    key=spec,
                    retry_after=wait,
                )
            if self.breaker.state == "half_open":
                trail.append({"model": spec, "breaker": "half_open", "note": "probe call"})
            if sink is not None:
                await sink.next_attempt()
            if self.limiter is None:
                return await self._call(request, sink)
            async with self.limiter.slot(estimate) as waited:
                if waited:
                    trail.append({"model": spec, "rate_limit_wait": round(waited, 3)})
                resp = await self._call(request, sink)
            self.limiter.settle(estimate, resp.usage.total_tokens)
            return resp

        def failed(exc: BaseException, attempt: int, delay: float | None) -> None:
            entry = _failure(spec, exc, attempt)
            if delay is not None:
                entry["retry_in"] = round(delay, 3)
            if not isinstance(exc, CircuitOpen) and is_retryable(exc):
                state = self.breaker.failure(_reason(spec, exc))
                if state:
                    entry["breaker"] = state
            trail.append(entry)

        try:
            resp = await retry_call(
                once,
                gw.retry,
                sleep=gw.sleep,
                on_failure=failed,
                retry_if=lambda e: is_retryable(e) and not isinstance(e, CircuitOpen),
            )
        except Exception as exc:
            exc.trail = trail  # type: ignore[attr-defined]
            # The note is part of the logged traceback: the run log shows what was tried.
            exc.add_note(f"podium gateway trail: {json.dumps(trail, default=str)}")
            raise
        if self.breaker.success() == "closed":
            trail.append({"model": spec, "breaker": "closed", "note": "probe succeeded"})
        usage = resp.usage
        cost = usage.cost if usage.cost is not None else gw.cost(spec, usage)
        return resp.replace(
            model=resp.model or spec,
            usage=type(usage)(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                latency=gw.clock() - t0,
                cost=cost,
                calls=usage.calls,
                cached_tokens=usage.cached_tokens,
            ),
            trail=(*trail, *resp.trail),
        )

    async def _call(self, request: Request, sink: TextSink | None) -> Response:
        timeout = self.gateway.timeout
        call = self.inner.complete(request) if sink is None else self.inner.stream(request, sink)
        if timeout is None:
            return await call
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError:
            raise ProviderError(
                f"{self.spec} did not answer within {timeout}s (Gateway(timeout=...))",
                provider=self.provider,
                retryable=True,
            ) from None

    async def aclose(self) -> None:
        await self.inner.aclose()


class FallbackModel(Model):
    """Tries each model in turn until one answers: ``primary, secondary, local``."""

    def __init__(self, models: Sequence[Model]) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)
        self.provider = self.models[0].provider
        self.name = self.models[0].name
        self.native_structured_output = all(m.native_structured_output for m in self.models)
        self.steer_agents = any(m.steer_agents for m in self.models)

    @property
    def spec(self) -> str:
        return "|".join(m.spec for m in self.models)

    async def complete(self, request: Request) -> Response:
        return await self._chain(request, None)

    async def stream(self, request: Request, sink: TextSink) -> Response:
        return await self._chain(request, _Attempts(sink))

    async def _chain(self, request: Request, sink: _Attempts | None) -> Response:
        trail: list[dict[str, Any]] = []
        for i, model in enumerate(self.models):
            try:
                if sink is None:
                    resp = await model.complete(request)
                else:
                    await sink.next_attempt()
                    resp = await model.stream(request, sink)
            except (ModelError, OSError, TimeoutError) as exc:
                trail.extend(getattr(exc, "trail", ()) or [_failure(model.spec, exc)])
                if i + 1 < len(self.models):
                    trail.append({"model": model.spec, "fallback": self.models[i + 1].spec})
                continue
            return resp.replace(trail=(*trail, *resp.trail))
        summary = "; ".join(f"{t['model']}: {t['error']}" for t in trail if "error" in t)
        raise AllModelsFailed(f"every model of {self.spec} failed: {summary}", attempts=trail)

    async def aclose(self) -> None:
        for m in self.models:
            await m.aclose()


class Gateway:
    """Where model calls get their resilience and accounting. Explicit and shareable.

    ``gateway.model("openai:gpt-4o-mini")`` returns a :class:`Model` that every workflow can use;
    ``"openai:gpt-4o-mini|local:smollm2-135m"`` (or ``fallbacks=``) makes a fallback chain.

    :param limits: :class:`~podium.resilience.RateLimit` per provider (``"openai"``) or per model
        (``"openai:gpt-4o"``); a model's own entry wins. Models of a provider share its budget.
    :param breaker: circuit breaker policy, one breaker per ``provider:model``; None disables.
    :param retry: retries of one call (the server's Retry-After is honoured).
    :param timeout: seconds one attempt may take.
    :param prices: :class:`Price` per model or provider, merged over the defaults.
    :param fallbacks: for a model, the models to try when it fails, in order.
    :param options: keyword options per provider or model for :func:`get_model` (``base_url``...).
    """

    def __init__(
        self,
        *,
        limits: Mapping[str, RateLimit] | None = None,
        breaker: BreakerPolicy | None = BreakerPolicy(),
        retry: Backoff = Backoff(),
        timeout: float | None = 120.0,
        prices: Mapping[str, Price] | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = dict(limits or {})
        self.breaker_policy = breaker
        self.retry = retry
        self.timeout = timeout
        self.prices = {**configured_prices(), **(prices or {})}
        self.fallbacks = {k: list(v) for k, v in (fallbacks or {}).items()}
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self.clock = clock
        self.sleep = sleep
        self._limiters: dict[str, Limiter] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._models: dict[str, Model] = {}

    # -- parts ------------------------------------------------------------------------------------

    def limiter(self, spec: str) -> Limiter | None:
        """The limiter of a model: its own entry in ``limits``, else its provider's (shared), else None."""
        key = spec if spec in self.limits else spec.partition(":")[0]
        if key not in self.limits:
            return None
        if key not in self._limiters:
            self._limiters[key] = Limiter(self.limits[key], clock=self.clock, sleep=self.sleep)
        return self._limiters[key]

    def breaker(self, spec: str) -> CircuitBreaker:
        if spec not in self._breakers:
            policy = self.breaker_policy or BreakerPolicy(failures=1 << 30)
            self._breakers[spec] = CircuitBreaker(spec, policy, clock=self.clock)
        return self._breakers[spec]

    def price(self, spec: str) -> Price | None:
        return find_price(spec, self.prices)

    def cost(self, spec: str, usage: Any) -> float | None:
        price = self.price(spec)
        return None if price is None else round(price.cost(usage), 8)

    # -- models -----------------------------------------------------------------------------------

    def guard(self, model: Model) -> Model:
        """``model`` behind this gateway's limits, breaker, retries and timeout."""
        if isinstance(model, GuardedModel | FallbackModel):
            return model
        return GuardedModel(model, self)

    def model(self, spec: str | Sequence[str] | Model | None = None) -> Model:
        """A ready model for ``spec`` (default: :func:`default_model_spec`), with its fallbacks."""
        from ._errors import ModelNotAvailable
        from ._factory import default_model_spec, get_model, not_available_from_default

        if isinstance(spec, Model):
            return self.guard(spec)
        default = spec is None
        if spec is None:
            spec = default_model_spec()
        chain = spec.split("|") if isinstance(spec, str) else list(spec)
        chain = [s.strip() for s in chain if s.strip()]
        if len(chain) == 1:
            chain += self.fallbacks.get(chain[0], [])
        key = "|".join(chain)
        if key not in self._models:
            guarded = []
            for s in chain:
                opts = {**self.options.get(s.partition(":")[0], {}), **self.options.get(s, {})}
                try:
                    guarded.append(self.guard(get_model(s, **opts)))
                except ModelNotAvailable as exc:
                    if not default:
                        raise
                    raise not_available_from_default(exc, s) from None
            self._models[key] = guarded[0] if len(guarded) == 1 else FallbackModel(guarded)
        return self._models[key]

    async def aclose(self) -> None:
        for m in self._models.values():
            await m.aclose()
        self._models.clear()


_default: Gateway | None = None


def default_gateway() -> Gateway:
    """The gateway used when a model is named by a string and no gateway is given."""
    global _default
    if _default is None:
        _default = Gateway()
    return _default


def set_default_gateway(gateway: Gateway | None) -> None:
    """Replace the default gateway (None: a fresh one on next use)."""
    global _default
    _default = gateway


def _reason(spec: str, exc: BaseException) -> str:
    """Why a call failed, as the breaker keeps it: the model and the kind of failure (the HTTP
    status, the error's type), never the message. The breaker is shared by every run of the
    process and its reason is quoted in the error of each run refused while it is open; a
    provider's message can quote the request (one run's prompt)."""
    status = getattr(exc, "status", None)
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return f"{spec} answered HTTP {status}" if status else f"{spec} failed ({type(cause).__name__})"
