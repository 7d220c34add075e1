"""The connector interface: :class:`Connector` (a business system with typed operations) and
:class:`Operation` (one thing it can do, with the JSON Schema of its input and output)."""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ConnectorCircuitOpen, ConnectorDrift, ConnectorError
from ..resilience import Backoff, BreakerPolicy, CircuitBreaker, Limiter, RateLimit, retry_call
from . import _versions
from ._contracts import Contracts
from ._quarantine import is_marker, set_aside, settle
from ._stats import ConnectorStats

log = logging.getLogger("podium.connectors")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Operation:
    """One typed operation of a connector (``update_contact``, ``query``...)."""

    name: str
    """Letters, digits and ``_``, starting with a letter (it is also an agent tool's name)."""
    description: str = ""
    input: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments object."""
    output: dict[str, Any] | None = None
    """JSON Schema of the result, when known."""
    safe: bool = False
    """The operation changes nothing (a read): repeating it is harmless."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"operation name {self.name!r}: use 1-64 letters, digits or '_', starting with a letter")


class Connector(abc.ABC):
    """A business system Podium acts in: a database, a REST API, a broker.

    A subclass sets ``kind``, lists its :meth:`operations` and implements :meth:`call`. It raises
    :class:`~podium.ConnectorError` (``retryable=True`` when trying again may help, with
    ``retry_after`` when the system said how long to wait). Everything else (durability, retries,
    the circuit breaker, the rate limit, audit) is done around it, the same for every connector.
    """

    kind: str = ""
    """The factory key (``sql``, ``openapi``...)."""
    retry: Backoff = Backoff(max_attempts=4, initial=0.2, max_delay=10.0)
    """Retries of one operation call, inside one durable sub-step (Retry-After is honoured)."""
    breaker_policy: BreakerPolicy = BreakerPolicy(failures=5, reset_after=30.0)
    rate_limit: RateLimit | None = None
    """Calls per minute and in flight, shared by every run of this process that uses the connector."""

    _breaker: CircuitBreaker | None = None
    _limiter: Limiter | None = None
    _stats: ConnectorStats | None = None
    _contracts: Contracts | None = None

    @abc.abstractmethod
    def operations(self) -> list[Operation]:
        """The operations, with their schemas."""

    @abc.abstractmethod
    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        """Do ``operation`` once and return its result as JSON data. ``idempotency_key`` is stable
        across retries and resumes of the same call: pass it to systems that take one."""

    async def open(self) -> None:
        """Connect (called before the first call; calling it again does nothing)."""

    async def close(self) -> None:
        """Release connections."""

    async def health(self) -> dict[str, Any]:
        """Whether the system answers, with details (``{"ok": bool, ...}``)."""
        return {"ok": True, "breaker": self.breaker.state, **self.stats.snapshot()}

    def deferred_calls(self, operation: str, arguments: dict[str, Any]) -> list[tuple[str, str]]:
        """The calls of other connectors (name, operation) that ``operation`` with ``arguments``
        records to be made later, such as a ``transact``'s outbox messages: a workflow's policy
        governs them as it governs the call itself. None by default."""
        return []

    # -- shared machinery ----------------------------------------------------------------------

    def operation(self, name: str) -> Operation:
        """The operation ``name``, or a non-retryable :class:`~podium.ConnectorError`."""
        for op in self.operations():
            if op.name == name:
                return op
        known = ", ".join(sorted(o.name for o in self.operations())) or "none"
        raise ConnectorError(
            f"{self.kind} connector has no operation {name!r}; its operations are: {known}", operation=name
        )

    @property
    def stats(self) -> ConnectorStats:
        """This connector's health figures (calls, errors, latency, credentials, drift)."""
        if self._stats is None:
            self._stats = ConnectorStats()
        return self._stats

    @property
    def contracts(self) -> Contracts:
        """The operations' contracts, field mappings and drift policy (``open_connector(...,
        contracts=, mappings=, on_drift=)``; see docs/connectors.md)."""
        if self._contracts is None:
            self._contracts = Contracts()
        return self._contracts

    @contracts.setter
    def contracts(self, value: Contracts) -> None:
        self._contracts = value

    @property
    def breaker(self) -> CircuitBreaker:
        """This connector's circuit breaker (one per connector object, shared by every run)."""
        if self._breaker is None:
            self._breaker = CircuitBreaker(f"connector:{self.kind}", self.breaker_policy)
        return self._breaker

    async def guarded_call(
        self,
        operation: str,
        arguments: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        label: str = "",
        retry: Backoff | None = None,
    ) -> Any:
        """:meth:`call` behind the breaker and the rate limit, retried with backoff (honouring
        ``retry_after``). Raises :class:`~podium.ConnectorCircuitOpen` while the breaker is open. The
        result is mapped and checked against the operation's contract: :class:`~podium.ConnectorDrift`
        when it does not match."""
        self.operation(operation)  # unknown operations fail before anything is sent
        what = label or self.kind
        if self._limiter is None and self.rate_limit is not None:
            self._limiter = Limiter(self.rate_limit)

        async def once() -> Any:
            wait = self.breaker.allow()
            if wait is not None:
                raise ConnectorCircuitOpen(
                    f"connector {what!r} is failing ({self.breaker.transitions[-1][2] if self.breaker.transitions else 'open'}); "
                    f"its circuit is open for {wait:.1f}s more",
                    retry_after=wait,
                    connector=what,
                )
            t0 = time.monotonic()
            try:
                if self._limiter is not None:
                    async with self._limiter.slot():
                        value = await self.call(operation, arguments, idempotency_key=idempotency_key)
                else:
                    value = await self.call(operation, arguments, idempotency_key=idempotency_key)
            except ConnectorError as exc:
                self.stats.observe(time.monotonic() - t0, ok=False)
                if exc.retryable:  # a 4xx says nothing about the system's health
                    self.breaker.failure(_reason(operation, exc))
                else:
                    self.breaker.success()
                raise
            except Exception as exc:
                self.stats.observe(time.monotonic() - t0, ok=False)
                self.breaker.failure(_reason(operation, exc))
                raise ConnectorError(
                    f"connector {what!r}: {operation} failed: {type(exc).__name__}: {exc}",
                    retryable=isinstance(exc, OSError | TimeoutError),
                    connector=what,
                    operation=operation,
                ) from exc
            self.stats.observe(time.monotonic() - t0, ok=True)
            self.breaker.success()
            return value

        def never_open(exc: BaseException) -> bool:  # an open circuit is not waited out inside one call
            again = not isinstance(exc, ConnectorCircuitOpen) and bool(getattr(exc, "retryable", False))
            if again:
                self.stats.retries += 1
            return again

        value = await retry_call(once, retry or self.retry, retry_if=never_open)
        return self.contracts.check(self, operation, value, name=what)

    def bind(self, scope: Any, name: str) -> BoundConnector:
        """This connector as step code uses it: every call a durable, audited sub-step of ``scope``
        (a :class:`~podium.StepContext`). ``ctx.connector(name)`` returns this."""
        return BoundConnector(self, scope, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}>"


