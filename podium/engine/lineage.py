"""A run's lineage: the runs it works for, whose workflows' kill switches and policies hold it too.

A child run (a ``subworkflow`` step, ``ctx.run_workflow``, YAML ``uses: workflow``, a goal's plan)
records the run that started it, and works for that run and for every run above it. A fork records
the run it was forked from and works for whoever that run worked for. The engine reads a child's or
a fork's lineage once, as it starts driving it (a top-level run has none, and pays nothing), so a
lineage must be short enough to read whole: runs nest at most :data:`MAX_NESTING` levels under a
top-level run, and a chain of forks of forks is followed as far. A child or a fork beyond is
refused, saying so: otherwise a switch over the run at the top would not hold the run at the bottom
(and a workflow that starts itself without end is a bug)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, KillSwitchActive
from ..records import RunRecord

if TYPE_CHECKING:
    from ..governance.service import Governance

MAX_NESTING = 64
"""How many levels runs nest under a top-level run (its child is level 1), and how long a chain of
forks of forks may be. The child or fork one beyond is not started."""


@dataclass(frozen=True)
class Lineage:
    workflows: tuple[str, ...]
    """The workflows of the run's parent run, its parent's parent, and so on, nearest first."""
    forks: int
    """How many fork links the walk followed (a fork, to the run it was forked from)."""
    original: str | None
    """For a fork: the first run of its chain of forks (not itself a fork)."""
    whole: bool
    """False when the lineage goes on past :data:`MAX_NESTING` parents or forks (written before
    these limits, or into the database): only its first part was read."""
    runs: tuple[tuple[str, str], ...] = ()
    """The runs the run is part of, as ``(run id, workflow)``, nearest first: its parent run, that
    run's parent, and so on up to the first that is not a child (a fork is a run of its own). Their
    run budgets count its spending (:mod:`podium.governance.lineage_budgets`)."""


async def lineage(store: Any, run: RunRecord) -> Lineage:
    """``run``'s lineage, read from the store: its parents, and for a fork the parents of the run
    it was forked from (the walk stops at a run it has seen, so a cyclic chain written into the
    database ends, and at a record that is gone)."""
    names: list[str] = []
    runs: list[tuple[str, str]] = []
    seen, rec, forks, original = {run.id}, run, 0, None
    while True:
        parent = rec.parent_run_id is not None
        up = rec.parent_run_id if parent else rec.forked_from
        if up is None or up in seen:
            return Lineage(tuple(names), forks, original, True, tuple(runs))
        if (len(names) if parent else forks) >= MAX_NESTING:
            return Lineage(tuple(names), forks, original, False, tuple(runs))
        seen.add(up)
        found = await store.get_run(up)
        if found is None:
            return Lineage(tuple(names), forks, original, True, tuple(runs))
        rec = found
        if parent:
            names.append(rec.workflow)
            if not forks:
                runs.append((rec.id, rec.workflow))
        else:
            forks += 1
            if not names and rec.forked_from is None:
                original = rec.id


async def parent_workflows(store: Any, run: RunRecord) -> tuple[str, ...]:
    """The workflows of ``run``'s parent run, its parent's parent, and so on, nearest first: a
    child works for them, so their kill switches and policies hold it too. A fork has the parents
    of the run it was forked from."""
    return (await lineage(store, run)).workflows


def too_deep(run_id: str, workflow: str, parents: tuple[str, ...], child: str, step_id: str) -> str | None:
    """Why run ``run_id`` (of ``workflow``, under runs of ``parents``) may not start a child run
    of ``child`` in step ``step_id``: it is nested as deep as runs may be. None if it may."""
    if len(parents) < MAX_NESTING:
        return None
    return (
        f"step {step_id!r}: sub-workflow {child!r} not started: run {run_id} (of {workflow!r}) is nested "
        f"{len(parents)} levels deep under a run of {parents[-1]!r}, and runs nest at most {MAX_NESTING} "
        "levels (the runs above a run are read whole, so that their kill switches and policies hold it); "
        "a workflow that starts itself needs a condition that ends it"
    )


def cancelled(gov: Governance, child: str, parents: tuple[str, ...]) -> str:
    """Why a cancel switch refuses a new run of workflow ``child`` that would work for runs of
    ``parents`` (the run starting a child, then the runs above it): which switch, and how to clear it."""
    on = gov.switch_cache
    scopes = [
        *((f"workflow:{name}", f"workflow {name!r} (of a run it works for)") for name in parents),
        ("all:*", "everything (kill switch all)"),
        (f"workflow:{child}", f"workflow {child!r}"),
        ("workflow:*", "every workflow"),
    ]
    key, what = next(((k, w) for k, w in scopes if k in on), ("all:*", "everything"))
    off = on.get(key, {})
    scope, _, name = key.partition(":")
    clear = scope if scope == "all" else f"{scope} --all" if name == "*" else f"{scope} {shlex.quote(name)}"
    return (
        f"{what} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')}; mode cancel): "
        f"a child run works for the runs above it, and none is started under such a switch; "
        f"once the incident is over: podium killswitch clear {clear}"
    )


async def check_fork(store: Any, gov: Governance, run: RunRecord, workflow: str) -> None:
    """Before forking ``run`` (a new run of ``workflow``): refused under a switch over its workflow
    (as any start), a ``cancel`` switch over the runs the fork would work for, or when the chain
    of forks it would end would be longer than :data:`MAX_NESTING`. A ``pause`` switch over them
    lets the fork be made; it parks at its first step."""
    gov.check_startable(workflow)
    if run.parent_run_id is None and run.forked_from is None:
        return  # a top-level run: its fork works for no one else
    line = await lineage(store, run)
    if not line.whole or line.forks >= MAX_NESTING:
        instead = f"fork run {line.original} (where the chain starts)" if line.whole and line.original else "fork a run nearer the start of the chain"
        raise ConfigError(
            f"run {run.id} ends a chain of {line.forks} forks of forks; Podium follows forks of forks at most "
            f"{MAX_NESTING} deep (a fork works for the runs its original did, and their kill switches and "
            f"policies must hold it); {instead} instead"
        )
    off = gov.switched_off(workflow, lineage=line.workflows) if gov.switch_cache else None
    if off is not None and off.get("mode") == "cancel":
        raise KillSwitchActive(f"run {run.id} not forked: {cancelled(gov, workflow, line.workflows)}")
