"""The executor's waiting half: durable calls inside a step, signals and timers (parking a run),
and handing a run to a worker with the labels a step needs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..errors import LeaseLost, NonRetryableError, StepTimeout, _Suspend, error_info
from ..governance.audit import anchored_events, decision_problem
from ..governance.enforcement import BUDGET_REQUESTS, asked_about
from ..governance.pii import redact_json
from ..records import EventType, RetryPolicy, RunStatus
from ..storage._base import APPROVAL_SIGNAL
from .context import _RAISE, StepContext
from .recording import NO_SET
from .reused import marked_reused

if TYPE_CHECKING:
    from ..records import Event, RunRecord
    from ..storage import Store
    from .ports import RunHost

#: Requests named by what they decide, not by what they show: a budget's (its payload says how much
#: was spent when it was asked), whose decision waives that budget for the rest of the run.
BY_NAME = (BUDGET_REQUESTS,)


_Key = tuple[str, int, "int | None"]

#: The longest text a trace keeps of one prompt message or argument (the rest is cut, and said so).
TRACE_TEXT_LIMIT = 20_000
#: The most text one call's trace note keeps in all; over it, only what was called is kept.
TRACE_NOTE_LIMIT = 1_000_000
_NOTE_SHAPE = ("kind", "model", "provider", "tool", "connector", "operation", "agent", "tools",
               "tool_choice", "max_tokens", "temperature", "output_schema")


#: A wait whose deadline is at most this many seconds away is waited in memory, holding the run,
#: instead of parking it: a run claimed shortly before its timer (``timers.EARLY``) goes on at
#: the instant it is due, not after being claimed and replayed then.
HOLD = 5.5


def _shown(info: dict[str, Any]) -> dict[str, Any]:
    """An approval request as JSON can hold it: NaN, Infinity and -Infinity (a model's or a step's
    output may hold them) spelled as text, every other value as it was. The SQL stores index a request
    only when its JSON is valid, so one holding NaN was asked and never listed in the inbox (and
    accepted at its timeout, with ``on_timeout: accept``). The approver sees the words; the step goes
    on with its own value."""
    return _finite(info) if _has_nonfinite(info) else info


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nonfinite(v) for v in value)
    return False


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class _TooBig(Exception):
    pass


def trace_prompts() -> bool:
    """The ``trace_prompts`` setting (files and environment)."""
    from ..settings import setting

    return bool(setting("trace_prompts"))


def trace_note(trace: Mapping[str, Any]) -> str:
    """``trace`` as stored: JSON with credentials masked (podium.secret) and personal data redacted
    (podium.governance.pii) in every string, long texts cut. Trace text is untrusted model and tool
    input: it is kept for people to read, never fed back to a run. A note whose texts come to more
    than ``TRACE_NOTE_LIMIT`` characters (after each is cut) keeps only what was called, with
    ``omitted``: the characters left out (the log and every read of the trace stay small)."""
    from ..governance.pii import redact
    from ..secret import mask

    budget = TRACE_NOTE_LIMIT

    def walk(v: Any) -> Any:
        nonlocal budget
        if isinstance(v, str):
            budget -= min(len(v), TRACE_TEXT_LIMIT + 40)
            if budget < 0:
                raise _TooBig
            if len(v) < 6:  # shorter than any address, number or key the detectors find
                return v
            # redacted before it is cut, so an address across the cut is not kept in part
            cut = redact(v[: TRACE_TEXT_LIMIT + 256])[:TRACE_TEXT_LIMIT]
            return cut + f" [... {len(v) - TRACE_TEXT_LIMIT} more characters]" if len(v) > TRACE_TEXT_LIMIT else cut
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v if v is None or isinstance(v, bool | int | float) else walk(str(v))

    text = json.dumps(dict(trace), default=str)
    plain = json.loads(text)
    try:
        return json.dumps(walk(mask(plain)), ensure_ascii=False, separators=(",", ":"))
    except _TooBig:
        kept = {k: plain[k] for k in _NOTE_SHAPE if k in plain}
        return json.dumps(mask(kept) | {"omitted": len(text)}, ensure_ascii=False, separators=(",", ":"))


class Waits:
    """The waiting half of :class:`RunExecutor` (mixed into it): durable calls, signals, timers."""

    client: RunHost
    store: Store
    run: RunRecord
    run_id: str
    recorded: dict[Any, tuple[str, Any]]
    failed_attempts: dict[Any, int]
    running: dict[Any, tuple[float, int]]
    parked: dict[str, tuple[set[str], float | None]]
    handoff: set[str]
    signals: dict[str, str | None] | None
    wait_deadlines: dict[Any, float | None]
    attempt_until: dict[Any, tuple[int, float]]
    """Step attempts that parked before their timeout: key -> (attempt, when the timeout is due)."""
    _marked: set[Any]
    deadline: float | None
    wf: Any
    loop_decisions: set[tuple[str, int]]
    state: dict[str, Any]
    _ready: Any
    _wake: asyncio.Future[None] | None
    _news: asyncio.Future[None] | None = None
    """Set while steps wait in memory for a timer due soon (see :meth:`_hold`)."""
    _seq: int
    redact_payloads: bool
    trace_on: bool | None = None
    """The ``trace_prompts`` setting for this run (None: not read yet)."""
    emit: Callable[..., Awaitable[int | None]]  # the executor's, which records an event (its seq)
    asked: dict[Any, int]
    """The seq of the event that asked each wait (the request an approval's decision must name)."""
    decided: dict[str, int]
    """Per signal name, the request whose wait a decision (not a timeout) ended: a loop asking
    again under that name takes the same decision, which named that request."""
    replayed_at: dict[Any, int]
    """The seq of each wait's completion read from the log (not made by this executor)."""
    approvals_asked: set[Any]
    """The waits whose request (in the log) was an approval's."""
    unasked: set[Any] = frozenset()  # type: ignore[assignment]
    """Ends under an approval's name read from the log that no approval asked for (:meth:`check_tail`)."""

    def own_map(self, name: str) -> dict[Any, Any]:
        """The run's own mapping ``name`` to write to (the executor starts with one empty mapping
        shared by every run for what few runs write: a dict of its own replaces it at the first write)."""
        mine: dict[Any, Any] | None = self.__dict__.get(name)
        if mine is None:
            mine = self.__dict__[name] = {}
        return mine

    def _decide(self, name: str, request: int) -> None:
        """The wait under ``name`` was ended by a decision on request ``request``."""
        self.own_map("decided")[name] = request

    def _learn(self, ev: Event) -> None:
        t = ev.type
        if (t == EventType.RUN_STARTED or t == EventType.RUN_QUEUED) and ev.data and '"timeout"' in ev.data:
            data = json.loads(ev.data)
            if data.get("timeout"):
                self.deadline = ev.ts + data["timeout"]
        if ev.step is None:
            return
        key = (ev.step, ev.iteration, ev.index)
        if t == EventType.STEP_COMPLETED:
            self.recorded[key] = ("completed", ev.data)
            if "/signal:" in ev.step:  # a wait's end read from the log: an approval's is checked (Waits)
                self.own_map("replayed_at")[key] = ev.seq
            if key in self.asked and not (ev.data and '"timed_out":true' in ev.data):
                self._decide(ev.step.partition("/signal:")[2], self.asked[key])
        elif t == EventType.STEP_SKIPPED:
            self.recorded[key] = ("skipped", ev.data)
        elif t == EventType.STEP_FAILED:
            self.recorded[key] = ("failed", ev.data)
        elif t == EventType.STEP_RETRYING:
            self.own_map("failed_attempts")[key] = max(self.failed_attempts.get(key, 0), ev.attempt)
        elif t == EventType.LOOP_ITERATION:
            if self.loop_decisions is NO_SET:
                self.loop_decisions = set()
            self.loop_decisions.add((ev.step, ev.iteration))
        elif t == EventType.STEP_STARTED and ev.data and '"until"' in ev.data:  # parked before its timeout
            until = json.loads(ev.data).get("until")
            # a number the engine wrote; anything else was edited in the store, whose history check
            # then fails the run (this only must not crash reading it)
            if isinstance(until, int | float) and math.isfinite(until):
                self.own_map("attempt_until")[key] = (ev.attempt, float(until))
        elif t == EventType.STEP_WAITING:
            request = json.loads(ev.data) if ev.data else {}
            self.own_map("wait_deadlines")[key] = request.get("deadline")
            self.own_map("asked")[key] = ev.seq
            if self.approvals_asked is NO_SET:
                self.approvals_asked = set()
            (self.approvals_asked.add if "approval" in request else self.approvals_asked.discard)(key)
            if "approval" in request:
                self.own_map("questions")[ev.seq] = request["approval"]

    def attempt_started(self, key: _Key, t0: float, attempt: int) -> tuple[float, int]:
        """When attempt ``attempt`` of step ``key`` started, for its timeout: ``t0``, unless the run
        parked in that attempt before its timeout was due (:meth:`_log_attempt_end`); the attempt
        goes on after the wake, so its timeout counts from its first start, not afresh."""
        logged = self.attempt_until.get(key)
        s = self.wf.steps.get(key[0])
        if logged is None or logged[0] != attempt or s is None or not s.timeout:
            return t0, attempt
        if self._marked is NO_SET:
            self._marked = set()
        self._marked.add((key, attempt))  # its start is in the log already
        return logged[1] - s.timeout, attempt

    def time_left(self, key: _Key, timeout: float) -> float:
        """Seconds left of the running attempt of step ``key`` under its ``timeout``."""
        started = self.running.get(key)
        return timeout if started is None else max(0.0, started[0] + timeout - time.time())

    async def _log_attempt_end(self, ctx: StepContext, until: float) -> None:
        """Write when the running attempt of ``ctx``'s step reaches its timeout, as the run parks
        before it: the replay after the wake (by this engine or another) fails it then."""
        key = (ctx.step_id, ctx.iteration, ctx.index)
        if self.attempt_until.get(key) == (ctx.attempt, until):
            return  # a replay of the attempt: written already
        started = self.running.get(key, (time.time(), ctx.attempt))[0]
        if self._marked is NO_SET:
            self._marked = set()
        self._marked.add((key, ctx.attempt))
        data = json.dumps({"started": started, "until": until})
        await self.emit(EventType.STEP_STARTED, key[0], key[1], key[2], ctx.attempt, data)
        self.own_map("attempt_until")[key] = (ctx.attempt, until)

    async def checkpoint(self, why: str) -> None:
        raise NotImplementedError  # the executor implements it

    async def durable_call(
        self,
        ctx: StepContext,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy,
        timeout: float | None,
        executor: str | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run ``fn`` as a durable sub-step of the step in ``ctx``: its result is logged, and a retried
        or resumed step gets the logged result instead of calling ``fn`` again. ``trace`` (what the
        run trace shows: a prompt, arguments) is stored with the record, redacted."""
        key = (f"{ctx.step_id}/{name}", ctx.iteration, ctx.index)
        rec = self.recorded.get(key)
        if rec is not None and rec[0] == "completed":
            return _serde.loads(rec[1]).get("output") if rec[1] else None
        attempt = self.failed_attempts.get(key, 0) + 1
        if trace and self.trace_on is None:  # read once per run, at its first traced call
            self.trace_on = trace_prompts()
        note = f',"trace":{trace_note(trace)}' if trace and self.trace_on else ""
        while True:
            t0 = time.time()
            self.running[key] = (t0, attempt)
            try:
                if executor is not None:  # elsewhere (Ray): see podium/engine/remote.py
                    from .remote import run_remote

                    work, where = functools.partial(fn, *args, **kwargs), f"call {name!r} in step {ctx.step_id!r}"
                    value = await run_remote(executor, work, key=f"{ctx.idempotency_key}/{name}:{attempt}", timeout=timeout, what=where)
                elif inspect.iscoroutinefunction(fn):
                    coro = fn(*args, **kwargs)
                    value = await (asyncio.wait_for(coro, timeout) if timeout else coro)
                else:
                    fut = asyncio.get_running_loop().run_in_executor(
                        self.client.thread_pool, functools.partial(fn, *args, **kwargs)
                    )
                    value = await (asyncio.wait_for(fut, timeout) if timeout else fut)
                payload = _serde.dumps(value)
                if self.redact_payloads:  # the policy keeps PII out of the store
                    payload = redact_json(payload)
                    value = _serde.loads(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                del self.running[key]
                if timeout and isinstance(exc, TimeoutError):
                    exc = StepTimeout(
                        f"call {name!r} in step {ctx.step_id!r} did not finish within {timeout}s"
                    )
                err = error_info(exc)
                if retry.should_retry(exc, attempt):
                    delay = retry.delay_for(exc, attempt)
                    err["retry_in"] = round(delay, 3)
                    await self.emit(
                        EventType.STEP_RETRYING,
                        key[0],
                        key[1],
                        key[2],
                        attempt,
                        json.dumps({"started": t0, "error": err}),
                    )
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                await self.emit(
                    EventType.STEP_FAILED,
                    key[0],
                    key[1],
                    key[2],
                    attempt,
                    json.dumps({"started": t0, "error": err})[:-1] + note + "}",
                )
                self.own_map("failed_attempts")[key] = attempt
                raise exc from None
            del self.running[key]
            await self.emit(
                EventType.STEP_COMPLETED,
                key[0],
                key[1],
                key[2],
                attempt,
                f'{{"started":{t0!r},"output":{payload}{note}}}',
            )
            self.recorded[key] = ("completed", f'{{"output":{payload}}}')
            return value

    async def _park(self) -> None:
        """Every step that could run has; some wait for a signal or timer: release the run."""
        deadlines = [d for _, d in self.parked.values() if d is not None]
        wake_at = min(deadlines) if deadlines else None
        names = sorted({n for names, _ in self.parked.values() for n in names})
        await self.emit(
            EventType.RUN_WAITING,
            data=json.dumps({"steps": sorted(self.parked), "signals": names, "wake_at": wake_at}),
            run_update={"status": RunStatus.WAITING, "wake_at": wake_at},
        )
        self.run.status = RunStatus.WAITING
        self.run.wake_at = wake_at
        if wake_at is not None:  # this engine wakes it then, unless a worker or a signal does first
            self.client.wake_at(self.run_id, wake_at)
        await self.checkpoint("park")
        # A signal sent between our last look and the status change would not have woken the run.
        signals = await self.store.get_signals(self.run_id)
        if any(n in signals for n in names):
            with contextlib.suppress(LeaseLost):
                await self.store.send_signal(self.run_id, f"__wake__:{self._seq}", None, now=time.time())
            self.client.wake_at(self.run_id, time.time())  # and this engine takes it up at its next sweep

    async def _hand_off(self) -> None:
        """A ready step needs worker labels this engine lacks: give the run to a worker that has them."""
        labels = ",".join(sorted(self.handoff))
        await self.emit(
            EventType.RUN_HANDED_OFF, data=json.dumps({"labels": labels}), run_update={"labels": labels}
        )
        await self.checkpoint("hand-off")
        await self.store.release_runs(self.client.owner, [self.run_id])
        self.run.labels = labels

    def poke(self) -> bool:
        """Re-run the parked steps (a signal arrived or a timer ran out). True if any was parked."""
        if not self.parked:
            return False
        for sid in list(self.parked):
            del self.parked[sid]
            self.state.pop(sid, None)
            self._ready.append(sid)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return True

    async def wait_signal(
        self,
        ctx: StepContext,
        name: str,
        timeout: float | None,
        default: Any,
        info: dict[str, Any] | None = None,
        *,
        plain: bool = False,
    ) -> Any:
        key = (f"{ctx.step_id}/signal:{name}", ctx.iteration, ctx.index)
        if info is not None:
            info = _shown(info)
        rec = self.recorded.get(key)
        if rec is not None and rec[0] == "completed":
            data = _serde.loads(rec[1]) if rec[1] else {}
            if info is not None and key in self.unasked:  # an approval's end no approval asked for
                problem = (
                    f"run {self.run_id}: the end of approval {name!r} in its log has no approval request: it was "
                    "written into the store behind the engine, so it is not taken; an approver decides with "
                    "'podium approvals approve' or client.decide()"
                )
                await self.client.governance.record("approval.refuse", self.run_id, actor="engine", name=name, reason=problem[:500])
                raise NonRetryableError(problem)
            if data.get("timed_out"):
                if default is _RAISE:
                    raise NonRetryableError(
                        f"step {ctx.step_id!r}: no signal {name!r} arrived within {timeout}s"
                    )
                return default
            return data.get("output")
        if plain and name.startswith(APPROVAL_SIGNAL):
            raise NonRetryableError(
                f"step {ctx.step_id!r}: ctx.wait_for({name!r}) uses a name reserved for approvals; "
                "ask for an approval with ctx.approval(name=...), or give the signal another name"
            )
        if timeout is not None and timeout != timeout:  # NaN (from a run input, say): never due
            what = "ctx.sleep()'s duration" if name.startswith("__timer__:") else f"the timeout of {name!r}"
            raise NonRetryableError(
                f"step {ctx.step_id!r}: {what} is not a number of seconds (NaN); give a number of seconds"
            )
        if self.signals is None or name not in self.signals:
            self.signals = await self.store.get_signals(self.run_id)
        if info is not None and key not in self.asked and name in self.signals and not name.startswith(BY_NAME):
            # A decision made on another request under this name (a loop asking again): it answers
            # the same question only. Another title, payload or role is a request of its own.
            # Compared as stored: redacted. Where the redaction hid something (two payees' IBANs both
            # "[IBAN]"), alike is not the same question: each pass asks its own (named by the pass).
            shown = self._question(info)
            hidden = self.redact_payloads and shown != self._question(info, redacted=False)
            if hidden or self.__dict__.get("questions", {}).get(self.decided.get(name)) != shown:
                asked: Any = [shown, ctx.iteration, ctx.index] if hidden else shown
                return await self.wait_signal(ctx, f"{name}@{asked_about(name, asked)}", timeout, default, info)
        held = False
        while True:
            now = time.time()
            if name in self.signals:
                payload = self.signals[name] or "null"
                if info is not None:  # an approval: only a decision made through the approval path
                    # the request it must decide: this wait's, or (a loop taking a decision again)
                    # the one it decided; a genuine decision always reached an open request (-1: none)
                    request = self.asked[key] if key in self.asked else self.decided.get(name, -1)
                    await self._check_decision(name, payload, request)
                data = f'{{"started":{now!r},"signal":{json.dumps(name)},"output":{payload}}}'
                await self.emit(EventType.STEP_COMPLETED, key[0], key[1], key[2], 1, data)
                if key in self.asked:
                    self._decide(name, self.asked[key])
                self.recorded[key] = ("completed", data)
                return _serde.loads(payload)
            if key not in self.wait_deadlines:
                deadline = now + timeout if timeout is not None else None
                waiting: dict[str, Any] = {"signal": name, "deadline": deadline}
                if info is not None:
                    waiting["approval"] = info
                data = json.dumps(waiting, default=str)
                if self.redact_payloads:  # an approval request shows the step's data: keep PII out of it
                    data = redact_json(data)
                seq = await self.emit(EventType.STEP_WAITING, key[0], key[1], key[2], 1, data)
                if seq is not None:
                    self.own_map("asked")[key] = seq
                    if info is not None:
                        self.own_map("questions")[seq] = json.loads(data)["approval"]
                self.own_map("wait_deadlines")[key] = deadline
            deadline = self.wait_deadlines[key]
            if deadline is not None and now >= deadline:
                if held and not name.startswith("__timer__:"):  # nobody sends a sleep's signal
                    # the signals seen while held may be stale: one sent in time wins over the default
                    self.signals, held = await self.store.get_signals(self.run_id), False
                    continue
                out = "null" if default is _RAISE else _serde.dumps(default)
                data = f'{{"started":{now!r},"signal":{json.dumps(name)},"timed_out":true,"output":{out}}}'
                if info is not None and not await self.store.close_request(self.run_id, name):
                    # a decision was stored after the signals were last read: it is taken (one
                    # the store accepted is never ignored); once closed, a late one is refused
                    self.signals = await self.store.get_signals(self.run_id)
                    continue
                await self.emit(EventType.STEP_COMPLETED, key[0], key[1], key[2], 1, data)
                self.recorded[key] = ("completed", data)
                if default is _RAISE:
                    raise NonRetryableError(f"step {ctx.step_id!r}: no signal {name!r} arrived within {timeout}s")
                return default
            until, timed = deadline, False
            # a person's decision (an approval) keeps its own SLA: the step's timeout is for its work
            step_end, step_timeout = self._attempt_end(ctx) if info is None else (None, None)
            if step_end is not None and deadline is not None and step_end < deadline:
                if now >= step_end:  # the attempt's own timeout (asyncio.timeout in _invoke) is due
                    raise StepTimeout(
                        f"step {ctx.step_id!r} attempt {ctx.attempt} did not finish within its timeout "
                        f"of {step_timeout}s (waiting for {name!r})"
                    )
                until, timed = step_end, True  # the attempt's timeout comes first
            if until is None or until - now > HOLD:
                if timed and step_end is not None:  # parked, woken for the timeout the log keeps counting
                    await self._log_attempt_end(ctx, step_end)
                raise _Suspend(name, until)
            await self._hold(name, until)  # due soon: wait here, holding the run, not parked
            held = True
            if name not in self.signals and self._switched_off(ctx):
                raise _Suspend("__killswitch__", None)  # as the parked run would have stopped on waking

    def _question(self, info: dict[str, Any], *, redacted: bool = True) -> Any:
        """What an approval request shows (title, payload, role), as its asking event stores it
        (``redacted``: false, as the step asked it)."""
        data = json.dumps({"approval": info}, default=str)
        return json.loads(redact_json(data) if redacted and self.redact_payloads else data)["approval"]

    async def _check_decision(self, name: str, payload: str, request: int | None) -> None:
        gov = self.client.governance
        if not gov.audit_enabled:
            return
        entries, keys = await self.store.audit_for(self.run_id), self.store.audit_keys.all()
        problem = decision_problem(
            self.run_id, name, payload, entries, keys, by=not self.redact_payloads, request=request
        )
        if problem:
            await gov.record("approval.refuse", self.run_id, actor="engine", name=name, reason=problem[:500])
            raise NonRetryableError(problem)

    async def check_tail(self) -> str | None:
        """Before the run goes on: each approval's end read from its log past the run's last engine
        anchor (the tail of an engine that crashed mid-run, or events written behind the engine's
        back) must be one the approval path made: a decision backed by a signed ``approval.decide``
        entry of its request, or a timeout whose deadline an anchored request set and which has
        passed. Checked before this engine writes an anchor of its own: its next park or hand-off
        covers every event it loaded, and the end of a wait the run had not reached yet was then
        taken unchecked there. An end under an approval's name that no approval asked for (a plain
        wait's, recorded before those names were reserved; or one written for a wait the run has
        not reached) is left to its step, anchored or not: ``ctx.approval`` refuses it
        (:attr:`unasked`), a plain wait takes it. Only runs whose log holds such an end read the
        audit log here. Why the run must fail (``approval.refuse`` audited), or None."""
        ends = sorted(
            (seq, key)
            for key, seq in self.replayed_at.items()
            # an approval's end whose step will run again and read it (one whose step has its own
            # outcome recorded is never read: a fork's kept steps, say)
            if f"/signal:{APPROVAL_SIGNAL}" in key[0] and (key[0].partition("/")[0], *key[1:]) not in self.recorded
        )
        gov = self.client.governance
        if not ends or not gov.audit_enabled:  # without auditing no decision is checked (as live)
            return None
        # a fork's copy of the end of a wait its kept step made: checked where it was made (reused.py)
        reused = [(seq, key) for seq, key in ends if marked_reused(self.recorded[key][1])]
        if reused:
            ends = [end for end in ends if end not in reused]
        asked = [(seq, key) for seq, key in ends if self._asked_for(key)]
        self.unasked = {key for _, key in ends if not self._asked_for(key)}
        if not asked and not reused:
            return None
        entries, keys = await self.store.audit_for(self.run_id), self.store.audit_keys.all()
        covered = anchored_events(entries, keys)
        for seq, key in reused:
            if seq > covered and (refusal := await self._reused_problem(key, keys)) is not None:
                await gov.record("approval.refuse", self.run_id, actor="engine", name=key[0].partition("/signal:")[2], reason=refusal[:500])
                return refusal
        for seq, key in asked:
            if seq <= covered:
                continue  # the run's digest vouches for it (checked before the run resumed)
            name, text = key[0].partition("/signal:")[2], self.recorded[key][1] or "{}"
            try:
                ended = _serde.loads(text)
            except Exception:
                ended = None
            problem: str | None
            if not isinstance(ended, dict):
                problem = f"run {self.run_id}: the end of approval {name!r} in its log is not one the engine writes: it is not taken"
            elif ended.get("timed_out"):  # as wait_signal reads it
                problem = self._timeout_problem(key, name, covered)
            else:
                at = text.find(',"output":')  # as the waiting step wrote it: the decision's text as stored
                request = self.asked.get(key, self.decided.get(name, -1))  # as the waiting step takes it
                problem = decision_problem(
                    self.run_id, name, text[at + 10 : -1] if at >= 0 else "null", entries, keys,
                    by=not self.redact_payloads, request=request,
                )  # fmt: skip
            if problem:
                await gov.record("approval.refuse", self.run_id, actor="engine", name=name, reason=problem[:500])
                return problem
        return None

    async def _reused_problem(self, key: Any, keys: Mapping[str, bytes]) -> str | None:
        """Why a fork's copy of an approval's end may not be taken (podium/engine/reused.py), or None."""
        from .reused import reused_problem

        return await reused_problem(
            self.store, keys, self.run_id, self.run.forked_from, key, self.recorded[key][1], by=not self.redact_payloads
        )

    def _asked_for(self, key: Any) -> bool:
        """Whether the log ties the end of wait ``key`` to an approval: an approval's request of it,
        or (no request: a loop asking again under a decided name takes that decision) a decision
        under its name."""
        return key in self.approvals_asked if key in self.asked else key[0].partition("/signal:")[2] in self.decided

    def _timeout_problem(self, key: Any, name: str, covered: int) -> str | None:
        """Why an approval's timeout read from the log's unanchored tail is not taken, or None: the
        engine writes one only at the deadline its request set, and nobody signs it; so the request
        must be anchored (its deadline the engine's) and that deadline past."""
        deadline, asked = self.wait_deadlines.get(key), self.asked.get(key)
        if not isinstance(deadline, (int, float)) or deadline != deadline:  # none, or not a time: never due
            deadline = None
        if asked is not None and asked <= covered and deadline is not None and time.time() >= deadline:
            return None
        when = "no deadline"
        if deadline is not None:
            try:
                when = f"deadline {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(deadline))}"
            except (OverflowError, ValueError, OSError):
                when = f"deadline {deadline!r}"
        return (
            f"run {self.run_id}: approval {name!r} is recorded as timed out, but its request "
            f"({when}) {'is not anchored' if asked is None or asked > covered else 'has not reached it'}: "
            "the timeout was written into the store behind the engine, so it is not taken; an approver "
            "decides with 'podium approvals approve' or client.decide()"
        )

    def _switched_off(self, ctx: StepContext) -> bool:
        """Whether a kill switch set during a held wait stops the step (it acts at the wait's end)."""
        gov, wf = self.client.governance, getattr(self, "wf", None)
        if wf is None or not gov.switch_cache:
            return False
        return gov.switched_off(wf.name, wf.steps[ctx.step_id].kind, lineage=getattr(self, "lineage", ())) is not None

    def _attempt_end(self, ctx: StepContext) -> tuple[float | None, float | None]:
        """When the running attempt of ``ctx``'s step reaches its ``timeout``, and that timeout (None
        without one)."""
        wf = getattr(self, "wf", None)
        s = wf.steps.get(ctx.step_id) if wf is not None else None
        started = self.running.get((ctx.step_id, ctx.iteration, ctx.index))
        if s is None or not s.timeout or started is None or ctx.reviewing:
            return None, None
        return started[0] + s.timeout, s.timeout

    async def _hold(self, name: str, deadline: float) -> None:
        """Wait in memory until ``deadline`` or until signal ``name`` is here, whichever is first
        (:meth:`signal_news` wakes the holders to look)."""
        loop = asyncio.get_running_loop()
        while self.signals is None or name not in self.signals:
            left = deadline - time.time()
            if left <= 0:
                return
            if self._news is None:
                self._news = loop.create_future()
            await asyncio.wait([self._news], timeout=left)

    @property
    def holding(self) -> bool:
        """Whether a step waits in memory for a timer due soon (or its signal)."""
        return self._news is not None

    def signal_news(self) -> None:
        """:attr:`signals` was read again: the steps held in memory look whether theirs is there."""
        news, self._news = self._news, None
        if news is not None and not news.done():
            news.set_result(None)

    def due(self, now: float) -> bool:
        """Whether a parked step can go on: its signal arrived or its timer ran out."""
        for names, deadline in self.parked.values():
            if deadline is not None and deadline <= now:
                return True
            if self.signals is not None and names & set(self.signals):
                return True
        return False
