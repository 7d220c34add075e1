"""The engine client: the one entry point that every surface (Python, CLI, API, dashboard) calls."""

from __future__ import annotations

import asyncio
import builtins
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import _serde
from ._errors import (
    ConfigError,
    DefinitionError,
    KillSwitchActive,
    NotFound,
    RunCancelled,
    RunFailed,
    StoreError,
)
from ._executor import RunExecutor
from ._governance import Principal
from ._governed import Governed
from ._history import RunHistory, fold, without_payloads
from ._loading import guess_ref, load_workflow
from ._models import Event, EventType, RunRecord, RunStatus, new_id
from ._prompts import Prompts
from ._versions import Versioned
from ._workflow import Workflow
from ._working import Working
from .governance.capabilities import Manager as CapabilityManager
from .storage import Store, open_store

log = logging.getLogger("podium.engine")

_UNSET: Any = object()
_HOST = socket.gethostname()


def _owner_alive(owner: str) -> bool:
    """Whether the engine named ``owner`` (``host:pid:nonce``) may still be running."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return True  # another machine: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunHandle:
    """A started run. ``await handle.result()`` waits for it and returns its output."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"

    async def result(self, timeout: float | None = None) -> Any:
        """The run's output once it finishes; raises :class:`RunFailed` or :class:`RunCancelled`."""
        return await self.client.result(self.id, timeout=timeout)

    async def wait(self, timeout: float | None = None) -> RunRecord:
        """The run's final record, whatever its status."""
        return await self.client.wait(self.id, timeout=timeout)


