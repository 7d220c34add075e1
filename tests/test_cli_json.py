"""Every listing command prints one JSON object per line with --json, so scripts never parse tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from store_helpers import made_store

from podium.cli import cli

#: Commands that list things. A new listing command belongs here (and needs the shared json_option).
LISTING = {
    "runs list", "approvals list", "workflows list", "workflows versions", "versions", "users list", "killswitch list", "kb list", "memory erasures",
    "policy list", "prompts list", "prompts versions", "connectors list", "tools list", "config show",
    "capabilities list", "quarantine list", "secrets list", "outbox list", "connectors status",
}  # fmt: skip


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + " ")
        else:
            yield path, cmd


def test_every_listing_command_has_json() -> None:
    found = dict(_commands(cli))
    missing = sorted(p for p in LISTING if p in found and "as_json" not in {x.name for x in found[p].params})
    assert not missing, f"listing commands without --json: {missing}"
    listy = sorted(p for p in found if p.endswith(" list") and p not in LISTING)
    assert not listy, f"add these listing commands to LISTING (and give them --json): {listy}"


@pytest.mark.parametrize(
    "args",
    [
        ["approvals", "--json"],  # the noun alone is its listing, as before the noun groups
        ["approvals", "list", "--json"],
        ["runs", "--json"],
        ["runs", "list", "--json"],
        ["users", "list", "--json"],
        ["killswitch", "list", "--json"],
        ["policy", "list", "--json"],
        ["prompts", "list", "--json"],
    ],
)
def test_json_output_is_one_object_per_line(args: list[str], tmp_path: Path) -> None:
    db = made_store(f"sqlite:///{tmp_path}/p.db")
    runner = CliRunner()
    if args[0] == "prompts":
        (tmp_path / "p.txt").write_text("Hello {{name}}")
        assert runner.invoke(cli, ["prompts", "put", "greeting", str(tmp_path / "p.txt"), "--db", db]).exit_code == 0
    if args[0] == "killswitch":
        assert runner.invoke(cli, ["killswitch", "set", "workflow", "hello", "--db", db]).exit_code == 0
    if args[0] == "policy":
        assert runner.invoke(cli, ["policy", "set", "hello", "--max-run-tokens", "10", "--db", db]).exit_code == 0
    env = {}
    if args[0] == "users":
        added = runner.invoke(cli, ["users", "add", "ada", "--role", "admin", "--token", "--db", db])
        assert added.exit_code == 0, added.output
        env["PODIUM_TOKEN"] = next(w for w in added.output.split() if w.startswith("pod_"))
    result = runner.invoke(cli, [*args, "--db", db], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert all(isinstance(x, dict) for x in lines)
    if args[0] in ("prompts", "killswitch", "policy", "users"):
        assert len(lines) == 1, result.stdout
