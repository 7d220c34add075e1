"""``podium serve``: the HTTP API, the dashboard, triggers and a worker in one process."""

from __future__ import annotations

import os

import click

from ._app import EXIT_OK, cli, db_option, fail


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", "-p", default=8080, show_default=True, help="Port to listen on.")
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
@click.option("--concurrency", "-c", default=100, show_default=True, help="Runs driven at once.")
@click.option("--log-level", default="info", show_default=True)
def serve(
    db: str | None,
    host: str,
    port: int,
    workflows: tuple[str, ...],
    timezone: str,
    misfire: str,
    watch: tuple[str, ...],
    rules: tuple[str, ...],
    no_execute: bool,
    concurrency: int,
    log_level: str,
) -> None:
    """Run Podium as a service: the HTTP API (/docs), the dashboard (/), triggers and a worker.

    Once the store has users, requests need 'Authorization: Bearer pod_...', and the server itself
    acts with $PODIUM_TOKEN (a service account for its schedules and events).
    """
    try:
        import uvicorn

        from podium.server import Rule, Settings, create_app
    except ImportError as exc:
        fail(f"{exc}; install the server with: pip install 'podium[server]'")
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
    settings = Settings(
        store=db,
        token=os.environ.get("PODIUM_TOKEN") or None,
        workflows=list(workflows),
        execute=not no_execute,
        concurrency=concurrency,
        timezone=timezone,
        misfire=misfire,
        watch=folders,
        rules=parsed,
    )
    click.echo(f"podium serve on http://{host}:{port}  (dashboard /, API docs /docs, metrics /metrics)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
    raise SystemExit(EXIT_OK)
