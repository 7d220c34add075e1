"""Who may change a model: its owners, the workflows allowed to train, promote and roll it back.

Any workflow may score with a model's champion (``predict``); changing what serves is kept to the
model's owners, so one team's workflow file cannot retrain, promote or roll back another team's
model. The first workflow that changes a model (``train``, ``promote``, ``rollback``) becomes its
owner; an admin adds or removes owners with ``podium ml owners MODEL --add/--remove WORKFLOW``
(``workflows.deploy``). The list lives in the run store (key-value namespace ``model_owners``),
beside the policies, not in the MLflow registry, which workflow files never name.

Whoever can write the database can edit that row, so the owners in force are those of the signed
audit log (:func:`logged_owners`: an admin's ``model.owners`` entry, or the claim ``model.owner``
of ``model:MODEL``): a row that says otherwise is not taken (warned, audited as ``access.denied``
of ``owners:model:MODEL``), a deleted row still holds, and a row no entry backs (written by hand,
or claimed under an earlier release) lets no workflow change the model until an admin sets its
owners. With auditing off the row is taken as it is.

Owners are names, and a name is a workflow's own only once deployed (a run of another definition
under a deployed name is refused): in a store with users, where whoever may start runs may run a
file of their own under any name, only a deployed workflow changes a model.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..errors import CapabilityDenied, ConfigError, ExecutionError
from ..governance.accounts import signed
from ..governance.owned import OWNERS, in_force, listed, logged_owners
from ..governance.references import REFERENCE_OWNERS, logged_owner, owner_problem, target

TRIES = 20  # compare-and-set attempts before giving up: each failure is another writer's success
log = logging.getLogger("podium.governance")


async def owners(store: Any, model: str, *, audited: bool = True) -> list[str]:
    """The workflows that own ``model`` (empty: none yet, the first to change it will): those the
    signed audit log gave it (with ``audited``, as every engine checks them; else its row)."""
    text = await store.kv_get(OWNERS, model)
    if not audited:
        return listed(text)
    return (await in_force(store, model, text))[0] or []


async def check_owner(ctx: Any, model: str, action: str) -> None:
    """Refuse ``action`` on ``model`` unless the run's workflow owns it; a model without owners is
    claimed by this workflow (audited as ``model.owner``, of ``model:MODEL``)."""
    from ..engine.versions import META
    from ..governance.service import USERS

    if await ctx.store.kv_list(USERS) and await ctx.store.kv_get(META, f"{ctx.workflow}@{ctx.workflow_version}") is None:
        raise CapabilityDenied(
            f"step {ctx.step_id!r} ({action}): workflow {ctx.workflow!r} is not deployed, and with users only a "
            f"deployed workflow may change a model (any file may call itself {ctx.workflow!r}; a deployed name is "
            f"its own): deploy it (podium workflows deploy FILE) and start it by name"
        )
    service = ctx.governance.service
    known = await (_checked_owners if service.audit_enabled else _claimed_owners)(ctx, model, action)
    if ctx.workflow not in known:
        raise CapabilityDenied(
            f"step {ctx.step_id!r} ({action}): model {model!r} belongs to workflow(s) {', '.join(map(repr, known))}; "
            f"workflow {ctx.workflow!r} may score with it (predict) but not train, promote or roll it back. An admin "
            f"can add it as an owner: podium ml owners {model} --add {ctx.workflow}"
        )


async def _checked_owners(ctx: Any, model: str, action: str) -> list[str]:
    """The owners in force, checked against the signed log; a model nobody owns is claimed: the claim
    is logged first, and counts only if the model had no owner when it was logged (of two claims at
    once the first logged wins; the row then follows the log)."""
    store, service = ctx.store, ctx.governance.service
    text = await store.kv_get(OWNERS, model)
    logged, problem = await in_force(store, model, text)
    if problem:
        log.warning("%s", problem)
        await service.record(
            "access.denied", f"owners:model:{model}", actor="engine", reason="record not backed by the audit log", problem=problem
        )
        if logged is None:
            raise CapabilityDenied(f"step {ctx.step_id!r} ({action}): {problem}")
        return logged
    if logged:
        return logged
    await service.record(
        "model.owner", f"model:{model}", actor="engine", run=ctx.run_id, step=ctx.step_id, owners=[ctx.workflow], claimed=True
    )
    return await follow_log(store, model)


async def _claimed_owners(ctx: Any, model: str, action: str) -> list[str]:
    """With auditing off (no log to check against): the row, or this workflow's claim of a model
    nobody owns, made in one compare-and-set write (of two at once, one wins)."""
    for _ in range(TRIES):
        text = await ctx.store.kv_get(OWNERS, model)
        if text is not None:
            return listed(text)
        if await ctx.store.kv_swap(OWNERS, model, None, json.dumps([ctx.workflow])):
            return [ctx.workflow]
    raise CapabilityDenied(
        f"step {ctx.step_id!r} ({action}): the owners of model {model!r} changed {TRIES} times while this "
        f"step claimed it; see them with 'podium ml owners {model}' and run the step again"
    )


async def check_reference(ctx: Any, name: str, model: str) -> None:
    """Refuse a train step of ``model`` saving drift reference ``name`` unless the reference is that
    model's: gates and the monitor compare new data with it, so another model's training (another
    team's workflow) replacing it would let drifted data through. The first training claims it."""
    where = f"step {ctx.step_id!r} (train of model {model!r})"
    if "@" in name and name.endswith(":scores"):
        raise CapabilityDenied(
            f"{where}: reference {name!r} has the form MODEL@VERSION:scores, kept for the holdout scores the "
            f"monitor measures prediction drift against; name the drift reference otherwise, e.g. {model}-train"
        )
    owner = await ctx.store.kv_get(REFERENCE_OWNERS, name)
    service = ctx.governance.service
    logged, entry = logged_owner(await signed(ctx.store, target(name))) if service.audit_enabled else (None, None)
    if problem := owner_problem(name, owner, logged, entry):  # the row was changed: the first save's owner holds
        log.warning("%s", problem)
        await service.record(
            "access.denied", target(name), actor="engine", run=ctx.run_id, step=ctx.step_id,
            reason="record not backed by the audit log", problem=problem,
        )
        await ctx.store.kv_put(REFERENCE_OWNERS, name, logged)
    owner = owner if entry is None else logged
    if owner is None:  # the first training claims it, in one compare-and-set write (two at once: one wins)
        if await ctx.store.kv_swap(REFERENCE_OWNERS, name, None, model):
            return
        owner = await ctx.store.kv_get(REFERENCE_OWNERS, name)
    if owner == model:
        return
    whose = (
        "was saved in Python (podium.ml.save_reference), which a workflow file's training may not replace"
        if owner == "" else f"belongs to model {owner!r} (its training saved it; its gates compare with it)"
    )
    raise CapabilityDenied(
        f"{where}: drift reference {name!r} {whose}; name another reference, e.g. {model}-train"
    )


async def set_owners(client: Any, model: str, *, add: list[str], remove: list[str]) -> list[str]:
    """Add and remove owners of ``model`` (needs ``workflows.deploy``; audited). Returns the owners.
    A workflow's claim or another admin's change landing in between is kept, not overwritten: the
    signed entry names what it adds and removes, applied in the log's order (with auditing off, the
    list is written over the one read, compare-and-set)."""
    await client.authorize("workflows.deploy", f"model:{model}")
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))  # a name given twice counts once
    if both := sorted(set(add) & set(remove)):
        raise ConfigError(f"model {model!r}: {', '.join(both)} is both added and removed; say which")
    if blank := [w for w in add if not w.strip() or w != w.strip()]:
        raise ConfigError(f"model {model!r}: {blank[0]!r} is not a workflow name (empty, or spaces around it)")
    store = client.store
    if client.governance.audit_enabled:  # the log says who owns it: never the row, which anyone may have edited
        now = (await in_force(store, model, await store.kv_get(OWNERS, model)))[0] or []
        _refuse_unknown(model, remove, now)
        new = [w for w in now if w not in remove] + [w for w in add if w not in now]
        # the entry names what changed: applied in the log's order, a claim or another admin's change
        # logged in between is kept (logged_owners); the row then follows the log
        await client.record_audit("model.owners", f"model:{model}", added=add, removed=remove, owners=new)
        return await follow_log(store, model)
    for _ in range(TRIES):
        before = await store.kv_get(OWNERS, model)
        now = listed(before)
        _refuse_unknown(model, remove, now)
        new = [w for w in now if w not in remove] + [w for w in add if w not in now]
        # no owner left: the next workflow that changes the model claims it
        if await store.kv_swap(OWNERS, model, before, json.dumps(new) if new else None):
            break
    else:
        raise ExecutionError(
            f"model {model!r}: its owners changed {TRIES} times while this change was made, so nothing was "
            f"changed; see them with 'podium ml owners {model}' and try again"
        )
    await client.record_audit("model.owners", f"model:{model}", added=add, removed=remove, owners=new)
    return new


def _refuse_unknown(model: str, remove: list[str], now: list[str]) -> None:
    if unknown := [w for w in remove if w not in now]:
        raise ConfigError(
            f"model {model!r}: {', '.join(map(repr, unknown))} is not an owner, so nothing was removed; its owners "
            f"are: {', '.join(now) or 'none yet'}"
        )


async def follow_log(store: Any, model: str) -> list[str]:
    """Write the owners row of ``model`` as the signed log has them now (after this process's entry;
    compare-and-set, so a writer reading an older log does not win); the owners."""
    for _ in range(TRIES):
        logged = logged_owners(await signed(store, f"model:{model}"))[0] or []
        text = await store.kv_get(OWNERS, model)
        if (text is None and not logged) or (text is not None and listed(text) == logged):
            return logged
        await store.kv_swap(OWNERS, model, text, json.dumps(logged) if logged else None)
    return logged
