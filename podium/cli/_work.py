"""Commands for scaled-out operation: ``worker`` and ``signal``."""

from __future__ import annotations

import signal as _signal
from typing import Any

import click

from ._app import (
    EXIT_OK,
    cli,
    console,
    db_option,
    load_ref,
    make_client,
    parse_input,
    requires,
    run_async,
    runs_group,
)


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
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    envvar="PODIUM_HEALTH_PORT",
    default=None,
    help="Serve /healthz, /readyz and /metrics on this port (off by default; the Helm chart uses 8322; "
    "needs the server extra) [$PODIUM_HEALTH_PORT].",
)
@click.option(
    "--health-host",
    default="127.0.0.1",
    show_default=True,
    envvar="PODIUM_HEALTH_HOST",
    help="Interface of the health port (0.0.0.0 in a pod, for the kubelet's probes and Prometheus) "
    "[$PODIUM_HEALTH_HOST].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="PODIUM_LOG_FORMAT",
    default=None,
    help="Log lines as text or one JSON object per line (default: the log_format setting) [$PODIUM_LOG_FORMAT].",
)
@click.option("--log-level", default=None, help="debug, info, warning... (default: the log_level setting).")
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
    health_port: int | None = None,
    health_host: str = "127.0.0.1",
    log_format: str | None = None,
    log_level: str | None = None,
) -> int:
    """Claim runs from the store and drive them, until stopped.

    Start as many as you like, on as many machines as share the store (PostgreSQL). A worker takes
    over the runs of a worker that died once its lease expires; finished steps are never redone.
    """
    import asyncio
    import contextlib

    from podium import ConfigError
    from podium._sqldb import shown_url
    from podium.telemetry import configure_logging, log_runs

    configure_logging(log_format, log_level)  # also $PODIUM_LOG_FORMAT and the settings files
    json_logs = _json_logs()
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
    out = _Say(console(), json_logs)
    log_runs(client)  # run ends and step failures as log records (JSON lines with --log-format json)
    if not json_logs:
        client.subscribe(_worker_log(out))
    stopping = asyncio.Event()
    health = await _health_metrics(client, health_port)
    # said before the open, which already takes up runs: their lines come under it, not above
    out(
        f"[bold]worker[/] {client.owner} on {shown_url(str(client.store.url))}  queues={','.join(queues) or 'all'}  "
        f"labels={','.join(labels) or '-'}  concurrency={concurrency}",
        owner=client.owner, queues=list(queues), labels=list(labels), concurrency=concurrency,
    )  # fmt: skip
    await client.open()
    relays: list[asyncio.Task[None]] = []
    exits = contextlib.AsyncExitStack()
    try:
        if health is not None:
            await _serve_health(exits, client, health, health_host, health_port or 0, stopping, out)
        for source in outboxes:  # outbox relays beside the runs (podium outbox)
            relays.append(asyncio.create_task(await _relay(client, source, stop, out)))
        await client.work(stop, concurrency=concurrency)
        stopping.set()  # /readyz answers 503 from here on
        out(f"stopping: letting {len(client.driving)} running run(s) finish (up to {grace:.0f} s)")
        try:
            await asyncio.wait_for(client.drain(), grace)
        except TimeoutError:
            out("grace period over: handing the remaining runs back")
    finally:
        stop.set()
        stopping.set()
        await asyncio.gather(*relays, return_exceptions=True)
        await exits.aclose()
        await client.close()
    return EXIT_OK


class _Say:
    """The worker's own lines: on the console as text, or log records (logger ``podium.worker``)
    when logs are JSON, so that a container's output is one JSON object per line."""

    def __init__(self, out: Any, json_logs: bool) -> None:
        self.out, self.json_logs = out, json_logs

    def __call__(self, text: str, **fields: Any) -> None:
        if self.json_logs:
            import logging
            import re

            logging.getLogger("podium.worker").info(re.sub(r"\[/?[a-z ]*\]", "", text), extra=fields)
        else:
            self.out.print(text, highlight=False, soft_wrap=True)  # one line per record, also in a pod's log

    def print(self, text: str, **_: Any) -> None:
        self(text)


def _json_logs() -> bool:
    """Whether the log handler configure_logging installed writes JSON."""
    import logging

    from podium.telemetry import JsonFormatter

    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


async def _health_metrics(client: Any, port: int | None) -> Any:
    """The worker's metrics (attached before the client opens, to count the runs it recovers), or
    None without ``--health-port``."""
    if port is None:
        return None
    from podium import ConfigError
    from podium.errors import install_hint

    try:
        from podium.server.health import worker_families
        from podium.server.metrics import Metrics
    except ImportError as exc:
        raise ConfigError(f"--health-port needs the server extra ({exc}); install it with: {install_hint('server')}") from None
    metrics = Metrics(store_gauges=False)  # the API server reports the store's gauges, once
    metrics.extra.append(worker_families)
    metrics.attach(client)
    return metrics


async def _serve_health(exits: Any, client: Any, metrics: Any, host: str, port: int, stopping: Any, out: Any) -> None:
    from podium import ConfigError
    from podium.server.health import health_app, serving

    try:
        bound = await exits.enter_async_context(serving(health_app(client, metrics, stopping), host, port))
    except OSError as exc:
        raise ConfigError(
            f"--health-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port"
        ) from None
    out(f"health on http://{host}:{bound}  (/healthz, /readyz, /metrics)", health_port=bound)


async def _relay(client: Any, source: str, stop: Any, out: Any) -> Any:
    """The relay of registered sql connector ``source``'s outbox, as a coroutine to run until ``stop``."""
    from podium.connectors.relay import OutboxRelay, audit_with, held_with

    from ._outbox import registered

    sql, targets = await registered(client, source)
    out.print(f"relaying the outbox of {source} -> {', '.join(targets) or 'no target'}", highlight=False)
    gov = client.governance
    held = held_with(gov)
    if warning := await held.unbounded():
        out.print(warning, highlight=False, markup=False, soft_wrap=True)
    return OutboxRelay(sql, targets, audit=audit_with(gov), source_name=source, held=held).run(stop)


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


@runs_group.command("signal")
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

    payload = parse_input(payload_text, "--payload")
    async with make_client(db, recover=False) as client:
        other = await _waits_for_another(client, run_id, name)
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
    if other:
        from ._render import escape

        console(stderr=True).print(escape(other), highlight=False, soft_wrap=True)
    return EXIT_OK


async def _waits_for_another(client: Any, run_id: str, name: str) -> str | None:
    """A warning when a parked run waits for signals and ``name`` is none of them (a typo, most
    likely): the signal is still sent, as one may come before its wait_for."""
    import difflib

    from podium import PodiumError

    from ._why import _waits_for

    try:
        run = await client.get(run_id)
        if run.status.value != "waiting":
            return None
        names, _ = await _waits_for(client, run)
    except PodiumError:
        return None  # an unknown run is said by signal() itself
    if not names or name in names:
        return None
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"warning: run {run_id} waits for {', '.join(repr(n) for n in names)}, not {name!r}: {hint}the signal is "
        f"kept for a later wait_for({name!r}), and the run still waits; send: podium runs signal {run_id} "
        f"{names[0]} --payload JSON"
    )
