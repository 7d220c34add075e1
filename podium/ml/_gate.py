"""Quality gates: rules over a step's output records, checked after the step and before its output
is recorded. A failing rule halts the run for a person, sets bad rows aside, asks for approval, or warns."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DefinitionError, NonRetryableError
from ..storage import _quarantined as kept
from ..storage._quarantined import QUARANTINE
from ._drift import checked_reference
from ._rules import Check, rule_from
from ._table import Rows, rows_at, with_rows

__all__ = ["QUARANTINE", "Gate", "quarantined", "release"]
_SHOWN = 5  # bad rows shown to a person per rule


@dataclass(frozen=True, kw_only=True)
class Gate:
    """A data-quality gate on a step: ``@wf.step(gate=Gate(rules=[Range(column="age", min=0)]))``.

    The rules run on the records the step returns (the output itself, or the list at ``rows``).
    Their report is logged with the step (a sub-step ``STEP/gate:NAME``), audited, and counted in
    ``/metrics``. Then, by the failing rules' outcomes: ``quarantine`` sets their bad rows aside in
    the store (see :func:`quarantined`, :func:`release`) and the rest flows on; ``halt`` parks the run
    with the report in the approvals inbox until a person accepts the data (or gives fixed rows) or
    rejects it (the step fails); ``escalate`` does the same with the gate's ``role`` and ``timeout``;
    ``warn`` only reports.
    """

    rules: Sequence[Check]
    """The rules (:class:`Schema`, :class:`Nulls`, :class:`Range`, :class:`Unique`, :class:`RowCount`,
    :class:`Fresh`, :class:`Drift`, :class:`Anomaly`)."""
    name: str = "gate"
    rows: str | None = None
    """Where the records are in the output (a key, dotted for nested ones); None: the output itself."""
    role: str | None = None
    """Who may accept a halted or escalated step (admins always may)."""
    timeout: float | None = None
    """For ``escalate``: seconds to wait for a person; then ``on_timeout`` applies."""
    on_timeout: str = "reject"
    """``reject`` (the step fails) or ``accept`` when nobody decides an escalation in time."""
    report: str | None = None
    """With a dict output: put a summary of the gate's findings under this key (``{passed, failed,
    details}``), so later steps can act on them (retrain when a ``warn`` drift rule failed)."""

    def __post_init__(self) -> None:
        if not self.rules or not all(isinstance(r, Check) for r in self.rules):
            raise DefinitionError("Gate(rules=[...]) needs at least one rule (podium.ml.Range, Drift, ...)")
        if self.on_timeout not in ("reject", "accept"):
            raise DefinitionError(f"Gate on_timeout must be 'reject' or 'accept', got {self.on_timeout!r}")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], where: str) -> Gate:
        """A gate from YAML: ``gate: {rules: [{rule: range, column: age, min: 0}], rows: customers}``
        (a list alone is taken as the rules)."""
        if isinstance(spec, list):
            spec = {"rules": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("rules"), list):
            raise DefinitionError(f"{where}: 'gate' must be a mapping with a list of rules, e.g. "
                                  "gate: {rules: [{rule: nulls, column: email, on: quarantine}]}")
        unknown = sorted(set(spec) - {"rules", "name", "rows", "role", "timeout", "on_timeout", "report"})
        if unknown:
            raise DefinitionError(f"{where}: 'gate' has unknown field(s) {', '.join(unknown)}")
        rules = []
        for i, r in enumerate(spec["rules"]):
            if not isinstance(r, Mapping):
                raise DefinitionError(f"{where}: gate rule {i + 1} must be a mapping like {{rule: range, column: age}}")
            rules.append(rule_from(r, f"{where} rule {i + 1}"))
        return cls(rules=rules, **{k: v for k, v in spec.items() if k != "rules"})

    def evaluate(self, rows: Rows, refs: Mapping[str, Any]) -> dict[str, Any]:
        """The report: one entry per rule (passes or not, detail, figures, bad row indices)."""
        t0 = time.perf_counter()
        results = []
        for rule in self.rules:
            try:
                ok, detail, bad, figures = rule.check(rows, refs)
            except Exception as exc:  # a rule that cannot judge the data does not pass it
                ok, detail, bad, figures = False, f"could not be checked: {type(exc).__name__}: {exc}", [], {}
            results.append(
                {"rule": rule.label, "on": rule.on, "ok": ok, "detail": detail, "bad": bad, "figures": figures}
            )
        failed = [r for r in results if not r["ok"]]
        return {
            "gate": self.name,
            "rows": len(rows),
            "passed": not failed,
            "rules": results,
            "failed": [r["rule"] for r in failed],
            "seconds": round(time.perf_counter() - t0, 4),
        }

    async def __call__(self, ctx: Any, value: Any) -> Any:
        rows = rows_at(value, self.rows, ctx.step_id)
        label = f"gate:{self.name}"
        live = not ctx.replaying(label)
        refs: dict[str, Any] = {}
        for r in self.rules:
            if r.reference and r.reference not in refs and live:  # a replay takes the report it recorded
                refs[r.reference] = await _reference(ctx, r.reference)
        report: dict[str, Any] = await ctx.call(self.evaluate, rows, refs, name=label)
        failed = [r for r in report["rules"] if not r["ok"]]
        if live:
            await ctx.governance.audit(
                "gate.check", step=ctx.step_id, gate=self.name, passed=report["passed"],
                failed=report["failed"], rows=report["rows"],
            )
        for r in failed:
            if r["on"] == "warn":
                ctx.log.warning("gate %s: rule %s failed: %s", self.name, r["rule"], r["detail"])
        bad = sorted({i for r in failed if r["on"] == "quarantine" for i in r["bad"]})
        if bad:
            keep = set(bad)
            key = f"{ctx.run_id}:{ctx.step_id}:{ctx.iteration}:{ctx.index}:{self.name}"
            entry = {
                "workflow": ctx.workflow, "run_id": ctx.run_id, "step": ctx.step_id, "gate": self.name,
                "at": time.time(), "reasons": {r["rule"]: r["detail"] for r in failed if r["on"] == "quarantine"},
                "rows": [rows[i] for i in bad],
            }
            await ctx.call(_put, ctx.store, key, entry, name=f"quarantine:{self.name}")
            rows = [r for i, r in enumerate(rows) if i not in keep]
            value = with_rows(value, self.rows, rows)
        stops = [r for r in failed if r["on"] in ("halt", "escalate")]
        if stops:
            value = await self._ask(ctx, value, rows, stops)
        if self.report and isinstance(value, dict):
            value = {**value, self.report: {
                "passed": report["passed"], "failed": report["failed"],
                "details": {r["rule"]: r["detail"] for r in failed}, "quarantined": len(bad),
            }}
        return value

    async def _ask(self, ctx: Any, value: Any, rows: Rows, stops: list[dict[str, Any]]) -> Any:
        halt = any(r["on"] == "halt" for r in stops)
        summary = "; ".join(f"{r['rule']}: {r['detail']}" for r in stops)
        shown = {
            "gate": self.name,
            "step": ctx.step_id,
            "failed": [
                {"rule": r["rule"], "outcome": r["on"], "detail": r["detail"], "figures": r["figures"],
                 "bad_rows": len(r["bad"]), "examples": [rows[i] for i in r["bad"][:_SHOWN] if i < len(rows)]}
                for r in stops
            ],
        }
        verb = "halted" if halt else "needs approval for"
        default = None if halt or self.timeout is None else {
            "approved": self.on_timeout == "accept", "by": "sla", "comment": "no decision in time"
        }
        kwargs: dict[str, Any] = {} if default is None else {"default": default}
        from ..governance.enforcement import asked_about, refused_by  # named after what is decided

        decision = await ctx.approval(
            shown,
            title=f"data gate {self.name!r} {verb} step {ctx.step_id!r}: {summary}"[:300],
            role=self.role,
            timeout=None if halt else self.timeout,
            name=f"approval:gate:{ctx.step_id}:{self.name}:{ctx.iteration}:{ctx.index}:{asked_about(self.name, shown)}",
            **kwargs,
        )
        if not decision.get("approved"):
            raise NonRetryableError(
                f"step {ctx.step_id!r}: data gate {self.name!r} {verb} the step ({summary}) and "
                + refused_by(decision, "rejected the data")
            )
        payload = decision.get("payload")
        fixed = payload.get("rows") if decision.get("edited") and isinstance(payload, dict) else None
        if isinstance(fixed, list) and fixed:  # the person gave corrected records
            return with_rows(value, self.rows, fixed)
        return value


async def _reference(ctx: Any, name: str) -> Any:
    """Reference ``name`` for the rules: as saved, or the problem in its place (an edited one is not
    compared with: the rule fails saying why, warned and audited as ``access.denied``)."""
    service = ctx.governance.service
    ref, problem = await checked_reference(ctx.store, name, audited=service.audit_enabled)
    if problem is None:
        return ref
    ctx.log.warning("%s", problem)
    await service.record(
        "access.denied", f"reference:{name}", actor="engine", run=ctx.run_id, step=ctx.step_id,
        reason="record not backed by the audit log", problem=problem,
    )
    return {"problem": problem}


async def _put(store: Any, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    await kept.put(store, key, entry)  # sealed and counted: see podium/storage/_quarantined.py
    return {"key": key, "rows": len(entry["rows"])}


async def quarantined(store: Any, *, workflow: str | None = None) -> list[dict[str, Any]]:
    """Rows set aside by gates (newest first): ``[{key, workflow, run_id, step, gate, reasons, rows}]``;
    an entry whose seal does not hold (written or edited in the store behind the engine's back) has
    a ``problem`` saying so, and is not released."""
    out = [e for e in await kept.listed(store) if workflow is None or e.get("workflow") == workflow]
    return sorted(out, key=lambda e: -e.get("at", 0))


async def release(store: Any, key: str) -> Rows:
    """Take quarantined rows out (to replay them: start a run with them as input); they leave the
    store, and a sealed note of their release stays. Refused (:class:`~podium.NonRetryableError`,
    saying why) for rows whose seal does not hold, released already, or while a released entry is
    back in the store."""
    rows: Rows = await kept.release(store, key)
    return rows
