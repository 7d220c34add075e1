"""User mistakes the review found ending in a traceback (or accepted): each now ends with exit code 2
and a message that says what is wrong, where, and how to fix it. ``podium serve`` in local mode
(every caller trusted) refuses a non-loopback address unless told explicitly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from podium import Client
from podium.cli import cli
from podium.cli._app import EXIT_USER_ERROR

FLOW = 'name: hello\nversion: "1"\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "hi"}\n'


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    (tmp_path / "hello.yaml").write_text(FLOW)
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    return {"PODIUM_DB": f"sqlite:///{tmp_path}/err.db"}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
        result.output,
    )
    assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
    return result


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "hello.yaml", "-i", "@deep.json"], ["deep.json", "nested deeper than"]),
        (["run", "hello.yaml", "-i", "[" * 3000 + "]" * 3000], ["--input", "nested deeper than"]),
        (["run", "hello.yaml", "-i", '{"a": NaN}'], ["--input", "a", "NaN"]),
        (["run", "::::"], ["'::::'", "MODULE:WORKFLOW"]),
        (["run", ":wf"], ["':wf'", "MODULE:WORKFLOW"]),
        (["deploy", "blob.bin"], ["blob.bin", "UTF-8"]),
        (["policy", "set", "hello", "--file", "blob.bin"], ["blob.bin", "UTF-8"]),
        (["serve", "--port", "99999"], ["--port", "65535"]),
        (["serve", "--port", "-1"], ["--port"]),
        (["mcp", "--port", "70000"], ["--port"]),
        (["worker", "--lease-seconds", "-1"], ["--lease-seconds"]),
        (["worker", "--concurrency", "0"], ["--concurrency"]),
        (["runs", "--limit", "-5"], ["--limit"]),
        (["runs", "--offset", "-1"], ["--offset"]),
        (["killswitch", "set", "workflow"], ["NAME", "--all"]),
        (["killswitch", "clear", "provider"], ["NAME", "--all"]),
    ],
)
def test_user_mistakes_end_in_one_clear_error(env: dict[str, str], args: list[str], says: list[str]) -> None:
    result = invoke(env, *args)
    assert result.exit_code == EXIT_USER_ERROR, (args, result.output, result.stderr)
    for text in says:
        assert text in result.stderr, (args, text, result.stderr)


def test_a_store_file_that_is_not_a_database_is_named_with_what_to_do(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("meeting notes, not a database\n")
    result = invoke({"PODIUM_DB": f"sqlite:///{tmp_path}/notes.db"}, "runs")
    assert result.exit_code == EXIT_USER_ERROR, (result.output, result.stderr)
    assert "notes.db" in result.stderr and "not a SQLite database" in result.stderr and "--db" in result.stderr


def test_killswitch_all_of_a_scope_is_explicit(env: dict[str, str]) -> None:
    assert invoke(env, "killswitch", "set", "workflow", "--all").exit_code == 0
    assert "workflow:*" in invoke(env, "killswitch", "list").output
    assert invoke(env, "killswitch", "set", "workflow", "hello", "--all").exit_code == EXIT_USER_ERROR


def _served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    uvicorn = pytest.importorskip("uvicorn")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    return calls


def test_serve_in_local_mode_stays_on_loopback_unless_told(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _served(monkeypatch)
    refused = invoke(env, "serve", "--host", "0.0.0.0")
    assert refused.exit_code == EXIT_USER_ERROR and not calls
    assert "local mode" in refused.stderr and "podium users add" in refused.stderr
    assert "--allow-remote-local-mode" in refused.stderr
    assert invoke(env, "serve", "--host", "127.0.0.1").exit_code == 0
    assert invoke(env, "serve", "--host", "0.0.0.0", "--allow-remote-local-mode").exit_code == 0
    assert [c["host"] for c in calls] == ["127.0.0.1", "0.0.0.0"]


def test_serve_without_a_token_on_a_store_with_users_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _served(monkeypatch)

    async def add_user() -> str:
        async with Client(env["PODIUM_DB"]) as c:
            await c.create_user("root", ["admin"])
            return await c.create_token("root")

    token = asyncio.run(add_user())
    result = invoke(env, "serve")
    assert result.exit_code == EXIT_USER_ERROR and not calls
    assert len(result.stderr.strip().splitlines()) == 1 and "PODIUM_TOKEN" in result.stderr
    # With users, any address is allowed: every request needs a token.
    assert invoke({**env, "PODIUM_TOKEN": token}, "serve", "--host", "0.0.0.0").exit_code == 0
    assert calls and calls[0]["host"] == "0.0.0.0"


def test_validate_checks_cron_with_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("croniter")
    flow = tmp_path / "nightly.yaml"
    flow.write_text(
        'name: nightly\nversion: "1"\ntriggers:\n  - schedule: "99 99 * * *"\n'
        "steps:\n  - id: greet\n    uses: set\n    with: {text: hi}\n"
    )
    result = invoke(env, "validate", str(flow))
    assert result.exit_code == EXIT_USER_ERROR
    assert "nightly.yaml:4" in result.stderr and "99 99 * * *" in result.stderr and "out of range" in result.stderr
    flow.write_text(flow.read_text().replace("99 99 * * *", "0 2 * * *"))
    assert invoke(env, "validate", str(flow)).exit_code == 0


def test_mcp_over_http_in_local_mode_stays_on_loopback_and_limits_bodies(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mcp")
    uvicorn = pytest.importorskip("uvicorn")
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append((app, kw)))
    refused = invoke(env, "mcp", "--transport", "http", "--host", "0.0.0.0", "--no-execute")
    assert refused.exit_code == EXIT_USER_ERROR and not apps
    assert "local mode" in refused.stderr and "--allow-remote-local-mode" in refused.stderr
    ok = invoke(env, "mcp", "--transport", "http", "--host", "127.0.0.1", "--no-execute", "--max-request-size", "2048")
    assert ok.exit_code == 0 and apps[0][1]["host"] == "127.0.0.1"
    from podium.server.limits import RequestLimits

    assert isinstance(apps[0][0], RequestLimits) and apps[0][0].max_bytes == 2048


def test_serve_without_the_servers_libraries_says_what_to_install() -> None:
    """A library of the server missing (prometheus-client after an install without the server extra)
    ends in the install command, not in a ModuleNotFoundError traceback."""
    from podium.cli._serve import missing_dependency
    from podium.errors import install_hint

    try:
        import prometheus_client_not_installed  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        exc.name = "prometheus_client"
        said = missing_dependency(exc)
    assert "prometheus_client" in said and said.endswith(install_hint("server")) and "[server]" in said
    assert "cannot start (boom)" in missing_dependency(ImportError("boom"))
