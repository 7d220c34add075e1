"""Commands for scaled-out operation: ``worker`` and ``signal``."""

from __future__ import annotations

import signal as _signal
from typing import Any

import click

from ._app import EXIT_OK, cli, console, db_option, load_ref, make_client, parse_input, requires, run_async


@cli.command()
@db_option
@click.option(
    "--queue", "-q", "queues", multiple=True, help="Claim runs from this queue (repeatable; default: all)."
)
@click.option(
    "--label", "-l", "labels", multiple=True, help="A label this worker has, e.g. gpu (repeatable)."
)
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=100, show_default=True, help="Runs driven at once.")
@click.option(
    "--queue-limit",
    "queue_limits",
    multiple=True,
    metavar="QUEUE=N",
    help="Cap on runs of QUEUE held at once by all workers.",
)
@click.option(
    "--workflow",
    "-w",
    "workflows",
    multiple=True,
    metavar="REF",
    help="Import these workflows up front (MODULE:WORKFLOW or FILE.yaml).",
)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Lease on each claimed run; renewed every third of it.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds to let running runs finish before handing them back.",
)
@click.option(
    "--outbox",
    "outboxes",
    multiple=True,
    metavar="SQL_CONNECTOR",
    help="Also relay this registered sql connector's outbox (repeatable; see podium outbox).",
)
@run_async
@requires("runs.resume", lambda kw: "worker")
async def worker(
    db: str | None,
    queues: tuple[str, ...],
    labels: tuple[str, ...],
    concurrency: int,
    queue_limits: tuple[str, ...],
    workflows: tuple[str, ...],
    lease_seconds: float,
    grace: float,
    outboxes: tuple[str, ...] = (),
) -> int:
    """Claim runs from the store and drive them, until stopped.

    Start as many as you like, on as many machines as share the store (PostgreSQL). A worker takes
    over the runs of a worker that died once its lease expires; finished steps are never redone.
    """
    import asyncio

    from podium import ConfigError

    limits: dict[str, int] = {}
    for spec in queue_limits:
        name, sep, n = spec.partition("=")
        if not sep or not n.isdigit():
            raise ConfigError(f"--queue-limit {spec!r} must look like QUEUE=N, e.g. --queue-limit bulk=4")
        limits[name] = int(n)
    client = make_client(
        db,
        labels=list(labels),
        queues=list(queues) or None,
        queue_limits=limits,
        max_concurrent_runs=concurrency,
        lease_seconds=lease_seconds,
    )
    for ref in workflows:
        client.register(load_ref(ref))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (_signal.SIGTERM, _signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out = console()
    client.subscribe(_worker_log(out))
    await client.open()
    relays: list[asyncio.Task[None]] = []
    out.print(
        f"[bold]worker[/] {client.owner} on {client.store.url}  queues={','.join(queues) or 'all'}  "
        f"labels={','.join(labels) or '-'}  concurrency={concurrency}",
        highlight=False,
    )
    try:
        for source in outboxes:  # outbox relays beside the runs (podium outbox)
            relays.append(asyncio.create_task(await _relay(client, source, stop, out)))
        await client.work(stop, concurrency=concurrency)
        out.print(
            f"stopping: letting {len(client.driving)} running run(s) finish (up to {grace:.0f} s)",
            highlight=False,
        )
        try:
            await asyncio.wait_for(client.drain(), grace)
        except TimeoutError:
            out.print("grace period over: handing the remaining runs back", highlight=False)
    finally:
        stop.set()
        await asyncio.gather(*relays, return_exceptions=True)
        await client.close()
    return EXIT_OK


async def _relay(client: Any, source: str, stop: Any, out: Any) -> Any:
    """The relay of registered sql connector ``source``'s outbox, as a coroutine to run until ``stop``."""
    from podium.connectors.relay import OutboxRelay

    from ._outbox import registered

    sql, targets = await registered(client, source)
    out.print(f"relaying the outbox of {source} -> {', '.join(targets) or 'no target'}", highlight=False)
    return OutboxRelay(sql, targets).run(stop)


def _worker_log(out: Any) -> Any:
    def log(ev: Any) -> None:
        if ev.type in (
            "run_started",
            "run_resumed",
            "run_completed",
            "run_failed",
            "run_cancelled",
            "run_waiting",
            "run_handed_off",
        ):
            out.print(f"{ev.type:<15} {ev.run_id}", highlight=False)

    return log


@cli.command(name="signal")
@click.argument("run_id")
@click.argument("name")
@click.option(
    "--payload", "-p", "payload_text", metavar="JSON|@FILE", help="What ctx.wait_for(NAME) returns."
)
@db_option
@run_async
@requires("runs.signal", lambda kw: kw["run_id"])
async def signal_cmd(run_id: str, name: str, payload_text: str | None, db: str | None) -> int:
    """Send signal NAME to a run waiting in ctx.wait_for(NAME), and drive the run on."""

    payload = parse_input(payload_text)
    async with make_client(db, recover=False) as client:
        sent = await client.signal(run_id, name, payload)
        if not sent:
            console().print(
                f"run {run_id} already had signal {name!r}; the first one counts", highlight=False
            )
            return EXIT_OK
        console().print(f"sent {name!r} to run {run_id}", highlight=False)
        await client.driving.settled(run_id)  # this process drives it on until it finishes or parks
        run = await client.get(run_id)
        console().print(f"run {run_id}: {run.status.value}", highlight=False)
    return EXIT_OK
