"""The CLI's noun groups (``podium runs show``, ``podium approvals approve``, ``podium workflows deploy``)
and the older top-level verbs kept as hidden aliases: every old form still works, prints exactly what
the new form prints, is hidden from ``podium --help``, and its help names the new form.

(Permissions of both forms: tests/test_cli_permissions.py walks every command, aliases included;
``--json`` of both forms: tests/test_cli_json.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from store_helpers import made_store

from podium.cli import cli
from podium.cli._app import ALIASES

FLOW = 'name: hello\nversion: "1"\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "hi"}\n'


def _command(path: str) -> click.Command:
    cmd: Any = cli
    for part in path.split():
        cmd = cmd.commands[part]
    return cmd  # type: ignore[no-any-return]


@pytest.mark.parametrize(("old", "new"), sorted(ALIASES.items()))
def test_every_old_verb_is_a_hidden_alias_that_names_its_new_form(old: str, new: str) -> None:
    alias, command = cli.commands[old], _command(new)
    assert alias.hidden and not command.hidden
    assert alias.callback.__wrapped__ is command.callback  # type: ignore[union-attr]
    assert alias.callback.podium_permission == command.callback.podium_permission  # type: ignore[union-attr]
    assert [p.name for p in alias.params] == [p.name for p in command.params]
    shown = CliRunner().invoke(cli, [old, "--help"])
    assert shown.exit_code == 0 and f"Old name of 'podium {new}'" in shown.output
    assert f"Usage: cli {old}" in shown.output


def test_top_level_help_lists_nouns_and_starters_not_old_verbs() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.startswith("  ")}
    assert {"runs", "approvals", "workflows", "goals", "memory", "run", "serve", "worker", "init", "demo"} <= listed
    assert not listed & set(ALIASES), listed & set(ALIASES)
    nouns = CliRunner().invoke(cli, ["runs", "--help"]).output
    assert all(f"  {verb} " in nouns for verb in ("list", "start", "show", "cancel", "resume", "fork", "signal"))


def test_a_noun_alone_or_with_options_lists_and_a_wrong_verb_is_named(tmp_path: Path) -> None:
    runner = CliRunner()
    db = made_store(f"sqlite:///{tmp_path}/p.db")
    assert runner.invoke(cli, ["runs", "--db", db]).output.startswith("no runs yet")
    assert runner.invoke(cli, ["approvals", "--db", db]).output.startswith("no approvals waiting")
    wrong = runner.invoke(cli, ["runs", "shwo", "--db", db])
    assert wrong.exit_code == 2 and "No such command 'shwo'" in wrong.output


def test_new_forms_and_old_verbs_print_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    runner = CliRunner()
    flow = tmp_path / "hello.yaml"
    flow.write_text(FLOW)
    env = {"PODIUM_DB": f"sqlite:///{tmp_path}/p.db"}

    def podium(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == code, (args, result.output)
        return str(result.output)

    started = podium("runs", "start", str(flow), "-q")
    assert json.loads(started) == {"text": "hi"} == json.loads(podium("run", str(flow), "-q"))
    listed = [json.loads(line) for line in podium("runs", "list", "--json").splitlines()]
    assert len(listed) == 2 and podium("runs", "--json") == podium("runs", "list", "--json")
    run_id = listed[0]["id"]
    pairs = [
        (["show", run_id, "--json"], ["runs", "show", run_id, "--json"], 0),
        (["cancel", run_id], ["runs", "cancel", run_id], 0),  # a finished run: nothing to cancel, said alike
        (["signal", run_id, "go"], ["runs", "signal", run_id, "go"], None),
        (["validate", str(flow)], ["workflows", "validate", str(flow)], 0),
        (["graph", str(flow)], ["workflows", "graph", str(flow)], 0),
        (["approvals", "--json"], ["approvals", "list", "--json"], 0),
    ]
    for old, new, code in pairs:
        a, b = runner.invoke(cli, old, env=env), runner.invoke(cli, new, env=env)
        assert a.exit_code == b.exit_code and (code is None or a.exit_code == code), (old, a.output, b.output)
        assert a.output == b.output, (old, new)
    podium("workflows", "deploy", str(flow))
    podium("deploy", str(flow))  # the same text again: the same version, by either name
    assert podium("versions", "hello", "--json") == podium("workflows", "versions", "hello", "--json")
    assert len(podium("workflows", "versions", "hello", "--json").splitlines()) == 1
    assert podium("diff", "hello", "1", "1") == podium("workflows", "diff", "hello", "1", "1")


def test_an_old_verb_tells_a_person_the_new_form_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    flow = tmp_path / "hello.yaml"
    flow.write_text(FLOW)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "PODIUM_DB": f"sqlite:///{tmp_path}/p.db"}
    command = [sys.executable, "-c", "from podium.cli import main; main()", "validate", str(flow)]
    piped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert piped.returncode == 0 and "is now" not in piped.stderr  # scripts see what they always saw
    main, secondary = pty.openpty()
    try:
        on_tty = subprocess.run(command, stdout=subprocess.PIPE, stderr=secondary, env=env, timeout=120)
        os.close(secondary)
        said = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(main)
    assert on_tty.returncode == 0 and on_tty.stdout == piped.stdout.encode()
    assert "note: 'podium validate' is now 'podium workflows validate'" in said.decode()
