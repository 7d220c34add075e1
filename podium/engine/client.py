"""The engine client: the one entry point that every surface (Python, CLI, API, dashboard) calls."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..errors import ConfigError, InputValidationError, NotFound, RunCancelled, RunFailed, StoreError
from ..governance.audit import payload_hash
from ..governance.identity import Principal, User
from ..governance.secrets import Secrets
from ..governance.service import EngineControl, Governance, stored_for_run
from ..records import Event, EventType, RunRecord, RunStatus, new_id
from ..settings import setting
from ..storage import Store, open_bus, open_store
from . import gcpace, lineage, worker
from .bursts import Bursts
from .driving import DrivenRuns
from .executor import RunExecutor
from .handle import RunHandle
from .history import RunHistory, fold, reusable_events, shown, without_payloads
from .prompts import PromptLibrary, PromptVersion
from .quarantine import QuarantineDesk
from .registry import WorkflowRegistry
from .versions import Deployments
from .workflow import Workflow

if TYPE_CHECKING:
    from ..governance.audit import AuditEntry
    from ..governance.capabilities import Capability
    from ..governance.policy import Policy
    from .ports import ConnectorPort

log = logging.getLogger("podium.engine")

_UNSET: Any = object()
RESERVED_RUN_IDS = frozenset({"stream"})
"""Run ids a start refuses: ``GET /api/runs/ID`` is a literal route of the HTTP API for each (the runs
list's live stream), which would shadow the run (tests/server/test_attack_left17.py holds this set to
the routes)."""


class Client:
    """Starts, drives, inspects and controls runs on one store.

    ``async with Client("sqlite:///podium.db") as client:`` opens the store and, unless
    ``recover=False``, resumes every unfinished run left by an engine that died.

    :param store: a :class:`Store` or a store URL (default: ``$PODIUM_DB`` or ``.podium/podium.db``).
    :param workflows: workflows to register (runs name their workflow; resume needs it registered or
        importable from the ``workflow_ref`` recorded at start).
    :param max_concurrent_runs: runs driven at once by this client; others wait as ``pending``.
    :param limits: concurrency caps per step ``kind``, e.g. ``{"llm": 4}``.
    :param lease_seconds: how long a run stays owned by this engine without a heartbeat.
    :param recover: resume unfinished runs whose engine died, on open (if the principal holds ``runs.resume``).
    :param thread_pool_size: threads for sync step functions.
    :param execute: drive runs in this process. With False, ``start`` only records the run for a
        worker (``podium worker``) to claim.
    :param labels: worker labels this engine has (None: it runs any step). A step that needs labels
        this engine lacks is handed to a worker that has them.
    :param queues: the queues this engine claims runs from (None: all).
    :param queue_limits: caps on runs held at once per queue, across all engines.
    :param token: the API token to act with. Required once the store has users; without users
        (local mode) the client acts as the single local user, who may do everything.
    :param audit: write the hash-chained audit log (run starts and ends, decisions, changes).
    :param audit_key: the key file that signs the audit log (default: ``PODIUM_AUDIT_KEY``, else
        ``~/.podium/audit.key``; created 0600 on first use). See docs/governance.md.
    :param event_bus: ``nats://host:4222`` wakes engines on other machines through NATS (default: ``PODIUM_EVENT_BUS``).
    :param principal: act as this principal without a token: for trusted in-process services (the
        HTTP server acts as ``Principal.engine()`` for its background work and as each caller,
        through :meth:`acting_as`, for requests).
    :param started_event_after: a step attempt still running after this many seconds is recorded as
        running (found by the maintenance sweep every ``poll_interval``); quicker steps are recorded
        once, when they finish, so that a durable step costs one commit.
    :param connectors: what step code reaches as ``ctx.connector(name)`` (closed with the client).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        workflows: Iterable[Workflow] = (),
        max_concurrent_runs: int = 1000,
        limits: dict[str, int] | None = None,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        recover: bool = True,
        thread_pool_size: int | None = None,
        started_event_after: float = 0.05,
        execute: bool = True,
        labels: Sequence[str] | None = None,
        queues: Sequence[str] | None = None,
        queue_limits: dict[str, int] | None = None,
        token: str | None = None,
        audit: bool = True,
        principal: Principal | None = None,
        audit_key: str | os.PathLike[str] | None = None,
        connectors: dict[str, ConnectorPort] | None = None,
        event_bus: str | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.events = open_bus(event_bus, self.store)  # wake-ups and events: the store, or NATS (storage/bus.py)
        if audit_key is not None:
            self.store.audit_key = os.fspath(audit_key)
        self.owner = worker.new_owner()
        self._started = json.dumps({"owner": self.owner, "format": _serde.FORMAT_VERSION})  # run_started's data
        if max_concurrent_runs < 1:
            raise ConfigError("max_concurrent_runs must be >= 1")
        self.max_concurrent_runs = max_concurrent_runs
        self.registry = WorkflowRegistry()
        """The workflows this client knows, by name and version."""
        self.driving = DrivenRuns(max_concurrent_runs)
        """The runs this client drives now (live executors)."""
        control = EngineControl(driving=self.driving.active, cancel=self.driving.cancel, deliver=self._deliver_signal)
        self.governance = Governance(self.store, audit=audit, engine=control)
        """Identity, roles, audit, kill switches, policies and approvals for this client."""
        self.deployments = Deployments(self.store, self.governance, self.registry)
        """Deployed workflow versions."""
        self.prompt_library = PromptLibrary(self.store, self.governance)
        """Versioned prompts."""
        self.quarantine = QuarantineDesk(self)
        """Drifted connector results: list, get, replay, learn (docs/connectors.md)."""
        self.secrets = Secrets(self.store, self.governance)
        """The store's encrypted secrets (``secret:NAME`` in connector settings; docs/connectors.md)."""
        for wf in workflows:
            self.register(wf)
        self._limit_spec = dict(limits or {})
        self._kind_limits: dict[str, asyncio.Semaphore] = {}
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.recover = recover
        threads = thread_pool_size or min(32, (os.cpu_count() or 1) + 4)
        self.thread_pool: concurrent.futures.Executor = concurrent.futures.ThreadPoolExecutor(threads, "podium-step")
        """Threads that run synchronous step functions."""
        self.started_event_after = started_event_after
        self.execute = execute
        self.labels = list(labels) if labels is not None else None
        self.queues = list(queues) if queues is not None else None
        self.queue_limits = dict(queue_limits or {})
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._token = token
        self._given_principal = principal
        self._unsubscribers: builtins.list[Callable[[], Any]] = []
        self.claims = worker.Claims()
        """What the claim loop remembers between claims (dead owners, runs that do not load)."""
        self.timers = worker.Timers()  # parked runs this client wakes soon: run id -> when (engine/timers.py)
        self.connectors: dict[str, ConnectorPort] = dict(connectors or {})
        self.listeners: builtins.list[Callable[[Event], None]] = []
        """Called with every event this client writes (see :meth:`subscribe`)."""
        self._maintenance: asyncio.Task[None] | None = None
        self.bursts = Bursts(self)
        """Starts made in a burst: acknowledged through the start log, committed together (bursts.py)."""
        self._open = False

    # -- life cycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._open:
            return
        pace = setting("gc")  # a bad value fails here, before anything is opened
        await self.store.open()
        try:
            await self.governance.open(self._token, self._given_principal)
        except BaseException:
            await self.store.close()
            raise
        self._kind_limits = {k: asyncio.Semaphore(n) for k, n in self._limit_spec.items()}
        self._open = True
        self.driving.pace = gcpace.Pace(pace, self)  # gcpace.py: many live runs, few full collections
        try:
            if self.execute:
                self._maintenance = asyncio.get_running_loop().create_task(worker.maintain(self))
            await self.bursts.recover()  # the starts a stopped engine acknowledged, not committed: resumed below
            if self.recover and self.execute and self.principal.can("runs.resume"):  # others' runs: as a worker
                await worker.recover(self)
        except BaseException:  # nobody closes a client whose open raised: its runs, store and pace go now
            with contextlib.suppress(Exception):
                await self.close()
            raise

    async def close(self, *, drain: bool = False) -> None:
        """Stop. With ``drain`` wait for the runs this client drives to finish; otherwise hand them
        back unfinished (they resume on the next engine start, without redoing finished steps)."""
        if not self._open:
            return
        try:
            if drain:
                await self.drain()
            await self.bursts.close()  # what it cannot commit stays in its start log, for the next engine
            for unsubscribe in self._unsubscribers:
                with contextlib.suppress(Exception):
                    await unsubscribe()
            self._unsubscribers.clear()
            # Every wait here is bounded: a driver call that does not return promptly after cancellation
            # must not keep the process from stopping (unfinished runs are resumed later anyway).
            if self._maintenance is not None:
                self._maintenance.cancel()
                await asyncio.wait({self._maintenance}, timeout=5)
                self._maintenance = None
            driving = self.driving.items()
            for ex, task in driving:
                ex.reason = "shutdown"
                task.cancel()
            if driving:
                _, late = await asyncio.wait({t for _, t in driving}, timeout=10)
                if late:
                    log.warning("%d run(s) did not stop within 10 s of shutdown; handing them back", len(late))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.store.release_runs(self.owner, [ex.run_id for ex, _ in driving]), 5)
            with contextlib.suppress(Exception):  # the counts of repeated refusals not written yet
                await asyncio.wait_for(self.governance.refusals.flush(closing=True), 5)
            self._open = False
            try:
                await asyncio.wait_for(self.store.close(), 10)
            except TimeoutError:
                log.warning("closing the store %s took over 10 s; giving up on it", self.store.url)
            self.thread_pool.shutdown(wait=False, cancel_futures=True)
            with contextlib.suppress(Exception):  # connectors given to the client, and a bus in front of the store
                await asyncio.wait_for(asyncio.gather(*(c.close() for c in [*self.connectors.values(), self.events] if c is not self.store)), 10)
        finally:  # even when the close is cancelled half-way
            if self.driving.pace is not None:
                self.driving.pace.close()

    async def drain(self) -> None:
        """Wait until every run this client drives has finished."""
        await self.bursts.landed(strict=False)  # what cannot be committed stays in the start log
        while self.driving:
            await asyncio.gather(*self.driving.tasks(), return_exceptions=True)

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the client is not open; use 'async with podium.Client(...) as client:'")

    # -- workflows ------------------------------------------------------------------------------

    def register(self, wf: Workflow) -> Workflow:
        """Make ``wf`` known to this client (checks it). Returns it."""
        return self.registry.register(wf)

    def workflows(self) -> dict[str, builtins.list[str]]:
        """Registered workflows: name -> versions."""
        return self.registry.names()

    def workflow(self, name: str, version: str | None = None) -> Workflow:
        """A registered workflow by name (latest registered version unless ``version`` is given)."""
        return self.registry.require(name, version)

    # -- starting -------------------------------------------------------------------------------

    async def start(
        self,
        workflow: Workflow | str,
        input: Any = None,
        *,
        run_id: str | None = None,
        timeout: float | None = None,
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
    ) -> RunHandle:
        """Start a run and return at once. With a fixed ``run_id`` starting is idempotent: if that
        run exists, its handle is returned and nothing new starts.

        ``queue``, ``priority`` (higher first) and ``tenant`` (for fairness) say how workers pick
        it up when this client does not execute runs itself (``Client(execute=False)``)."""
        self._check_open()
        if run_id in RESERVED_RUN_IDS:
            raise ConfigError(
                f"run id {run_id!r} is reserved: GET /api/runs/{run_id} is the HTTP API's live stream of every run, so "
                "such a run could not be read there; choose another id (the ids the engine makes never collide)"
            )
        if priority.__class__ is not int or not -(2**31) <= priority < 2**31:  # PostgreSQL's integer column
            raise InputValidationError(f"priority {priority!r}: give a whole number from -2**31 to 2**31-1 (higher runs first)")
        if isinstance(workflow, str) and self.registry.latest(workflow) is None:
            await self.deployments.load_deployed(workflow)
        if isinstance(workflow, Workflow):
            if self.registry.get(workflow.name, workflow.version) is workflow:
                self.registry.set_latest(wf := workflow)  # registered (and checked) already
            else:
                wf = self.register(workflow)
        else:
            wf = self.workflow(workflow)
        if wf.resolved_by is not self.deployments:  # once per definition: its deployed version
            wf = await self.deployments.resolve(wf)
        await self.authorize("runs.start", f"workflow:{wf.name}")
        self.governance.check_startable(wf.name)
        value = wf.validate_start_input(input)
        deployed = self.deployments.owns_name_known(wf) or await self.deployments.owns_name(wf)
        payload = self.governance.stored_payload(wf.name, _serde.dumps(value), deployed=deployed)
        rid = run_id or new_id()
        anchor = self.governance.start_entry(rid, wf.name, wf.version, payload, queue=queue)
        created = await self._create_and_drive(
            wf, rid, payload, timeout=timeout if timeout is not None else wf.timeout, queue=queue, priority=priority,
            tenant=tenant, anchor=anchor, burst=run_id is None,
        )  # fmt: skip
        return RunHandle(self, rid, created=created)

    async def run(self, workflow: Workflow | str, input: Any = None, **kw: Any) -> Any:
        """Start a run, wait for it, and return its output (raises :class:`RunFailed` on failure)."""
        handle = await self.start(workflow, input, **kw)
        return await handle.result()

    async def _create_and_drive(
        self,
        wf: Workflow,
        rid: str,
        payload: str,
        *,
        timeout: float | None = None,
        parent: tuple[str, str] | None = None,
        fork: tuple[str, str] | None = None,
        events: Sequence[Event] = (),
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
        anchor: AuditEntry | None = None,
        burst: bool = False,
    ) -> bool:
        """Create the run, with its start anchor ``anchor`` in the same transaction, and drive it
        (``burst``: the engine drew its id, so its start may go through the start log: bursts.py)."""
        now = time.time()
        has_slot = self.driving.try_admit() if self.execute else False
        run = RunRecord(
            id=rid, workflow=wf.name, version=wf.version, input=payload, created_at=now,
            status=RunStatus.RUNNING if has_slot else RunStatus.PENDING, started_at=now if has_slot else None,
            parent_run_id=parent[0] if parent else None, parent_step=parent[1] if parent else None,
            forked_from=fork[0] if fork else None, fork_step=fork[1] if fork else None, workflow_ref=wf.ref,
            owner=self.owner if self.execute else None,
            lease_expires_at=now + self.lease_seconds if self.execute else None,
            queue=queue, priority=priority, tenant=tenant,
        )  # fmt: skip
        # The same data for every run started without a timeout (the owner is the client's, for life).
        text = json.dumps({"owner": self.owner, "format": _serde.FORMAT_VERSION, "timeout": timeout}) if timeout else self._started
        kind = EventType.RUN_STARTED if has_slot else EventType.RUN_QUEUED
        first = Event(run_id=rid, seq=1, type=kind, ts=now, data=text)
        copied = [dataclasses.replace(e, run_id=rid, seq=i + 2) for i, e in enumerate(events)]
        if burst and self.bursts.take(wf, run, first, anchor, has_slot):
            return True  # acknowledged through the start log; committed with the others of this turn
        try:
            created = await self.store.create_run(run, [first, *copied], audit=anchor)
        except BaseException:
            if has_slot:
                self.driving.release()
            raise
        if not created:
            if has_slot:
                self.driving.release()
            return False
        if burst:
            self.bursts.committed()
        if anchor is not None:
            self.governance.announce(anchor)
        if self.execute:
            self.drive_run(wf, run, [first, *copied], admitted=has_slot)
        else:
            await self.events.notify_work()
        for listener in self.listeners:  # live views see the start too (later events come from the executor)
            with contextlib.suppress(Exception):
                listener(first)
        return True

    def drive_run(self, wf: Workflow, run: RunRecord, events: list[Event], *, admitted: bool = False, refused: str | None = None) -> RunExecutor:
        """Drive a run this client holds (created or claimed) in a task of its own (``refused``: why
        it may not go on; it fails at once)."""
        ex = RunExecutor(self, wf, run, events, refused=refused)
        with self.governance.as_itself():  # the task outlives the request that started or woke it
            task = asyncio.get_running_loop().create_task(worker.drive_task(self, ex, admitted))
        self.driving.add(ex, task)
        if self._maintenance is None:
            self._maintenance = asyncio.get_running_loop().create_task(worker.maintain(self))
        return ex

    # -- inspecting -----------------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord:
        """The run's record (without ``payloads.read``, its input and output hidden); raises :class:`NotFound`."""
        self._check_open()
        who = await self.authorize("runs.read", run_id)  # first: an unknown id tells nothing to whom may not read
        return shown(await self._record(run_id), who)

    async def _record(self, run_id: str) -> RunRecord:
        """The run's record as stored, for the engine's own use (no permission check)."""
        if self.bursts.unsettled:
            await self.bursts.landed(strict=self.bursts.holds(run_id))
        run = await self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}; list runs with 'podium runs'")
        return run

    async def list(
        self,
        *,
        workflow: str | None = None,
        status: Sequence[RunStatus | str] | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first; ``before``: those after ``(created_at, id)``, the last of a page."""
        self._check_open()
        who = await self.authorize("runs.read")
        try:
            statuses = [RunStatus(s) for s in status] if status else None
        except ValueError as exc:
            raise ConfigError(f"{exc}; statuses are: {', '.join(s.value for s in RunStatus)}") from None
        runs = await self.store.list_runs(
            workflow=workflow, status=statuses, parent_run_id=parent_run_id, limit=limit, offset=offset, before=before
        )
        return [shown(r, who) for r in runs]

    async def history(self, run_id: str) -> RunHistory:
        """Everything recorded about a run: steps, attempts, outputs, errors, timings, events."""
        run = await self.get(run_id)
        events = await self.store.load_events(run_id)
        if not self.principal.can("payloads.read"):  # the shape of the run, without its data
            events = without_payloads(events)
        return RunHistory(run=run, steps=fold(events), events=events)

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run is finished and return its record (as :meth:`get` shows it)."""
        self._check_open()
        who = await self.authorize("runs.read", run_id)
        return shown(await self._settled(run_id, timeout), who)

    async def _settled(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """The run's record once it is finished, for the engine's own use (no permission check)."""
        return await worker.settled(self, run_id, timeout, self._record)

    async def result(self, run_id: str, timeout: float | None = None) -> Any:
        """The output of a finished run (waiting for it); raises :class:`RunFailed`/:class:`RunCancelled`.
        Needs ``runs.read`` and ``payloads.read``: the output is the run's data."""
        self._check_open()
        await self.authorize("runs.read", run_id)
        await self.authorize("payloads.read", run_id)
        run = await self._settled(run_id, timeout)
        if run.status is RunStatus.COMPLETED:
            return _serde.loads(run.output)
        err = json.loads(run.error) if run.error else {}
        where = f" at step {err['step']!r}" if err.get("step") else ""
        msg = f"run {run_id} of {run.workflow!r} {run.status.value}{where}: {err.get('message', '')}"
        if run.status is RunStatus.CANCELLED:
            raise RunCancelled(msg, run_id=run_id, error=err)
        raise RunFailed(msg, run_id=run_id, error=err)

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event this client writes (live progress). Returns an unsubscribe."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    # -- controlling ----------------------------------------------------------------------------

    async def cancel(self, run_id: str, *, wait: float = 10.0) -> RunRecord:
        """Cancel an unfinished run (and its unfinished child runs). Running steps are cancelled and
        recorded as such. Returns the run's record (unchanged if it had already finished)."""
        await self.authorize("runs.cancel", run_id)
        run = await self.get(run_id)
        if not run.status.finished:
            await self.governance.record("run.cancel", run_id)
        if run.status.finished:
            return run
        for child in await self.store.list_runs(
            parent_run_id=run_id, status=[RunStatus.PENDING, RunStatus.RUNNING]
        ):
            await self.cancel(child.id, wait=wait)
        if await self.driving.cancel(run_id):
            return await self.wait(run_id)
        await self.store.request_cancel(run_id)
        if await worker.cancel_orphan(self, run):  # nobody alive drives it: recorded here
            return await self.get(run_id)
        return await self.wait(run_id, timeout=wait)

    async def resume(
        self, run_ids: Sequence[str] | None = None, *, limit: int = 10_000
    ) -> builtins.list[str]:
        """Continue unfinished runs that no live engine drives (all of them, or ``run_ids``). Finished
        steps are not executed again; a step that was in flight is attempted again. Returns the ids
        of the runs now driven by this client; runs whose workflow cannot be loaded are left as they are
        (and logged)."""
        await self.authorize("runs.resume")
        ids = await self.take_over(run_ids, limit=limit)
        if ids:
            await self.governance.record("run.resume", ",".join(ids[:50]), count=len(ids))
        return ids

    async def take_over(
        self, run_ids: Sequence[str] | None = None, *, limit: int = 10_000
    ) -> builtins.list[str]:
        """Claim and drive unfinished runs no live engine drives (the engine's own recovery and
        claim loop; no permission check: surfaces call :meth:`resume`)."""
        self._check_open()
        if not self.execute:
            raise ConfigError("this client does not execute runs (execute=False); resume them with a worker")
        return await worker.take_over(self, run_ids, limit)

    async def signal(self, run_id: str, name: str, payload: Any = None) -> bool:
        """Send signal ``name`` with ``payload`` to a run (what ``ctx.wait_for(name)`` returns).

        The first signal of a name wins: returns False if the run already had one. A parked run is
        woken: this client drives it on if it executes runs, else a worker picks it up."""
        self._check_open()
        await self.authorize("runs.signal", run_id)
        await self.governance.check_signal(run_id, name, payload)  # approvals and timers are not signals
        return await self._deliver_signal(run_id, name, payload, audit=True)

    async def _deliver_signal(self, run_id: str, name: str, payload: Any, *, request: int | None = None, audit: bool = False) -> bool:
        run = await self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}; list runs with 'podium runs'")
        if run.status.finished:
            raise ConfigError(f"run {run_id} is already {run.status.value}; it waits for no signal")
        stored = await stored_for_run(self.governance, run_id, run.workflow, _serde.dumps(payload))  # redacted by the run's policy
        sent = await self.store.send_signal(run_id, name, stored, now=time.time(), request=request)
        if audit:  # ``run.signal``, before the take-up: the run acts on it even if the caller goes (shielded)
            await asyncio.shield(self.governance.record("run.signal", run_id, name=name, delivered=sent))
        ex = self.driving.get(run_id)
        if ex is not None and not ex.finished.done():
            ex.signals = await self.store.get_signals(run_id)
            ex.signal_news()  # a step held in memory for a deadline due soon
            if ex.due(time.time()):
                ex.poke()
        elif self.execute:
            await worker.take_up(self, run_id)  # shielded from this caller's cancellation
        else:
            await self.events.notify_work()
        return sent

    async def usage(self, *, run_id: str | None = None, workflow: str | None = None) -> Any:
        """Tokens, cost and latency of model and tool calls, rolled up per step, model, run and kind
        (see ``podium.ai.usage``)."""
        from .usage import usage

        return await usage(self, run_id=run_id, workflow=workflow)  # checks runs.read

    async def fork(self, run_id: str, from_step: str, *, input: Any = _UNSET) -> RunHandle:
        """Start a new run, linked to ``run_id``, that re-executes ``from_step`` and every step after
        it; every other step that finished in the earlier run is reused, not executed again.
        ``input`` replaces the run input (the reused steps keep their earlier results)."""
        self._check_open()
        await self.authorize("runs.fork", run_id)
        await self.authorize("runs.read", run_id)
        parent = await self._record(run_id)  # its input is copied, not shown
        await self.deployments.check_pinned(parent.workflow, parent.version)
        if (parent.workflow, parent.version) not in self.registry:
            await self.deployments.load_deployed(parent.workflow, parent.version)
        wf = self.registry.for_run(parent)
        await lineage.check_fork(self.store, self.governance, parent, wf.name)  # a fork is a new run
        reask = not self.governance.principal.local  # four eyes: its starter may not decide a fork's approvals
        keep = reusable_events(wf, await self.store.load_events(run_id), from_step, run_id, new_input=input is not _UNSET, reask=reask)
        payload = parent.input if input is _UNSET else self.governance.stored_payload(wf.name, _serde.dumps(wf.validate_start_input(input)), deployed=await self.deployments.owns_name(wf))
        rid = new_id()
        anchor = self.governance.entry("run.fork", rid, parent=run_id, step=from_step, edited_input=input is not _UNSET, input=payload_hash(payload or "null"), **self.governance.starter())
        await self._create_and_drive(wf, rid, payload or "null", fork=(run_id, from_step), events=keep, anchor=anchor)
        return RunHandle(self, rid)

    async def run_child(self, parent_run_id: str, wf: Workflow, child_input: Any, key: str, step_id: str) -> RunRecord:
        """Start (once: ``key`` names it) and wait for a child run of a step of run ``parent_run_id``, which this client
        drives (the engine's own path, no permission check: never a way to start runs; a kill switch refuses it as a start)."""
        self.driving.require(parent_run_id)
        self.governance.check_startable(wf.name)
        self.register(wf)
        if wf.resolved_by is not self.deployments:
            wf = await self.deployments.resolve(wf)
        rid = key.replace(":", ".")
        payload = self.governance.stored_payload(wf.name, _serde.dumps(wf.validate_start_input(child_input)), deployed=await self.deployments.owns_name(wf))
        anchor = self.governance.start_entry(rid, wf.name, wf.version, payload, actor="engine", parent=parent_run_id)
        created = await self._create_and_drive(wf, rid, payload, timeout=wf.timeout, parent=(parent_run_id, step_id), anchor=anchor)
        if not created and rid not in self.driving and not (await self._record(rid)).status.finished:
            await self.take_over([rid])
        return await self._settled(rid)

    def wake_at(self, run_id: str, when: float) -> None:
        """Take parked run ``run_id`` up again at ``when`` (its timer or deadline), if this client executes runs."""
        if self.execute:
            self.timers[run_id] = min(when, self.timers.get(run_id, when))

    def add_connector(self, name: str, connector: ConnectorPort) -> None:
        """Let step code reach ``connector`` as ``ctx.connector(name)`` (replacing one of that name)."""
        self.connectors[name] = connector

    def kind_limit(self, kind: str) -> asyncio.Semaphore | None:
        """The concurrency cap on steps of ``kind`` in this client (see ``limits``), if any."""
        return self._kind_limits.get(kind)

    # -- application events and the claim loop ---------------------------------------------------

    async def emit(self, topic: str, payload: Any = None) -> None:
        """Publish an application event (``ticket.created``...) to every subscriber of this store:
        in this process, and in every process sharing a PostgreSQL store. Needs ``runs.start``, as
        ``POST /api/events`` does: an event starts the workflows subscribed to it. From step code use
        ``await ctx.emit(...)``, which is durable (not re-sent when the step is replayed)."""
        self._check_open()
        await self.authorize("runs.start", f"event:{topic}")
        await self._publish(topic, payload)

    async def _publish(self, topic: str, payload: Any, *, origin: str | None = None) -> None:
        """The engine's own publication (step code: ``origin``, the run whose step sends it): no check."""
        await self.events.publish(topic, worker.event_text(payload, origin))

    async def on(self, pattern: str, handler: Callable[[str, Any], Any]) -> Callable[[], Any]:
        """Call ``handler(topic, payload)`` for events whose topic matches ``pattern`` (``*`` and
        ``?`` wildcards, e.g. ``ticket.*``), from this process or, on PostgreSQL, any other. An async
        handler runs as a task; returns an async unsubscribe. Needs ``payloads.read``: events carry data."""
        self._check_open()
        await self.authorize("payloads.read", f"events:{pattern}")
        return await worker.subscribe(self, pattern, handler)

    async def work(self, stop: asyncio.Event, *, concurrency: int = 100) -> None:
        """Be a worker until ``stop`` is set: claim ready runs (new, handed back, orphaned, woken)
        from this client's queues, with its labels, and drive up to ``concurrency`` at once (needs ``runs.resume``)."""
        self._check_open()
        await self.authorize("runs.resume", "worker")
        await worker.work(self, stop, concurrency)

    # -- governance: each delegates to ``self.governance`` (podium/governance/service.py) ---------

    @property
    def principal(self) -> Principal:
        """Who this client acts as now (see :meth:`acting_as`)."""
        return self.governance.principal

    def acting_as(self, principal: Principal) -> contextlib.AbstractContextManager[None]:
        """Act as ``principal`` inside the block (an HTTP request handler sets its caller here)."""
        return self.governance.acting_as(principal)

    async def authenticate(self, token: str) -> Principal:
        """The principal an API token stands for. Raises :class:`AuthError` if it is not valid."""
        return await self.governance.authenticate(token)

    async def authorize(self, permission: str, target: str = "") -> Principal:
        """The acting principal if it holds ``permission``; otherwise the refusal is audited and
        :class:`PermissionDenied` raised. Every surface checks through here, so what follows sees
        the runs this client started in a burst (except a start's own check: bursts.py)."""
        if self.bursts.unsettled and permission != "runs.start":
            await self.bursts.landed(strict=False)  # a burst that cannot be committed stops no other call
        return await self.governance.authorize(permission, target)

    async def create_user(self, name: str, roles: builtins.list[str], *, service: bool = False) -> User:
        """Create (or update) a user or service account with ``roles``."""
        return await self.governance.create_user(name, roles, service=service)

    async def grant(self, name: str, roles: builtins.list[str]) -> User:
        """Add ``roles`` to user ``name`` (keeping the roles it has)."""
        return await self.governance.grant(name, roles)

    async def disable_user(self, name: str, *, disabled: bool = True) -> None:  # False: enable again
        await self.governance.disable_user(name, disabled=disabled)

    async def users(self) -> builtins.list[User]:
        return await self.governance.users()

    async def define_role(self, name: str, permissions: builtins.list[str]) -> None:
        """Define a custom role as a set of permissions."""
        await self.governance.define_role(name, permissions)

    async def create_token(
        self, user: str, *, name: str = "default", scopes: builtins.list[str] | None = None, ttl: float | None = None
    ) -> str:
        """Create an API token for ``user``; returns it (the only time it is shown: only its hash is kept)."""
        return await self.governance.create_token(user, name=name, scopes=scopes, ttl=ttl)

    async def revoke_token(self, user: str, name: str) -> int:
        """Revoke ``user``'s tokens called ``name``; returns how many."""
        return await self.governance.revoke_token(user, name)

    async def record_audit(self, action: str, target: str = "", **data: Any) -> None:
        """Append an entry to the audit log as the acting principal (surfaces record what they did)."""
        await self.governance.record(action, target, **data)

    def subscribe_audit(self, listener: Callable[[AuditEntry], None]) -> Callable[[], None]:
        """Call ``listener`` with every audit entry this client writes. Returns an unsubscribe."""
        return self.governance.subscribe_audit(listener)

    async def audit_log(self, *, after: int = 0, limit: int = 1000) -> builtins.list[AuditEntry]:
        """Audit entries, oldest first."""
        return await self.governance.audit_log(after=after, limit=limit)

    async def verify_audit(self) -> tuple[int, str | None]:
        """Check the audit chain and every ended run's history against its anchored digest."""
        return await self.governance.verify_audit()

    async def set_switch(self, scope: str, name: str = "*", *, mode: str = "pause", reason: str = "") -> None:
        """Switch off a workflow, a step kind, a provider, an agent, or everything (``scope='all'``)."""
        await self.governance.set_switch(scope, name, mode=mode, reason=reason)

    async def clear_switch(self, scope: str, name: str = "*") -> int:
        """Switch back on; paused runs continue. Returns how many parked runs were woken."""
        return await self.governance.clear_switch(scope, name)

    async def switches(self) -> dict[str, dict[str, Any]]:
        """The kill switches that are on (needs ``runs.read``, as on the API)."""
        await self.authorize("runs.read", "switches")
        return await self.governance.switches()

    def switched_off(
        self, workflow: str, kind: str | None = None, *, provider: str | None = None, agent: str | None = None
    ) -> dict[str, Any] | None:
        """The kill switch that stops this, if any."""
        return self.governance.switched_off(workflow, kind, provider=provider, agent=agent)

    async def set_policy(self, workflow: str, policy: Policy | None) -> None:
        """Set (or with None remove) the policy of ``workflow`` (``*``: the default for all)."""
        await self.governance.set_policy(workflow, policy)

    async def policies(self) -> dict[str, Policy]:
        """Every policy set, by workflow (needs ``workflows.read``, as on the API)."""
        await self.authorize("workflows.read", "policies")
        return await self.governance.policies()

    def policy_for(self, workflow: str) -> Policy | None:
        """The policy in force for ``workflow``."""
        return self.governance.policy_for(workflow)

    async def approvals(self, *, run_id: str | None = None, **page: Any) -> builtins.list[dict[str, Any]]:
        """Open approval requests, oldest first, a page at a time (``workflow=``, ``limit=``, ``after=``: Governance.approvals)."""
        return await self.governance.approvals(run_id=run_id, **page)

    async def decide(
        self, run_id: str, name: str, *, approve: bool, comment: str = "", payload: Any = None, request: int | None = None
    ) -> bool:
        """Approve or reject an approval request (optionally with an edited ``payload``); audited,
        resumes the run. Returns False if it was already decided. ``request``: the request's ``seq``
        as the approver saw it in the inbox (refused with NotFound if the run has asked again since)."""
        return await self.governance.decide(
            run_id, name, approve=approve, comment=comment, payload=payload, request=request
        )

    async def capabilities(self) -> dict[str, Capability]:
        """The capability registry: what workflow files may use, by name (needs ``workflows.read``)."""
        return await self.governance.capabilities()

    async def add_capability(
        self, name: str, kind: str, target: dict[str, Any], *, allow_private: bool = False, description: str = ""
    ) -> Capability:
        """Register (or replace) what workflow files may use as ``name`` (needs ``tools.manage``)."""
        return await self.governance.add_capability(
            name, kind, target, allow_private=allow_private, description=description
        )

    async def remove_capability(self, name: str) -> bool:
        """Unregister ``name``; runs that use it fail from their next use (needs ``tools.manage``)."""
        return await self.governance.remove_capability(name)

    # -- versions and prompts: delegate to ``self.deployments`` and ``self.prompt_library`` ---------

    async def deploy(self, source: str | Workflow, *, base_dir: str | None = None, text_only: bool = False) -> Workflow:
        """Deploy a workflow as a new version and make it active (a YAML file or text, a
        :class:`Workflow`, or its reference ``module:attr``; with ``text_only``, YAML text only);
        runs stay pinned to their version."""
        return await self.deployments.deploy(source, base_dir=base_dir, text_only=text_only)

    async def versions(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every deployed version of ``name``, oldest first, with who deployed it and which is active."""
        return await self.deployments.versions(name)

    async def rollback(self, name: str, *, to: str | None = None) -> str:
        """Make an earlier version active again (the one before the active one, or ``to``)."""
        return await self.deployments.rollback(name, to=to)

    async def diff(self, name: str, a: str, b: str) -> str:
        """A unified diff between two deployed versions' definitions."""
        return await self.deployments.diff(name, a, b)

    async def put_prompt(self, name: str, text: str, *, description: str = "") -> PromptVersion:
        """Store ``text`` as the next version of prompt ``name`` and make it active."""
        return await self.prompt_library.put_prompt(name, text, description=description)

    async def prompt(self, name: str, version: str | None = None) -> PromptVersion:
        """A prompt's active version, or ``version``."""
        return await self.prompt_library.prompt(name, version)

    async def prompt_versions(self, name: str) -> builtins.list[dict[str, Any]]:
        return await self.prompt_library.prompt_versions(name)

    async def prompts(self) -> dict[str, str]:
        """Every prompt's name and active version."""
        return await self.prompt_library.prompts()

    async def rollback_prompt(self, name: str, *, to: str | None = None) -> str:
        return await self.prompt_library.rollback_prompt(name, to=to)

    async def diff_prompt(self, name: str, a: str, b: str) -> str:
        return await self.prompt_library.diff_prompt(name, a, b)
