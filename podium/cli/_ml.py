"""``podium ml owners MODEL``: the workflows allowed to train, promote and roll back a model (see
``podium/ml/_owners.py``). Showing needs ``workflows.read``; changing, ``workflows.deploy``."""

from __future__ import annotations

import difflib
import json

import click

from ._app import EXIT_OK, cli, console, db_option, make_client, requires, run_async


@cli.group()
def ml() -> None:
    """The ML loop's models: who may change them (docs/ml.md)."""


@ml.command("owners")
@click.argument("model")
@click.option("--add", "add", multiple=True, metavar="WORKFLOW", help="Let this workflow change the model (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="WORKFLOW", help="No longer (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="The owners as a JSON list.")
@db_option
@run_async
@requires("workflows.read", lambda kw: f"model:{kw['model']}", reads=lambda kw: not (kw["add"] or kw["remove"]))
async def ml_owners(model: str, add: tuple[str, ...], remove: tuple[str, ...], as_json: bool, db: str | None) -> int:
    """Show MODEL's owners (the workflows that may train, promote and roll it back), or change them.
    A model without owners is claimed by the first workflow that changes it."""
    from ..ml._owners import OWNERS, in_force, set_owners

    async with make_client(db, recover=False, execute=False) as c:
        if add or remove:
            now = await set_owners(c, model, add=list(add), remove=list(remove))
        else:
            logged, problem = await in_force(c.store, model, await c.store.kv_get(OWNERS, model))
            now = logged or []
            if problem:
                console(stderr=True).print(problem, highlight=False, markup=False)
            known = sorted(await c.store.kv_list(OWNERS)) if not now else []
    if as_json:
        click.echo(json.dumps(now))
    elif now:
        click.echo(f"model {model}: owned by {', '.join(now)} (other workflows may only score with it)")
    elif remove:
        click.echo(f"model {model}: no owner left; the next workflow that trains, promotes or rolls it back becomes its owner")
    else:
        # a mistyped name reads like a model nobody owns yet: name the models that have owners
        close = difflib.get_close_matches(model, known, n=1)
        also = (f" (did you mean {close[0]!r}? " if close else " (") + f"models with owners: {', '.join(known)})" if known else ""
        click.echo(
            f"model {model}: no owner yet; the first workflow that trains, promotes or rolls it back becomes its owner{also}"
        )
    return EXIT_OK


@ml.command("seal")
@click.argument("model")
@db_option
@run_async
@requires("users.manage", lambda kw: f"model:{kw['model']}")
async def ml_seal(model: str, db: str | None) -> int:
    """Seal MODEL's outcomes and predictions as the store holds them now (an admin, once, after
    upgrading from a release that did not seal them; see docs/operations.md). The monitor measures
    only sealed rows: do this only for a store nobody could have edited since."""
    from ..ml._predict import seal_rows

    async with make_client(db, recover=False, execute=False) as c:
        done = await seal_rows(c.store, model)
        await c.governance.record("ml.seal", f"model:{model}", **done)
    click.echo(f"model {model}: sealed {done['outcomes']} outcome(s) and {done['predictions']} prediction row(s)")
    return EXIT_OK