class Client(Governed, Versioned, Prompts, Working, CapabilityManager):
    """Starts, drives, inspects and controls runs on one store.

    ``async with Client("sqlite:///podium.db") as client:`` opens the store and, unless
    ``recover=False``, resumes every unfinished run left by an engine that died.

    :param store: a :class:`Store` or a store URL (default: ``$PODIUM_DB`` or ``.podium/podium.db``).
    :param workflows: workflows to register (runs name their workflow; resume needs it registered or
        importable from the ``workflow_ref`` recorded at start).
    :param max_concurrent_runs: runs driven at once by this client; others wait as ``pending``.
    :param limits: concurrency caps per step ``kind``, e.g. ``{"llm": 4}``.
    :param lease_seconds: how long a run stays owned by this engine without a heartbeat.
    :param recover: resume unfinished runs whose engine died, on open.
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
    :param principal: act as this principal without a token: for trusted in-process services (the
        HTTP server acts as ``Principal.engine()`` for its background work and as each caller,
        through :meth:`acting_as`, for requests).
    :param started_event_after: a step attempt still running after this many seconds is recorded as
        running (found by the maintenance sweep every ``poll_interval``); quicker steps are recorded
        once, when they finish, so that a durable step costs one commit.
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
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.owner = f"{_HOST}:{os.getpid()}:{os.urandom(3).hex()}"
        self._workflows: dict[tuple[str, str], Workflow] = {}
        self._latest: dict[str, Workflow] = {}
        for wf in workflows:
            self.register(wf)
        if max_concurrent_runs < 1:
            raise ConfigError("max_concurrent_runs must be >= 1")
        self.max_concurrent_runs = max_concurrent_runs
        self._admitted = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._limit_spec = dict(limits or {})
        self._kind_limits: dict[str, asyncio.Semaphore] = {}
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.recover = recover
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=thread_pool_size or min(32, (os.cpu_count() or 1) + 4),
            thread_name_prefix="podium-step",
        )
        self.started_event_after = started_event_after
        self.execute = execute
        self.labels = list(labels) if labels is not None else None
        self.queues = list(queues) if queues is not None else None
        self.queue_limits = dict(queue_limits or {})
        self._work_event: asyncio.Event | None = None
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._token = token
        self._given_principal = principal
        self.audit_enabled = audit
        self._principal = Principal.local_user()
        self._switches: dict[str, dict[str, Any]] = {}
        self._policies: dict[str, Any] = {}
        self._unsubscribers: builtins.list[Callable[[], Any]] = []
        self._unloadable: set[str] = set()
        self._dead: builtins.list[str] = []
        self._dead_checked = float("-inf")
        self._listeners: list[Callable[[Event], None]] = []
        self._audit_listeners = []
        self._driving: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}
        self._maintenance: asyncio.Task[None] | None = None
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
        await self.store.open()
        try:
            self._principal = self._given_principal or await self._resolve_principal(self._token)
            await self._refresh_switches()
        except BaseException:
            await self.store.close()
            raise
        self._kind_limits = {k: asyncio.Semaphore(n) for k, n in self._limit_spec.items()}
        self._open = True
        if self.recover and self.execute:
            await self._resume()

    async def close(self, *, drain: bool = False) -> None:
        """Stop. With ``drain`` wait for the runs this client drives to finish; otherwise hand them
        back unfinished (they resume on the next engine start, without redoing finished steps)."""
        if not self._open:
            return
        if drain:
            await self.drain()
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
        driving = list(self._driving.values())
        for ex, task in driving:
            ex.reason = "shutdown"
            task.cancel()
        if driving:
            _, late = await asyncio.wait({t for _, t in driving}, timeout=10)
            if late:
                log.warning("%d run(s) did not stop within 10 s of shutdown; handing them back", len(late))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.store.release_runs(self.owner, [ex.run_id for ex, _ in driving]), 5
                )
        self._open = False
        try:
            await asyncio.wait_for(self.store.close(), 10)
        except TimeoutError:
            log.warning("closing the store %s took over 10 s; giving up on it", self.store.url)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def drain(self) -> None:
        """Wait until every run this client drives has finished."""
        while self._driving:
            await asyncio.gather(*(t for _, t in list(self._driving.values())), return_exceptions=True)

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the client is not open; use 'async with podium.Client(...) as client:'")

    # -- workflows ------------------------------------------------------------------------------

    def register(self, wf: Workflow) -> Workflow:
        """Make ``wf`` known to this client (checks it). Returns it."""
        wf.freeze()
        if wf.ref is None:
            wf.ref = guess_ref(wf)
        self._workflows[(wf.name, wf.version)] = wf
        self._latest[wf.name] = wf
        return wf

    def workflows(self) -> dict[str, builtins.list[str]]:
        """Registered workflows: name -> versions."""
        out: dict[str, builtins.list[str]] = {}
        for name, version in sorted(self._workflows):
            out.setdefault(name, []).append(version)
        return out

    def workflow(self, name: str, version: str | None = None) -> Workflow:
        """A registered workflow by name (latest registered version unless ``version`` is given)."""
        wf = self._latest.get(name) if version is None else self._workflows.get((name, version))
        if wf is None:
            known = ", ".join(sorted(f"{n}@{v}" for n, v in self._workflows)) or "none"
            raise NotFound(
                f"workflow {name!r}{f' version {version}' if version else ''} is not registered (known: {known})"
            )
        return wf

    def _workflow_for(self, run: RunRecord) -> Workflow:
        wf = self._workflows.get((run.workflow, run.version))
        if wf is not None:
            return wf
        if run.workflow_ref:
            loaded = load_workflow(run.workflow_ref)
            if loaded.version != run.version:
                raise DefinitionError(
                    f"run {run.id} was started on version {run.version} of {run.workflow!r}, but "
                    f"{run.workflow_ref} now defines version {loaded.version}; runs are pinned to their version: "
                    f"register version {run.version} to finish it"
                )
            return self.register(loaded)
        raise NotFound(
            f"run {run.id} needs workflow {run.workflow!r} version {run.version}, which is not registered "
            "and was started without a loadable reference; register it with client.register(...)"
        )

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
        if isinstance(workflow, str) and workflow not in self._latest:
            await self._load_deployed(workflow)
        if isinstance(workflow, Workflow):
            if self._workflows.get((workflow.name, workflow.version)) is workflow:
                self._latest[workflow.name] = wf = workflow  # registered (and checked) already
            else:
                wf = self.register(workflow)
        else:
            wf = self.workflow(workflow)
        if wf._resolved_for is not self:  # once per definition: its deployed version
            wf = await self._resolve_version(wf)
        await self.authorize("runs.start", f"workflow:{wf.name}")
        off = self.switched_off(wf.name)
        if off is not None:
            raise KillSwitchActive(
                f"workflow {wf.name!r} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')}); "
                "clear the switch with 'podium killswitch clear' to start runs again"
            )
        value = wf.validate_input(input)
        payload = self._stored_input(wf.name, _serde.dumps(value))
        rid = run_id or new_id()
        await self._audit("run.start", rid, workflow=wf.name, version=wf.version, queue=queue)
        await self._create_and_drive(
            wf,
            rid,
            payload,
            timeout=timeout if timeout is not None else wf.timeout,
            queue=queue,
            priority=priority,
            tenant=tenant,
        )
        return RunHandle(self, rid)

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
    ) -> bool:
        now = time.time()
        has_slot = self._try_admit() if self.execute else False
        status = RunStatus.RUNNING if has_slot else RunStatus.PENDING
        run = RunRecord(
            id=rid,
            workflow=wf.name,
            version=wf.version,
            status=status,
            input=payload,
            created_at=now,
            started_at=now if has_slot else None,
            parent_run_id=parent[0] if parent else None,
            parent_step=parent[1] if parent else None,
            forked_from=fork[0] if fork else None,
            fork_step=fork[1] if fork else None,
            workflow_ref=wf.ref,
            owner=self.owner if self.execute else None,
            lease_expires_at=now + self.lease_seconds if self.execute else None,
            queue=queue,
            priority=priority,
            tenant=tenant,
        )
        data: dict[str, Any] = {"owner": self.owner, "format": _serde.FORMAT_VERSION}
        if timeout:
            data["timeout"] = timeout
        first = Event(
            run_id=rid,
            seq=1,
            type=EventType.RUN_STARTED if has_slot else EventType.RUN_QUEUED,
            ts=now,
            data=json.dumps(data),
        )
        copied = [dataclasses.replace(e, run_id=rid, seq=i + 2) for i, e in enumerate(events)]
        try:
            created = await self.store.create_run(run, [first, *copied])
        except BaseException:
            if has_slot:
                self._release_slot()
            raise
        if not created:
            if has_slot:
                self._release_slot()
            return False
        if self.execute:
            self._drive(wf, run, [first, *copied], admitted=has_slot)
        else:
            await self.store.notify_work()
        for listener in self._listeners:  # live views see the start too (later events come from the executor)
            with contextlib.suppress(Exception):
                listener(first)
        return True

    def _try_admit(self) -> bool:
        if self._admitted < self.max_concurrent_runs:
            self._admitted += 1
            return True
        return False

    async def _admit(self) -> None:
        while not self._try_admit():
            fut = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(fut)
            await fut

    def _release_slot(self) -> None:
        self._admitted -= 1
        while self._slot_waiters:
            fut = self._slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    def _drive(
        self, wf: Workflow, run: RunRecord, events: list[Event], *, admitted: bool = False
    ) -> RunExecutor:
        ex = RunExecutor(self, wf, run, events)
        task = asyncio.get_running_loop().create_task(self._drive_task(ex, admitted))
        self._driving[run.id] = (ex, task)
        if self._maintenance is None and type(self.store).__name__ != "MemoryStore":
            self._maintenance = asyncio.get_running_loop().create_task(self._maintain())
        return ex

    async def _drive_task(self, ex: RunExecutor, admitted: bool) -> None:
        try:
            if not admitted:
                await self._admit()
                admitted = True
            if ex.run.status is RunStatus.PENDING:
                now = time.time()
                await ex.emit(
                    EventType.RUN_STARTED, run_update={"status": RunStatus.RUNNING, "started_at": now}
                )
                ex.run.status = RunStatus.RUNNING
            await ex.drive()
        except asyncio.CancelledError:
            if ex.reason != "shutdown":
                raise
        except Exception:
            log.exception("run %s: engine error", ex.run_id)
        finally:
            if admitted:
                self._release_slot()
            self._driving.pop(ex.run_id, None)
            if not ex.finished.done():
                ex.finished.set_result(None)

    # -- inspecting -----------------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord:
        """The run's record; raises :class:`NotFound`."""
        self._check_open()
        await self.authorize("runs.read", run_id)
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
    ) -> list[RunRecord]:
        """Runs, newest first."""
        self._check_open()
        await self.authorize("runs.read")
        try:
            statuses = [RunStatus(s) for s in status] if status else None
        except ValueError as exc:
            raise ConfigError(f"{exc}; statuses are: {', '.join(s.value for s in RunStatus)}") from None
        return await self.store.list_runs(
            workflow=workflow, status=statuses, parent_run_id=parent_run_id, limit=limit, offset=offset
        )

    async def history(self, run_id: str) -> RunHistory:
        """Everything recorded about a run: steps, attempts, outputs, errors, timings, events."""
        run = await self.get(run_id)
        events = await self.store.load_events(run_id)
        if not self.principal.can("payloads.read"):  # the shape of the run, without its data
            hidden = '"[hidden: needs payloads.read]"'
            run.input = run.output = hidden
            events = without_payloads(events)
        return RunHistory(run=run, steps=fold(events), events=events)

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run is finished and return its record."""
        self._check_open()
        entry = self._driving.get(run_id)
        if entry is not None:
            await asyncio.wait_for(asyncio.shield(entry[0].finished), timeout)
            if entry[0].run.status.finished:
                return entry[0].run
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            run = await self.get(run_id)
            if run.status.finished:
                return run
            entry = self._driving.get(run_id)
            if entry is not None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                await asyncio.wait_for(asyncio.shield(entry[0].finished), left)
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} did not finish within {timeout}s (status {run.status.value})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def result(self, run_id: str, timeout: float | None = None) -> Any:
        """The output of a finished run (waiting for it); raises :class:`RunFailed`/:class:`RunCancelled`."""
        run = await self.wait(run_id, timeout)
        if run.status is RunStatus.COMPLETED:
            return _serde.loads(run.output)
        err = json.loads(run.error) if run.error else {}
        where = f" at step {err['step']!r}" if err.get("step") else ""
        msg = f"run {run_id} of {run.workflow!r} {run.status.value}{where}: {err.get('message', '')}"
        if run.status is RunStatus.CANCELLED:
            raise RunCancelled(msg, run_id=run_id, error=err)
        raise RunFailed(msg, run_id=run_id, error=err)

    def _stored_input(self, workflow: str, payload: str) -> str:
        """A run's input as it is stored: redacted when the workflow's policy says ``payloads``."""
        policy = self.policy_for(workflow) if self._policies else None
        if policy is not None and "payloads" in policy.redact:
            from .guardrails import redact_json

            return redact_json(payload)
        return payload

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event this client writes (live progress). Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- controlling ----------------------------------------------------------------------------

    async def cancel(self, run_id: str, *, wait: float = 10.0) -> RunRecord:
        """Cancel an unfinished run (and its unfinished child runs). Running steps are cancelled and
        recorded as such. Returns the run's record (unchanged if it had already finished)."""
        await self.authorize("runs.cancel", run_id)
        run = await self.get(run_id)
        if not run.status.finished:
            await self._audit("run.cancel", run_id)
        if run.status.finished:
            return run
        for child in await self.store.list_runs(
            parent_run_id=run_id, status=[RunStatus.PENDING, RunStatus.RUNNING]
        ):
            await self.cancel(child.id, wait=wait)
        if await self._cancel_local(run_id):
            return await self.wait(run_id)
        await self.store.request_cancel(run_id)
        # Nobody alive drives it: take it over and record the cancellation here.
        if run.owner is None or not _owner_alive(run.owner) or (run.lease_expires_at or 0) < time.time():
            claimed = await self.store.claim_runs(
                self.owner,
                lease_seconds=self.lease_seconds,
                limit=1,
                now=time.time(),
                run_ids=[run_id],
                steal_from=[run.owner] if run.owner else [],
            )
            if claimed:
                events = await self.store.load_events(run_id)
                ex = RunExecutor(self, self._workflow_for_or_stub(claimed[0]), claimed[0], events)
                ex.reason = "cancelled"
                await ex._stop_running_steps()
                await ex._finish(
                    RunStatus.CANCELLED, error={"type": "podium.RunCancelled", "message": "cancelled"}
                )
                return await self.get(run_id)
        return await self.wait(run_id, timeout=wait)

    def _workflow_for_or_stub(self, run: RunRecord) -> Workflow:
        try:
            return self._workflow_for(run)
        except Exception:
            return Workflow(run.workflow, version=run.version)

    async def _cancel_local(self, run_id: str) -> bool:
        entry = self._driving.get(run_id)
        if entry is None:
            return False
        ex, task = entry
        if ex.reason is None:
            ex.reason = "cancelled"
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def resume(
        self, run_ids: Sequence[str] | None = None, *, limit: int = 10_000
    ) -> builtins.list[str]:
        """Continue unfinished runs that no live engine drives (all of them, or ``run_ids``). Finished
        steps are not executed again; a step that was in flight is attempted again. Returns the ids
        of the runs now driven by this client; runs whose workflow cannot be loaded are left as they are
        (and logged)."""
        await self.authorize("runs.resume")
        ids = await self._resume(run_ids, limit=limit)
        if ids:
            await self._audit("run.resume", ",".join(ids[:50]), count=len(ids))
        return ids

    async def _resume(
        self, run_ids: Sequence[str] | None = None, *, limit: int = 10_000
    ) -> builtins.list[str]:
        self._check_open()
        if not self.execute:
            raise ConfigError("this client does not execute runs (execute=False); resume them with a worker")
        # Looking for dead owners on this host costs a query: a worker's frequent claims do it every few seconds.
        if run_ids is not None or time.monotonic() - self._dead_checked > 5:
            self._dead_checked = time.monotonic()
            self._dead = [
                o for o in await self.store.unfinished_owners() if o != self.owner and not _owner_alive(o)
            ]
        dead = self._dead
        claimed = await self.store.claim_runs(
            self.owner,
            lease_seconds=self.lease_seconds,
            limit=limit,
            now=time.time(),
            run_ids=run_ids,
            steal_from=dead,
            queues=self.queues,
            labels=self.labels,
            queue_limits=self.queue_limits or None,
        )
        resumed = []
        for run in claimed:
            if run.id in self._driving:
                continue
            try:
                await self._check_pinned(run.workflow, run.version)
                if (run.workflow, run.version) not in self._workflows:
                    await self._load_deployed(run.workflow, run.version)
                wf = self._workflow_for(run)
            except Exception as exc:
                if run.id not in self._unloadable:
                    self._unloadable.add(run.id)
                    log.error("cannot resume run %s: %s", run.id, exc)
                await self.store.release_runs(self.owner, [run.id])
                continue
            events = await self.store.load_events(run.id)
            ex = self._drive(wf, run, events)
            await ex.emit(
                EventType.RUN_RESUMED,
                data=json.dumps({"owner": self.owner}),
                run_update={"labels": None} if run.labels else None,
            )
            resumed.append(run.id)
        return resumed

    async def signal(self, run_id: str, name: str, payload: Any = None) -> bool:
        """Send signal ``name`` with ``payload`` to a run (what ``ctx.wait_for(name)`` returns).

        The first signal of a name wins: returns False if the run already had one. A parked run is
        woken: this client drives it on if it executes runs, else a worker picks it up."""
        self._check_open()
        await self.authorize("runs.signal", run_id)
        sent = await self._deliver_signal(run_id, name, payload)
        await self._audit("run.signal", run_id, name=name, delivered=sent)
        return sent

    async def _deliver_signal(self, run_id: str, name: str, payload: Any) -> bool:
        run = await self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}; list runs with 'podium runs'")
        if run.status.finished:
            raise ConfigError(f"run {run_id} is already {run.status.value}; it waits for no signal")
        stored = self._stored_input(run.workflow, _serde.dumps(payload))  # redacted if the policy says so
        sent = await self.store.send_signal(run_id, name, stored, now=time.time())
        entry = self._driving.get(run_id)
        if entry is not None and not entry[0].finished.done():
            entry[0].signals = await self.store.get_signals(run_id)
            if entry[0].due(time.time()):
                entry[0].poke()
        elif self.execute:
            await self._resume([run_id])
        else:
            await self.store.notify_work()
        return sent

    async def usage(self, *, run_id: str | None = None, workflow: str | None = None) -> Any:
        """Tokens, cost and latency of model and tool calls, rolled up per step, model, run and kind
        (see ``podium.ai.usage``)."""
        from .ai import usage

        await self.authorize("runs.read", run_id or workflow or "")
        return await usage(self, run_id=run_id, workflow=workflow)

    async def fork(self, run_id: str, from_step: str, *, input: Any = _UNSET) -> RunHandle:
        """Start a new run, linked to ``run_id``, that re-executes ``from_step`` and every step after
        it; every other step that finished in the earlier run is reused, not executed again.
        ``input`` replaces the run input (the reused steps keep their earlier results)."""
        self._check_open()
        await self.authorize("runs.fork", run_id)
        parent = await self.get(run_id)
        await self._check_pinned(parent.workflow, parent.version)
        if (parent.workflow, parent.version) not in self._workflows:
            await self._load_deployed(parent.workflow, parent.version)
        wf = self._workflow_for(parent)
        if from_step not in wf.steps:
            import difflib

            close = difflib.get_close_matches(from_step, list(wf.steps), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"steps are: {', '.join(wf.steps)}"
            raise NotFound(f"workflow {wf.name!r} has no step {from_step!r}; {hint}")
        redo = {from_step}
        stack = [from_step]
        while stack:
            for d in wf.steps[stack.pop()].dependents:
                if d not in redo:
                    redo.add(d)
                    stack.append(d)
        for loop_step, body in wf.loop_bodies.items():
            if redo & set(body):
                redo |= set(body) | {loop_step}
        keep = []
        for ev in await self.store.load_events(run_id):
            if ev.step is None or ev.step.split("/", 1)[0] in redo:  # "step/call" sub-steps follow their step
                continue
            if ev.type in (EventType.STEP_COMPLETED, EventType.STEP_SKIPPED, EventType.LOOP_ITERATION):
                data = json.loads(ev.data) if ev.data else {}
                if ev.type != EventType.LOOP_ITERATION:
                    data["reused_from"] = run_id
                keep.append(dataclasses.replace(ev, data=json.dumps(data)))
        payload = parent.input if input is _UNSET else self._stored_input(wf.name, _serde.dumps(wf.validate_input(input)))
        rid = new_id()
        await self._audit("run.fork", rid, parent=run_id, step=from_step, edited_input=input is not _UNSET)
        await self._create_and_drive(wf, rid, payload or "null", fork=(run_id, from_step), events=keep)
        return RunHandle(self, rid)

    async def _run_child(
        self, parent: RunExecutor, wf: Workflow, child_input: Any, key: str, step_id: str
    ) -> RunRecord:
        self.register(wf)
        if wf._resolved_for is not self:
            wf = await self._resolve_version(wf)
        rid = key.replace(":", ".")
        payload = self._stored_input(wf.name, _serde.dumps(wf.validate_input(child_input)))
        created = await self._create_and_drive(
            wf, rid, payload, timeout=wf.timeout, parent=(parent.run_id, step_id)
        )
        if not created and rid not in self._driving:
            run = await self.get(rid)
            if not run.status.finished:
                await self._resume([rid])
        return await self.wait(rid)
