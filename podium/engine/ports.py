"""The engine's inner ports: what the executor of a run needs of the engine that drives it, and what
a step context needs of its executor. The client implements :class:`RunHost` and the executor
:class:`StepHost`; tests can drive an executor with a fake host."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..governance.enforcement import RunGovernance
    from ..governance.service import Governance
    from ..records import Event, RetryPolicy, RunRecord
    from ..storage import Store
    from .prompts import PromptLibrary
    from .versions import Deployments
    from .workflow import Workflow


class ConnectorPort(Protocol):
    """A connector as the engine holds it (a :class:`podium.connectors.Connector`; the engine does
    not import connectors): it binds to a step context, and is closed with the client."""

    def bind(self, scope: Any, name: str) -> Any: ...

    async def close(self) -> None: ...


class RunHost(Protocol):
    """What the executor of one run asks of its engine."""

    store: Store
    owner: str
    """The engine's owner id: it holds the run's lease under this name."""
    lease_seconds: float
    """How long a lease lasts without renewal (a step starting after half of it renews it first)."""
    labels: list[str] | None
    governance: Governance
    listeners: list[Callable[[Event], None]]
    """Called with every event the executor writes."""
    thread_pool: concurrent.futures.Executor
    """Where synchronous step functions run."""
    prompt_library: PromptLibrary
    connectors: dict[str, ConnectorPort]
    """Connectors step code reaches by name (``ctx.connector(name)``)."""
    deployments: Deployments
    """Whether a run's workflow is the deployed one of its name (``owns_name``: the policy named
    after it applies in full only then)."""

    def kind_limit(self, kind: str) -> asyncio.Semaphore | None: ...

    def wake_at(self, run_id: str, when: float) -> None: ...

    async def run_child(
        self, parent_run_id: str, wf: Workflow, child_input: Any, key: str, step_id: str
    ) -> RunRecord: ...

    async def _publish(self, topic: str, payload: Any, *, origin: str | None = None) -> None:
        """Publish an application event for step code (``ctx.emit``), whoever drives the run: no
        permission check (``Client.emit``, which people and programs call, needs ``runs.start``).
        ``origin``: the run whose step sends it (the runs it starts act for that run's starter)."""
        ...


class StepHost(Protocol):
    """What a step context asks of the executor of its run."""

    run_id: str
    wf: Workflow
    input: Any
    store: Store
    client: RunHost
    prev_outputs: dict[str, Any]
    prompt_pins: dict[str, str]
    recorded: dict[Any, tuple[str, Any]]

    def own_map(self, name: str) -> dict[Any, Any]:
        """The run's own mapping ``name`` to write to (a shared empty one replaced at the first write)."""
        ...

    @property
    def governance(self) -> RunGovernance: ...

    async def durable_call(
        self,
        ctx: Any,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy,
        timeout: float | None,
        executor: str | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> Any: ...

    async def wait_signal(
        self,
        ctx: Any,
        name: str,
        timeout: float | None,
        default: Any,
        info: dict[str, Any] | None = None,
        *,
        plain: bool = False,
    ) -> Any: ...

    async def run_child(self, workflow: Workflow, input: Any, key: str, step_id: str) -> Any: ...
