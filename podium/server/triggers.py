"""What starts runs without a person: cron schedules, event subscriptions (``on: ticket.created``),
threshold rules over event values (``churn_score > 0.8``), files dropped into a watched folder,
events emitted by other workflows (``ctx.emit``), and broker messages (``nats:``, ``redis:``,
``amqp:``, ``mqtt:``; see broker_triggers.py).

Delivery is at-least-once with dedup: every run a trigger starts gets an id derived from what
caused it (the schedule and its fire time, the event's idempotency key, the file's path, size and
mtime), and starting a run with an existing id starts nothing (a watched file's mark is sealed, and
one missing or forged is checked against the file's run and its signed start: _file_marks.py). So a restart, a retry or a second
server never doubles a run. An event that cannot start its run (a kill switch, a store failure) is
kept in a dead-letter list (``GET /api/deadletters``) and can be replayed.

State lives in the client's store (key-value namespaces ``schedules``, ``deadletters``,
``filedrops``), so it survives restarts and is shared by every process on the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..engine.worker import subscribe
from ..errors import AuthError, ConfigError, InputValidationError, NotFound, PodiumError, StoreError
from ..governance.accounts import signed
from ..governance.deployers import Deployers
from ..governance.deployers import sender as letter_sender
from ..storage._letters import open_letter, seal, settled, unreadable
from . import _file_marks as file_marks
from . import _fire_times as fire_times
from ._rules import Rule
from ._webhooks import served as _webhooks
from .broker_triggers import BrokerConsumers, BrokerTrigger, broker_triggers
from .errors import ApiError

log = logging.getLogger("podium.triggers")

SCHEDULES, DEADLETTERS, FILEDROPS = "schedules", "deadletters", "filedrops"
MISFIRE_POLICIES = ("run_once", "skip", "run_all")


class InvalidBatch(ApiError):
    """Events of a batch that do not fit their workflows: the batch is refused whole (422), its
    ``problems`` naming each bad event's index and field."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        shown = "; ".join(f"event {p['index']} ({p['field']}): {p['message']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            422,
            "invalid_input",
            f"{len({p['index'] for p in problems})} event(s) of the batch do not fit the workflows subscribed "
            f"to them, so none was started: {shown}{more}; fix them (or leave them out) and post the batch again",
            problems=problems,
        )


