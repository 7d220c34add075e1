"""Alert rules over the engine's events and audit log, delivered to webhooks and email.

Kinds of rule:

=====================  ===========================================================================
``run_failed``         a run failed (optionally only runs of ``workflow``)
``latency_slo``        a run, or a step (``step``), took longer than ``seconds``; also fires for a
                       run still running past ``seconds``
``budget_reached``     a run reached its token or cost budget (audit action ``policy.budget``)
``policy_refused``     a policy or kill switch refused a model or tool call (``policy.refuse``)
``approval_sla_missed``  an approval request has been open longer than ``seconds``
``connector_drift``    a connector's result drifted from its contract and was quarantined
                       (``connector.drift``)
``connector_api_change``  an API marked an operation deprecated, or retired it (HTTP 410; audit
                       ``connector.deprecated``, ``connector.gone``)
=====================  ===========================================================================

A rule fires at most once per ``cooldown`` seconds for the same subject (its workflow, or its step);
repeats in between are counted and reported with the next alert. An approval request is alerted once.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..records import Event
from ._channels import Alert, Channel
from ._events import RUN_ENDS, data_of, error_of, started_of, workflow_of

log = logging.getLogger("podium.alerts")

KINDS = (
    "run_failed",
    "latency_slo",
    "budget_reached",
    "policy_refused",
    "approval_sla_missed",
    "connector_drift",
    "connector_api_change",
)
_AUDIT_KINDS = {
    "policy.budget": "budget_reached",
    "policy.refuse": "policy_refused",
    "connector.drift": "connector_drift",
    "connector.deprecated": "connector_api_change",
    "connector.gone": "connector_api_change",
}
SEVERITIES = ("info", "warning", "critical")


@dataclass(kw_only=True)
class AlertRule:
    """When to alert, and whom."""

    name: str
    """Shown in every alert it sends."""
    kind: str
    """One of ``run_failed``, ``latency_slo``, ``budget_reached``, ``policy_refused``,
    ``approval_sla_missed``."""
    workflow: str | None = None
    """Only runs of this workflow (a name or a glob such as ``billing-*``); None: every workflow."""
    step: str | None = None
    """``latency_slo`` only: watch this step's duration (a glob; ``*`` for every step) instead of
    the whole run's."""
    seconds: float | None = None
    """``latency_slo``: the objective; ``approval_sla_missed``: how long a request may stay open."""
    channels: list[str] | None = None
    """Names of the channels to send to; None: every channel."""
    cooldown: float = 300.0
    """Seconds during which the rule stays quiet for the same subject after alerting."""
    severity: str = "warning"
    """``info``, ``warning`` or ``critical`` (shown in the email subject and the webhook body)."""

    def __post_init__(self) -> None:
        where = f"alert rule {self.name!r}"
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.kind in ("latency_slo", "approval_sla_missed"):
            if (
                not isinstance(self.seconds, int | float)
                or isinstance(self.seconds, bool)
                or self.seconds <= 0
            ):
                raise ConfigError(
                    f"{where}: {self.kind} needs seconds > 0 (e.g. seconds: 120); got {self.seconds!r}"
                )
        elif self.seconds is not None:
            raise ConfigError(
                f"{where}: seconds applies to latency_slo and approval_sla_missed, not {self.kind}"
            )
        if self.step is not None and self.kind != "latency_slo":
            raise ConfigError(f"{where}: step applies to latency_slo only")
        if self.severity not in SEVERITIES:
            raise ConfigError(
                f"{where}: severity must be one of {', '.join(SEVERITIES)}; got {self.severity!r}"
            )
        if self.cooldown < 0:
            raise ConfigError(f"{where}: cooldown must be >= 0 seconds; got {self.cooldown!r}")

    def matches(self, workflow: str) -> bool:
        return self.workflow is None or fnmatch.fnmatchcase(workflow, self.workflow)



