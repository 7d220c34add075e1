"""Resilience for calls to outside services: rate limits, retries with backoff, circuit breakers.

Plain building blocks with an injectable clock and sleep, used by the model :class:`~podium.models.Gateway`
and by HTTP tools. Each is an explicit instance: share one to share its budget or its breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .secret import redact_known

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """Limits of one provider or model. None means unlimited."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    """Input plus output tokens. A call is charged its estimate up front and settled when it returns."""
    concurrency: int | None = None
    """Calls in flight at once."""


class _Bucket:
    """A token bucket holding up to ``per_minute``, refilled continuously. It may go negative (debt)."""

    def __init__(self, per_minute: float, clock: Clock) -> None:
        if per_minute <= 0:
            raise ConfigError(f"a rate limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0 if now). More than the capacity waits for a full bucket."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount


class Limiter:
    """Enforces a :class:`RateLimit`: ``async with limiter.slot(tokens=estimate): ...``."""

    def __init__(
        self, limit: RateLimit, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limit = limit
        self._sleep = sleep
        self._requests = _Bucket(limit.requests_per_minute, clock) if limit.requests_per_minute else None
        self._tokens = _Bucket(limit.tokens_per_minute, clock) if limit.tokens_per_minute else None
        self._sem = asyncio.Semaphore(limit.concurrency) if limit.concurrency else None
        self._lock: asyncio.Lock | None = None
        self.waited = 0.0
        """Seconds spent waiting for the rate limits, in all."""

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until a request of ``tokens`` fits both budgets; returns the seconds waited."""
        if self._requests is None and self._tokens is None:
            return 0.0
        if self._lock is None:
            self._lock = asyncio.Lock()
        waited = 0.0
        async with self._lock:  # first come, first served
            while True:
                delay = max(
                    self._requests.wait_time(1) if self._requests else 0.0,
                    self._tokens.wait_time(tokens) if self._tokens and tokens else 0.0,
                )
                if delay <= 0:
                    break
                await self._sleep(delay)
                waited += delay
            if self._requests:
                self._requests.take(1)
            if self._tokens and tokens:
                self._tokens.take(tokens)
        self.waited += waited
        return waited

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token budget once a call's real token count is known."""
        if self._tokens is not None and actual != estimated:
            self._tokens.take(actual - estimated)

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[float]:
        """Hold a concurrency slot and a share of the rate budgets; yields the seconds waited."""
        if self._sem is None:
            yield await self.acquire(tokens)
            return
        async with self._sem:
            yield await self.acquire(tokens)


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """Retries of one call: exponential backoff with jitter, honouring the server's Retry-After."""

    max_attempts: int = 3
    """Attempts in all, the first included."""
    initial: float = 0.5
    """Seconds before the first retry."""
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1
    """Random spread of each delay, as a fraction of it."""
    max_retry_after: float = 120.0
    """A Retry-After longer than this is not waited for: the error is raised (and a fallback may answer)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"Backoff.max_attempts must be >= 1, got {self.max_attempts}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 1)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        base = min(self.max_delay, self.initial * self.multiplier ** (attempt - 1))
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


NO_RETRIES = Backoff(max_attempts=1)


def is_retryable(exc: BaseException) -> bool:
    """Whether an error says that trying again may help (``retryable``), or is a timeout/connection error."""
    flag = getattr(exc, "retryable", None)
    if flag is not None:
        return bool(flag)
    return isinstance(exc, TimeoutError | ConnectionError)


async def retry_call(
    fn: Callable[[], Awaitable[Any]],
    policy: Backoff,
    *,
    sleep: Sleep = asyncio.sleep,
    on_failure: Callable[[BaseException, int, float | None], None] | None = None,
    retry_if: Callable[[BaseException], bool] = is_retryable,
) -> Any:
    """Call ``fn`` until it succeeds, it fails with an error ``retry_if`` rejects, or ``policy`` gives up.

    ``on_failure(exc, attempt, delay)`` is told about each failure; ``delay`` is None when no retry follows.
    """
    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as exc:
            retry_after = getattr(exc, "retry_after", None)
            again = (
                attempt < policy.max_attempts
                and retry_if(exc)
                and (retry_after is None or retry_after <= policy.max_retry_after)
            )
            delay = policy.delay(attempt, retry_after) if again else None
            if on_failure is not None:
                on_failure(exc, attempt, delay)
            if delay is None:
                raise
            await sleep(delay)
            attempt += 1


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerPolicy:
    """When a circuit breaker opens and how it recovers."""

    failures: int = 5
    """Consecutive failures that open the circuit."""
    reset_after: float = 30.0
    """Seconds the circuit stays open before one probe call is let through (half-open)."""


class CircuitBreaker:
    """Closed (calls go through), open (calls fail fast), half-open (one probe decides).

    ``transitions`` keeps every state change as ``(time, state, reason)`` so that callers can log them.
    """

    def __init__(
        self, key: str, policy: BreakerPolicy | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.key = key
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False
        self._probe_at = 0.0
        self.transitions: list[tuple[float, str, str]] = []

    def _move(self, state: str, reason: str) -> None:
        self.state = state
        self.transitions.append((time.time(), state, reason))

    def allow(self) -> float | None:
        """None if a call may go now; else the seconds until the next probe is allowed."""
        if self.state == "closed":
            return None
        if self.state == "open":
            left = self.opened_at + self.policy.reset_after - self.clock()
            if left > 0:
                return left
            self._move("half_open", f"probing after {self.policy.reset_after:g}s open")
        if self._probing:  # one probe at a time; a probe never settled (cancelled by a timeout, or
            # ended by an error that says nothing of the system's health) gives way after reset_after
            left = self._probe_at + self.policy.reset_after - self.clock()
            if left > 0:
                return left
        self._probing = True
        self._probe_at = self.clock()
        return None

    def success(self) -> str | None:
        """Record a success; returns the new state if it changed."""
        self.failures = 0
        self._probing = False
        if self.state != "closed":
            self._move("closed", "probe succeeded")
            return "closed"
        return None

    def failure(self, reason: str = "") -> str | None:
        """Record a failure; returns the new state if it changed."""
        self.failures += 1
        self._probing = False
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.policy.failures):
            why = "probe failed" if self.state == "half_open" else f"{self.failures} consecutive failures"
            self.opened_at = self.clock()
            self._move("open", redact_known(f"{why}: {reason}")[:300])  # shown and alerted on
            return "open"
        return None