def derived_id(*parts: str) -> str:
    """A run id derived from what caused the run: the same cause, the same run."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


async def refuse_taken_keys(client: Any, run_ids: Any, key: str, existing: set[str] | None = None) -> None:
    """Raise 409 ``idempotency_key_taken`` if another sender started any of ``run_ids`` (the runs a
    key derives): else whoever guesses a key first (an order number) has their own payload run
    in its place and the genuine sender answered "duplicate", its data never run. The caller's
    own repeats pass (they are duplicates); so does everything in local mode (one person).
    ``existing``: the ids known to exist already (else they are looked up)."""
    who = client.principal
    if who.local:
        return
    found = set(run_ids) & existing if existing is not None else await client.store.existing_runs(list(run_ids))
    for rid in sorted(found):
        starter = await client.governance.started_by(rid)
        if starter is not None and not starter.local and starter.name != who.name:
            raise ApiError(
                409,
                "idempotency_key_taken",
                f"idempotency key {key[:100]!r} already started run {rid}, and not for {who.name}: another "
                "sender used it first, so nothing was started for this request. Send a key of your own (a "
                "prefix naming your system keeps keys apart); the audit log names who started that run",
            )




@dataclass(frozen=True)
class Schedule:
    key: str
    cron: str
    workflow: str
    timezone: str
    input: Any = None
    error: str | None = None
    """Why it cannot fire (a bad cron string or time zone): it is skipped, and reported once."""


class Triggers:
    """Runs the triggers of one server's client. ``start()`` launches the background loop."""

    def __init__(self, client: Any, settings: Any) -> None:
        self.client = client
        self.settings = settings
        self.rules = [Rule(**r) if isinstance(r, dict) else r for r in settings.rules]
        for r in self.rules:
            r.check()
        if settings.misfire not in MISFIRE_POLICIES:
            raise ConfigError(
                f"misfire policy {settings.misfire!r} is not one of {', '.join(MISFIRE_POLICIES)}"
            )
        self.schedules: list[Schedule] = []
        self.subscriptions: list[tuple[str, str, Any]] = []
        self.brokers: list[BrokerTrigger] = []
        self.webhooks: dict[tuple[str, str], tuple[str, Any]] = {}
        self.hook_conflicts: dict[tuple[str, str], list[str]] = {}
        """Webhooks two workflows declare -> their names (the one that held it keeps it; else nobody)."""
        """(method, path) -> (workflow, input template or None): the YAML ``webhook:`` triggers."""
        self.deployers = Deployers(client.governance)
        self._watch_warned: set[str] = set()  # watched folders whose unknown workflow was warned about
        """Whom each workflow's own triggers act as (its deploy entry kept a few seconds)."""
        self.consumers = BrokerConsumers(client, self._failed, self.deployers)
        self.fired = 0
        self._counted: dict[str, float] = {}  # schedule -> the latest fire time this server wrote or read
        self.ingested = 0
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._broken: dict[str, str] = {}
        self._unnamed: set[str] = set()  # watched files whose names are not UTF-8, logged once each
        self._marking: dict[str, asyncio.Future[str | None]] = {}
        """Run ids of watched files being checked or started now -> what came of it."""
        self._marks_held: dict[str, str] = {}  # file mark -> the sealed text this server checked (not per scan)
        self._undeployable: set[tuple[str, str]] = set()
        """Deployed (name, version)s that did not load (logged once)."""
        self._inflight: dict[str, asyncio.Future[str]] = {}
        """Run ids being started by an event now: run id -> what came of it."""
        self.refresh()

    def refresh(self) -> None:
        """Read the triggers declared by the registered workflows (after a deploy)."""
        self.deployers.forget()  # a deploy of the same version by someone else names another deployer
        schedules, subs, brokers = [], [], []
        claims: dict[tuple[str, str], dict[str, Any]] = {}  # (method, path) -> {workflow: its input}
        for wf in sorted(self.client.registry, key=lambda w: (w.name, w.version)):
            name = wf.name
            if not self.client.registry.is_latest(wf):
                continue
            brokers += broker_triggers(name, getattr(wf, "triggers", None) or [])
            for i, t in enumerate(getattr(wf, "triggers", None) or []):
                if not isinstance(t, dict):
                    continue
                if "schedule" in t:
                    from ..yaml._cron import cron_problem

                    tz = t.get("timezone") or self.settings.timezone
                    schedules.append(
                        Schedule(
                            f"{name}:{i}:{t['schedule']}:{tz}",
                            str(t["schedule"]),
                            name,
                            tz,
                            t.get("input"),
                            error=cron_problem(t["schedule"], tz),
                        )
                    )
                elif "event" in t:
                    subs.append((str(t["event"]), name, t.get("input")))
                elif "webhook" in t:
                    hook = t["webhook"]
                    path = str(hook.get("path") if isinstance(hook, dict) else hook)
                    method = str(hook.get("method", "POST") if isinstance(hook, dict) else "POST").upper()
                    claims.setdefault((method, path), {}).setdefault(name, t.get("input"))
        hooks, self.hook_conflicts = _webhooks(claims, self.webhooks)
        self.schedules, self.subscriptions, self.brokers, self.webhooks = schedules, subs, brokers, hooks
        self.consumers.sync(brokers)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # The server's own subscription (client.on checks payloads.read, which its account may lack).
        self._unsubscribe = await subscribe(self.client, "*", self._on_emitted, origin=True)
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self.consumers.start(self.brokers)

    async def stop(self) -> None:
        await self.consumers.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                await self._unsubscribe()

    async def _loop(self) -> None:
        while True:
            try:
                await self.follow_deploys()
            except Exception:  # the triggers already served still fire
                log.exception("reading the workflows deployed into the store failed; retrying")
            self.check_watch()
            try:
                await self.tick()
            except Exception:
                log.exception("trigger tick failed; retrying")
            await asyncio.sleep(self.settings.trigger_interval)

    def check_watch(self) -> list[str]:
        """Warn (once per folder) about a watched folder whose workflow is neither served nor
        deployed: its files would be dead-lettered. Not refused, as a deploy may bring it later.
        Returns the warnings given now."""
        import difflib

        warned = self._watch_warned
        said = []
        names = sorted({w.name for w in self.client.registry})
        for folder, workflow in self.settings.watch.items():
            if folder in warned or self.client.registry.latest(workflow) is not None:
                continue
            warned.add(folder)
            close = difflib.get_close_matches(workflow, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            said.append(
                f"--watch {folder}={workflow}: no served or deployed workflow is named {workflow!r}; {hint}"
                f"files dropped into {folder!r} are dead-lettered until it is deployed (podium workflows deploy "
                f"FILE) or served (-w FILE)"
                + (f"; workflows here: {', '.join(names)}" if names and not close else "")
            )
            log.warning("%s", said[-1])
        return said

    async def follow_deploys(self) -> None:
        """Serve the triggers of workflows deployed into the store by another process (``podium
        workflows deploy``) or rolled back there, without a restart: their active versions are
        loaded as at the start (one that does not load is logged once and left out)."""
        from . import deployed

        def latest() -> set[tuple[str, str]]:
            return {(w.name, w.version) for w in self.client.registry if self.client.registry.is_latest(w)}

        before = latest()
        await deployed.refresh(self.client, self._undeployable)
        if latest() != before:
            self.refresh()

    async def tick(self, now: float | None = None) -> list[str]:
        """Fire due schedules and pick up dropped files; returns the ids of the runs started.

        Each trigger fails alone: a schedule or folder that raises is reported (logged and audited as
        ``trigger.failed``, once until it works again) and the others still fire."""
        now = time.time() if now is None else now
        if await self._refused():  # a server whose token no longer stands starts nothing
            return []
        started = []
        for s in self.schedules:
            if s.error is not None:
                await self._failed(f"schedule:{s.key}", s.workflow, s.error)
                continue
            try:
                started += await self._tick_schedule(s, now)
                self._broken.pop(f"schedule:{s.key}", None)
            except Exception as exc:
                await self._failed(f"schedule:{s.key}", s.workflow, f"schedule {s.cron!r}: {exc}")
        for folder, workflow in self.settings.watch.items():
            try:
                await self._scan(folder, workflow, started)
                self._broken.pop(f"folder:{folder}", None)
            except Exception as exc:
                await self._failed(f"folder:{folder}", workflow, f"watched folder {folder!r}: {exc}")
        return started

    async def _refused(self) -> str | None:
        """Why this server's own token no longer stands (logged once), or None. Its triggers then
        start nothing, not even as a workflow's deployer or an emitting run's starter: whoever
        revoked it stopped the host."""
        refused = await self.client.governance.own_refusal()
        if refused and self._broken.get("server") != refused:
            log.error("this server's token is refused (%s): its triggers start nothing", refused)
        if refused:
            self._broken["server"] = refused
        else:
            self._broken.pop("server", None)
        return refused

    async def _failed(self, trigger: str, workflow: str, error: str) -> None:
        """Report a trigger that cannot fire: once (not every tick) until it works again."""
        if self._broken.get(trigger) == error:
            return
        self._broken[trigger] = error
        log.error("trigger %s of workflow %s cannot fire: %s (the other triggers go on)", trigger, workflow, error)
        try:
            await self.client.record_audit("trigger.failed", trigger, workflow=workflow, error=error)
        except StoreError as exc:  # the store is down (often why the trigger failed): one line, not a traceback
            log.warning("could not audit the failure of trigger %s: %s", trigger, exc)
        except Exception:  # the report must not stop the loop either
            log.exception("could not audit the failure of trigger %s", trigger)

    # -- schedules ------------------------------------------------------------------------------

    async def _tick_schedule(self, s: Schedule, now: float) -> list[str]:
        from zoneinfo import ZoneInfo

        from croniter import croniter

        store = self.client.store
        state = await store.kv_get(SCHEDULES, s.key)
        if state is None:  # first sight: start counting from now, do not replay history
            await store.kv_put(SCHEDULES, s.key, fire_times.seal(store, s.key, now))
            return []
        last, taken = fire_times.open_state(store, s.key, state, sealed=self.client.governance.audit_enabled)
        if not taken:  # edited in the store: neither past periods again nor silence (_fire_times)
            latest = croniter(s.cron, dt.datetime.fromtimestamp(now, ZoneInfo(s.timezone))).get_prev(float)
            last = fire_times.fire_from(last, now, latest)
            await self._untaken_fire_time(s.key, state, last)
        assert last is not None  # taken: readable
        last = self._counted[s.key] = max(last, self._counted.get(s.key, last))  # an older sealed time put back
        it = croniter(s.cron, dt.datetime.fromtimestamp(last, ZoneInfo(s.timezone)))
        due: list[float] = []
        nxt = it.get_next(float)
        while nxt <= now and len(due) < 10_000:
            due.append(nxt)
            nxt = it.get_next(float)
        if not due:
            return []
        policy, grace = self.settings.misfire, self.settings.misfire_grace
        late = [t for t in due if now - t > grace]
        if policy == "run_all" and taken:
            fire = due[-100:]
        elif policy == "skip":
            fire = [t for t in due if now - t <= grace][-1:]
        else:
            fire = due[-1:]
        if late:
            log.warning("schedule %s missed %d fire time(s); misfire policy %s", s.key, len(late), policy)
        ids = []
        for t in fire:
            rid = derived_id("schedule", s.key, f"{t:.0f}")
            payload = s.input if s.input is not None else {"scheduled_at": t}
            if await self._start(s.workflow, payload, rid, source="schedule", event=s.cron, key=f"{t:.0f}"):
                ids.append(rid)
        # Recorded after starting: a crash in between re-derives the same run ids, so nothing doubles.
        await store.kv_put(SCHEDULES, s.key, fire_times.seal(store, s.key, due[-1]))
        self._counted[s.key] = due[-1]
        return ids

    async def _untaken_fire_time(self, key: str, state: str, counted_from: float) -> None:
        """Warn of and audit a fire time not taken (``access.denied`` of ``schedule:KEY``), and seal
        what the schedule counts from instead, so it is reported once."""
        problem = fire_times.problem(key, state)
        log.warning("%s", problem)
        await self.client.record_audit(
            "access.denied", f"schedule:{key}", reason="record not backed by the audit log", problem=problem
        )
        await self.client.store.kv_put(SCHEDULES, key, fire_times.seal(self.client.store, key, counted_from))

    # -- events ---------------------------------------------------------------------------------

    def subscribers(self, event_type: str) -> list[tuple[str, Any]]:
        return [
            (wf, inp) for pattern, wf, inp in self.subscriptions if fnmatch.fnmatchcase(event_type, pattern)
        ]

    async def ingest(self, event_type: str, payload: Any, key: str | None) -> dict[str, Any]:
        """An event posted to the API: validate it against every subscribed workflow's input, then
        start one run per subscriber (and per matching rule), deduplicated by ``key``."""
        targets = self._targets(event_type, payload)
        problems = self._misfits(targets) + self._undecided(event_type, payload)
        if problems:
            raise InputValidationError(
                f"event {event_type!r} does not fit the workflows subscribed to it: " + "; ".join(problems)
            )
        self.ingested += 1
        key = key or uuid.uuid4().hex
        await refuse_taken_keys(self.client, [derived_id(src, event_type, wf, key) for wf, _, src in targets], key)
        return await self._start_targets(event_type, key, targets)

    async def ingest_many(self, events: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
        """Events posted together, ``(type, payload, idempotency key)`` each: all are checked first
        and one that does not fit refuses the whole batch (:class:`InvalidBatch`, nothing started);
        then every run starts at once, so their starts share a few commits (the store's group
        commit). Returns once every run is durable: one answer per event, in order. A key posted
        twice in the batch (or before) starts one run; the first mention of it is the new one."""
        plans, problems = [], []
        for i, (event_type, payload, _) in enumerate(events):
            targets = self._targets(event_type, payload)
            problems += [
                {"index": i, "field": "payload", "message": p}
                for p in self._misfits(targets) + self._undecided(event_type, payload)
            ]
            plans.append(targets)
        if problems:
            raise InvalidBatch(problems)
        for wf in sorted({t[0] for targets in plans for t in targets}):  # refused: nothing starts
            await self.client.authorize("runs.start", f"workflow:{wf}")
        self.ingested += len(events)
        # The runs these keys started before (a batch posted again): one query, not one per event.
        ids = [derived_id(src, t, wf, key) for (t, _, key), targets in zip(events, plans, strict=True) for wf, _, src in targets]
        known = await self.client.store.existing_runs(ids)
        if known:  # a key another sender used first refuses the batch (nothing starts)
            for (t, _, key), targets in zip(events, plans, strict=True):
                await refuse_taken_keys(self.client, [derived_id(src, t, wf, key) for wf, _, src in targets], key, known)
        return list(
            await asyncio.gather(
                *(self._start_targets(t, key, targets, known) for (t, _, key), targets in zip(events, plans, strict=True))
            )
        )

    def _targets(self, event_type: str, payload: Any) -> list[tuple[str, Any, str]]:
        """(workflow, its input, source) for each run the event starts."""
        targets = [(wf, payload if inp is None else inp, "event") for wf, inp in self.subscribers(event_type)]
        return targets + [
            (r.workflow, payload, f"rule:{r.name}") for r in self.rules if r.matches(event_type, payload)
        ]

    def _undecided(self, event_type: str, payload: Any) -> list[str]:
        """The rules that cannot decide on this event (:meth:`Rule.undecided`)."""
        return [why for r in self.rules if (why := r.undecided(event_type, payload)) is not None]

    def _misfits(self, targets: list[tuple[str, Any, str]]) -> list[str]:
        problems = []
        for wf_name, value, _ in targets:
            try:
                self.client.workflow(wf_name).validate_input(value)
            except (InputValidationError, NotFound) as exc:
                problems.append(f"{wf_name}: {exc}")
        return problems

    async def _start_targets(
        self, event_type: str, key: str, targets: list[tuple[str, Any, str]], known: set[str] | None = None
    ) -> dict[str, Any]:
        """Start the event's runs; ``known``: run ids found in the store already (None: look each up)."""
        outcomes: dict[str, list[str]] = {"run": [], "duplicate": [], "dead": []}
        for wf_name, value, source in targets:
            rid = derived_id(source, event_type, wf_name, key)
            if known is not None and rid in known:
                outcomes["duplicate"].append(rid)
                continue
            outcome = await self._start_once(wf_name, value, rid, source=source, event=event_type, key=key, look=known is None)
            if outcome == "raced":  # another post of this key, made at the same moment, started it: whose?
                await refuse_taken_keys(self.client, [rid], key, {rid})
                outcome = "duplicate"
            outcomes[outcome].append(rid)
        return {
            "event": event_type,
            "idempotency_key": key,
            "subscribers": [t[0] for t in targets],
            "runs": outcomes["run"],
            "duplicates": outcomes["duplicate"],
            "dead_lettered": outcomes["dead"],
        }

    async def _on_emitted(self, topic: str, payload: Any, origin: str | None = None) -> None:
        """An event published on the bus. One a run's step sent (``origin``, its id) starts its runs
        as whoever started that run (from the signed audit log), never as this server's account:
        else a run's starter would launder their identity through an event (approve the run it
        starts, four eyes notwithstanding; a YAML ``forget`` step erasing with the server's roles)."""
        key = payload.get("idempotency_key") if isinstance(payload, dict) else None
        key = str(key) if key is not None else uuid.uuid4().hex
        targets = [(wf, payload if inp is None else inp, "event") for wf, inp in self.subscribers(topic)]
        targets += [(r.workflow, payload, f"rule:{r.name}") for r in self.rules if r.matches(topic, payload)]
        undecided = [(r, why) for r in self.rules if (why := r.undecided(topic, payload)) is not None]
        if not targets and not undecided:
            return
        for r, why in undecided:  # no caller to refuse: kept as a dead letter, for a person to look at
            await self._launch(r.workflow, payload, derived_id(f"rule:{r.name}", topic, r.workflow, key), source=f"rule:{r.name}",
                               event=topic, key=key, own=True, refuse=why)  # fmt: skip
        starter = await self.client.governance.started_by(origin) if origin else None
        for wf_name, value, source in targets:
            await self._start(
                wf_name,
                value,
                derived_id(source, topic, wf_name, key),
                source="emitted" if source == "event" else source,
                event=topic,
                key=key,
                origin=(origin, starter) if origin else None,
            )

    # -- files ----------------------------------------------------------------------------------

    async def _scan(self, folder: str, workflow: str, started: list[str]) -> None:
        """Start a run for each new file in ``folder`` (its id added to ``started``). A file that
        fails is left for the next scan and the others go on; the first failure is raised then."""
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return
        failed: Exception | None = None
        for name in names:
            try:
                if (rid := await self._scan_one(folder, name, workflow)) is not None:
                    started.append(rid)
            except Exception as exc:  # this file only: one that always fails must not hold up the rest
                failed = failed or exc
        if failed is not None:
            raise failed

    async def _scan_one(self, folder: str, name: str, workflow: str) -> str | None:
        path = os.path.abspath(os.path.join(folder, name))
        if name.startswith(".") or not os.path.isfile(path):
            return None
        try:
            path.encode()
        except UnicodeEncodeError:  # bytes os.listdir could not decode: no store or JSON holds them
            if path not in self._unnamed:  # named in the log only: the audit log cannot forget a name
                self._unnamed.add(path)
                log.error("watched file %r: its name is not UTF-8, so no run can be given its path; rename it", os.fsencode(path))
            raise ConfigError("a file whose name is not UTF-8 (named in the server's log) is left: rename it") from None
        try:
            st = os.stat(path)
        except FileNotFoundError:  # taken away since the listing
            return None
        if time.time() - st.st_mtime < 0.2:  # still being written; next scan
            return None
        mark = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        rid = derived_id("file", mark)
        stored = await self.client.store.kv_get(FILEDROPS, mark)
        if stored is not None and self._marks_held.get(mark) == stored:  # checked at an earlier scan, unchanged
            return None
        if file_marks.holds(self.client.store, mark, rid, stored):
            if len(self._marks_held) >= 100_000:
                self._marks_held.clear()
            self._marks_held[mark] = str(stored)
            return None
        if (other := self._marking.get(rid)) is not None:  # another scan of this server has it in hand: its outcome
            return await asyncio.shield(other)
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._marking[rid] = done
        outcome: str | None = None
        try:
            outcome = await self._start_file(folder, name, path, st.st_size, mark, rid, stored, workflow)
            return outcome
        finally:
            del self._marking[rid]
            done.set_result(outcome)

    async def _start_file(
        self, folder: str, name: str, path: str, size: int, mark: str, rid: str, stored: str | None, workflow: str
    ) -> str | None:
        if not await file_marks.unmarked(self.client, folder, mark, rid, stored, FILEDROPS):  # it ran: marked again
            return None
        payload = {"path": path, "name": name, "size": size}
        # a start the store failed raises (reported by tick): unmarked, the file is tried at the next scan
        started = await self._start(workflow, payload, rid, source="file", event=path, key=mark, store_retry=True)
        await self.client.store.kv_put(FILEDROPS, mark, file_marks.seal(self.client.store, mark, rid))
        return rid if started else None

    # -- starting and dead letters ----------------------------------------------------------------

    async def _start_once(
        self, workflow: str, payload: Any, rid: str, *, source: str, event: str, key: str, look: bool = True
    ) -> str:
        """Start run ``rid`` unless it exists: ``run`` (started), ``duplicate`` (it existed),
        ``raced`` (another post of the same key, made at the same time, started it: its sender is
        still to be checked) or ``dead`` (dead-lettered). The same event posted concurrently to this
        server is started (and audited) once, the later posts waiting for the first; posted to
        several servers, the store's unique run id keeps it to one run."""
        while (first := self._inflight.get(rid)) is not None:
            outcome = await asyncio.shield(first)
            if outcome != "error":  # the first post raised (refused): this one tries for itself
                return "dead" if outcome == "dead" else "raced"
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[rid] = done
        outcome = "error"
        try:
            if look and await self.client.store.get_run(rid) is not None:  # else the store's unique id decides
                outcome = "duplicate"
            else:
                outcome = await self._launch(workflow, payload, rid, source=source, event=event, key=key)
                if outcome == "duplicate":  # it was not there a moment ago
                    outcome = "raced"
            return outcome
        finally:
            del self._inflight[rid]
            done.set_result(outcome)

    async def _start(
        self, workflow: str, payload: Any, rid: str, *, source: str, event: str, key: str, origin: Any = None,
        store_retry: bool = False,
    ) -> bool:
        """Start the run (idempotently); on failure keep the event as a dead letter and return False.
        The server's own triggers (schedules, emitted events, rules, files) have no caller to refuse:
        a start the server's account (or, for an event a run sent, that run's starter: ``origin``,
        (run id, starter)) may not make is dead-lettered too, to replay once granted. With
        ``store_retry`` (a watched folder, which keeps its files like a broker its messages) a start
        the store failed raises instead, for the trigger to try again."""
        outcome = await self._launch(
            workflow, payload, rid, source=source, event=event, key=key, own=True, origin=origin, store_retry=store_retry
        )
        return outcome != "dead"

    async def _launch(
        self, workflow: str, payload: Any, rid: str, *, source: str, event: str, key: str, own: bool = False,
        origin: Any = None, store_retry: bool = False, refuse: str | None = None,
    ) -> str:
        """:meth:`_start`, saying whether the run was started (``run``), existed (``duplicate``) or
        was dead-lettered (``dead``)."""
        starts_as = None if own else self.client.principal  # a caller's event: kept with its dead letter
        try:
            if refuse is not None:  # not started, for this reason: a dead letter
                raise ConfigError(refuse)
            if own and (refused := await self._refused()):
                raise AuthError(f"not started: {refused}")
            if origin is None and own:  # a schedule or a watched folder: as the workflow's deployer
                who = starts_as = await self.as_deployer(workflow)
                with self.client.acting_as(who) if who is not None else contextlib.nullcontext():
                    handle = await self.client.start(workflow, payload, run_id=rid)
            elif origin is None:
                handle = await self.client.start(workflow, payload, run_id=rid)
            else:
                sender, starter = origin
                if starter is None:
                    raise AuthError(
                        f"run {sender}, whose step sent event {event!r}, has no starter the audit log can name "
                        f"(auditing off, or a user since deleted), so {workflow!r} is not started for them; someone "
                        f"who may start it can replay this dead letter: POST /api/deadletters/{rid}/replay"
                    )
                starts_as = starter
                with self.client.acting_as(starter):  # the sender's starter, as a child run's is its root's
                    handle = await self.client.start(workflow, payload, run_id=rid)
            self.fired += 1
            return "run" if handle.created else "duplicate"
        except (PodiumError, OSError) as exc:
            if (isinstance(exc, AuthError | StoreError) and not own) or (isinstance(exc, StoreError) and store_retry):
                # An HTTP caller may not start it: a 401/403 for them, not a dead letter. Or the store
                # failed (a killed session, a full disk): a 503, and the sender sends again with the
                # same key, instead of a 202 for a run that does not exist (a dead letter in the
                # store that just failed, to be replayed by hand). A watched folder's file, likewise,
                # is left unmarked for its next scan.
                raise
            letter = {
                "id": rid,
                "source": source,
                "event": event,
                "key": key,
                "workflow": workflow,
                "payload": payload,
                "error": str(exc),
                "error_type": type(exc).__name__,
                "ts": time.time(),
            }
            if starts_as is not None and not starts_as.local and starts_as.name != self.client.governance.principal_default.name:
                letter["sent_by"] = starts_as.name  # a replay starts as them (four eyes), not as the replayer
            await self.client.store.kv_put(DEADLETTERS, rid, seal(self.client.store, letter))
            log.warning("%s %s could not start %s: %s (dead-lettered)", source, event, workflow, exc)
            return "dead"

    async def as_deployer(self, workflow: str) -> Any:
        """Whom ``workflow``'s own triggers act as (:func:`podium.governance.deployers.deployer`):
        None for the server itself; raises :class:`AuthError` when nobody may."""
        version = await self.client.deployments.active(workflow)  # the row, checked against the signed log
        return await self.deployers(workflow, version)

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first; ``problem`` says why one may not be replayed (None: it may)."""
        sealed = self.client.governance.audit_enabled
        letters = []
        for key, text in (await self.client.store.kv_list(DEADLETTERS)).items():
            letter, problem = open_letter(self.client.store, key, text, sealed=sealed)
            letters.append({**letter, "problem": problem or unreadable(letter)})
        return sorted(letters, key=lambda d: (float(d["ts"] or 0), d["id"]))  # the API pages by (ts, id)

    async def replay(self, letter_id: str) -> dict[str, Any]:
        """Start a dead letter's run as the caller; a letter the engine did not seal, or that a signed
        entry dropped or replayed since, is refused (409) and the refusal audited."""
        store = self.client.store
        text = await store.kv_get(DEADLETTERS, letter_id)
        if text is None:
            raise NotFound(f"no dead letter {letter_id!r}; list them with GET /api/deadletters")
        audited = self.client.governance.audit_enabled
        d, problem = open_letter(store, letter_id, text, sealed=audited)
        if problem is None and audited:
            problem = settled(d, await signed(store, f"deadletter:{letter_id}"))
        if problem:
            await self.client.record_audit(
                "access.denied", f"deadletter:{letter_id}", reason="record not backed by the audit log", problem=problem
            )
            raise ApiError(409, "not_backed", problem)
        if nothing := unreadable(d):  # no payload: a replay would start the workflow with none
            raise ApiError(409, "unreadable", nothing)
        as_sender = contextlib.nullcontext()
        if d.get("sent_by") and d["sent_by"] != self.client.principal.name:  # the sender stays the run's starter
            try:
                as_sender = self.client.acting_as(await letter_sender(self.client.governance, str(d["sent_by"]), f"dead letter {letter_id}"))
            except AuthError as exc:
                raise ApiError(409, "sender_refused", str(exc)) from None
        with as_sender:
            await self.client.start(d["workflow"], d["payload"], run_id=d["id"])  # raises: stays dead-lettered
        await store.kv_put(DEADLETTERS, letter_id, None)
        await self._audit("deadletter.replay", d)
        return {"run_id": d["id"], "replayed": True}

    async def discard(self, letter_id: str) -> None:
        """Drop a dead letter: the only record that its event came, so who dropped it is audited."""
        text = await self.client.store.kv_get(DEADLETTERS, letter_id)
        if text is None:
            raise NotFound(f"no dead letter {letter_id!r}; list them with GET /api/deadletters")
        await self.client.store.kv_put(DEADLETTERS, letter_id, None)
        await self._audit("deadletter.discard", open_letter(self.client.store, letter_id, text)[0])

    async def _audit(self, action: str, letter: dict[str, Any]) -> None:
        """Audit what became of a dead letter: which event of which workflow (never its payload, nor
        a dropped file's path, which may name a person: the audit log cannot forget)."""
        await self.client.record_audit(
            action,
            f"deadletter:{letter['id']}",
            workflow=letter.get("workflow"),
            event=None if letter.get("source") == "file" else letter.get("event"),
            source=letter.get("source"),
            error_type=letter.get("error_type"),
        )

    async def schedule_states(self) -> list[dict[str, Any]]:
        from zoneinfo import ZoneInfo

        from croniter import croniter

        out = []
        for s in self.schedules:
            state = await self.client.store.kv_get(SCHEDULES, s.key)
            last = fire_times.open_state(self.client.store, s.key, state)[0] if state else None
            nxt = None
            if s.error is None:
                nxt = croniter(
                    s.cron, dt.datetime.fromtimestamp(last or time.time(), ZoneInfo(s.timezone))
                ).get_next(float)
            try:
                who = await self.as_deployer(s.workflow)
                runs_as = (who or self.client.governance.principal_default).name
            except AuthError as exc:
                runs_as = f"nobody: {exc}"
            out.append(
                {
                    "workflow": s.workflow,
                    "runs_as": runs_as,
                    "cron": s.cron,
                    "timezone": s.timezone,
                    "last": last,
                    "next": nxt,
                    "error": s.error or self._broken.get(f"schedule:{s.key}"),
                }
            )
        return out
