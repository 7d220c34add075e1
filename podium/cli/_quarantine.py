"""``podium quarantine``: connector results that drifted from their contract (list, show, replay),
and ``podium connectors learn``: an operation's contract inferred from its recorded results.

Listing needs ``runs.read``; showing an item's payload ``payloads.read`` (it is business data);
replaying ``runs.signal`` (it resumes parked runs); learning ``tools.manage`` and ``payloads.read``
(it reads the results recorded in runs)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import click

from ._app import EXIT_OK, EXIT_USER_ERROR, cli, console, db_option, fail, make_client, requires, run_async
from ._connectors import connectors


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@cli.group()
def quarantine() -> None:
    """Connector results that drifted from their contract, set aside (docs/connectors.md)."""


@quarantine.command("list")
@click.option("--all", "every", is_flag=True, help="Resolved items too.")
@click.option("--connector", default=None, help="Only this connector's items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@db_option
@run_async
@requires("runs.read", lambda kw: "quarantine")
async def quarantine_list(every: bool, connector: str | None, as_json: bool, db: str | None) -> int:
    """The quarantined items, oldest first (open ones: parked, failed or skipped)."""
    async with make_client(db, recover=False, execute=False) as c:
        items = await c.quarantine.list(status=None if every else "open", connector=connector, limit=10_000)
    if as_json:
        for item in items:
            click.echo(json.dumps(item.to_json()))
        return EXIT_OK
    if not items:
        click.echo("the quarantine is empty" if every else "no open item in the quarantine")
        return EXIT_OK
    for item in items:
        kinds = ", ".join(sorted({f"{d['kind']} {d['path']}" for d in item.diff})) or "-"
        click.echo(f"{item.id}\t{item.status}\t{item.connector}.{item.operation}\trun {item.run_id} step {item.step_id}\t{_when(item.created_at)}\t{kinds}")
    return EXIT_OK


@quarantine.command("show")
@click.argument("item_id")
@click.option("--json", "as_json", is_flag=True, help="The item as JSON, with its payload.")
@db_option
@run_async
@requires("payloads.read", lambda kw: f"quarantine:{kw['item_id']}")
async def quarantine_show(item_id: str, as_json: bool, db: str | None) -> int:
    """One item: its diff and its raw payload."""
    async with make_client(db, recover=False, execute=False) as c:
        item = await c.quarantine.get(item_id)
    if as_json:
        click.echo(json.dumps(item.to_json(payload=True), indent=2))
        return EXIT_OK
    click.echo(f"{item.id}: {item.connector}.{item.operation}, {item.status} (policy {item.policy})")
    if item.problem:
        console(stderr=True).print(item.problem, highlight=False, markup=False)
    click.echo(f"run {item.run_id} ({item.workflow}) step {item.step_id}, at {_when(item.created_at)}; replays: {item.replays}")
    if item.resolution:
        click.echo(f"resolution: {item.resolution}")
    click.echo("diff:")
    for d in item.diff:
        click.echo(f"  {d['kind']:<13} {d['message']}")
    click.echo("payload:")
    click.echo(json.dumps(item.payload, indent=2, ensure_ascii=False))
    return EXIT_OK


@quarantine.command("replay")
@click.argument("item_id", required=False)
@click.option("--all", "every", is_flag=True, help="Every open item.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
@db_option
@run_async
@requires("runs.signal", lambda kw: f"quarantine:{kw.get('item_id') or '*'}")
async def quarantine_replay(item_id: str | None, every: bool, as_json: bool, db: str | None) -> int:
    """Re-drive ITEM_ID (or --all) through the connector's current mapping and contract: an item
    that now matches resumes its parked run with the mapped value; one that still drifts stays,
    with its new diff."""
    if bool(item_id) == every:
        fail("name one item (podium quarantine replay ID) or pass --all")
    async with make_client(db, recover=False, execute=False) as c:
        results = await c.quarantine.replay(item_id, all=every)
    left = sum(not r["resolved"] for r in results)
    for r in results:
        if as_json:
            click.echo(json.dumps(r))
        elif r["resolved"]:
            click.echo(f"{r['id']}: resolved, {r['resolution']}")
        elif r.get("problem"):
            console(stderr=True).print(f"{r['id']}: refused: {r['problem']}", highlight=False, markup=False)
        else:
            click.echo(f"{r['id']}: still drifts, kept in the quarantine:")
            for d in r["diff"]:
                click.echo(f"  {d['kind']:<13} {d['message']}")
    if not results and not as_json:
        click.echo("no open item in the quarantine")
    return EXIT_USER_ERROR if left else EXIT_OK


@quarantine.command("seal")
@db_option
@run_async
@requires("users.manage", lambda kw: "quarantine")
async def quarantine_seal(db: str | None) -> int:
    """Seal the quarantined items and data gates' quarantined rows kept by a release before they were
    sealed, as the store holds them now (an admin, once, after the upgrade; see docs/operations.md):
    until then they are listed with a problem and not replayed or released. Only for a store nobody
    could have edited since."""
    from ..connectors._quarantine import QuarantineBook
    from ..storage import _quarantined as kept

    async with make_client(db, recover=False, execute=False) as c:
        items = await QuarantineBook(c.store).seal_all()
        rows = await kept.seal_all(c.store)
        await c.governance.record("quarantine.seal", "quarantine", items=items, gate_entries=rows)
    click.echo(f"sealed {items} quarantined item(s) and {rows} entr(ies) of rows quarantined by data gates")
    return EXIT_OK


@connectors.command("learn")
@click.argument("name")
@click.argument("operation")
@click.option("--runs", default=200, show_default=True, help="How many of the latest runs to read results from.")
@click.option("--json", "as_json", is_flag=True, help="Print the learned JSON Schema only.")
@db_option
@run_async
@requires("tools.manage", lambda kw: f"capability:{kw['name']}")
async def connectors_learn(name: str, operation: str, runs: int, as_json: bool, db: str | None) -> int:
    """Learn OPERATION's contract (a JSON Schema) from the results of connector NAME recorded in
    the latest runs, and keep it in the store: later results are checked against it."""
    async with make_client(db, recover=False, execute=False) as c:
        learned: dict[str, Any] = await c.quarantine.learn(name, operation, runs=runs)
    if as_json:
        click.echo(json.dumps(learned["schema"]))
        return EXIT_OK
    click.echo(f"learned the contract of {name}.{operation} from {learned['samples']} recorded result(s):")
    click.echo(json.dumps(learned["schema"], indent=2))
    return EXIT_OK
