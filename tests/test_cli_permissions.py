"""Every ``podium`` command, walked, as every built-in role: a role without the command's permission is
refused before anything happens, with one line on stderr and exit code 2 (no traceback), and the
refusal is audited under the caller's name. The commands are enumerated from the click group, so a
new command is covered without touching this file (it must declare its permission with
``podium.cli._app.requires``, and get sample arguments in ARGS if it takes any)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from podium import Client
from podium.cli import cli
from podium.cli._app import ALIASES, EXIT_USER_ERROR
from podium.governance.identity import BUILTIN_ROLES, PERMISSIONS

FLOW = 'name: hello\nversion: "1"\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "alice@example.com"}\n'

#: Sample arguments per command, so that parsing passes and the permission check is what answers.
ARGS: dict[str, list[str]] = {
    "approve": ["{run}"],
    "reject": ["{run}"],
    "cancel": ["{run}"],
    "show": ["{run}"],
    "resume": ["{run}"],
    "signal": ["{run}", "go"],
    "fork": ["{run}", "--from", "greet"],
    "db migrate-to": ["sqlite:///{tmp}/copy.db"],
    "deploy": ["{tmp}/hello.yaml"],
    "run": ["{tmp}/hello.yaml"],
    "demo": ["no-such-scenario"],  # allowed roles stop at "no scenario" (the real run: tests/test_demo.py)
    "validate": ["{tmp}/hello.yaml"],
    "graph": ["{tmp}/hello.yaml"],
    "init": ["{tmp}/proj-{role}"],
    "diff": ["hello", "1", "1"],
    "versions": ["hello"],
    "rollback": ["hello"],
    "forget": ["customer:1", "--yes"],
    "kb ingest": ["{tmp}/docs", "--kb", "handbook"],
    "kb search": ["handbook", "refunds"],
    "memory show": ["customer:1"],
    "memory prune": ["--runs-older-than", "0s"],
    "killswitch set": ["workflow", "hello"],
    "killswitch clear": ["workflow", "hello"],
    "policy set": ["hello", "--max-run-tokens", "10"],
    "policy show": ["hello"],
    "policy clear": ["hello"],
    "prompts put": ["greeting", "{tmp}/prompt.txt"],
    "prompts show": ["greeting"],
    "prompts versions": ["greeting"],
    "prompts diff": ["greeting", "1", "1"],
    "prompts rollback": ["greeting"],
    "tokens create": ["nobody"],
    "tokens revoke": ["nobody", "default"],
    "users add": ["newbie-{role}", "--role", "viewer"],
    "users disable": ["nobody"],
    "users enable": ["nobody"],
    "users grant": ["nobody", "viewer"],
    "users role": ["custom-{role}", "runs.read"],
    "mcp": ["--no-execute"],
    "tools add": ["crm-{role}", "--http", "https://crm.example.com/api/{{id}}", "--method", "GET"],
    "tools remove": ["crm-{role}"],
    "connectors add": ["orders-{role}", "sql", "--set", "url_env=ORDERS_DB_URL"],
    "connectors learn": ["orders", "query"],
    "quarantine show": ["q-0"],
    "quarantine replay": ["--all"],
    "outbox list": ["--source", "orders"],
    "outbox relay": ["--source", "orders", "--once"],
    "outbox retry": ["--source", "orders", "some-key"],
    "audit checkpoint": ["-o", "{tmp}/heads-{role}.jsonl"],
    "capabilities list": ["--skills", "examples.margins:skills"],
    "goal": ["check stock of a vendor", "--skills", "examples.margins:skills"],
    "plan show": ["{run}"],
    "ml seal": ["churn"],
    "quarantine seal": [],
    "secrets set": ["CRM_TOKEN", "--from-env", "PODIUM_DB"],
    "secrets delete": ["CRM_TOKEN"],
}
#: The noun-group forms take what the old top-level verbs took (podium.cli._app.ALIASES), and
#: ``podium runs start`` what ``podium run`` takes: both forms are walked.
ARGS.update({new: ARGS[old] for old, new in ALIASES.items() if old in ARGS})
ARGS["runs start"] = ARGS["run"]


def commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            yield from commands(cmd, path + " ")
        else:
            yield path, cmd


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A SQLite store with one user (and token) per built-in role, a finished run, and files."""
    db = f"sqlite:///{tmp_path}/perm.db"
    (tmp_path / "hello.yaml").write_text(FLOW)
    (tmp_path / "prompt.txt").write_text("Hello {name}")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "refunds.md").write_text("# Refunds\nWithin 30 days.\n")
    monkeypatch.setenv("PODIUM_EMBEDDER", "hash:64")  # no model download
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)

    async def setup() -> dict[str, Any]:
        async with Client(db) as c:
            await c.deploy(str(tmp_path / "hello.yaml"))
            await c.run("hello")
            run_id = (await c.list(limit=1))[0].id
            tokens = {}
            for role in BUILTIN_ROLES:
                await c.create_user(f"u-{role}", [role])
                tokens[role] = await c.create_token(f"u-{role}")
            return {"run": run_id, "tokens": tokens}

    return {"db": db, "tmp": tmp_path, **asyncio.run(setup())}


