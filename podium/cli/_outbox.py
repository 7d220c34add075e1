"""``podium outbox``: the transactional outbox of a registered sql connector's database (list,
relay, retry). The relay delivers through registered connectors only (docs/connectors.md,
"Exactly-once effects"). Listing needs ``runs.read``; relaying and retrying ``runs.resume``."""

from __future__ import annotations

import json
import signal as _signal
from typing import Any

import click

from ._app import EXIT_OK, cli, console, db_option, fail, make_client, requires, run_async
from ._render import one_line

_source = click.option(
    "--source", "-s", required=True, metavar="NAME", help="The registered sql connector whose database holds the outbox."
)


@cli.group()
def outbox() -> None:
    """Messages recorded with business writes (sql transact), delivered by the relay (docs/connectors.md)."""


async def registered(client: Any, source: str) -> tuple[Any, dict[str, Any]]:
    """The source sql connector and every other registered connector, by name."""
    from podium.connectors._registry import open_registered
    from podium.connectors.sql import SqlConnector

    caps = {n: cap for n, cap in (await client.capabilities()).items() if cap.kind == "connector"}
    if source not in caps:
        fail(
            f"--source {source!r} is not a registered connector (registered: {', '.join(sorted(caps)) or 'none'}); "
            "an admin adds it with podium connectors add NAME sql --set url_env=VARIABLE"
        )
    db = open_registered(caps[source].target, allow_private=caps[source].allow_private, name=source)
    if not isinstance(db, SqlConnector):
        fail(f"--source {source!r} is a {db.kind} connector; the outbox lives in a sql connector's database")
    targets: dict[str, Any] = {}
    for name, cap in sorted(caps.items()):
        if name != source:
            try:
                targets[name] = open_registered(cap.target, allow_private=cap.allow_private, name=name)
            except Exception as exc:  # one target that cannot open here does not stop the others
                from ._render import escape

                console(stderr=True).print(f"[yellow]skipping {escape(name)}[/]: {escape(exc)}", highlight=False)
    return db, targets


async def _unheld(client: Any, sql: Any, source: str, targets: dict[str, Any]) -> str | None:
    """What the counts do not say: pending messages for a target this relay has no connector for
    (deny by default: they wait, and a relay printing only zeros said nothing of them)."""
    waiting: dict[str, int] = {}
    for m in await sql.outbox_messages(status="pending", limit=10_000):
        if m.target not in targets:
            waiting[m.target] = waiting.get(m.target, 0) + 1
    if not waiting:
        return None

    caps = {n for n, cap in (await client.capabilities()).items() if cap.kind == "connector"}
    named = ", ".join(f"{one_line(t)} ({n}{'' if t not in caps else ', registered but could not be opened here: see above'})"
                      for t, n in sorted(waiting.items()))
    return (
        f"not delivered: {sum(waiting.values())} pending message(s) wait for a connector this store does not have: {named}; "
        "a relay delivers only through registered connectors (deny by default), so they stay pending: an admin adds it "
        "with podium connectors add NAME KIND --set ... (podium connectors list shows those registered), then run "
        f"podium outbox relay --source {source} again"
    )