class Alerts:
    """Watches a client and sends alerts when rules fire.

    >>> alerts = Alerts([AlertRule(name="failures", kind="run_failed")], [Webhook(url="https://...")])
    >>> alerts.attach(client); await alerts.start()    # ... await alerts.stop()
    """

    def __init__(
        self,
        rules: Sequence[AlertRule],
        channels: Sequence[Channel] | dict[str, Channel] = (),
        *,
        poll_interval: float = 30.0,
    ) -> None:
        self.rules = list(rules)
        if isinstance(channels, dict):
            for name, ch in channels.items():
                ch.name = name
            channels = list(channels.values())
        self.channels = {ch.name: ch for ch in channels}
        if len(self.channels) != len(channels):
            raise ConfigError("alert channels need distinct names (name=...)")
        for r in self.rules:
            unknown = [c for c in r.channels or () if c not in self.channels]
            if unknown:
                raise ConfigError(
                    f"alert rule {r.name!r} sends to unknown channel(s) {', '.join(unknown)}; "
                    f"channels: {', '.join(self.channels) or 'none'}"
                )
        self.poll_interval = poll_interval
        self.client: Any = None
        self.sent: deque[Alert] = deque(maxlen=200)
        """The latest alerts handed to channels (newest last)."""
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._once: set[tuple[str, str]] = set()
        self._started: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._unsubscribe: list[Any] = []

    # -- wiring ----------------------------------------------------------------------------------

    def attach(self, client: Any) -> None:
        """Listen to ``client``'s events and audit entries."""
        self.client = client
        self._unsubscribe.append(client.subscribe(self.on_event))
        if hasattr(client, "subscribe_audit"):
            self._unsubscribe.append(client.subscribe_audit(self.on_audit))

    async def start(self) -> None:
        """Start polling for open approvals and long-running runs (needs :meth:`attach` first)."""
        if self._poller is None and any(
            r.kind == "approval_sla_missed" or (r.kind == "latency_slo" and r.step is None)
            for r in self.rules
        ):
            self._poller = asyncio.create_task(self._poll())

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and polling, and wait (up to ``timeout`` seconds) for alerts being sent."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def __aenter__(self) -> Alerts:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- rules -----------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> None:
        """A client listener (called in the engine's loop: cheap, never raises)."""
        try:
            self._on_event(ev)
        except Exception:
            log.exception("alerts: cannot evaluate event %s of run %s", ev.type, ev.run_id)

    def _on_event(self, ev: Event) -> None:
        t = ev.type
        if t in ("run_started", "run_resumed"):
            if len(self._started) > 10_000:
                self._started.clear()
            self._started.setdefault(ev.run_id, ev.ts)
            return
        if t in RUN_ENDS:
            self._run_ended(ev)
        elif t in ("step_completed", "step_failed") and ev.step and "/" not in ev.step:
            self._step_ended(ev)

    def _run_ended(self, ev: Event) -> None:
        wf, rec = workflow_of(self.client, ev.run_id)
        start = self._started.pop(ev.run_id, None) or (rec.started_at if rec is not None else None)
        duration = ev.ts - start if start else None
        for r in self.rules:
            if not r.matches(wf):
                continue
            if r.kind == "run_failed" and ev.type == "run_failed":
                err = data_of(ev)
                where = f" at step {err['step']!r}" if err.get("step") else ""
                self.fire(
                    r,
                    wf,
                    Alert(
                        rule=r.name,
                        kind=r.kind,
                        severity=r.severity,
                        title=f"run of {wf} failed{where}",
                        text=f"Run {ev.run_id} of workflow {wf!r} failed{where}: "
                        f"{err.get('message', 'no error recorded')}. See 'podium runs show {ev.run_id}'.",
                        details={
                            "run_id": ev.run_id,
                            "workflow": wf,
                            "step": err.get("step"),
                            "error_type": err.get("type"),
                            "error": err.get("message"),
                            "duration": _round(duration),
                        },
                    ),
                )
            elif (
                r.kind == "latency_slo"
                and r.step is None
                and duration is not None
                and duration > (r.seconds or 0)
                and ("latency-run", ev.run_id) not in self._once
            ):
                self._latency(r, wf, ev.run_id, None, duration, ev.type.removeprefix("run_"))
        self._once.discard(("latency-run", ev.run_id))

    def _step_ended(self, ev: Event) -> None:
        rules = [r for r in self.rules if r.kind == "latency_slo" and r.step is not None]
        if not rules:
            return
        data = data_of(ev)
        duration = ev.ts - started_of(ev, data)
        wf, _ = workflow_of(self.client, ev.run_id)
        for r in rules:
            if (
                r.matches(wf)
                and fnmatch.fnmatchcase(ev.step or "", r.step or "*")
                and duration > (r.seconds or 0)
            ):
                status = "failed" if error_of(data) else "completed"
                self._latency(r, wf, ev.run_id, ev.step, duration, status)

    def _latency(
        self, r: AlertRule, wf: str, run_id: str, step: str | None, took: float, status: str
    ) -> None:
        what = f"step {step!r} of {wf}" if step else f"run of {wf}"
        verb = "is still running after" if status == "running" else f"{status} after"
        self.fire(
            r,
            f"{wf}/{step}" if step else wf,
            Alert(
                rule=r.name,
                kind=r.kind,
                severity=r.severity,
                title=f"{what} over its {r.seconds:g}s objective",
                text=f"{what.capitalize()} (run {run_id}) {verb} {took:.1f}s; the objective is {r.seconds:g}s.",
                details={
                    "run_id": run_id,
                    "workflow": wf,
                    "step": step,
                    "duration": _round(took),
                    "slo_seconds": r.seconds,
                    "status": status,
                },
            ),
        )

    def on_audit(self, entry: Any) -> None:
        """An audit listener: budgets reached and policy refusals."""
        try:
            self._on_audit(entry)
        except Exception:
            log.exception("alerts: cannot evaluate audit entry %s", getattr(entry, "action", "?"))

    def _on_audit(self, entry: Any) -> None:
        kind = _AUDIT_KINDS.get(entry.action)
        if kind is None:
            return
        run_id = entry.target
        wf, _ = workflow_of(self.client, run_id)
        d = entry.details()
        for r in self.rules:
            if r.kind != kind or not r.matches(wf):
                continue
            if kind in ("connector_drift", "connector_api_change"):
                title, text = _connector_alert(entry.action, wf, run_id, d)
            elif kind == "budget_reached":
                spent = "; ".join(map(str, d.get("spent") or [])) or "its budget"
                title = f"run of {wf} reached its budget"
                text = f"Run {run_id} of workflow {wf!r} reached its budget ({spent}); " + (
                    "it waits for an approval to go on."
                    if d.get("on_exceed") == "approval"
                    else "its model calls are refused. Raise it with 'podium policy set'."
                )
            else:
                what = f"tool {d['tool']!r}" if d.get("tool") else f"provider {d.get('provider')!r}"
                reason = d.get("reason") or "the workflow's policy"
                title = f"run of {wf} was refused {what}"
                text = f"Run {run_id} of workflow {wf!r} was refused a call to {what} by {reason}."
            self.fire(
                r,
                wf,
                Alert(
                    rule=r.name,
                    kind=kind,
                    severity=r.severity,
                    title=title,
                    text=text,
                    details={"run_id": run_id, "workflow": wf, **{k: v for k, v in d.items() if k != "step"}},
                ),
            )

    async def check(self) -> None:
        """Look for approvals open past their SLA and runs running past their objective (the
        poller calls this every ``poll_interval`` seconds)."""
        now = time.time()
        slas = [r for r in self.rules if r.kind == "approval_sla_missed"]
        if slas:
            open_keys = set()
            for a in await self._overdue(now - min(r.seconds or 0 for r in slas)):
                key = f"{a['run_id']}/{a['name']}"
                open_keys.add(key)
                waited = now - float(a["requested_at"])
                for r in slas:
                    if not r.matches(a.get("workflow") or "?") or waited <= (r.seconds or 0):
                        continue
                    if (r.name, key) in self._once:
                        continue
                    self._once.add((r.name, key))
                    title = a.get("title") or a["name"]
                    self.fire(
                        r,
                        key,
                        Alert(
                            rule=r.name,
                            kind=r.kind,
                            severity=r.severity,
                            title=f"approval {title!r} waiting for {waited / 60:.0f} min",
                            text=f"Approval request {a['name']!r} of run {a['run_id']} (workflow "
                            f"{a.get('workflow')!r}, step {a.get('step')!r}) has been open {waited:.0f}s; "
                            f"its SLA is {r.seconds:g}s. Decide it in the dashboard or with 'podium approvals approve'.",
                            details={
                                "run_id": a["run_id"],
                                "workflow": a.get("workflow"),
                                "step": a.get("step"),
                                "approval": a["name"],
                                "waited": _round(waited),
                                "sla_seconds": r.seconds,
                            },
                        ),
                        cooldown=False,
                    )
            # Forget decided requests, so the set does not grow forever.
            self._once = {k for k in self._once if k[0] not in {r.name for r in slas} or k[1] in open_keys}
        runs = [r for r in self.rules if r.kind == "latency_slo" and r.step is None]
        for ex, _task in self.client.driving.items():
            run_id = ex.run_id
            start = ex.run.started_at or self._started.get(run_id)
            if not runs or not start or ("latency-run", run_id) in self._once:
                continue
            for r in runs:
                if r.matches(ex.wf.name) and now - start > (r.seconds or 0):
                    self._once.add(("latency-run", run_id))
                    self._latency(r, ex.wf.name, run_id, None, now - start, "running")
                    break

    async def _overdue(self, asked_before: float) -> list[dict[str, Any]]:
        """The open approval requests asked before ``asked_before``: the inbox's pages, oldest first,
        up to the first request asked later (younger ones have missed no SLA yet, nor been alerted)."""
        found: list[dict[str, Any]] = []
        page = await self.client.approvals(limit=1000)
        while page:
            found += [a for a in page if a["requested_at"] < asked_before]
            if len(page) < 1000 or page[-1]["requested_at"] >= asked_before:
                break
            page = await self.client.approvals(limit=1000, after=page[-1])
        return found

    async def _poll(self) -> None:
        last_problem = ""
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.check()
                last_problem = ""
            except Exception as exc:
                if str(exc) != last_problem:  # once per distinct problem, not every poll
                    log.error("alerts: cannot check approvals and running runs: %s", exc)
                last_problem = str(exc)

    # -- delivery --------------------------------------------------------------------------------

    def fire(self, rule: AlertRule, subject: str, alert: Alert, *, cooldown: bool = True) -> bool:
        """Send ``alert`` for ``rule`` unless the rule alerted about ``subject`` within its cooldown.
        Returns whether it was sent."""
        key = (rule.name, subject)
        now = time.monotonic()
        last = self._last.get(key)
        if cooldown and last is not None and now - last < rule.cooldown:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            log.info("alert %s suppressed by its cooldown (%s)", rule.name, subject)
            return False
        self._last[key] = now
        alert.suppressed = self._suppressed.pop(key, 0)
        _mask(alert)
        self.sent.append(alert)
        targets = [self.channels[c] for c in rule.channels] if rule.channels else list(self.channels.values())
        extra = {"alert": rule.name, "alert_kind": rule.kind}
        extra.update({k: alert.details[k] for k in ("run_id", "workflow") if alert.details.get(k)})
        log.warning("alert %s: %s", rule.name, alert.title, extra=extra)
        for ch in targets:
            self._spawn(self._deliver(ch, alert))
        return True

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            log.error("alerts: no event loop to send alerts from")
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, channel: Channel, alert: Alert) -> None:
        try:
            await channel.send(alert)
        except Exception as exc:  # a broken channel is reported, never raised into the engine
            log.error("alert %s not delivered to %s: %s", alert.rule, channel.name, exc)
        else:
            log.debug("alert %s delivered to %s", alert.rule, channel.name)


def _mask(alert: Alert) -> None:
    """Credentials in an alert masked, as logs, the CLI and the API show them: alerts leave the engine
    (chat, email) with error messages that a tool or a remote answer wrote."""
    from ..secret import mask, redact

    alert.title, alert.text, alert.details = redact(alert.title), redact(alert.text), mask(alert.details)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _connector_alert(action: str, wf: str, run_id: str, d: dict[str, Any]) -> tuple[str, str]:
    """Title and text of a connector alert (from an audit entry that holds no business values)."""
    where = f"connector {d.get('connector')!r} {d.get('operation')}"
    if action == "connector.drift":
        kinds = ", ".join(sorted({f"{x.get('kind')} {x.get('path')}" for x in d.get("drift") or []})) or "a change"
        return (
            f"{where} drifted from its contract",
            f"Run {run_id} of workflow {wf!r}: the result of {where} changed shape ({kinds}). It was quarantined "
            f"as {d.get('quarantine_id')} (policy {d.get('policy')}). Add a field mapping, then "
            f"'podium quarantine replay {d.get('quarantine_id')}'.",
        )
    return f"{where}: the API version is changing", str(d.get("message") or action)
