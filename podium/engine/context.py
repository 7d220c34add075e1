"""What step code can see of its run: :class:`StepContext`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NonRetryableError, NotFound
from ..governance.enforcement import BUDGET_ASKING, BUDGET_REQUESTS, asked_about
from ..governance.service import APPROVAL_PREFIX
from ..records import NO_RETRY, RetryPolicy
from ..storage.secrets import secret_store

_RAISE: Any = object()
_METRIC = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # "no default": a wait that times out fails the step

if TYPE_CHECKING:
    from ..governance.enforcement import RunGovernance
    from ..governance.identity import Principal
    from ..storage import Store
    from .ports import ConnectorPort, StepHost
    from .prompts import PromptVersion
    from .workflow import Workflow

_logger = logging.getLogger("podium.step")



class StepContext:
    """Handed to a step that declares a ``ctx`` parameter (or one annotated ``StepContext``)."""

    __slots__ = (
        "_asked",
        "_calls",
        "_executor",
        "_log",
        "attempt",
        "governance",
        "idempotency_key",
        "index",
        "input",
        "iteration",
        "reviewing",
        "run_id",
        "step_id",
        "workflow",
        "workflow_version",
    )

    def __init__(
        self, executor: StepHost, step_id: str, iteration: int, index: int | None, attempt: int, key: str
    ):
        self._executor = executor
        self._log: logging.LoggerAdapter[logging.Logger] | None = None
        self._calls: dict[str, int] = {}
        self._asked: dict[str, str] = {}  # approval name -> what its first request showed (a digest)
        self.run_id: str = executor.run_id
        """The run's id."""
        self.step_id = step_id
        """This step's id."""
        self.iteration = iteration
        """Loop iteration, from 0."""
        self.index = index
        """Item index within a fan-out (``map``) step, else None."""
        self.attempt = attempt
        """Attempt number, from 1. A step interrupted by a crash is attempted again with a higher number."""
        self.idempotency_key = key
        """Stable for this step execution across every attempt and crash resume: pass it to external
        systems so that a repeated attempt does not repeat the side effect."""
        self.workflow: str = executor.wf.name
        self.workflow_version: str = executor.wf.version
        self.input: Any = executor.input
        """The run's input."""
        self.governance: RunGovernance = executor.governance
        """The policies, kill switches, audit and budgets over this run (used by ``podium.ai``)."""
        self.reviewing = False
        """Set by the engine once the step's function has returned and a gate or a person reviews
        its output: the step's ``timeout`` bounds the function, not a person's decision."""

    @property
    def store(self) -> Store:
        """The store the run lives in (for plug-ins, such as memory, that keep data beside it)."""
        return self._executor.store

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the run id, step id and attempt."""
        if self._log is None:
            self._log = logging.LoggerAdapter(
                _logger,
                {"run_id": self.run_id, "step_id": self.step_id, "attempt": self.attempt},
            )
        return self._log

    async def started_by(self) -> Principal | None:
        """Who started this run (for a child run: who started its root run), from the signed audit
        log, with the roles they held then; never from the run's input, which whoever starts a run
        writes. The local user in local mode; None when the log cannot say (trust nobody then).
        Step code that acts for the caller (``podium.goals`` offers a planner only the skills the
        caller's roles may use) asks here."""
        return await self.governance.service.started_by(self.run_id)

    def previous(self, step_id: str, default: Any = None) -> Any:
        """Inside a loop: the output ``step_id`` had in the previous iteration (``default`` in the first)."""
        return self._executor.prev_outputs.get(step_id, default)

    async def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        executor: str | None = None,
        trace: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``fn(*args, **kwargs)`` as a durable sub-step (a model call, a tool call...).

        Its result is logged as its own step execution (``step/name``). If this step is retried or
        resumed after a crash, completed calls return their logged result instead of running again,
        so an agent loop inside one step does not repeat finished calls. Calls are named
        ``name`` (default: the function's name) and numbered in order within the step, so keep their
        order deterministic. A call that still fails after ``retry`` raises its error here.
        ``executor`` runs it elsewhere (``"ray"``; :attr:`executor` is the step's own).
        ``trace`` is what the run trace shows about a call that really runs (a model call's prompt,
        a tool's arguments): stored with its record, secrets and personal data redacted first, and
        not at all with the ``trace_prompts = false`` setting. It is never part of the result.
        """
        base: str = name or str(getattr(fn, "__name__", "call"))
        n = self._calls.get(base, 0)
        self._calls[base] = n + 1
        label = base if n == 0 else f"{base}-{n + 1}"
        return await self._executor.durable_call(
            self, label, fn, args, kwargs, retry or NO_RETRY, timeout, executor, trace
        )

    @property
    def executor(self) -> str | None:
        """The step's ``executor`` (``@wf.step(executor="ray")``): where its heavy ``ctx.call`` calls go."""
        step = self._executor.wf.steps.get(self.step_id)
        return None if step is None else step.executor

    def connector(self, name: str, *, fallback: Callable[[], ConnectorPort] | None = None) -> Any:
        """The connector the client holds as ``name`` (``Client(connectors={...})``,
        ``client.add_connector``), bound to this step: ``await ctx.connector("crm").call("update_contact",
        {...})``. Each call is a durable sub-step ``connector:NAME.OPERATION`` (never repeated once it
        has succeeded), audited, retried and behind the connector's breaker (see
        :mod:`podium.connectors`). ``fallback()`` builds one when the client holds none by that name."""
        found = self._executor.client.connectors.get(name) or (fallback() if fallback is not None else None)
        if found is None:
            known = ", ".join(sorted(self._executor.client.connectors)) or "none"
            raise NotFound(
                f"step {self.step_id!r} asked for connector {name!r}, which this client does not hold "
                f"(it holds: {known}); add it with Client(connectors={{{name!r}: ...}}) or client.add_connector()"
            )
        if getattr(found, "secrets", False) is None:  # it reads secret:NAME settings from the run's store
            found.secrets = secret_store(self._executor.client.store)  # type: ignore[attr-defined]
        return found.bind(self, name)

    async def check_connector(
        self,
        name: str,
        operation: str,
        arguments: dict[str, Any],
        deferred: Callable[[str, dict[str, Any]], list[tuple[str, str]]] | None = None,
    ) -> dict[str, Any]:
        """The run's policies and kill switches over a live call of ``operation`` on connector
        ``name`` (see :func:`podium.governance.enforcement.check_connector`); returns the arguments
        to call with. Connectors bound to this step ask it before each call."""
        from ..governance.enforcement import check_connector

        later = (lambda args: deferred(operation, args)) if deferred is not None else None
        return await check_connector(self, name, operation, arguments, deferred=later)

    async def prompt(self, name: str) -> PromptVersion:
        """The stored prompt ``name`` (see ``client.put_prompt``), at the version this run first read:
        a run keeps one version of each prompt for its whole life, across steps, retries and
        resumes, even when a new version is put meanwhile. Use ``.render(**values)`` on it."""
        ex = self._executor
        version = ex.prompt_pins.get(name) or _pinned(ex, name)
        pv: PromptVersion = await self.call(ex.client.prompt_library.load, name, version, name=f"prompt:{name}")
        ex.own_map("prompt_pins")[name] = pv.version
        return pv

    def call_count(self, name: str) -> int:
        """How many ``call(..., name=name)`` this step execution has made so far."""
        return self._calls.get(name, 0)

    def next_call_name(self, name: str) -> str:
        """The label the next ``call(..., name=name)`` will be logged under (stable across replays)."""
        n = self._calls.get(name, 0)
        return name if n == 0 else f"{name}-{n + 1}"

    def replaying(self, name: str) -> bool:
        """Whether the next ``call(..., name=name)`` has a logged result (it replays; nothing runs)."""
        label = self.next_call_name(name)
        rec = self._executor.recorded.get((f"{self.step_id}/{label}", self.iteration, self.index))
        return rec is not None and rec[0] == "completed"

    async def emit(self, topic: str, payload: Any = None) -> None:
        """Publish an application event (see ``Client.emit``) exactly once for this step execution:
        the publication is a durable call, so a replayed step does not send it again. The event
        carries this run's id: the runs it starts act for whoever started this run."""
        await self.call(self._executor.client._publish, topic, payload, name=f"emit:{topic}", origin=self.run_id)

    async def publish_live(self, topic: str, payload: Any = None) -> None:
        """Publish an application event that is not durable (see ``Client.emit``): nothing is logged,
        a replayed step does not send it, and a step attempted again sends it again. For previews
        such as the text of a model call while it is generated (``podium.tokens.<run_id>``)."""
        await self._executor.client._publish(topic, payload)

    async def metric(self, name: str, value: float, *, kind: str = "gauge", **labels: Any) -> None:
        """Report a business figure (a retention rate, actions taken, revenue kept) once for this
        step execution. It is logged with the step and reaches ``/metrics`` as
        ``podium_business_NAME{workflow=..., **labels}``: ``kind="gauge"`` sets it, ``"counter"`` adds."""
        if not _METRIC.fullmatch(name) or kind not in ("gauge", "counter"):
            raise ValueError(
                f"step {self.step_id!r}: metric {name!r} ({kind!r}) is not valid: name it with letters, "
                "digits and '_' (starting with a letter), kind 'gauge' or 'counter'"
            )
        figure = {"metric": name, "value": float(value), "kind": kind, "labels": {k: str(v) for k, v in labels.items()}}
        await self.call(_figure, figure, name=f"metric:{name}")

    async def wait_for(self, signal: str, *, timeout: float | None = None, default: Any = _RAISE) -> Any:
        """Wait, durably, for ``signal`` to be sent to this run (``client.signal(run_id, signal, payload)``)
        and return its payload.

        While it waits, the run holds no process, thread or lease: once nothing else can run, it is
        parked as ``waiting`` and survives restarts. When the signal arrives (or ``timeout`` seconds
        pass), the step runs again from its start: durable calls made before the wait return their
        logged results, and ``wait_for`` returns the payload. On timeout it returns ``default``, or,
        with no default, fails the step. A name starting with ``approval:`` is an approval's: ask for
        one with :meth:`approval` (a plain wait on it would end the request without a decision).
        """
        return await self._executor.wait_signal(self, signal, timeout, default, plain=True)

    async def approval(
        self,
        payload: Any = None,
        *,
        title: str = "",
        role: str | None = None,
        timeout: float | None = None,
        default: Any = _RAISE,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Ask a person to approve, reject or edit ``payload``, durably (see :meth:`wait_for`).

        The request appears in the approvals inbox (``podium approvals``, ``client.approvals()``);
        an approver decides with ``client.decide(...)`` / ``podium approvals approve``. Returns the decision:
        ``{"approved": bool, "by": str, "comment": str, "payload": ..., "edited": bool}``. With
        ``timeout`` (an SLA), ``default`` is returned when nobody decides in time (for example
        ``{"approved": False, "by": "sla"}``); with no default the step fails. ``role`` restricts who
        may decide.
        """
        from ..records import step_key

        label = name or f"approval:{step_key(self.step_id, self.iteration, self.index)}"
        if not label.startswith(APPROVAL_PREFIX):  # decided only through the approval path (client.decide)
            label = APPROVAL_PREFIX + label
        if label.startswith(BUDGET_REQUESTS) and not BUDGET_ASKING.get():
            # a budget's request is taken again whatever a later one under its name shows (it waives
            # the budget for the run): a step's own request named so would carry one decision to any question
            raise NonRetryableError(
                f"step {self.step_id!r}: the approval name {name!r} is in {BUDGET_REQUESTS!r}, the names of the "
                "engine's budget requests (reserved): give the request another name"
            )
        info = {"title": title or f"approve step {self.step_id}", "payload": payload, "role": role}
        # A decision answers the question it was shown. A step that asks again under the same name
        # (two calls in it, a loop over payments; unnamed calls share the step's name) with another
        # title, payload or role gets a request of its own, never the decision about the first one;
        # the same question again is the same request (a replayed step asks nothing twice).
        shown = asked_about(label, [info["title"], payload, role])
        if self._asked.setdefault(label, shown) != shown:
            label = f"{label}@{shown}"
        result: dict[str, Any] = await self._executor.wait_signal(self, label, timeout, default, info)
        return result

    async def sleep(self, seconds: float) -> None:
        """A durable timer: the run is parked for ``seconds`` and survives restarts meanwhile."""
        self._calls["__sleep__"] = n = self._calls.get("__sleep__", 0) + 1
        await self._executor.wait_signal(self, f"__timer__:{n}", seconds, None)

    async def run_workflow(self, workflow: Workflow, input: Any = None, *, name: str = "child") -> Any:
        """Run ``workflow`` as a child of this run and return its output.

        The child's id is derived from this step execution and ``name``, so a retried or resumed step
        finds the same child run instead of starting another.
        """
        return await self._executor.run_child(workflow, input, f"{self.idempotency_key}/{name}", self.step_id)

    def __repr__(self) -> str:
        return f"<StepContext run={self.run_id} step={self.step_id} attempt={self.attempt}>"


def _figure(figure: dict[str, Any]) -> dict[str, Any]:
    return figure  # logged as the call's output, which /metrics reads


def _pinned(ex: StepHost, name: str) -> str | None:
    """The version of prompt ``name`` an earlier step of this run read (from the replayed log)."""
    from .. import _serde

    label = re.compile(rf"prompt:{re.escape(name)}(-\d+)?")
    for (key, _, _), (status, data) in ex.recorded.items():
        if status == "completed" and data and label.fullmatch(key.partition("/")[2]):
            pv = _serde.loads(data).get("output")
            version = getattr(pv, "version", None) or (pv.get("version") if isinstance(pv, dict) else None)
            if version:
                return str(version)
    return None
