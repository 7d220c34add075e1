"""``podium secrets``: the store's encrypted secrets (set, list, delete). Values are read from stdin
or an environment variable, never from the command line (which shell history and ``ps`` keep), and
never printed. Every verb needs ``secrets.manage`` (admins)."""

from __future__ import annotations

import os
import sys

import click

from ._app import EXIT_OK, cli, db_option, fail, make_client, requires, run_async


@cli.group()
def secrets() -> None:
    """Encrypted secrets that connectors use as secret:NAME (docs/connectors.md#credentials)."""


def _read_value(name: str, from_env: str | None) -> str:
    if from_env:
        value = os.environ.get(from_env)
        if not value:
            fail(f"--from-env {from_env}: that environment variable is not set or is empty")
        return str(value)
    if sys.stdin is None:
        fail(f"no value for secret {name}: pipe it on stdin or pass --from-env VAR")
    if sys.stdin.isatty():
        return str(click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True, err=True))
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value  # the newline echo or a here-string adds
    value = value[:-1] if value.endswith("\r") else value
    if not value:
        fail(f"no value for secret {name} on stdin: pipe it (printf %s \"$VALUE\" | podium secrets set {name}) or pass --from-env VAR")
    return value


@secrets.command("set")
@click.argument("name")
@click.option("--from-env", "from_env", metavar="VAR", help="Read the value from this environment variable (else stdin).")
@db_option
@run_async
@requires("secrets.manage", lambda kw: f"secret:{kw['name']}")
async def secrets_set(name: str, from_env: str | None, db: str | None) -> int:
    """Store secret NAME, encrypted (replacing its value: connectors use the new one at their next call).

    \b
    printf %s "$CRM_TOKEN" | podium secrets set CRM_TOKEN
    podium secrets set CRM_CLIENT_SECRET --from-env CRM_CLIENT_SECRET
    """
    from podium.storage.secrets import check_name

    check_name(name)
    value = _read_value(name, from_env)
    async with make_client(db, recover=False, execute=False) as c:
        info = await c.secrets.set(name, value)
    click.echo(f"set {info.name} (version {info.version}, key {info.key_id})")
    return EXIT_OK


@secrets.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@db_option
@run_async
@requires("secrets.manage", lambda kw: "secrets", reads=True)
async def secrets_list(as_json: bool, db: str | None) -> int:
    """The secrets' names, versions, when and by whom they were set (never their values)."""
    import time

    async with make_client(db, recover=False, execute=False) as c:
        found = await c.secrets.list()
    for info in found:
        if as_json:
            click.echo(info.to_json())
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.updated_at))
            click.echo(f"{info.name}\tversion {info.version}\t{when}\t{info.updated_by}\tkey {info.key_id}")
    if not found and not as_json:
        click.echo("no secret is set: podium secrets set NAME (the value on stdin)")
    return EXIT_OK


@secrets.command("delete")
@click.argument("name")
@db_option
@run_async
@requires("secrets.manage", lambda kw: f"secret:{kw['name']}")
async def secrets_delete(name: str, db: str | None) -> int:
    """Delete secret NAME (connectors that use it fail at their next call, naming it)."""
    async with make_client(db, recover=False, execute=False) as c:
        gone = await c.secrets.delete(name)
    if not gone:
        fail(f"no secret {name!r} is set (podium secrets list)")
    click.echo(f"deleted {name}")
    return EXIT_OK
