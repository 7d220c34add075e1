"""Background work of an engine: the maintenance sweep (leases, cancellation requests from other
processes, parked steps and timers, kill switches) and the claim loop of ``podium worker``."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .. import _serde
from ..errors import AuthError, ConfigError, LeaseLost, StoreError
from ..governance.identity import REFUSED_SUFFIX
from ..records import EventType, RunStatus
from .timers import EARLY, Timers

if TYPE_CHECKING:
    from ..governance.service import Governance
    from ..records import Event, RunRecord
    from .bursts import Bursts
    from .driving import DrivenRuns
    from .executor import RunExecutor
    from .ports import RunHost
    from .registry import WorkflowRegistry
    from .versions import Deployments
    from .workflow import Workflow

    class Client(RunHost, Protocol):
        """What background work asks of the engine client it runs in."""

        driving: DrivenRuns
        bursts: Bursts
        governance: Governance
        registry: WorkflowRegistry
        deployments: Deployments
        claims: Claims
        timers: Timers
        execute: bool
        poll_interval: float
        lease_seconds: float
        started_event_after: float
        queues: list[str] | None
        queue_limits: dict[str, int]
        events: Any
        _handler_tasks: set[asyncio.Task[Any]]
        _unsubscribers: list[Callable[[], Any]]

        def wake_at(self, run_id: str, when: float) -> None: ...

        def drive_run(self, wf: Workflow, run: RunRecord, events: list[Event], *, refused: str | None = None) -> RunExecutor: ...

        async def take_over(self, run_ids: Sequence[str] | None = None, *, limit: int = 10_000) -> list[str]: ...

log = logging.getLogger("podium.engine")

HOST = socket.gethostname()


def _pid_namespace() -> str:
    """This process's PID namespace (and boot), so that a pid is only ever judged where it means
    something: two containers can share a hostname (host networking) but not their pids."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()[:8]
        return f"{ns:x}.{boot}"
    except OSError:
        return "nons"


PID_NS = _pid_namespace()


def new_owner() -> str:
    """A per-process engine instance id: ``host:pid:pid-namespace:nonce``."""
    return f"{HOST}:{os.getpid()}:{PID_NS}:{os.urandom(4).hex()}"


