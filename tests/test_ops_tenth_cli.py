"""Operator and new-user leftovers of the ninth session, closed (tenth session): the CLI.

Each test is one command that answered unclearly before its fix (docs/status.md, "Operator and
new-user leftovers closed (tenth session)")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from podium.cli import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in ("PODIUM_TOKEN", "PODIUM_DB", "PODIUM_AUDIT_KEY", "PODIUM_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return {"PODIUM_DB": f"sqlite:///{tmp_path}/ops.db", "PODIUM_AUDIT_KEY": str(tmp_path / "audit.key")}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
    return result


READS = (
    ("runs",),
    ("runs", "show", "01abc"),
    ("approvals", "list"),
    ("audit", "verify"),
    ("workflows", "list"),
    ("tools", "list"),
    ("users", "list"),
    ("secrets", "list"),
    ("killswitch", "list"),
    ("quarantine", "list"),
    ("prompts", "list"),
    ("kb", "list"),
    ("plan", "show", "01abc"),
)


def test_a_read_command_on_a_missing_store_file_says_so_and_makes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """`PODIUM_DB=sqlite:///.podium/podum.db podium runs` (a typo of the file name, in a folder
    that exists) made an empty store and answered `no runs yet`; `podium audit verify` on it
    answered that the log is intact. A command that only reads now refuses a SQLite file that does
    not exist: it names the absolute path, where the URL came from and how to fix it (exit 2), and
    makes no file."""
    typo = tmp_path / "podum.db"
    for args in READS:
        ran = invoke({**env, "PODIUM_DB": f"sqlite:///{typo}"}, *args)
        assert ran.exit_code == 2, (args, ran.exit_code, ran.output, ran.stderr)
        assert str(typo) in ran.stderr and "$PODIUM_DB" in ran.stderr, (args, ran.stderr)
        assert "does not exist" in ran.stderr and "typo" in ran.stderr, (args, ran.stderr)
        assert not typo.exists(), args
    relative = invoke({k: v for k, v in env.items() if k != "PODIUM_DB"}, "runs", "--db", "sqlite:///podum.db")
    assert relative.exit_code == 2 and f"{tmp_path}/podum.db" in relative.stderr and "--db" in relative.stderr
    assert not typo.exists()


def test_a_command_that_writes_still_makes_the_store(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text("name: hello\nsteps:\n  - id: a\n    uses: set\n    with: {x: 1}\n")
    fresh = {**env, "PODIUM_DB": f"sqlite:///{tmp_path}/made.db"}
    assert invoke(fresh, "run", "hello.yaml").exit_code == 0
    assert (tmp_path / "made.db").exists()
    listed = invoke(fresh, "runs")
    assert listed.exit_code == 0 and "hello" in listed.output
    deployed = {**env, "PODIUM_DB": f"sqlite:///{tmp_path}/deployed.db"}
    assert invoke(deployed, "workflows", "deploy", "hello.yaml").exit_code == 0
    assert (tmp_path / "deployed.db").exists()


def test_the_project_default_store_still_reads_as_empty(env: dict[str, str], tmp_path: Path) -> None:
    """A new project (nothing run yet) has no store file: its default store, named or not (podium
    init writes sqlite:///.podium/podium.db), is an empty project, not a typo."""
    fresh = {k: v for k, v in env.items() if k != "PODIUM_DB"}
    empty = invoke(fresh, "runs")
    assert empty.exit_code == 0 and "no runs yet" in empty.output
    named = invoke(fresh, "runs", "--db", "sqlite:///.podium/podium.db")
    assert named.exit_code == 0 and "no runs yet" in named.output


def test_an_existing_empty_store_still_answers_no_runs_yet(env: dict[str, str], tmp_path: Path) -> None:
    import asyncio

    from podium import open_store

    async def make() -> None:
        store = open_store(env["PODIUM_DB"])
        await store.open()
        await store.close()

    asyncio.run(make())
    shown = invoke(env, "runs")
    assert shown.exit_code == 0 and f"no runs yet in {tmp_path}/ops.db" in shown.output


# -- podium tools add NAME --python ----------------------------------------------------------------


def test_a_python_tool_that_does_not_import_here_is_registered_with_a_note(env: dict[str, str], tmp_path: Path) -> None:
    """docs: `podium tools add lookup --python myproject.tools:lookup_order`. A function that does
    not import where the command runs was registered without a word: a typo showed only when a run
    used the tool. It is still registered (it may import only on the workers), with a note that says
    so and what was wrong here."""
    added = invoke(env, "tools", "add", "lookup", "--python", "myproject.tools:lookup_order")
    assert added.exit_code == 0, added.stderr
    assert "registered lookup (python)" in added.output
    assert "note:" in added.stderr and "myproject" in added.stderr and "does not import here" in added.stderr
    assert "workers" in added.stderr
    assert "lookup" in invoke(env, "tools", "list").output


def test_a_python_tool_with_a_mistyped_function_names_the_close_one(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text("def lookup_order(order_id: str) -> dict:\n    return {'id': order_id}\n")
    typo = invoke(env, "tools", "add", "lookup", "--python", "shop:lookup_ordr")
    assert typo.exit_code == 0, typo.stderr
    assert "note:" in typo.stderr and "has no function 'lookup_ordr'" in typo.stderr
    assert "did you mean 'lookup_order'?" in typo.stderr
    right = invoke(env, "tools", "add", "lookup", "--python", "shop:lookup_order")
    assert right.exit_code == 0 and "note:" not in right.stderr, right.stderr


@pytest.mark.parametrize(
    ("body", "says"),
    [("raise RuntimeError('no DB_URL here')\n", "RuntimeError: no DB_URL here"), ("import sys\nsys.exit(3)\n", "SystemExit: 3")],
)
def test_a_python_tool_whose_module_fails_on_import_is_noted(env: dict[str, str], tmp_path: Path, body: str, says: str) -> None:
    """A module that raises (or exits) when imported here, say for a setting only the workers have,
    is named with what it raised; the command still registers it and does not die with it."""
    name = f"needs_env_{abs(hash(body)) % 10_000}"
    (tmp_path / f"{name}.py").write_text(body + "def lookup(x):\n    return x\n")
    added = invoke(env, "tools", "add", "lookup", "--python", f"{name}:lookup")
    assert added.exit_code == 0, (added.output, added.stderr)
    assert "registered lookup (python)" in added.output
    assert f"importing '{name}' failed: {says}" in added.stderr, added.stderr


@pytest.mark.parametrize(
    ("ref", "hint"),
    [
        ("myproject.tools.lookup_order", "myproject.tools:lookup_order"),
        ("myproject/tools.py:lookup_order", "myproject.tools:lookup_order"),
        ("myproject.tools:lookup-order", None),
        ("myproject.tools:", None),
    ],
)
def test_a_python_tool_name_not_of_the_module_function_form_is_refused(
    env: dict[str, str], ref: str, hint: str | None
) -> None:
    refused = invoke(env, "tools", "add", "lookup", "--python", ref)
    assert refused.exit_code == 2, (ref, refused.output, refused.stderr)
    assert "package.module:function" in refused.stderr and repr(ref) in refused.stderr, refused.stderr
    if hint:
        assert f"did you mean {hint!r}?" in refused.stderr, refused.stderr
    assert "registered" not in refused.output


# -- podium mcp --log-level ------------------------------------------------------------------------


def test_podium_mcp_logs_at_the_setting_else_warning(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`podium mcp`'s `--log-level` defaulted to `warning` whatever the log_level setting said, so
    `PODIUM_LOG_LEVEL=debug podium mcp` (an MCP client that will not start it, say) logged nothing
    more. The default stays quiet (warning: stdout carries the protocol, stderr only warnings), and
    the setting ($PODIUM_LOG_LEVEL, podium.toml or pyproject.toml's [tool.podium]) or the flag raises or lowers it."""
    from podium.cli._mcp import mcp_log_level

    assert mcp_log_level(None) == "warning"  # the setting left at its default (info): quiet
    monkeypatch.setenv("PODIUM_LOG_LEVEL", "debug")
    assert mcp_log_level(None) == "debug"
    assert mcp_log_level("error") == "error"  # the flag wins
    monkeypatch.delenv("PODIUM_LOG_LEVEL")
    (tmp_path / "podium.toml").write_text('log_level = "info"\n')
    assert mcp_log_level(None) == "info"


def test_podium_mcp_over_stdio_logs_to_stderr_at_the_setting(tmp_path: Path) -> None:
    """The stdio server, started as an MCP client does (its input closed at once here), leaves
    stdout to the protocol; with PODIUM_LOG_LEVEL=info its start is logged on stderr, and by
    default stderr stays quiet."""
    import os
    import subprocess
    import sys

    pytest.importorskip("mcp", reason="podium mcp needs the mcp extra: pip install 'podium[mcp]'")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    base.update(PODIUM_DB=f"sqlite:///{tmp_path}/mcp.db", PODIUM_AUDIT_KEY=str(tmp_path / "audit.key"))

    def serve(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "podium.cli", "mcp"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
            cwd=tmp_path, env={**base, **extra}, timeout=120,
        )  # fmt: skip

    quiet = serve()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == "", (quiet.stdout, quiet.stderr)
    loud = serve(PODIUM_LOG_LEVEL="info")
    assert loud.returncode == 0, loud.stderr
    assert loud.stdout == ""
    assert "INFO" in loud.stderr and "podium" in loud.stderr, loud.stderr