@outbox.command("list")
@_source
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), default=None, help="Only these.")
@click.option("--target", default=None, metavar="NAME", help="Only messages for this connector.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@db_option
@run_async
@requires("runs.read", lambda kw: f"outbox:{kw['source']}")
async def outbox_list(source: str, status: str | None, target: str | None, limit: int, as_json: bool, db: str | None) -> int:
    """Messages of the outbox, oldest first (their arguments are not shown: they may hold personal data)."""
    async with make_client(db, recover=False, execute=False) as c:
        sql, _ = await registered(c, source)
        rows = await sql.outbox_messages(status=status, target=target, limit=limit)
        counts = await sql.outbox_counts()
        await sql.close()
    if as_json:
        for m in rows:
            click.echo(json.dumps(m.to_json()))
        return EXIT_OK
    click.echo("  ".join(f"{s}={n}" for s, n in counts.items()))
    for m in rows:  # the business database's columns: any of its writers may have put escapes there
        error = f"\t{one_line(m.last_error)}" if m.last_error else ""
        click.echo(f"{m.id}\t{m.status}\t{one_line(f'{m.target}.{m.operation}')}\tattempts={m.attempts}\t{one_line(m.key)}{error}")
    return EXIT_OK


@outbox.command("relay")
@_source
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (exit 1 if some failed, the policy refused some, or some had been delivered before).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--lease", type=click.FloatRange(min=0.5), default=60.0, show_default=True, help="Seconds a claimed message is this relay's.")
@db_option
@run_async
@requires("runs.resume", lambda kw: f"outbox:{kw['source']}")
async def outbox_relay(source: str, once: bool, interval: float, lease: float, db: str | None) -> int:
    """Deliver the outbox's messages through the registered connectors they name, until stopped.

    Each message goes with its idempotency key; it is marked sent only after the target accepted it,
    so a relay stopped at any point re-delivers at most the messages it had in hand (same keys).
    Run as many relays as you like: each message is leased to one at a time.
    """
    import asyncio

    from podium.connectors.relay import OutboxRelay, audit_with, held_with

    async with make_client(db, recover=False, execute=False) as c:  # open for the audit entries
        sql, targets = await registered(c, source)
        relay = OutboxRelay(
            sql, targets, lease=lease, audit=audit_with(c.governance), source_name=source, held=held_with(c.governance)
        )
        out = console()
        if warning := await relay.ledger.unbounded() if relay.ledger is not None else None:
            console(stderr=True).print(warning, highlight=False, markup=False, soft_wrap=True)
        if once:
            done = await relay.run_once()
            out.print(
                f"sent={done.sent} retrying={done.retrying} failed={done.failed} refused={done.refused}"
                + (f" duplicates={done.duplicates}" if done.duplicates else "")
                + (f" waiting={done.waiting}" if done.waiting else ""),
                highlight=False,
            )
            if done.waiting:  # another relay (over another outbox) is delivering a copy of them now
                out.print(
                    f"waiting: another relay of this store is delivering a copy of these messages (from another "
                    f"outbox) now; they stay pending, and are looked at again when its hold ends (the time their "
                    f"last_error names): if its delivery succeeded they are marked sent, unsent (counted in "
                    f"duplicates, exit 1), if it failed they go. podium outbox list --source {source} --status pending "
                    f"shows them (last_error names that relay); to look again sooner: "
                    f"podium outbox retry --source {source} KEY",
                    highlight=False,
                )
            if line := await _unheld(c, sql, source, targets):
                out.print(line, highlight=False, soft_wrap=True)
            if done.duplicates:  # delivered before: someone set rows back to pending or copied them
                out.print(
                    f"duplicates: messages delivered before were pending again and were not sent again (copies "
                    f"another outbox's relay delivered, or rows set back to pending in the database): podium outbox list --source {source} --status sent --json "
                    "shows them (last_error says when they went); podium audit export | grep connector.relay shows who "
                    "relayed them",
                    highlight=False,
                )
            if done.refused:  # set aside by the workflow's policy of now: say where to look
                out.print(
                    f"refused messages: podium outbox list --source {source} --status failed (last_error says why "
                    "and what to do: a message the policy refused goes once the policy allows it, with podium outbox "
                    f"retry --source {source} KEY; a row changed in the database does not)",
                    highlight=False,
                )
            return 1 if done.failed or done.refused or done.duplicates else EXIT_OK
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (_signal.SIGTERM, _signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        out.print(f"[bold]relay[/] {relay.owner}: outbox of {source} -> {', '.join(targets) or 'no target'}", highlight=False)
        await relay.run(stop, interval=interval)
    return EXIT_OK


@outbox.command("retry")
@_source
@click.argument("key")
@db_option
@run_async
@requires("runs.resume", lambda kw: f"outbox:{kw['source']}")
async def outbox_retry(source: str, key: str, db: str | None) -> int:
    """Put message KEY (failed, or pending and waiting for its backoff) back in line for delivery now."""
    async with make_client(db, recover=False, execute=False) as c:
        sql, _ = await registered(c, source)
        done = await sql.outbox_retry(key)
        await c.record_audit("outbox.retry", f"outbox:{source}", key=key, found=done)
    if not done:
        fail(f"the outbox of {source!r} has no unsent message with key {key!r} (podium outbox list --source {source})")
    click.echo(f"{key}: back in line for delivery")
    return EXIT_OK