def check_json_body(kind: str, operation: str, body: Any) -> None:
    """Refuse, before anything is sent, a JSON body holding NaN or Infinity (a step's output, a model's
    answer, a database row may): JSON has no place for them, and httpx's refusal while sending was
    counted against the breaker as if the system were down, stopping the connector for every run."""
    stack: list[tuple[Any, str]] = [(body, "body")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise ConnectorError(
                f"{kind}: {operation}: the argument {where} is {value}, which JSON has no place for; nothing was sent. "
                "Give a finite number or null (replace NaN in the step that reads it)",
                operation=operation,
            )
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))


def _reason(operation: str, exc: BaseException) -> str:
    """Why a call failed, as the breaker keeps it: the operation and the kind of failure (the HTTP
    status, the transport error's type), never the message. The breaker is shared by every run of
    the process and its reason is quoted in the error of each run refused while it is open; the
    message holds this call's arguments (a URL's path) and the system's answer, which are this run's."""
    status = getattr(exc, "status", None)
    cause = exc.__cause__ if isinstance(exc, ConnectorError) and exc.__cause__ is not None else exc
    return f"{operation} answered HTTP {status}" if status else f"{operation} failed ({type(cause).__name__})"


class BoundConnector:
    """A connector inside one step execution: ``await ctx.connector("crm").call("update_contact", {...})``.

    Each call is a durable sub-step named ``connector:NAME.OPERATION``: once it has succeeded, a
    retried or resumed step gets the logged result and the system is not called again. The
    idempotency key passed to the connector is the step's key plus that label, so a call repeated
    after a crash in mid-flight carries the same key. Each live call is audited (connector,
    operation, SHA-256 of the arguments, outcome, latency; never the values)."""

    def __init__(self, connector: Connector, scope: Any, name: str) -> None:
        self.connector = connector
        self.scope = scope
        self.name = name

    def operations(self) -> list[Operation]:
        return self.connector.operations()

    async def call(self, operation: str, arguments: dict[str, Any] | None = None) -> Any:
        args = dict(arguments or {})
        label = f"connector:{self.name}.{operation}"
        check = getattr(self.scope, "check_connector", None)  # the run's policies and kill switches
        if check is not None and not self.scope.replaying(label):
            args = await check(self.name, operation, args, self.connector.deferred_calls)
        key = f"{self.scope.idempotency_key}/{self.scope.next_call_name(label)}"
        trace = {"kind": "connector", "connector": self.name, "operation": operation, "arguments": args}
        value = await self.scope.call(self._live, operation, args, key, name=label, trace=trace)
        return await settle(self, operation, value) if is_marker(value) else value

    async def _refresh_contract(self, operation: str) -> None:
        """Read the operation's learned contract; one the store does not back is warned of and audited."""
        service = getattr(getattr(self.scope, "governance", None), "service", None)
        audited = bool(getattr(service, "audit_enabled", False))
        problem = await self.connector.contracts.refresh(getattr(self.scope, "store", None), self.name, operation, sealed=audited)
        if problem and service is not None:
            log.warning("%s", problem)
            await service.record(
                "access.denied", f"contract:{self.name}.{operation}", actor="engine",
                reason="record not backed by the audit log", problem=problem,
            )

    async def _live(self, operation: str, args: dict[str, Any], key: str) -> Any:
        t0 = time.monotonic()
        outcome, error = "ok", None
        try:
            await self._refresh_contract(operation)
            value = await self.connector.guarded_call(operation, args, idempotency_key=key, label=self.name)
            if is_marker(value):  # a system cannot make a run park or fail by answering with the marker
                raise ConnectorError(f"connector {self.name!r}: {operation} answered with a reserved key", operation=operation)
            return value
        except ConnectorDrift as exc:  # set aside before anything uses it; the step sees it per policy
            outcome, error = "drift", "ConnectorDrift"
            return await set_aside(self, operation, key, exc)
        except ConnectorError as exc:
            outcome = "retryable" if exc.retryable else "failed"
            error = type(exc).__name__ + (f" (HTTP {exc.status})" if exc.status else "")
            raise
        finally:
            await audit_call(self.scope, self.name, operation, args, outcome, error, time.monotonic() - t0)
            await _versions.flush(self.connector, self.scope, self.name)


def arguments_hash(arguments: dict[str, Any]) -> str:
    """SHA-256 of the arguments as canonical JSON: what the audit log keeps instead of the values."""
    text = json.dumps(arguments, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def audit_call(
    scope: Any, name: str, operation: str, args: dict[str, Any], outcome: str, error: str | None, latency: float
) -> None:
    """One ``connector.call`` audit entry through the run's governance (never the argument values)."""
    gov = getattr(scope, "governance", None)
    if gov is None:
        return
    await gov.audit(
        "connector.call",
        workflow=gov.workflow,
        step=scope.step_id,
        connector=name,
        operation=operation,
        arguments_sha256=arguments_hash(args),
        outcome=outcome,
        error=error,
        latency=round(latency, 4),
    )
