"""``podium config show``: the effective settings and where each came from."""

from __future__ import annotations

import json

import click

from ._app import cli, console, fail, requires


@cli.group("config")
def config_group() -> None:
    """The project's settings: podium.toml / [tool.podium], PODIUM_* variables, flags."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per setting.")
@requires(None)
def config_show(as_json: bool) -> None:
    """Print every effective setting, its value (secrets masked) and its source.

    Order, lowest first: defaults, [tool.podium] in pyproject.toml, podium.toml, PODIUM_<NAME>
    environment variables, command-line flags."""
    from podium import PodiumError
    from podium.settings import load_settings

    try:
        effective = load_settings()
    except PodiumError as exc:
        fail(str(exc))
        return
    rows = effective.rows()
    from podium.settings import mistyped_environment

    for problem in mistyped_environment():
        console(stderr=True).print(f"[yellow]warning:[/] {problem}", highlight=False, soft_wrap=True)
    if as_json:
        for name, value, source in rows:
            click.echo(json.dumps({"name": name, "value": value, "source": source}))
        return
    from rich.table import Table

    table = Table(title=f"project: {effective.project or '(none found)'}", title_justify="left")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console().print(table)
