"""Policies bound to deployed workflows: a name is a workflow's own only once deployed.

A policy is named after a workflow, and a workflow file may call itself by any name. In a store with
users, whoever may start runs may run a file of their own under the name of a workflow whose policy
allows more than the default ``*`` (a connector, a provider, a bigger budget). So a workflow's own
policy grants what it allows only to the deployed workflow of that name (the run's definition is a
deployed version's: same fingerprint as the signed deployment and, for Python, the same digest of
the values and code its steps use, :mod:`podium.engine.behaviour`; the engine decides this once per
run, ``Deployments.owns_name``). A run of any other definition under that name is held by ``*`` and by its
name's policy both: the name's restrictions still hold it (as a kill switch on the name does: a name
match is the safe side there), its allowances do not. Its outbox messages record ``undeployed:NAME``
(:data:`podium.records.UNDEPLOYED`), and the relay checks them the same way.

Local mode (no users) has no deployments to tell definitions apart and one person runs them all:
there a workflow's policy is chosen by its name alone, as always.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from ..records import UNDEPLOYED, AuditEntry
from .audit import entry_signed
from .policy import Policy, names_connector

log = logging.getLogger("podium.governance")

_T = TypeVar("_T", int, float)


def in_force(policies: Mapping[str, Policy], workflow: str, *, deployed: bool = True) -> Policy | None:
    """The policy over a run of ``workflow``: its own, else ``*``; for a run that is not the deployed
    workflow of its name (``deployed`` False, or ``workflow`` recorded as ``undeployed:NAME``), the
    strictest of its own and ``*`` (:func:`strictest`)."""
    if workflow.startswith(UNDEPLOYED):
        workflow, deployed = workflow[len(UNDEPLOYED):], False
    if not policies:
        return None
    named, default = policies.get(workflow), policies.get("*")
    if deployed or named is None or default is None:
        return named or default
    return strictest(named, default)


def strictest(a: Policy, b: Policy) -> Policy:
    """A policy that allows only what both ``a`` and ``b`` allow, and asks a person, limits, redacts
    and checks wherever either does: the lower budget, both sets of banned words and tones, ``stop``
    over ``approval``. Per-entity budgets count by the entity field of the policy that sets them
    (``a``'s when both do)."""

    def allowed(x: list[str] | None, y: list[str] | None) -> list[str] | None:  # None: any
        return y if x is None else x if y is None else [v for v in x if v in y]

    def connectors(x: list[str] | None, y: list[str] | None) -> list[str] | None:
        if x is None or y is None:
            return y if x is None else x
        # 'crm' and 'crm.getContact' allow 'crm.getContact' both: each entry the other covers
        both = [e for e in x if names_connector(y, *_parts(e))] + [e for e in y if names_connector(x, *_parts(e))]
        return list(dict.fromkeys(both))

    def union(x: list[str], y: list[str]) -> list[str]:
        return list(dict.fromkeys([*x, *y]))

    def low(x: _T | None, y: _T | None) -> _T | None:
        return y if x is None else x if y is None else min(x, y)

    entity = a if a.max_entity_tokens is not None or a.max_entity_cost is not None else b
    return Policy(
        allowed_tools=allowed(a.allowed_tools, b.allowed_tools),
        allowed_providers=allowed(a.allowed_providers, b.allowed_providers),
        approve_tools=union(a.approve_tools, b.approve_tools),
        max_run_tokens=low(a.max_run_tokens, b.max_run_tokens),
        max_run_cost=low(a.max_run_cost, b.max_run_cost),
        max_daily_tokens=low(a.max_daily_tokens, b.max_daily_tokens),
        max_daily_cost=low(a.max_daily_cost, b.max_daily_cost),
        max_entity_tokens=low(a.max_entity_tokens, b.max_entity_tokens),
        max_entity_cost=low(a.max_entity_cost, b.max_entity_cost),
        entity_field=entity.entity_field,
        on_exceed="stop" if "stop" in (a.on_exceed, b.on_exceed) else "approval",
        redact=union(a.redact, b.redact),
        pii_local_only=a.pii_local_only or b.pii_local_only,
        banned=union(a.banned, b.banned),
        tone=union(a.tone, b.tone),
        tone_threshold=min(a.tone_threshold, b.tone_threshold),
        on_violation="block" if "block" in (a.on_violation, b.on_violation) else "approval",
        max_tool_calls=low(a.max_tool_calls, b.max_tool_calls),
        allowed_connectors=connectors(a.allowed_connectors, b.allowed_connectors),
        approve_connectors=union(a.approve_connectors, b.approve_connectors),
    )


def _parts(entry: str) -> tuple[str, str]:
    connector, _, operation = entry.partition(".")
    return connector, operation


LOOK_ALIKES = "runs_not_deployed"
"""Store key-value namespace: run id -> ``"1"`` for a run whose workflow is not the deployed one of
its name (written by the engine before the run's first step), so that what is sent to it later (a
signal, an approval's decision) is redacted by the strictest of its name's policy and ``*``'s, as its
input and outputs are, by a process that does not hold its definition."""


MARKED = "run.not_deployed"
"""The signed entry (of the run) behind a mark: whoever can write the database can delete the row,
and a run is taken as deployed only when neither says otherwise (:func:`marked`)."""


async def mark_not_deployed(store: Any, run_id: str, gov: Any = None, **data: Any) -> None:
    """Record that run ``run_id`` is not the deployed workflow of its name (:data:`LOOK_ALIKES`),
    with a signed ``run.not_deployed`` entry first when ``gov`` (the governance service) is given."""
    if await store.kv_get(LOOK_ALIKES, run_id) is None:
        if gov is not None:
            await gov.record(MARKED, run_id, actor="engine", **data)
        await store.kv_put(LOOK_ALIKES, run_id, "1")


async def marked(gov: Any, run_id: str) -> bool:
    """Whether run ``run_id`` is marked not deployed: its row, or (the row deleted in the store) its
    signed entry; a missing row the log contradicts is warned about and audited (``access.denied``
    of ``mark:RUN_ID``). A run of an earlier release marked by its row alone is known by the row."""
    if await gov.store.kv_get(LOOK_ALIKES, run_id) is not None:
        return True
    if not gov.audit_enabled:
        return False
    keys = gov.store.audit_keys.all()
    entries = [e for e in await gov.store.audit_for(run_id) if e.action == MARKED and entry_signed(e, keys)]
    if not entries:
        return False
    problem = mark_problem(run_id, entries[-1].seq)
    log.warning("%s", problem)
    await gov.record("access.denied", f"mark:{run_id}", actor="engine", reason="record not backed by the audit log", problem=problem)
    return True


def mark_problem(run_id: str, seq: int) -> str:
    return (
        f"run {run_id} is not the deployed workflow of its name (audit entry {seq}), but its mark in the store "
        "(runs_not_deployed) is missing: it was deleted behind the admins' back; what is sent to the run is "
        "redacted by the strictest of its name's policy and '*' all the same"
    )


async def stored_for_run(gov: Any, run_id: str, workflow: str, payload: str) -> str:
    """``payload`` sent to run ``run_id`` (a signal, a decision) as it is stored: redacted by the
    policy over that run (:meth:`Governance.stored_payload`), the strictest of its name's and ``*``'s
    for a run marked not deployed (:func:`mark_not_deployed`)."""
    policies = gov.policy_cache
    if not policies or workflow.startswith(UNDEPLOYED) or policies.get(workflow) is None:
        return str(gov.stored_payload(workflow, payload))  # no named policy: '*' alone, whatever the run
    return str(gov.stored_payload(workflow, payload, deployed=not await marked(gov, run_id)))


async def problems(store: Any, entries: list[AuditEntry]) -> list[str]:
    """Every run the signed log marked not deployed whose mark row is missing while the run is kept."""
    keys = store.audit_keys.all()
    found = []
    for e in entries:
        missing = e.action == MARKED and entry_signed(e, keys) and await store.kv_get(LOOK_ALIKES, e.target) is None
        if missing and await store.get_run(e.target) is not None:
            found.append(mark_problem(e.target, e.seq))
    return found