def owner_alive(owner: str) -> bool:
    """Whether the engine named ``owner`` may still be running. Only an engine on this host, in this
    PID namespace and boot, whose pid no longer exists is known dead; anything else (another machine,
    another container sharing the hostname, an older owner format) is judged by its lease alone."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != HOST or parts[2] != PID_NS or parts[2] == "nons" or not parts[1].isdigit():
        return True
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphan_reason(run: Any, now: float | None = None) -> str | None:
    """Why a run recorded as running is not being driven by anyone, or None: ``owner died`` (its
    engine on this host is gone) or ``lease expired`` (no heartbeat from its engine in time). Such a
    run continues at the next ``podium runs resume`` or when any engine opens the store."""
    if run.status is not RunStatus.RUNNING or not run.owner:
        return None
    if not owner_alive(run.owner):
        return "owner died"
    if run.lease_expires_at is not None and run.lease_expires_at < (time.time() if now is None else now):
        return "lease expired"
    return None


def retrying(exc: Exception, what: str, *args: Any) -> None:
    """Log a failure of background work that is tried again: one line for the store failing (an
    outage says the same every sweep; its cause is in the message), a traceback for anything else."""
    if isinstance(exc, StoreError):
        log.warning(what + " (%s)", *args, exc)
    else:
        log.error(what, *args, exc_info=exc)


async def _hand_back(client: Client, refused: str) -> None:
    """Stop every run this engine drives (no end recorded: they resume elsewhere) and release them
    at once, for the engines whose tokens still stand."""
    held = client.driving.items()
    log.error("this engine's token is refused (%s): handing back the %d run(s) it drives", refused, len(held))
    for ex, _ in held:
        client.driving.stop(ex.run_id)
    await asyncio.wait({task for _, task in held}, timeout=10)
    await client.store.release_runs(client.owner, [ex.run_id for ex, _ in held])
    reason = refused.removesuffix(REFUSED_SUFFIX)
    for ex, _ in held:  # what `podium runs show` tells of a run no engine drives
        await client.governance.record("run.handback", ex.run_id, engine=client.owner, reason=reason)


async def maintain(client: Client) -> None:
    """Renew leases, fire due timers and act on cancellation requests and kill switches, every
    ``poll_interval``, while the client drives runs."""
    last_renew = time.monotonic()
    driving, store, governance = client.driving, client.store, client.governance
    timers = client.timers
    next_sweep = time.monotonic() + client.poll_interval
    while True:
        pause = next_sweep - time.monotonic()
        soonest = timers.next_due()
        if soonest is not None:  # a timer fires on time, not at the next sweep
            pause = min(pause, soonest - EARLY - time.time())
        await asyncio.sleep(max(0.0, pause))
        if time.time() >= timers.next_load and governance.principal.can("runs.resume"):  # others' parked runs too
            try:
                await timers.load(store, time.time())
            except Exception as exc:
                retrying(exc, "reading the timers due soon failed; retrying")
        if timers:
            await wake_due(client)
        if time.monotonic() < next_sweep:
            continue  # woken for a timer: the rest of the sweep keeps its pace
        next_sweep = time.monotonic() + client.poll_interval
        try:  # starts a stopped engine acknowledged through its start log, not committed (bursts.py)
            await client.bursts.recover(sweep=True)
        except Exception as exc:
            retrying(exc, "replaying the start logs of stopped engines failed; retrying")
        ids = driving.ids()
        if not ids:  # idle, yet a start or a fork here checks the switches and policies set elsewhere
            try:
                await governance.refresh()
            except Exception as exc:
                retrying(exc, "reading kill switches and policies failed; retrying")
            continue
        if time.monotonic() - last_renew >= client.lease_seconds / 3:
            # First, and on its own: no other part of the sweep failing (a policy row this release
            # cannot read, a slow read of signals) may let the leases of running steps run out.
            try:
                await _renew(client, ids)
                last_renew = time.monotonic()
            except Exception as exc:
                retrying(exc, "renewing the leases of %d run(s) failed; retrying", len(ids))
        try:
            if refused := await governance.own_refusal():  # a revoked token: no further step here
                await _hand_back(client, refused)
                continue
            now = time.time()
            await governance.refresh()
            if governance.switch_cache:
                await governance.apply_switches()
            marked_before = now - client.started_event_after
            for ex, _ in driving.items():
                if ex.running and ex.to_mark(marked_before):
                    await ex.mark_started(client.started_event_after)
                if ex.parked or ex.holding:  # a signal sent through another process
                    ex.signals = await store.get_signals(ex.run_id)
                    ex.signal_news()
                    if ex.due(now):
                        ex.poke()
            for rid in await store.cancel_requests(ids):
                if (asked := driving.get(rid)) is not None:
                    asked.run.cancel_requested = True  # as stored (the record result() may give: driving.py)
                await driving.cancel(rid)
        except Exception as exc:
            retrying(exc, "engine maintenance failed; retrying")


async def _renew(client: Client, ids: list[str]) -> None:
    """The heartbeat: renew the leases of the runs ``client`` drives; stop driving those another
    engine holds now."""
    driving, now = client.driving, time.time()
    kept = await client.store.renew_leases(client.owner, ids, lease_seconds=client.lease_seconds, now=now)
    client.claims.renewed += len(kept)
    for rid in kept:
        if (holder := driving.get(rid)) is not None:
            holder.lease_renewed(now + client.lease_seconds)
    for rid in set(ids) - kept:
        holder = driving.get(rid)
        # A run that parks gives its lease up itself, then finishes its checkpoint here.
        if holder is None or holder.run.status is not RunStatus.RUNNING:
            continue
        # Its end (or its parking) may have committed, clearing the owner, a moment before its
        # executor hears back: only a run that is unfinished and not left parked is lost.
        run = await client.store.get_run(rid)
        if run is not None and (run.status.finished or run.status is RunStatus.WAITING or run.owner == client.owner):
            continue
        client.claims.lost += 1
        log.warning("run %s: lease lost to another engine; stopping here", rid)
        driving.stop(rid)


async def recover(client: Client) -> None:
    """On open: resume the runs whose engine died, and wake parked runs when their timers fall due.
    It claims no more runs than the client drives at once: a worker that claimed the whole backlog
    would hold it (leased, queued behind its own slots) while the other workers stood idle."""
    free = client.driving.max_concurrent - len(client.driving)
    if free > 0:
        await client.take_over(limit=free)
    await client.timers.load(client.store, time.time())  # the rest are read in as they come due


async def wake_due(client: Client) -> None:
    """Claim the parked runs whose timer or deadline is due (in this process: an embedded client
    needs no worker for ``ctx.sleep`` or an approval's timeout)."""
    now = time.time()
    # Claimed a little early: the run is replayed up to its wait, which it then waits in memory
    # (waits.HOLD), so it goes on when due even if a thousand timers fall due at that instant.
    due = client.timers.pop_due(now + EARLY)
    for i in range(0, len(due), WAKE_BATCH):
        part = due[i : i + WAKE_BATCH]
        if i:
            await asyncio.sleep(0)  # the runs woken so far go on before the next ones are claimed
        try:
            await take_over(client, part, len(part), due_by=now + EARLY)
        except Exception as exc:
            retrying(exc, "waking %d parked run(s) failed; retrying", len(due) - i)
            for rid in due[i:]:
                client.timers[rid] = now + client.poll_interval
            return


#: Parked runs claimed in one go when their timers fall due together.
WAKE_BATCH = 50


#: Starts the text of an application event that a run's step sent (``ctx.emit``), followed by the
#: emitting run's id and the mark again: the runs the event starts act for whoever started that run
#: (``podium serve``'s triggers). The text of a payload (JSON) never starts with it, so an event
#: sent through ``client.emit`` cannot pass for one a run sent.
_ORIGIN = "\x1e"


def event_text(payload: Any, origin: str | None = None) -> str:
    """An application event's text on the bus; ``origin``: the run whose step sent it."""
    text = _serde.dumps(payload)
    return f"{_ORIGIN}{origin}{_ORIGIN}{text}" if origin else text


def read_event(text: str) -> tuple[Any, str | None]:
    """(payload, the run that sent it or None) of an event's text (:func:`event_text`)."""
    if text.startswith(_ORIGIN):
        origin, _, rest = text[1:].partition(_ORIGIN)
        return _serde.loads(rest), origin or None
    return _serde.loads(text), None


async def subscribe(
    client: Client, pattern: str, handler: Callable[..., Any], *, origin: bool = False
) -> Callable[[], Any]:
    """``client.on`` without its permission check, for the engine's own subscriptions (``podium
    serve``'s triggers: the runs they start are checked); unsubscribed when the client closes.
    ``origin``: call ``handler(topic, payload, run_id)``, the id of the run that sent the event (None
    for one sent by ``client.emit``)."""
    unsubscribe = await client.events.subscribe(topic_handler(pattern, handler, client._handler_tasks, origin=origin))
    client._unsubscribers.append(unsubscribe)
    return unsubscribe


def topic_handler(
    pattern: str, handler: Callable[..., Any], tasks: set[asyncio.Task[Any]], *, origin: bool = False
) -> Callable[[str, str], None]:
    """A store subscriber that calls ``handler(topic, payload)`` (with ``origin``, ``handler(topic,
    payload, run_id)``) for topics matching ``pattern`` (an async handler runs as a task, kept in
    ``tasks`` while it runs)."""
    loop = asyncio.get_running_loop()

    def deliver(topic: str, payload: str) -> None:
        if not fnmatch.fnmatchcase(topic, pattern):
            return
        value, sender = read_event(payload)
        result = handler(topic, value, sender) if origin else handler(topic, value)
        if asyncio.iscoroutine(result):
            task = loop.create_task(result)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return deliver


async def work(client: Client, stop: asyncio.Event, concurrency: int) -> None:
    """Claim ready runs until ``stop`` is set, driving up to ``concurrency`` at once."""
    driving = client.driving
    # With a backlog, a finished run's slot is claimed again once a tenth of the slots are free:
    # one claim per finished run would cost a claim query per run, each scanning the runs held.
    batch = max(1, concurrency // 10)
    backlog, eager = True, True
    # Listen before the first claim: a run started between that claim and the first wait would
    # otherwise wake nobody (a bus subscribes on its first wait) and wait for the next poll.
    await client.events.wait_for_work(0)
    while not stop.is_set():
        try:  # its token again (every few seconds): a worker whose token was revoked stops claiming
            await client.governance.authorize("runs.resume", "worker")
        except AuthError as exc:
            log.error("worker %s stops claiming runs: %s", client.owner, exc)
            raise
        except StoreError as exc:  # the store is down: not a refusal; its token is checked again when it answers
            retrying(exc, "checking this worker's token failed; retrying")
        free = concurrency - len(driving)
        if free >= batch or (free > 0 and eager):
            try:
                backlog = len(await client.take_over(limit=free)) >= free
            except Exception as exc:
                client.claims.claim_failures += 1
                retrying(exc, "claiming runs failed; retrying")
        waiter = asyncio.ensure_future(client.events.wait_for_work(client.poll_interval))
        stopper = asyncio.ensure_future(stop.wait())
        # A run finishing frees a slot: wake on it when every slot is taken or the last claim
        # filled every free one (more work is likely waiting). Otherwise new work comes with a
        # notification: claiming after every completion would flood the store with empty claims.
        done = driving.tasks() if backlog or len(driving) >= concurrency else []
        woke, _ = await asyncio.wait([waiter, stopper, *done], return_when=asyncio.FIRST_COMPLETED)
        eager = waiter in woke or not backlog  # notified, polled, or no backlog: claim what is free
        for t in (waiter, stopper):
            t.cancel()


@dataclass
class Claims:
    """What an engine's claims remember: owners found dead on this host (looked up at most every
    few seconds: a worker claims often), and runs that could not be loaded (logged once); and the
    counts a worker's ``/metrics`` reports (podium.server.health)."""

    dead: list[str] = field(default_factory=list)
    checked_at: float = float("-inf")
    unloadable: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """Workflow versions this engine could not load a run of (workflow, version, the run's
    ``workflow_ref`` or ""), and when to claim their runs again. Kept per version, not per run:
    a version retired with thousands of runs left is one entry, in memory and in every claim."""
    claimed: int = 0
    """Runs claimed and driven (new, handed back, orphaned, woken)."""
    claim_failures: int = 0
    """Claim rounds of the worker loop that raised (the store refused or was down)."""
    renewed: int = 0
    """Leases renewed on runs this engine drives."""
    lost: int = 0
    """Runs whose lease another engine had taken when this one came to renew it."""
    store_failed: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Runs whose driving a store error stopped: how many times in a row, and when last."""

    def cannot_load(self, run: RunRecord) -> bool:
        """Whether this engine could not load ``run``'s workflow version when it last tried."""
        return version_of(run) in self.unloadable


def version_of(run: RunRecord) -> tuple[str, str, str]:
    """What decides whether an engine can load a run: its workflow, version and reference."""
    return (run.workflow, run.version, run.workflow_ref or "")


async def take_over(
    client: Client, run_ids: Sequence[str] | None, limit: int, due_by: float | None = None
) -> list[str]:
    """Claim ready runs no live engine holds (``run_ids``, or any) and drive them in ``client``
    (parked runs whose timers are due by ``due_by``, default now)."""
    if not client.execute:
        raise ConfigError("this client does not execute runs (execute=False); resume them with a worker")
    store, claims = client.store, client.claims
    if run_ids is not None or time.monotonic() - claims.checked_at > 5:
        claims.checked_at = time.monotonic()
        claims.dead = [o for o in await store.unfinished_owners() if o != client.owner and not owner_alive(o)]
    now = time.time()
    # A run this engine cannot load is left to the engines that can (and tried again later): claimed
    # again at once, it would take a free slot from the runs behind it in every claim.
    # Asked for by id (a resume, a timer), or its version registered since: claimed all the same.
    # Left alone by version, so a claim carries one entry per version, not one per run. Every one:
    # a claim sending the last N failed went round the others for ever, each claim filled with their
    # runs and a run this engine can drive behind them never reached (tests/test_attack_rev12_unloadable.py).
    skip = [] if run_ids is not None else [
        key for key, at in claims.unloadable.items() if at > now and key[:2] not in client.registry
    ]
    claimed = await store.claim_runs(
        client.owner,
        lease_seconds=client.lease_seconds,
        limit=limit,
        now=now,
        run_ids=run_ids,
        steal_from=claims.dead,
        queues=client.queues,
        labels=client.labels,
        queue_limits=client.queue_limits or None,
        due_by=due_by,
        skip_versions=skip,
    )

    ready: list[tuple[RunRecord, Workflow]] = []
    for run in claimed:  # one at a time: a deployed version is loaded once
        if run.id in client.driving:  # its executor here is still finishing: hand it back, try again
            await store.release_runs(client.owner, [run.id])
            client.wake_at(run.id, time.time())
            continue
        try:
            await client.deployments.check_pinned(run.workflow, run.version)
            if (run.workflow, run.version) not in client.registry:
                await client.deployments.load_deployed(run.workflow, run.version)
            ready.append((run, client.registry.for_run(run)))
            claims.unloadable.pop(version_of(run), None)
        except Exception as exc:
            if version_of(run) not in claims.unloadable:  # once per version: its other runs fail alike
                log.error(
                    "cannot resume run %s: %s (released for an engine that has it; the other runs of %r version "
                    "%s are left alone too)", run.id, exc, run.workflow, run.version,
                )  # fmt: skip
            claims.unloadable[version_of(run)] = time.time() + UNLOADABLE_RETRY
            await store.release_runs(client.owner, [run.id])

    async def resume(run: RunRecord, wf: Workflow) -> None:
        events = await store.load_events(run.id)
        if client.governance.switch_cache and parked_by_switch(events):
            # Woken, likely by a clear made elsewhere after this engine last read the switches
            # (every poll_interval): a stale switch would park it again and spend the wake.
            await client.governance.refresh()
        refused = await client.governance.check_history(run, events)  # an edited history fails, not resumes
        if refused:
            log.error("run %s is not resumed: %s", run.id, refused)
        labelled, run.labels = bool(run.labels), None  # as stored from here (the record result() may give)
        ex = client.drive_run(wf, run, events, refused=refused)
        if run.status is RunStatus.PENDING and run.started_at is None and refused is None:
            # Taken up for its first start (queued, never run): its task records run_started, with
            # this engine as its owner, once a slot is free; no run_resumed before it.
            ex.taken_up = {"labels": None} if labelled else {}
            return
        await ex.emit(
            EventType.RUN_RESUMED,
            data=json.dumps({"owner": client.owner}),
            run_update={"labels": None} if labelled else None,
        )

    # Together: on PostgreSQL each run's reads and its resume record overlap (a burst of timers
    # due at one instant, a worker taking over a dead one's runs).
    if len(ready) == 1:  # no task for one (a signal's wake-up returns before the run goes on)
        await resume(*ready[0])
        done: list[BaseException | None] = [None]
    else:
        done = await asyncio.gather(*(resume(run, wf) for run, wf in ready), return_exceptions=True)
    resumed = [run.id for (run, _), failed in zip(ready, done, strict=True) if failed is None]
    claims.claimed += len(resumed)
    for failed in done:
        if isinstance(failed, BaseException):
            raise failed  # the store failed: the caller retries (the runs resumed go on)
    return resumed


#: Seconds an engine leaves the runs of a version it could not load before it claims one again (the
#: version may have been deployed meanwhile).
UNLOADABLE_RETRY = 60.0


async def drive_task(client: Client, ex: RunExecutor, admitted: bool) -> None:
    """The task that drives one run of ``client`` (:meth:`Client.drive_run`): admitted to one of its
    slots, started, driven to its end; a store error hands it back."""
    driving = client.driving
    try:
        if not admitted:
            await driving.admit()
            admitted = True
        if ex.run.status is RunStatus.PENDING:
            now = time.time()
            taken = ex.taken_up  # claimed by this engine (None: started here, waited for a slot)
            await ex.emit(
                EventType.RUN_STARTED,
                data=None if taken is None else json.dumps({"owner": client.owner}),
                run_update={"status": RunStatus.RUNNING, "started_at": now, **(taken or {})},
            )
            ex.run.status, ex.run.started_at = RunStatus.RUNNING, now  # as stored (the record result() gives)
        await ex.drive()
    except asyncio.CancelledError:
        if ex.reason != "shutdown":
            raise
    except Exception as exc:  # a store error hands the run back (to be resumed from its log)
        await drive_failed(client, ex, exc)
    finally:
        if admitted:
            driving.release()
        run = ex.run
        if run.status.finished:  # its end stored: as the store has it now (no owner)
            run.owner = run.lease_expires_at = None
            driving.discard(ex.run_id, run)
        else:
            driving.discard(ex.run_id)
        if not ex.finished.done():
            ex.finished.set_result(None)


async def drive_failed(client: Client, ex: RunExecutor, exc: Exception) -> None:
    """The driving of run ``ex`` stopped on ``exc``, an error of the engine rather than of a step.

    A store error (the database restarted or failed over, a connection was killed, the disk is
    full) is not the run's fault: its log holds what was written, and the write in flight may or
    may not have committed. So the run is handed back and taken up again from its log (by this
    engine, or any other) after a short pause that doubles while the store keeps failing, instead of
    staying leased to this engine, which no longer drives it, until the lease runs out."""
    if not isinstance(exc, StoreError) or isinstance(exc, LeaseLost):
        log.error("run %s: engine error", ex.run_id, exc_info=exc)
        return
    failed = client.claims.store_failed
    now = time.time()
    n, last = failed.get(ex.run_id, (0, now))
    n = 1 if now - last > 2 * client.lease_seconds else n + 1
    if len(failed) > 10_000:  # a long outage over many runs: forget the oldest counts
        failed.clear()
    failed[ex.run_id] = (n, now)
    delay = min(client.lease_seconds, 0.5 * 2 ** (n - 1))  # at most a lease: what it waited before
    log.warning(
        "run %s: the store failed (%s); this engine stops driving it and hands it back to be resumed from its "
        "log in %.1fs (failure %d in a row)", ex.run_id, exc, delay, n,
    )
    task = asyncio.get_running_loop().create_task(_hand_back_later(client, ex.run_id, delay))
    _TAKING_BACK.add(task)
    task.add_done_callback(_TAKING_BACK.discard)


async def _hand_back_later(client: Client, run_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    try:
        await client.store.release_runs(client.owner, [run_id])
    except Exception as exc:
        log.warning(
            "run %s: handing it back failed too (%s); it is taken up again once its lease runs out "
            "(within %gs)", run_id, exc, client.lease_seconds,
        )
        return
    client.wake_at(run_id, time.time())  # this engine takes it up again too (an embedded client has no claim loop)


_TAKING_BACK: set[asyncio.Task[None]] = set()
"""The hand-backs of :func:`drive_failed` waiting for their moment."""


async def settled(
    client: Client, run_id: str, timeout: float | None, read: Callable[[str], Awaitable[RunRecord]]
) -> RunRecord:
    """The record of run ``run_id`` once it is finished (``read``: the store's, after any burst):
    :meth:`Client.wait` and :meth:`Client.result`, no permission check."""
    driving = client.driving
    ex = driving.get(run_id)
    if ex is not None:
        await asyncio.wait_for(asyncio.shield(ex.finished), timeout)
        if ex.run.status.finished:
            driving.ended(run_id)  # given here: no copy left behind
            return ex.run
    elif (ended := driving.ended(run_id)) is not None:  # ended here moments ago (driving.py)
        return ended
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.01
    while True:
        run = await read(run_id)
        if run.status.finished:
            driving.ended(run_id)
            return run
        ex = driving.get(run_id)
        if ex is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            await asyncio.wait_for(asyncio.shield(ex.finished), left)
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish within {timeout}s (status {run.status.value})")
        await wait_on(client, run, delay)  # a woken parked run is taken up here
        delay = min(delay * 2, 0.5)


async def wait_on(client: Client, run: RunRecord, delay: float) -> None:
    """Wait ``delay`` before reading again a run this process waits for and does not drive (a
    child of a step here, a run ``Client.run`` waits on). One parked and woken since from another
    process (a signal, a cleared kill switch: its ``wake_at`` is due) is taken up here at once,
    not when this engine next reads its timers (up to ``timers.HORIZON / 2`` later)."""
    if (
        run.status is RunStatus.WAITING and run.wake_at is not None and run.wake_at <= time.time()
        and client.execute and client.governance.principal.can("runs.resume")
    ):  # fmt: skip
        await take_up(client, run.id)
    await asyncio.sleep(delay)


async def take_up(client: Client, run_id: str) -> None:
    """Claim and drive woken run ``run_id`` in a task of its own: a caller that stops waiting
    (cancelled: a timeout, a request gone) must not leave the run claimed here, its lease renewed
    by nobody, and driven by none."""
    take = asyncio.ensure_future(take_over(client, [run_id], 1))
    _TAKING.add(take)  # kept until done
    take.add_done_callback(_TAKING.discard)
    try:
        await asyncio.shield(take)
    except asyncio.CancelledError:
        take.add_done_callback(_unwatched)
        raise


_TAKING: set[asyncio.Task[list[str]]] = set()
"""The take-ups of :func:`take_up` under way."""


def _unwatched(take: asyncio.Task[list[str]]) -> None:
    """Log the failure of a take-up whose waiter is gone."""
    if not take.cancelled() and (exc := take.exception()) is not None:
        log.error("taking up a woken run failed: %s", exc)


def parked_by_switch(events: Sequence[Event]) -> bool:
    """Whether a run's log ends with it parked by a kill switch."""
    last = events[-1] if events else None
    return last is not None and last.type == EventType.RUN_WAITING and "__killswitch__" in (last.data or "")


async def cancel_orphan(client: Client, run: RunRecord) -> bool:
    """Record the cancellation of ``run`` here if no live engine drives it. False if one may."""
    from .executor import RunExecutor

    if run.owner is not None and owner_alive(run.owner) and (run.lease_expires_at or 0) >= time.time():
        return False
    claimed = await client.store.claim_runs(
        client.owner,
        lease_seconds=client.lease_seconds,
        limit=1,
        now=time.time(),
        run_ids=[run.id],
        steal_from=[run.owner] if run.owner else [],
    )
    if not claimed:
        return False
    events = await client.store.load_events(run.id)
    ex = RunExecutor(client, client.registry.for_run(claimed[0], stub=True), claimed[0], events)
    await ex.record_cancelled()
    return True
