"""``podium mcp``: workflows and the approvals inbox as MCP tools, over stdio or streamable HTTP."""

from __future__ import annotations

import logging

import click

from ..errors import install_hint
from ._app import (
    EXIT_OK,
    acting_principal,
    cli,
    db_option,
    fail,
    load_or_fail,
    make_client,
    requires,
    run_async,
)
from ._serve import _loopback

log = logging.getLogger("podium.mcp")


@cli.command(name="mcp")
@db_option
@click.option(
    "--workflow",
    "-w",
    "workflows",
    multiple=True,
    metavar="REF",
    help="Offer these workflows (MODULE:WORKFLOW or FILE.yaml; repeatable).",
)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: an MCP client starts this command; http: serve streamable HTTP at /mcp.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (http).")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port to listen on (http).")
@click.option(
    "--no-execute", is_flag=True, help="Only record runs; separate workers (podium worker) run them."
)
@click.option(
    "--log-level", default=None,
    help="debug, info, warning... on stderr (default: the log_level setting when it is set, else warning).",
)  # fmt: skip
@click.option(
    "--allow-remote-local-mode", is_flag=True,
    help="Listen (http) on a non-loopback --host although the store has no users (every caller trusted).",
)  # fmt: skip
@click.option(
    "--max-request-size", "max_request_bytes", type=click.IntRange(1024), default=10 * 1024 * 1024,
    show_default=True, help="Largest request body accepted (http), in bytes; larger ones get 413.",
)  # fmt: skip
@requires("workflows.read", lambda kw: "mcp")
def mcp_command(
    db: str | None,
    workflows: tuple[str, ...],
    transport: str,
    host: str,
    port: int,
    no_execute: bool,
    log_level: str | None,
    allow_remote_local_mode: bool,
    max_request_bytes: int,
) -> None:
    """Serve Podium to MCP clients (Claude Desktop, IDEs, agents): a run_<workflow> tool per
    workflow, start_run, get_run, list_runs, list_approvals and decide_approval.

    Over stdio the tools act as $PODIUM_TOKEN (or the local user while the store has no users);
    over http every request needs 'Authorization: Bearer pod_...' once the store has users.
    Every call is checked against the caller's role and audited.
    """
    from podium import ConfigError
    from podium.telemetry import configure_logging

    try:
        level = mcp_log_level(log_level)
        configure_logging(None, level)  # stderr: over stdio, stdout carries the protocol alone
    except ConfigError as exc:
        fail(str(exc))
    loaded = [load_or_fail(ref) for ref in workflows]
    _check_identity(db)  # before importing the MCP SDK, which takes seconds
    try:
        from podium.server import mcp as server_mcp

        server_mcp.sdk()
    except Exception as exc:
        fail(f"{exc}")
        return
    who = acting_principal()
    if transport == "http" and who is not None and who.local and not _loopback(host) and not allow_remote_local_mode:
        fail(
            f"this store has no users (local mode: every caller may do everything), so podium mcp listens "
            f"on loopback only, not on {host}; add an admin first (podium users add NAME --role admin "
            "--token), or serve a trusted network deliberately with --allow-remote-local-mode"
        )
    # Every tool checks its own permission; taking over unfinished runs at start needs runs.resume.
    client = make_client(
        db, workflows=loaded, execute=not no_execute, recover=who is None or who.can("runs.resume")
    )
    log.info(
        "podium mcp: serving %d workflow(s) over %s%s as %s", len(loaded), transport,
        "" if transport == "stdio" else f" on {host}:{port}", "the local user" if who is None or who.local else who.name,
    )  # fmt: skip
    if transport == "stdio":
        _stdio(client)
        return
    try:
        import uvicorn
    except ImportError:
        fail(f"podium mcp --transport http needs uvicorn: {install_hint('server')}")
        return
    from podium.governance.limits import MAX_JSON_DEPTH
    from podium.server.limits import RequestLimits

    app = RequestLimits(server_mcp.http_app(client, host=host, any_host=allow_remote_local_mode), max_bytes=max_request_bytes, max_depth=MAX_JSON_DEPTH)
    click.echo(f"podium mcp on http://{host}:{port}/mcp", err=True)
    uvicorn.run(app, host=host, port=port, log_level=level, log_config=None)
    raise SystemExit(EXIT_OK)


def mcp_log_level(flag: str | None) -> str:
    """``--log-level``, else the ``log_level`` setting where it is set ($PODIUM_LOG_LEVEL, podium.toml,
    pyproject.toml's ``[tool.podium]``), else ``warning``: an MCP client starts the stdio server and shows its
    stderr, so by default only what needs attention is logged."""
    if flag:
        level = flag
    else:
        from podium.settings import load_settings

        settings = load_settings()
        level = str(settings.values.log_level) if settings.source("log_level") != "default" else "warning"
    level = level.lower()
    return {"warn": "warning"}.get(level, level)


def _check_identity(db: str | None) -> None:
    """Fail now, in one line, if the server cannot act ($PODIUM_TOKEN missing or wrong)."""
    import asyncio

    from podium import PodiumError

    async def check() -> None:
        async with make_client(db, execute=False, recover=False):
            pass

    try:
        asyncio.run(check())
    except PodiumError as exc:
        fail(str(exc))


@run_async
async def _stdio(client: object) -> int:
    from podium.server.mcp import serve_stdio

    await serve_stdio(client)
    return EXIT_OK
