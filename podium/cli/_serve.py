"""``podium serve``: the HTTP API, the dashboard, triggers and a worker in one process."""

from __future__ import annotations

import logging
import os

import click

from ..errors import install_hint
from ._app import EXIT_OK, acting_principal, cli, db_option, fail, load_or_fail, requires


@cli.command()
@db_option
@click.option("--host", default=None, help="Interface to listen on (default: serve_host, 127.0.0.1).")
@click.option(
    "--port", "-p", type=click.IntRange(0, 65535), default=None, help="Port to listen on (default: serve_port, 8321)."
)
@click.option(
    "--workflow",
    "-w",
    "workflows",
    multiple=True,
    metavar="REF",
    help="Serve these workflows (MODULE:WORKFLOW or FILE.yaml; repeatable).",
)
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of cron schedules.")
@click.option(
    "--misfire",
    type=click.Choice(["run_once", "skip", "run_all"]),
    default="run_once",
    show_default=True,
    help="What to do with schedule times missed while the server was down.",
)
@click.option(
    "--watch",
    multiple=True,
    metavar="FOLDER=WORKFLOW",
    help="Start WORKFLOW for each file dropped into FOLDER (repeatable).",
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="NAME:WORKFLOW:FIELD>VALUE",
    help="Threshold rule over event payloads, e.g. churn:retention:churn_score>0.8.",
)
@click.option("--no-execute", is_flag=True, help="Serve the API only; separate workers run the runs.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=100, show_default=True, help="Runs driven at once.")
@click.option("--log-level", default=None, help="debug, info, warning... (default: the log_level setting, info).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="PODIUM_LOG_FORMAT",
    default=None,
    help="Log lines as text or one JSON object per line (default: the log_format setting, text) [$PODIUM_LOG_FORMAT].",
)
@click.option(
    "--alerts",
    "alerts_file",
    metavar="FILE",
    help="Alert rules and channels (webhook, email) from a YAML or JSON file; see docs/observability.md.",
)
@click.option(
    "--allow-remote-local-mode",
    is_flag=True,
    help="Listen on a non-loopback --host although the store has no users (every caller is trusted as "
    "the local admin). Without it, local mode serves 127.0.0.1/::1 only.",
)
@click.option(
    "--max-request-size",
    type=click.IntRange(min=1),
    default=10 * 1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Largest request body accepted; larger ones are answered 413.",
)
@click.option(
    "--otel",
    is_flag=True,
    help="Export OpenTelemetry traces (OTLP if opentelemetry-exporter-otlp is installed, else the console).",
)
@requires("runs.resume", lambda kw: "serve")
def serve(
    db: str | None,
    host: str | None,
    port: int | None,
    workflows: tuple[str, ...],
    timezone: str,
    misfire: str,
    watch: tuple[str, ...],
    rules: tuple[str, ...],
    no_execute: bool,
    concurrency: int,
    log_level: str | None,
    log_format: str | None,
    alerts_file: str | None,
    allow_remote_local_mode: bool,
    max_request_size: int,
    otel: bool,
) -> None:
    """Run Podium as a service: the HTTP API (/docs), the dashboard (/), triggers and a worker.

    Once the store has users, requests need 'Authorization: Bearer pod_...', and the server itself
    acts with $PODIUM_TOKEN (a service account for its schedules and events; it needs runs.resume).
    Without users (local mode) every caller is trusted, so it listens on loopback addresses only
    unless --allow-remote-local-mode says otherwise.
    """
    from podium import PodiumError
    from podium.settings import load_settings

    try:
        configured = load_settings({"serve_host": host, "serve_port": port})
    except PodiumError as exc:
        fail(str(exc))
    host, port = configured.values.serve_host, configured.values.serve_port
    who = acting_principal()
    if who is not None and who.local and not _loopback(host) and not allow_remote_local_mode:
        fail(
            f"this store has no users (local mode: every caller may do everything), so podium serve "
            f"listens on loopback only, not on {host}; add an admin first: podium users add NAME --role "
            "admin --token (then export PODIUM_TOKEN=... for the server), or serve a trusted network "
            "deliberately with --allow-remote-local-mode"
        )
    try:
        import uvicorn

        from podium.server import Rule, Settings, create_app
    except ImportError as exc:
        fail(missing_dependency(exc))
        return
    folders: dict[str, str] = {}
    for spec in watch:
        folder, sep, wf = spec.partition("=")
        if not sep or not wf:
            fail(f"--watch {spec!r} must look like FOLDER=WORKFLOW, e.g. --watch inbox=import_files")
        folders[folder] = wf
    parsed = []
    for spec in rules:
        parts = spec.split(":", 2)
        if len(parts) != 3:
            fail(
                f"--rule {spec!r} must look like NAME:WORKFLOW:FIELD>VALUE, e.g. churn:retention:churn_score>0.8"
            )
        parsed.append(Rule(name=parts[0], workflow=parts[1], when=parts[2]))
    from podium import ConfigError
    from podium.telemetry import configure_logging, load_alerts

    otel_provider = None
    try:
        configure_logging(log_format, log_level)  # None: the log_format and log_level settings
        alerts = load_alerts(alerts_file) if alerts_file else None
        if otel:
            from podium.telemetry import tracer_provider

            otel_provider = tracer_provider()
    except (ConfigError, ImportError) as exc:
        fail(str(exc))
    loaded = [load_or_fail(ref) for ref in workflows]  # here: a file that does not load is one line, not a traceback
    settings = Settings(
        store=db,
        token=os.environ.get("PODIUM_TOKEN") or None,
        workflows=loaded,
        execute=not no_execute,
        concurrency=concurrency,
        timezone=timezone,
        misfire=misfire,
        watch=folders,
        rules=parsed,
        alerts=alerts,
        otel=otel_provider or False,
        max_request_bytes=max_request_size,
        allow_remote_local_mode=allow_remote_local_mode,
    )
    http, loop = _http_parts()
    click.echo(f"podium serve on http://{host}:{port}  (dashboard /, API docs /docs, metrics /metrics; {http}, {loop})")
    try:  # the server's modules import their libraries (prometheus-client, croniter...) as they build
        app = create_app(settings)
    except ImportError as exc:
        fail(missing_dependency(exc))
    # Our handler formats every log line, uvicorn's included (log_config=None keeps uvicorn's own off).
    try:
        level = logging.getLogger().level  # as configure_logging resolved it (flag, variable or setting)
        uvicorn.run(app, host=host, port=port, log_level=level, log_config=None, http=http, loop=loop)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port or --host")
    raise SystemExit(EXIT_OK)


def _http_parts() -> tuple[str, str]:
    """uvicorn's HTTP parser and event loop: httptools and uvloop when installed (the server extra
    brings them, as ``uvicorn[standard]``; a little less CPU per request), else h11 and asyncio."""
    from importlib.util import find_spec

    return ("httptools" if find_spec("httptools") else "h11"), ("uvloop" if find_spec("uvloop") else "asyncio")


def missing_dependency(exc: ImportError) -> str:
    """What ``podium serve`` says when a library of the server is not installed: which one, and the
    command that installs the ``server`` extra (instead of a traceback)."""
    what = f"the server needs {exc.name}" if exc.name else f"the server cannot start ({exc})"
    return f"{what}, which is not installed; install the server with: {install_hint('server')}"


def _loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip("[]").lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
