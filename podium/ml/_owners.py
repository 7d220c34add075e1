"""Who may change a model: its owners, the workflows allowed to train, promote and roll it back.

Any workflow may score with a model's champion (``predict``); changing what serves is kept to the
model's owners, so one team's workflow file cannot retrain, promote or roll back another team's
model. The first workflow that changes a model (``train``, ``promote``, ``rollback``) becomes its
owner; an admin adds or removes owners with ``podium ml owners MODEL --add/--remove WORKFLOW``
(``workflows.deploy``). The list lives in the run store (key-value namespace ``model_owners``),
beside the policies, not in the MLflow registry, which workflow files never name.

Owners are names, and a name is a workflow's own only once deployed (a run of another definition
under a deployed name is refused): in a store with users, where whoever may start runs may run a
file of their own under any name, only a deployed workflow changes a model.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import CapabilityDenied, ConfigError, ExecutionError

OWNERS = "model_owners"
REFERENCE_OWNERS = "ml_reference_owners"  # drift reference -> the model whose training saved it ("": Python)
TRIES = 20  # compare-and-set attempts before giving up: each failure is another writer's success


async def owners(store: Any, model: str) -> list[str]:
    """The workflows that own ``model`` (empty: none yet, the first to change it will)."""
    text = await store.kv_get(OWNERS, model)
    return _listed(text)


def _listed(text: str | None) -> list[str]:
    return [] if text is None else [str(w) for w in json.loads(text)]


async def check_owner(ctx: Any, model: str, action: str) -> None:
    """Refuse ``action`` on ``model`` unless the run's workflow owns it; a model without owners is
    claimed by this workflow (audited as ``model.owner``)."""
    from ..engine.versions import META
    from ..governance.service import USERS

    if await ctx.store.kv_list(USERS) and await ctx.store.kv_get(META, f"{ctx.workflow}@{ctx.workflow_version}") is None:
        raise CapabilityDenied(
            f"step {ctx.step_id!r} ({action}): workflow {ctx.workflow!r} is not deployed, and with users only a "
            f"deployed workflow may change a model (any file may call itself {ctx.workflow!r}; a deployed name is "
            f"its own): deploy it (podium workflows deploy FILE) and start it by name"
        )
    for _ in range(TRIES):
        text = await ctx.store.kv_get(OWNERS, model)
        if text is not None:
            break
        # The claim is one write, made only over "no owner": of two workflows at once, one wins and
        # the other reads the winner's list. Nothing is left half-way if the process stops.
        if await ctx.store.kv_swap(OWNERS, model, None, json.dumps([ctx.workflow])):
            await ctx.governance.audit("model.owner", step=ctx.step_id, model=model, owners=[ctx.workflow], claimed=True)
            return
    else:
        raise CapabilityDenied(
            f"step {ctx.step_id!r} ({action}): the owners of model {model!r} changed {TRIES} times while this "
            f"step claimed it; see them with 'podium ml owners {model}' and run the step again"
        )
    known = _listed(text)
    if ctx.workflow not in known:
        raise CapabilityDenied(
            f"step {ctx.step_id!r} ({action}): model {model!r} belongs to workflow(s) {', '.join(map(repr, known))}; "
            f"workflow {ctx.workflow!r} may score with it (predict) but not train, promote or roll it back. An admin "
            f"can add it as an owner: podium ml owners {model} --add {ctx.workflow}"
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
    The list is written over the one read (compare-and-set): a workflow's claim or another admin's
    change landing in between is read again and kept, not overwritten."""
    await client.authorize("workflows.deploy", f"model:{model}")
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))  # a name given twice counts once
    if both := sorted(set(add) & set(remove)):
        raise ConfigError(f"model {model!r}: {', '.join(both)} is both added and removed; say which")
    if blank := [w for w in add if not w.strip() or w != w.strip()]:
        raise ConfigError(f"model {model!r}: {blank[0]!r} is not a workflow name (empty, or spaces around it)")
    for _ in range(TRIES):
        before = await client.store.kv_get(OWNERS, model)
        now = _listed(before)
        if unknown := [w for w in remove if w not in now]:
            raise ConfigError(
                f"model {model!r}: {', '.join(map(repr, unknown))} is not an owner, so nothing was removed; its owners "
                f"are: {', '.join(now) or 'none yet'}"
            )
        new = [w for w in now if w not in remove] + [w for w in add if w not in now]
        # no owner left: the next workflow that changes the model claims it
        if await client.store.kv_swap(OWNERS, model, before, json.dumps(new) if new else None):
            break
    else:
        raise ExecutionError(
            f"model {model!r}: its owners changed {TRIES} times while this change was made, so nothing was "
            f"changed; see them with 'podium ml owners {model}' and try again"
        )
    await client.record_audit("model.owners", f"model:{model}", added=add, removed=remove, owners=new)
    return new
