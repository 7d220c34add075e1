"""``podium prompts``: versioned prompts kept in the store."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._app import EXIT_OK, cli, db_option, emit_json, json_option, make_client, requires, run_async
from ._gov import echo_versions


@cli.group()
def prompts() -> None:
    """Versioned prompts: every change is a version; a run keeps the version it first read."""


@prompts.command("put")
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--description", "-m", default="", help="What changed.")
@db_option
@run_async
@requires("workflows.deploy", lambda kw: f"prompt:{kw['name']}")
async def prompts_put(name: str, file: Any, description: str, db: str | None) -> int:
    """Store FILE ('-' for stdin) as the next version of prompt NAME and make it active."""
    text = file.read()
    async with make_client(db, recover=False) as c:
        pv = await c.put_prompt(name, text, description=description)
    click.echo(f"prompt {name}: version {pv.version} is active")
    return EXIT_OK


@prompts.command("list")
@json_option
@db_option
@run_async
@requires("workflows.read")
async def prompts_list(as_json: bool, db: str | None) -> int:
    """Every prompt and its active version."""
    async with make_client(db, recover=False) as c:
        found = sorted((await c.prompts()).items())
    if as_json:
        emit_json({"name": name, "active_version": version} for name, version in found)
        return EXIT_OK
    for name, version in found:
        click.echo(f"{name}\t{version}")
    return EXIT_OK


@prompts.command("show")
@click.argument("name")
@click.option("--version", "-v", default=None, help="A version (default: the active one).")
@db_option
@run_async
@requires("workflows.read", lambda kw: f"prompt:{kw['name']}")
async def prompts_show(name: str, version: str | None, db: str | None) -> int:
    """Print a prompt's text."""
    async with make_client(db, recover=False) as c:
        pv = await c.prompt(name, version)
    sys.stdout.write(pv.text if pv.text.endswith("\n") else pv.text + "\n")
    return EXIT_OK


@prompts.command("versions")
@click.argument("name")
@json_option
@db_option
@run_async
@requires("workflows.read", lambda kw: f"prompt:{kw['name']}")
async def prompts_versions(name: str, as_json: bool, db: str | None) -> int:
    """List a prompt's versions (* marks the active one)."""
    async with make_client(db, recover=False) as c:
        rows = await c.prompt_versions(name)
    if as_json:
        emit_json(rows)
        return EXIT_OK
    echo_versions(rows)
    return EXIT_OK


@prompts.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b")
@db_option
@run_async
@requires("workflows.read", lambda kw: f"prompt:{kw['name']}")
async def prompts_diff(name: str, a: str, b: str, db: str | None) -> int:
    """What changed in prompt NAME between versions A and B."""
    async with make_client(db, recover=False) as c:
        text = await c.diff_prompt(name, a, b)
    click.echo(text or f"versions {a} and {b} of {name} are identical")
    return EXIT_OK


@prompts.command("rollback")
@click.argument("name")
@click.option("--to", "to", default=None, help="The version to make active (default: the one before).")
@db_option
@run_async
@requires("workflows.deploy", lambda kw: f"prompt:{kw['name']}")
async def prompts_rollback(name: str, to: str | None, db: str | None) -> int:
    """Make an earlier version of prompt NAME active (running runs keep the version they read)."""
    async with make_client(db, recover=False) as c:
        version = await c.rollback_prompt(name, to=to)
    click.echo(f"prompt {name}: version {version} is active")
    return EXIT_OK
