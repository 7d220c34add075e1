"""Driving one run: scheduling ready steps, retries, timeouts, loops, fan-out, replay and recording.

Replay is re-driving: the executor walks the graph as on a first run, but a step execution whose
result is already in the event log is answered from the log instead of being run. Every decision
that is not a pure function of recorded outputs (loop continuation) is itself logged.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..errors import (
    InputValidationError,
    KillSwitchActive,
    LeaseLost,
    NonRetryableError,
    PodiumError,
    SerializationError,
    StepTimeout,
    StoreError,
    _Shutdown,
    _Suspend,
    error_info,
)
from ..governance.audit import event_bytes
from ..governance.enforcement import RunGovernance
from ..governance.pii import redact_json
from ..records import WRITER, Event, EventType, RunRecord, RunStatus, StepStatus, Writer, step_key
from ..secret import redact_known
from ..storage._base import labels_ok
from .context import StepContext
from .lineage import cancelled, too_deep
from .lineage import lineage as lineage_of
from .recording import EMPTY, NO_SET, Recording
from .waits import Waits
from .workflow import CTX, INPUT, StepDef, Workflow, _Binding

if TYPE_CHECKING:
    from .ports import RunHost

log = logging.getLogger("podium.engine")

_DONE = StepStatus.COMPLETED
_SKIPPED = StepStatus.SKIPPED
_FAILED = StepStatus.FAILED
_PARKED = StepStatus.WAITING
# Plain strings of the hot path's event types (written and hashed as an EventType member, but a
# member's formatting goes through Enum.__format__, a Python call per event).
_COMPLETED: str = EventType.STEP_COMPLETED.value
_LOOPED: str = EventType.LOOP_ITERATION.value
_Key = tuple[str, int, int | None]


class _StepFailed(Exception):
    """Internal: a step failed for good and its ``on_error`` is ``fail``."""

    def __init__(self, step: str, error: dict[str, Any]):
        super().__init__(error.get("message", step))
        self.step = step
        self.error = error


class RunExecutor(Recording, Waits):
    """Drives one run to a final state, writing every state change to the store."""

    lineage: tuple[str, ...] = ()
    """The workflows of this run's parent runs, nearest first (read as a child run starts to be
    driven): a child works for them, so their kill switches hold it too."""
    parent_runs: tuple[tuple[str, str], ...] = ()
    """The runs this child run is part of, ``(run id, workflow)``: their run budgets count its spending."""

    # What most runs never set is the class's (None, or an empty set or mapping a writer replaces
    # with its own): a run's own attributes stay under CPython's 30 for an object whose attributes
    # live inline (no dict of its own: a cheaper start, and every attribute read on the hot path).
    refused: str | None = None
    """Why this run must not go on (its history does not match its audit anchors): it fails at once."""
    redact_payloads = False
    deploy: str | None = None
    """Set when the run's workflow is not the deployed one of its name, in a store with users: the
    command that deploys it (its name's policy then only restricts it; ``*`` holds it too)."""
    reason: str | None = None  # why the driver task was cancelled: cancelled|shutdown|timeout
    deadline: float | None = None
    signals: dict[str, str | None] | None = None
    _wake: asyncio.Future[None] | None = None
    _error: BaseException | None = None
    # The run's last step's completion, not yet written: it goes with the run's end (one commit).
    _held: tuple[str, str | None, int, int | None, int, str | None] | None = None
    _marked: set[tuple[_Key, int]] = NO_SET  # NO_SET: written to by few runs (recording.py)
    _tasks: set[asyncio.Task[Any]] = NO_SET
    loop_decisions: set[tuple[str, int]] = NO_SET
    handoff: set[str] = NO_SET  # worker labels that steps here need and this engine lacks
    approvals_asked: set[_Key] = NO_SET
    taken_up: dict[str, Any] | None = None  # a queued run claimed for its first start: its start's run update
    # EMPTY: a dict of the run's own replaces it at its first write (Waits.own_map).
    prompt_pins: dict[str, str] = EMPTY
    prev_outputs: dict[str, Any] = EMPTY
    # Looping steps' completions not yet written: each goes with its loop decision (_after).
    _unrecorded: dict[str, tuple[str, str | None, int, int | None, int, str | None]] = EMPTY
    decided: dict[str, int] = EMPTY
    replayed_at: dict[_Key, int] = EMPTY
    iteration: dict[str, int] = EMPTY  # a step's pass (0 until its loop goes round)
    failed_attempts: dict[_Key, int] = EMPTY
    wait_deadlines: dict[_Key, float | None] = EMPTY
    asked: dict[_Key, int] = EMPTY
    attempt_until: dict[_Key, tuple[int, float]] = EMPTY  # attempts parked before their timeout

    def __init__(
        self, client: RunHost, wf: Workflow, run: RunRecord, events: list[Event], *, refused: str | None = None
    ) -> None:
        self.client = client
        if refused is not None:
            self.refused = refused
        self.store = client.store
        self._at_once = client.store.append_at_once
        self._governance = client.governance
        self.wf = wf
        self.run = run
        self.run_id = run.id
        self.input = _serde.loads(run.input)
        policy = client.governance.policy_for(wf.name)
        if policy is not None and "payloads" in policy.redact:
            self.redact_payloads = True
        self.outputs: dict[str, Any] = {}
        self.state: dict[str, StepStatus] = {}
        self.running: dict[_Key, tuple[float, int]] = {}
        self.finished = asyncio.get_running_loop().create_future()
        self._listeners = client.listeners
        self._seq = events[-1].seq if events else 0
        self._ready: deque[str] = deque()
        self._waiting: dict[str, set[str]] = {}
        self._launched: set[str] = set()
        # What the log already knows (empty on a first run, so the hot path stays a dict miss).
        self.recorded: dict[_Key, tuple[str, Any]] = {}
        self._settled_last = len(wf.steps) - 1  # steps settled when the last one completes
        # Steps parked on a signal or timer: step id -> (signal names, earliest deadline).
        self.parked: dict[str, tuple[set[str], float | None]] = {}
        # The seq of the event that asked each wait (an approval's decision names the request it
        # decides), and per signal name the request whose wait a decision (not a timeout) ended.
        self.lease_renewed(run.lease_expires_at if run.lease_expires_at is not None else math.inf)
        self._digest = hashlib.sha256()  # of every event, anchored in the audit log at the end
        for ev in events:
            self._learn(ev)
            self._digest.update(
                event_bytes(ev.seq, ev.type, ev.ts, ev.step, ev.iteration, ev.index, ev.attempt, ev.data)
            )

    @functools.cached_property
    def governance(self) -> RunGovernance:
        """The run's budgets, policies and approvals, made for the first step that asks (most runs'
        steps never do: no object, no closure per run)."""
        return RunGovernance(
            self._governance,
            self.store,
            run_id=self.run_id,
            workflow=self.wf.name,
            tenant=self.run.tenant,
            run_input=self.input,
            recorded=self.recorded.values,
            lineage=self.lineage,
            parent_runs=self.parent_runs,
            deploy=self.deploy,
        )

    # -- driving --------------------------------------------------------------------------------

    async def drive(self) -> None:
        """Run to a final state (or until cancelled for shutdown). Sets :attr:`finished`."""
        try:
            await self._drive()
        except asyncio.CancelledError:
            if self.reason == "cancelled":
                try:
                    await self._stop_running_steps()
                    await self._finish(
                        RunStatus.CANCELLED, error={"type": "podium.RunCancelled", "message": "cancelled"}
                    )
                except LeaseLost:  # the run's own end landed just before: it ended, not cancelled
                    log.info("run %s ended before its cancellation could be recorded", self.run_id)
            else:
                await self._abandon()
                if self.reason != "shutdown":
                    raise
        except (LeaseLost, _Shutdown) as exc:
            log.warning("run %s: %s; this engine stops driving it", self.run_id, exc)
            await self._abandon()
        except BaseException as exc:
            await self._abandon()
            if not self.finished.done() and not isinstance(exc, StoreError):  # that one: resumed (worker.drive_failed)
                self.finished.set_exception(exc)
            raise
        finally:
            if not self.finished.done():
                self.finished.set_result(None)

    async def _drive(self) -> None:
        # Apart from drive(): a cancellation that interrupts the end of a failed run is handled there too.
        wf = self.wf
        # Whether the policy named after its workflow is the run's: decided once per run, before any step.
        deployments = self.client.deployments
        deployed = deployments.owns_name_known(wf) or await deployments.owns_name(wf)
        if not deployed:
            self.deploy = await self.client.deployments.unowned(wf, self.run_id)  # marked for its signals
            policy = self._governance.policy_for(wf.name, deployed=False)
            self.redact_payloads = policy is not None and "payloads" in policy.redact
        # this run's task: what its steps write is its, sealed with the audit key (the outbox's relay
        # takes a message's workflow and approval only from a seal: docs/connectors.md)
        seal = self.store.audit_keys.seal if self._governance.audit_enabled else None
        WRITER.set(Writer(wf.name, self.run_id, deployed=deployed, seal=seal))
        if self.run.parent_run_id is not None or self.run.forked_from is not None:
            line = await lineage_of(self.store, self.run)
            self.lineage, self.parent_runs = line.workflows, line.runs
            guard = self.governance.guard  # a parent's policy keeping PII out of the store holds its child
            self.redact_payloads = guard is not None and "payloads" in guard.redact
        try:
            if self.refused is None and self.replayed_at and (forged := await self.check_tail()) is not None:
                await self._finish(RunStatus.FAILED, error=error_info(NonRetryableError(forged), with_traceback=False))
                return
            if self.refused is not None:
                await self._finish(
                    RunStatus.FAILED, error={"type": "podium.HistoryMismatch", "message": self.refused}
                )
                return
            try:
                if self.deadline is not None:
                    async with asyncio.timeout_at(
                        asyncio.get_running_loop().time() + self.deadline - time.time()
                    ):
                        await self._schedule()
                else:
                    await self._schedule()
                if self.handoff:
                    await self._hand_off()
                    return
                if self.parked:
                    if self._switch_cancels():  # taken up under a cancel switch: cancelled, as the sweep does
                        await self._governance.record("run.cancel", self.run_id, actor="engine", reason="kill switch")
                        self.reason = "cancelled"
                        await self._stop_running_steps()
                        await self._finish(RunStatus.CANCELLED, error={"type": "podium.RunCancelled", "message": "cancelled"})
                        return
                    await self._park()
                    return
            except TimeoutError:
                self.reason = "timeout"
                await self._stop_running_steps()
                await self._finish(
                    RunStatus.FAILED,
                    error={
                        "type": "podium.RunTimeout",
                        "message": f"run {self.run_id} of {self.wf.name!r} exceeded its timeout; raise "
                        f"Workflow(timeout=...) or start(..., timeout=...)",
                    },
                )
                return
            try:
                payload = _serde.dumps(self._workflow_output())
            except SerializationError as exc:
                await self._finish(RunStatus.FAILED, error=error_info(exc, with_traceback=False))
                return
            except Exception as exc:
                err = error_info(exc)
                err["message"] = (
                    redact_known(f"the output of workflow {self.wf.name!r} could not be computed: {type(exc).__name__}: {exc}")
                )
                await self._finish(RunStatus.FAILED, error=err)
                return
            await self._finish(RunStatus.COMPLETED, output=payload)
        except _StepFailed as exc:
            await self._stop_running_steps()
            err = dict(exc.error)
            err["step"] = exc.step
            await self._finish(RunStatus.FAILED, error=err)

    def _switch_cancels(self) -> bool:
        """Whether a step parked by a kill switch is under a ``cancel`` one (over the run's workflow,
        a step kind, or a run it works for): a run taken up after it was set (resumed, claimed,
        woken) meets it only at a step boundary, and is cancelled, not left to go on once cleared."""
        gov = self._governance
        for sid, (names, _) in self.parked.items():
            if "__killswitch__" in names and gov.switch_cache:
                off = gov.switched_off(self.wf.name, self.wf.steps[sid].kind, lineage=self.lineage)
                if off is not None and off.get("mode") == "cancel":
                    return True
        return False

    async def _abandon(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def record_cancelled(self) -> None:
        """Record this run as cancelled here (an engine took over a run nobody drives to cancel it)."""
        self.reason = "cancelled"
        await self._stop_running_steps()
        await self._finish(RunStatus.CANCELLED, error={"type": "podium.RunCancelled", "message": "cancelled"})

    async def _stop_running_steps(self) -> None:
        await self._abandon()
        for (step, it, idx), (t0, attempt) in list(self.running.items()):
            del self.running[step, it, idx]  # a cancellation of this loop does not record it twice
            await self.emit(
                EventType.STEP_CANCELLED,
                step,
                it,
                idx,
                attempt,
                json.dumps(
                    {
                        "started": t0,
                        "error": {
                            "type": "asyncio.CancelledError",
                            "message": f"cancelled ({self.reason or 'run failed'})",
                        },
                    }
                ),
            )
        self.running.clear()

    async def _finish(
        self, status: RunStatus, *, output: str | None = None, error: dict[str, Any] | None = None
    ) -> None:
        etype = {
            RunStatus.COMPLETED: EventType.RUN_COMPLETED,
            RunStatus.FAILED: EventType.RUN_FAILED,
            RunStatus.CANCELLED: EventType.RUN_CANCELLED,
        }[status]
        err = json.dumps(error) if error else None
        now = time.time()
        # No end anchor vouches for a history that did not check out; otherwise the anchor is
        # written with the final state, so no reader sees the run finished and unanchored.
        end = None if self.refused is not None else self._ended(status, output, err)
        await self.emit(
            etype,
            data=err,
            run_update={"status": status, "output": output, "error": err, "finished_at": now},
            end=end,
        )
        self.run.status = status
        self.run.output = output
        self.run.error = err
        self.run.finished_at = now
        if self.refused is not None:
            await self.client.governance.record("run.refuse", self.run_id, actor="engine", reason=self.refused[:500])

    def _ended(self, status: RunStatus, output: str | None, error: str | None) -> RunRecord:
        """What the run's ``run.end`` anchor covers of its record as it ends (not a copy of it all)."""
        r = self.run
        return RunRecord(
            id=r.id, workflow=r.workflow, version=r.version, status=status, input=r.input, output=output, error=error,
            created_at=r.created_at, tenant=r.tenant,
        )  # fmt: skip

    async def checkpoint(self, why: str) -> None:
        """Anchor the history so far in the audit log (the run parks or is handed off), so that a
        resume can tell an edited history from the one this engine wrote."""
        await self.client.governance.record_checkpoint(self.run, self._digest.hexdigest(), self._seq, why)

    async def _schedule(self) -> None:
        wf = self.wf
        steps = wf.steps
        for sid in wf.order:
            self._waiting[sid] = set(deps) if (deps := steps[sid].deps) else NO_SET  # a root's: never written
        self._ready.extend(wf.roots)
        self._launched.update(wf.roots)
        loop = asyncio.get_running_loop()
        ready = self._ready
        tasks = self._tasks
        while True:
            while ready:
                sid = ready.popleft()
                if not ready and not tasks:
                    await self._run_step(steps[sid])  # nothing else to do: no task needed
                else:
                    task = loop.create_task(self._run_step(steps[sid]))
                    if tasks is NO_SET:
                        tasks = self._tasks = set()
                    tasks.add(task)
                    task.add_done_callback(self._task_done)
            if self._error is not None:
                raise self._error
            if not tasks:
                return
            self._wake = loop.create_future()
            await self._wake

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and self._error is None:
                self._error = exc
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _release(self, sid: str) -> None:
        """``sid`` is settled for this iteration: wake the steps that were waiting for it."""
        steps = self.wf.steps
        for d in steps[sid].dependents:
            waiting = self._waiting[d]
            waiting.discard(sid)
            if not waiting and d not in self._launched:
                self._launched.add(d)
                self._ready.append(d)

    # -- one step -------------------------------------------------------------------------------

    def _bind(self, params: list[_Binding], s: StepDef) -> dict[str, Any] | None:
        """Arguments for a step or condition; None if a needed input was skipped or failed."""
        args: dict[str, Any] = {}
        for b in params:
            src = b.source
            if src == CTX:
                continue
            if src == INPUT:
                value = self.input
            elif src == "default":
                value = b.default
            elif self.state.get(src) is _DONE:
                value = self.outputs[src]
            elif b.has_default:
                value = b.default
            else:
                return None
            if b.validator is not None:
                value = b.validator(value, f"step {s.id!r} argument {b.name!r}")
            args[b.name] = value
        return args

    async def _run_step(self, s: StepDef) -> None:
        sid = s.id
        it = self.iteration.get(sid, 0)
        rec = self.recorded.get((sid, it, None)) if self.recorded else None
        if rec is not None and rec[0] == "skipped":
            self.state[sid] = _SKIPPED
            return self._release(sid)
        value: Any = _FAILED
        try:
            args = self._bind(s.params, s) if s.params else {}
        except InputValidationError as exc:
            args = {}
            value = await self._fail(s, it, None, 1, error_info(exc, with_traceback=False), time.time())
        else:
            reason = None
            if args is None:
                missing = [
                    b.name for b in s.params if b.source in self.state and self.state[b.source] is not _DONE
                ]
                reason = f"needs the output of {', '.join(missing)}, which did not complete"
            elif s.when is not None and rec is None:
                try:
                    if not s.when(**(self._bind(s.when_params, s) or {})):
                        reason = "condition is false"
                except Exception as exc:
                    err = error_info(exc)
                    err["message"] = redact_known(f"condition of step {sid!r} raised {type(exc).__name__}: {exc}")
                    args = None
                    value = await self._fail(s, it, None, 1, err, time.time())
            if reason is not None:
                self.state[sid] = _SKIPPED
                await self.emit(EventType.STEP_SKIPPED, sid, it, None, 0, json.dumps({"reason": reason}))
                return self._release(sid)
            if args is not None and self._governance.switch_cache:
                off = self._governance.switched_off(self.wf.name, s.kind, lineage=self.lineage)
                if off is not None:  # paused at this step boundary until the switch is cleared
                    self.parked[sid] = ({"__killswitch__"}, None)
                    self.state[sid] = _PARKED
                    return None
            if args is not None and s.labels and not labels_ok(s.labels_text, self.client.labels):
                if self.handoff is NO_SET:
                    self.handoff = set()
                self.handoff.update(s.labels)
                return None
            if args is not None:
                if s.map is not None:
                    value = await self._run_map(s, it, args)
                else:
                    value = await self._attempts(s, it, None, args)
        if value is _PARKED:
            self.state[sid] = _PARKED
            return None
        if value is _FAILED:
            self.state[sid] = _FAILED
        else:
            self.outputs[sid] = value
            self.state[sid] = _DONE
        if s.loop is None:
            return self._release(sid)
        return await self._after(s, it)

    async def _after(self, s: StepDef, it: int) -> None:
        """A looping step finished: decide whether to loop again, and record its completion with
        that decision in one transaction (an iteration costs one commit, not two)."""
        lp = s.loop
        done = self._unrecorded.pop(s.id, None) if self._unrecorded else None  # its completion, held back for the decision
        again = False
        failure: dict[str, Any] | None = None
        if lp is not None and self.state[s.id] is _DONE:
            again = bool(self.loop_decisions) and (s.id, it + 1) in self.loop_decisions
            # A pass replayed from the log has its decision there: a loop_iteration after it, or
            # none for "no" (the two are written together). Only a map step's pass (its items
            # written one by one, the decision after them) may lack it: that one is asked again.
            decided = again or (done is None and s.map is None)
            if not decided:
                try:
                    if s.loop_params:
                        again = bool(lp.while_(**(self._bind(s.loop_params, s) or {})))
                    else:
                        again = bool(lp.while_())
                except Exception as exc:
                    failure = error_info(exc)
                    failure["message"] = redact_known(f"loop condition of step {s.id!r} raised {type(exc).__name__}: {exc}")
                if again and it + 1 >= lp.max_iterations:
                    again = False
                    failure = {
                        "type": "podium.LoopLimitExceeded",
                        "message": f"step {s.id!r} looped back to {lp.to!r} {lp.max_iterations} times "
                        f"(max_iterations={lp.max_iterations}) and its loop condition still holds; "
                        f"raise max_iterations or make the condition end the loop",
                    }
            events = [done] if done is not None else []
            if again and not decided:
                events.append((_LOOPED, s.id, it + 1, None, 0, None))
            if not self._all_now(events):
                await self._emit_all(events)
            if failure is not None:
                raise _StepFailed(s.id, failure) from None
        elif done is not None:
            await self._emit_all([done])
        if again:
            self._restart_loop(s.id, it + 1)
            return
        self._release(s.id)

    def _restart_loop(self, loop_step: str, it: int) -> None:
        outputs, state, launched, waiting = self.outputs, self.state, self._launched, self._waiting
        prev, iteration = self.own_map("prev_outputs"), self.own_map("iteration")
        for b, inner in self.wf.loop_restarts[loop_step]:  # (step, the body steps it waits for), in order
            if b in outputs:
                prev[b] = outputs[b]
            iteration[b] = it
            state.pop(b, None)
            if inner:
                launched.discard(b)
                waiting[b] = set(inner)
            else:  # waits for no step of the body: ready at once (a one-step loop makes no set)
                if waiting[b]:
                    waiting[b] = set()
                launched.add(b)
                self._ready.append(b)

    async def _run_map(self, s: StepDef, it: int, args: dict[str, Any]) -> Any:
        items = args[s.map]  # type: ignore[index]
        if not isinstance(items, list | tuple):
            err = {
                "type": "podium.MapError",
                "message": f"step {s.id!r} maps over {s.map!r}, which gave a {type(items).__name__}, not a list",
            }
            return await self._fail(s, it, None, 1, err, time.time())
        n = len(items)
        results: list[Any] = [None] * n
        sem = asyncio.Semaphore(s.max_parallel) if s.max_parallel else None

        async def one(i: int) -> None:
            a = dict(args)
            a[s.map] = items[i]  # type: ignore[index]
            if sem is None:
                results[i] = await self._attempts(s, it, i, a)
            else:
                async with sem:
                    results[i] = await self._attempts(s, it, i, a)

        if n:
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(one(i)) for i in range(n)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        if any(r is _PARKED for r in results):
            return _PARKED
        if any(r is _FAILED for r in results):
            return _FAILED
        return results

    async def _attempts(self, s: StepDef, it: int, idx: int | None, args: dict[str, Any]) -> Any:
        key = (s.id, it, idx)
        if self.recorded:
            rec = self.recorded.get(key)
            if rec is not None:
                if rec[0] == "completed":
                    return _serde.loads(rec[1]).get("output") if rec[1] else None
                if rec[0] == "failed" and s.on_error == "continue":
                    return _FAILED
        attempt = self.failed_attempts.get(key, 0) + 1 if self.failed_attempts else 1
        running = self.running
        fast = s.fast
        while True:
            t0 = time.time()
            if t0 >= self._renew_after:  # the sweep's renewals are late: is the run still this engine's?
                await self.keep_lease()
            running[key] = (t0, attempt) if not self.attempt_until else self.attempt_started(key, t0, attempt)
            try:
                if fast:
                    value = await s.fn(**args)
                else:
                    value = await self._call(s, it, idx, attempt, args)
                    if s.output_validator is not None:
                        value = s.output_validator(value, f"output of step {s.id!r}")
                payload = "null" if value is None else _serde.dumps(value)
                if self.redact_payloads and value is not None:  # the policy keeps PII out of the store
                    payload = redact_json(payload)
                    value = _serde.loads(payload)
            except asyncio.CancelledError:
                raise
            except _Suspend as sus:
                del running[key]
                names, deadline = self.parked.get(s.id, (set(), None))
                names.add(sus.name)
                if sus.deadline is not None:
                    deadline = sus.deadline if deadline is None else min(deadline, sus.deadline)
                self.parked[s.id] = (names, deadline)
                return _PARKED
            except Exception as exc:
                del running[key]
                if isinstance(exc, LeaseLost):
                    raise
                if isinstance(exc, InputValidationError | SerializationError):
                    exc = NonRetryableError(f"step {s.id!r}: {exc}")
                err = error_info(exc)
                if s.retry.should_retry(exc, attempt):
                    delay = s.retry.delay_for(exc, attempt)
                    err["retry_in"] = round(delay, 3)
                    await self.emit(
                        EventType.STEP_RETRYING,
                        s.id,
                        it,
                        idx,
                        attempt,
                        json.dumps({"started": t0, "error": err}),
                    )
                    await asyncio.sleep(delay)
                    if self._governance.switch_cache and self._governance.switched_off(self.wf.name, s.kind, lineage=self.lineage):
                        # A retry is a step boundary: a paused workflow calls nothing again until
                        # the switch is cleared (the next attempt is counted from the log then).
                        self.parked.setdefault(s.id, (set(), None))[0].add("__killswitch__")
                        return _PARKED
                    attempt += 1
                    continue
                return await self._fail(s, it, idx, attempt, err, t0)
            del running[key]
            data = f'{{"started":{t0!r},"output":{payload}}}'
            if s.loop is not None and idx is None:  # recorded with the loop's decision (_after)
                self.own_map("_unrecorded")[s.id] = (_COMPLETED, s.id, it, idx, attempt, data)
                return value
            if len(self.state) == self._settled_last and idx is None and self._last(s.id):  # see _last
                self._held = (_COMPLETED, s.id, it, idx, attempt, data)
                return value
            if not self._emit_now(_COMPLETED, s.id, it, idx, attempt, data):
                await self.emit(_COMPLETED, s.id, it, idx, attempt, data)
            return value

    def _last(self, sid: str) -> bool:
        """Whether step ``sid``, just completed, is the last of the run (every other step settled,
        nothing ready, running, parked or handed off; run inline, so no task of its own): its
        completion is then written with the run's end (:meth:`_finish`), one commit."""
        return (
            not self._tasks and not self._ready and not self.parked and not self.handoff and self.reason is None
            and sid not in self.state and self.deadline is None
        )  # fmt: skip

    async def _fail(
        self, s: StepDef, it: int, idx: int | None, attempt: int, err: dict[str, Any], t0: float
    ) -> Any:
        await self.emit(
            EventType.STEP_FAILED, s.id, it, idx, attempt, json.dumps({"started": t0, "error": err})
        )
        if s.on_error == "continue":
            return _FAILED
        raise _StepFailed(step_key(s.id, it, idx), err)

    async def _call(self, s: StepDef, it: int, idx: int | None, attempt: int, args: dict[str, Any]) -> Any:
        key = f"{self.run_id}:{step_key(s.id, it, idx)}"
        ctx = None
        if s.takes_ctx or s.escalate is not None or s.gate is not None:
            ctx = StepContext(self, s.id, it, idx, attempt, key)
            for b in s.params:
                if b.source == CTX:
                    args = {**args, b.name: ctx}
        limit = self.client.kind_limit(s.kind) if s.kind else None

        async def produce() -> Any:
            if limit is not None:
                async with limit:
                    return await self._invoke(s, args, key, attempt, (s.id, it, idx))
            return await self._invoke(s, args, key, attempt, (s.id, it, idx))

        if (s.escalate is None and s.gate is None) or ctx is None:
            return await produce()
        from ..records import NO_RETRY
        from .escalation import escalate

        # The output a gate checks or a person decides on is logged first: the step resumes after
        # the decision with that same output, not a new one (and without repeating its side effects).
        value = await self.durable_call(ctx, "output", produce, (), {}, NO_RETRY, None)
        ctx.reviewing = True  # the step's timeout bounded the function only
        if s.gate is not None:
            value = await s.gate(ctx, value)
        return value if s.escalate is None else await escalate(ctx, s.escalate, value)

    async def _invoke(self, s: StepDef, args: dict[str, Any], key: str, attempt: int, at: _Key) -> Any:
        if s.executor is not None and not s.takes_ctx:  # elsewhere (Ray); a ctx step sends its ctx.calls
            from .remote import run_remote

            fn = functools.partial(s.fn, **args)
            return await run_remote(s.executor, fn, key=f"{key}:{attempt}", timeout=s.timeout, what=f"step {s.id!r}")
        if s.child is not None:
            child_input = s.fn(**args)
            return await self.run_child(s.child, child_input, key, s.id)
        if s.is_async:
            if s.timeout is None:
                return await s.fn(**args)
            try:
                async with asyncio.timeout(self.time_left(at, s.timeout)):
                    return await s.fn(**args)
            except TimeoutError:
                raise StepTimeout(
                    f"step {s.id!r} attempt {attempt} did not finish within its timeout of {s.timeout}s"
                ) from None
        call: Callable[[], Any] = functools.partial(s.fn, **args)
        fut = asyncio.get_running_loop().run_in_executor(self.client.thread_pool, call)
        if s.timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, self.time_left(at, s.timeout))
        except TimeoutError:
            # A thread cannot be killed: the attempt is abandoned and its result ignored.
            raise StepTimeout(
                f"step {s.id!r} attempt {attempt} did not finish within its timeout of {s.timeout}s "
                "(the sync function's thread was abandoned)"
            ) from None

    async def run_child(self, wf: Workflow, child_input: Any, key: str, step_id: str) -> Any:
        gov = self._governance
        if too_deep_for := too_deep(self.run_id, self.wf.name, self.lineage, wf.name, step_id):
            raise NonRetryableError(too_deep_for)  # its lineage would not be read whole
        parents = (self.wf.name, *self.lineage)  # the child works for this run and the runs above it
        off = gov.switched_off(wf.name, lineage=parents) if gov.switch_cache else None
        if off is not None and off.get("mode") != "cancel":
            # A child is a new run of its workflow: a paused one is not started (as by client.start);
            # this step waits here and starts it once the switch is cleared (which wakes this run).
            raise _Suspend("__killswitch__", None)
        if off is not None:  # a cancel switch over it or over a run it would work for: refused like a start
            raise NonRetryableError(f"step {step_id!r}: sub-workflow {wf.name!r} not started: {cancelled(gov, wf.name, parents)}")
        self.governance.children = True  # its run budget counts what the child spends from now on
        try:
            rec = await self.client.run_child(self.run_id, wf, child_input, key, step_id)
        except KillSwitchActive as exc:  # a cancel switch: refused like a start, not retried
            raise NonRetryableError(f"step {step_id!r}: sub-workflow {wf.name!r} not started: {exc}") from None
        if rec.status is not RunStatus.COMPLETED:
            err = json.loads(rec.error) if rec.error else {}
            raise NonRetryableError(
                f"sub-workflow {wf.name!r} (run {rec.id}) {rec.status.value}: {err.get('message', '')}",
                details=err,
            )
        return _serde.loads(rec.output)

    def _workflow_output(self) -> Any:
        wf = self.wf
        out = wf.output
        if isinstance(out, str):
            return self.outputs.get(out)
        if out is not None:
            args = {}
            for b in wf.output_params:
                args[b.name] = self.input if b.source == INPUT else self.outputs.get(b.source, b.default)
            return out(**args)
        sinks = wf.sinks
        if len(sinks) == 1:
            return self.outputs.get(sinks[0])
        return {sid: self.outputs.get(sid) for sid in sinks}


__all__ = ["PodiumError", "RunExecutor", "error_info"]