def _stub_daemons(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve, worker and mcp run until stopped: once past the permission check, return at once."""

    async def no_work(self: Any, *a: Any, **kw: Any) -> None:
        return None

    monkeypatch.setattr(Client, "work", no_work)
    monkeypatch.setattr("podium.cli._mcp._stdio", lambda client: None)
    try:
        import uvicorn

        monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    except ImportError:
        pass


async def _audit(db: str, token: str) -> list[Any]:
    async with Client(db, token=token, execute=False, recover=False) as c:
        return await c.audit_log()


def test_every_command_checks_its_permission_for_every_role(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_daemons(monkeypatch)
    runner = CliRunner()
    all_commands = list(commands())
    assert len(all_commands) >= 50
    undeclared = [p for p, c in all_commands if not hasattr(c.callback, "podium_permission")]
    assert not undeclared, f"declare the permission of {undeclared} with @requires(...) (podium/cli/_app.py)"
    unknown = [
        (p, c.callback.podium_permission)  # type: ignore[union-attr]
        for p, c in all_commands
        if c.callback.podium_permission not in (*PERMISSIONS, None)  # type: ignore[union-attr]
    ]
    assert not unknown, f"unknown permissions: {unknown}"
    refused_for_viewer = set()
    for role, token in store["tokens"].items():
        for path, cmd in all_commands:
            permission = cmd.callback.podium_permission  # type: ignore[union-attr]
            args = [
                a.format(run=store["run"], tmp=store["tmp"], role=role) for a in ARGS.get(path, [])
            ]
            env = {"PODIUM_DB": store["db"], "PODIUM_TOKEN": token}
            result = runner.invoke(cli, [*path.split(), *args], env=env, catch_exceptions=True)
            where = f"podium {path} as {role}: exit {result.exit_code}\n{result.output}\n{result.stderr}"
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                where,
                repr(result.exception),
            )
            assert "Traceback" not in result.output, where
            if permission is not None and permission not in BUILTIN_ROLES[role]:
                assert result.exit_code == EXIT_USER_ERROR, where
                lines = result.stderr.strip().splitlines()
                assert len(lines) == 1 and f"may not {permission}" in lines[0], where
                assert "podium users grant" in lines[0], where
                if role == "viewer":
                    refused_for_viewer.add(path)
            else:
                assert "may not" not in result.stderr, where
    # The verbs the review reproduced as a viewer, and every other mutating or exporting verb.
    for verb in (
        "memory prune", "forget", "db migrate-to", "db upgrade", "kb ingest", "deploy", "rollback",
        "run", "cancel", "resume", "fork", "signal", "approve", "reject", "killswitch set",
        "killswitch clear", "policy set", "policy clear", "prompts put", "prompts rollback",
        "users add", "users grant", "users disable", "users enable", "users role", "tokens create", "tokens revoke",
        "audit export", "worker", "serve", "tools add", "tools remove", "audit checkpoint", "audit rotate-key",
        "secrets set", "secrets list", "secrets delete",
        "runs start", "runs cancel", "runs resume", "runs fork", "runs signal", "approvals approve",
        "approvals reject", "workflows deploy", "workflows rollback", "memory forget",
    ):  # fmt: skip
        assert verb in refused_for_viewer, verb


def test_refused_verbs_change_nothing_and_are_audited_as_the_caller(store: dict[str, Any]) -> None:
    runner = CliRunner()
    env = {"PODIUM_DB": store["db"], "PODIUM_TOKEN": store["tokens"]["viewer"]}
    copy = store["tmp"] / "copy.db"
    for args in (
        ["memory", "prune", "--runs-older-than", "0s"],
        ["forget", "alice@example.com", "--yes"],
        ["db", "migrate-to", f"sqlite:///{copy}"],
    ):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == EXIT_USER_ERROR and "may not" in result.stderr, result.output
    assert not copy.exists()
    admin = store["tokens"]["admin"]

    async def check() -> list[Any]:
        async with Client(store["db"], token=admin, execute=False, recover=False) as c:
            run = await c.get(store["run"])
            assert json.loads(run.output) == {"text": "alice@example.com"}  # neither pruned nor redacted
        return await _audit(store["db"], admin)

    entries = asyncio.run(check())
    denied = [e for e in entries if e.action == "access.denied"]
    assert {e.actor for e in denied} == {"u-viewer"}
    assert {e.details()["permission"] for e in denied} >= {"memory.prune", "memory.forget", "data.export"}
    assert not any("alice@example.com" in e.target for e in denied)  # an erasure target is personal data


def test_forget_and_prune_are_audited_as_the_real_actor(store: dict[str, Any]) -> None:
    runner = CliRunner()
    admin = store["tokens"]["admin"]
    env = {"PODIUM_DB": store["db"], "PODIUM_TOKEN": admin}
    result = runner.invoke(cli, ["forget", "alice@example.com", "--yes"], env=env)
    assert result.exit_code == 0, result.output + result.stderr
    result = runner.invoke(cli, ["memory", "prune", "--runs-older-than", "0s"], env=env)
    assert result.exit_code == 0 and "1 run(s) deleted" in result.output, result.output + result.stderr
    copy = store["tmp"] / "copy.db"
    result = runner.invoke(cli, ["db", "migrate-to", f"sqlite:///{copy}"], env=env)
    assert result.exit_code == 0, result.output + result.stderr
    entries = asyncio.run(_audit(store["db"], admin))
    actions = ("run.redact", "run.prune", "memory.forget", "memory.prune", "data.export")
    by_action = {e.action: e.actor for e in entries if e.action in actions}
    assert by_action == dict.fromkeys(actions, "u-admin")
    forgot = next(e for e in entries if e.action == "memory.forget")
    assert "alice@example.com" not in forgot.data  # the erased entity is kept only as a digest
