"""What a new user met following README.md and docs/*.md as written (2026-12-06): each test is one
documented command that failed, or answered unclearly, before its fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_helpers import made_store

from podium.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in ("PODIUM_TOKEN", "PODIUM_SKILLS", "PODIUM_PLANNER", "PODIUM_GOAL_APPROVE"):
        monkeypatch.delenv(name, raising=False)
    return {"PODIUM_DB": f"sqlite:///{tmp_path}/nu.db"}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
    return result


def test_a_file_whose_input_fields_all_have_defaults_runs_without_input(env: dict[str, str], tmp_path: Path) -> None:
    """docs/ml.md: `podium run examples/churn/churn.yaml` (no --input; every field has a default)
    failed with "expected object, got null". A run without input of a file whose input is an object
    now takes the defaults, and a required field is named."""
    (tmp_path / "d.yaml").write_text(
        'name: d\ninput:\n  who: {type: string, default: Ada}\nsteps:\n'
        '  - id: greet\n    uses: set\n    with: {text: "Hi {{ input.who }}"}\n'
    )
    (tmp_path / "r.yaml").write_text('name: r\ninput: {name: string}\nsteps:\n  - id: s\n    uses: set\n    with: {a: 1}\n')
    ran = invoke(env, "run", "d.yaml", "--quiet")
    assert ran.exit_code == 0, ran.output + ran.stderr
    assert "Hi Ada" in ran.output
    refused = invoke(env, "run", "r.yaml")
    assert refused.exit_code == 2
    assert "got no input" in refused.stderr and "the field 'name' is required" in refused.stderr
    assert "got null" not in refused.stderr and "NoneType" not in refused.stderr


def test_a_goal_started_with_skills_is_approved_from_another_process(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README/docs/goals.md: `podium goals start ... --skills examples.margins:skills`, then `podium
    approvals approve RUN`. The approving process had no PODIUM_SKILLS: it could not load the goal
    workflow, logged it, and still printed "the run is now running" (exit 0) while nothing drove the
    run. Now `goals start` names the variable in the command it prints, and `approve` says the run
    has not gone on and what resumes it (exit 3)."""
    import examples.margins as margins

    margins.use_db(str(tmp_path / "shop.db"))
    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    started = invoke(
        env, "goals", "start", "A vendor raised prices 14%: protect our margins", "--skills", "examples.margins:skills",
        "--context", '{"vendor": "Acme Foods", "increase_pct": 14}',
    )  # fmt: skip
    os.environ.pop("PODIUM_SKILLS", None)  # set by --skills in this process; another process has none
    assert started.exit_code == 3, started.output + started.stderr
    assert "PODIUM_SKILLS=examples.margins:skills podium approvals approve" in started.output
    listed = invoke(env, "runs", "--json")
    import json

    run_id = next(r["id"] for r in map(json.loads, listed.output.splitlines()) if r["workflow"] == "goal")

    approved = invoke(env, "approvals", "approve", run_id)
    assert approved.exit_code == 3, approved.output + approved.stderr
    assert "the run is now running" not in approved.output
    assert "has not gone on" in approved.stderr and f"podium runs resume {run_id}" in approved.stderr

    resumed = invoke({**env, "PODIUM_SKILLS": "examples.margins:skills"}, "runs", "resume", run_id)
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    shown = invoke(env, "runs", "show", run_id)
    assert "completed" in shown.output.splitlines()[0]


def test_a_connector_spec_that_is_not_there_says_so(env: dict[str, str], tmp_path: Path) -> None:
    """docs/connectors.md: `podium connectors add crm openapi --set spec=/srv/crm.yaml ...`, then
    `podium connectors status`. A spec file missing on this machine answered "an openapi connector's
    spec is a mapping or a file (JSON or YAML), got '/srv/crm.yaml'", which reads as a wrong type. A
    mistyped setting (spek=) answered that the capability "names its spec", nothing about the typo."""
    from podium.connectors.openapi import load_spec
    from podium.errors import ConfigError

    missing = str(tmp_path / "nope" / "crm.yaml")
    with pytest.raises(ConfigError, match="does not exist here") as err:
        load_spec(missing)
    assert missing in str(err.value) and "--set spec=" in str(err.value)

    typo = invoke(env, "connectors", "add", "crm", "openapi", "--set", "spek=/srv/crm.yaml")
    assert typo.exit_code == 2
    assert "'spek': did you mean 'spec'?" in typo.stderr
    bare = invoke(env, "connectors", "add", "crm", "openapi", "--set", "base_url=https://crm.example.com")
    assert bare.exit_code == 2 and "settings given: base_url" in bare.stderr

    invoke(env, "connectors", "add", "crm", "openapi", "--set", f"spec={missing}")
    status = invoke(env, "connectors", "status")
    assert "does not exist here" in status.output + status.stderr


def test_init_links_the_project_not_github_itself(env: dict[str, str], tmp_path: Path) -> None:
    """`podium init my-project` wrote a README linking Podium to https://github.com/ (no project)."""
    import tomllib

    homepage = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    made = invoke(env, "init", "my-project")
    assert made.exit_code == 0, made.output + made.stderr
    readme = (tmp_path / "my-project" / "README.md").read_text()
    assert f"[Podium]({homepage})" in readme
    assert "](https://github.com/)" not in readme


@pytest.mark.parametrize(
    "args, says",
    [
        (["--db", "sqlite:///x.db", "runs", "show", "R"], "podium runs show --db ... (or set PODIUM_DB)"),
        (["--db=sqlite:///x.db", "kb", "list"], "podium kb list --db ..."),
        (["--json", "runs"], "podium runs --json ..."),
    ],
)
def test_a_command_option_given_before_the_command_says_where_it_goes(
    env: dict[str, str], args: list[str], says: str
) -> None:
    """README: "Choose the store with --db URL": `podium --db URL runs` answered only "No such
    option '--db'" (and `--json` first suggested '--version')."""
    result = invoke(env, *args)
    assert result.exit_code == 2
    assert "is an option of each command, not of podium itself" in result.stderr and says in result.stderr
    assert "--version" not in result.stderr
    assert invoke(env, "--foo", "runs").exit_code == 2  # any other unknown option: click's own answer


@pytest.mark.parametrize("command", [["serve", "--port", "8399"], ["mcp"]])
@pytest.mark.parametrize(
    "ref, says",
    [("nope.yaml", "nope.yaml:1:1: cannot read the file"), ("examples.nope:wf", "cannot import module 'examples.nope'")],
)
def test_serve_and_mcp_name_a_workflow_that_does_not_load(
    env: dict[str, str], command: list[str], ref: str, says: str
) -> None:
    """`podium serve -w nope.yaml` (a typo in docs/server.md's command) printed uvicorn's start-up
    traceback (exit 3), `podium mcp -w nope.yaml` a Python traceback: now one line each, exit 2."""
    pytest.importorskip("uvicorn")
    result = invoke(env, *command, "-w", ref)
    assert result.exit_code == 2, result.output + result.stderr
    assert f"-w {ref}: " in result.stderr and says in result.stderr


def test_serve_still_serves_the_workflows_it_loaded(env: dict[str, str], tmp_path: Path) -> None:
    """The workflows `podium serve` now loads before it starts are the ones the app registers."""
    pytest.importorskip("fastapi")
    import asyncio

    import httpx

    from podium.cli._app import load_or_fail
    from podium.server import Settings, create_app

    (tmp_path / "hello.yaml").write_text('name: hello\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "hi"}\n')

    async def main() -> None:
        app = create_app(Settings(store=env["PODIUM_DB"], workflows=[load_or_fail("hello.yaml")]))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                listed = (await http.get("/api/workflows")).json()["workflows"]
                assert [w["name"] for w in listed] == ["hello"]
                assert listed[0]["ref"] == str(tmp_path / "hello.yaml")
                started = await http.post("/api/runs", json={"workflow": "hello", "input": {}})
                assert started.status_code == 201, started.text

    asyncio.run(main())


def test_workflows_list_and_a_mistyped_name_or_version(env: dict[str, str], tmp_path: Path) -> None:
    """`podium workflows --help` promised "list", but there was no `workflows list`: nothing in the
    CLI named the deployed workflows, `versions helo` said only "no deployed versions", and `diff
    hello 1 2` (a version that is not there) named none of the versions that are."""
    (tmp_path / "hello.yaml").write_text('name: hello\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "hi"}\n')
    made_store(env["PODIUM_DB"])
    empty = invoke(env, "workflows", "list")
    assert empty.exit_code == 0 and "no workflows deployed" in empty.output
    assert invoke(env, "workflows", "deploy", "hello.yaml").exit_code == 0
    (tmp_path / "hello.yaml").write_text('name: hello\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "ho"}\n')
    assert invoke(env, "workflows", "deploy", "hello.yaml").exit_code == 0
    listed = invoke(env, "workflows", "list")
    assert listed.exit_code == 0 and listed.output.split() == ["hello", "1.2"]
    assert invoke(env, "workflows", "list", "--json").output.strip() == '{"active": "1.2", "name": "hello"}'
    typo = invoke(env, "workflows", "versions", "helo")
    assert typo.exit_code == 2 and "did you mean 'hello'?" in typo.stderr and "deployed: hello" in typo.stderr
    missing = invoke(env, "workflows", "diff", "hello", "1", "2")
    assert missing.exit_code == 2 and "its versions are 1, 1.2" in missing.stderr


def test_a_policy_file_of_null_is_not_called_empty(env: dict[str, str], tmp_path: Path) -> None:
    """docs/governance.md: `podium policy show support --json > policy.json`, then `policy set
    support --file policy.json`. Where no policy applies, show prints null, and set answered "the
    file is empty" of a file that was not."""
    made_store(env["PODIUM_DB"])
    assert invoke(env, "policy", "show", "support", "--json").stdout.strip() == "null"
    (tmp_path / "policy.json").write_text("null\n")
    (tmp_path / "empty.yaml").write_text("\n")
    held = invoke(env, "policy", "set", "support", "--file", "policy.json")
    assert held.exit_code == 2 and "holds null" in held.stderr and "is empty" not in held.stderr
    empty = invoke(env, "policy", "set", "support", "--file", "empty.yaml")
    assert empty.exit_code == 2 and "the file is empty" in empty.stderr


@pytest.mark.parametrize(
    "args, option",
    [
        (["runs", "signal", "R", "go", "--payload", "{bad"], "--payload"),
        (["approvals", "approve", "R", "--payload", "{bad"], "--payload"),
        (["goals", "start", "g", "--skills", "examples.margins:skills", "--context", "{bad"], "--context"),
        (["run", "x.yaml", "--input", "{bad"], "--input"),
    ],
)
def test_bad_json_names_the_option_it_came_from(env: dict[str, str], args: list[str], option: str) -> None:
    """`podium runs signal RUN NAME --payload '{bad'` answered "--input is not valid JSON"."""
    if args[0] == "run":
        Path("x.yaml").write_text('name: x\nsteps:\n  - id: s\n    uses: set\n    with: {a: 1}\n')
    result = invoke(env, *args)
    assert result.exit_code == 2
    assert f"error: {option} is not valid JSON" in result.stderr and f"such as {option} '" in result.stderr


def test_an_alert_rule_key_yaml_reads_as_a_boolean_is_said_so(tmp_path: Path) -> None:
    """`podium serve --alerts alerts.yaml` with `- on: run_failed` in a rule answered
    "rules[0].True: unknown field": YAML reads `on` unquoted as true."""
    from podium.telemetry import AlertsFileError, load_alerts

    (tmp_path / "alerts.yaml").write_text("rules:\n  - on: run_failed\n")
    with pytest.raises(AlertsFileError) as err:
        load_alerts(str(tmp_path / "alerts.yaml"))
    assert ".True" not in str(err.value)
    assert "reads as true" in str(err.value) and "quote it" in str(err.value) and "kind" in str(err.value)


def test_the_demo_shows_the_finance_mail_as_lines() -> None:
    """`podium demo pricing` printed the finance mail with `\\x0d` ending every line (SMTP's CRLF,
    escaped as a control character); a real control character is still escaped."""
    import io

    from rich.console import Console

    from podium.cli._demo import show_mails

    buf = io.StringIO()
    mail = {"recipients": "finance@northwind.example", "subject": "acme +8%", "body": "line one\r\nline two\x1b[2J\r\n"}
    show_mails([mail], Console(file=buf, width=200, emoji=False))
    shown = buf.getvalue()
    assert "\\x0d" not in shown and "line one\nline two" in shown
    assert "\\x1b[2J" in shown and "\x1b" not in shown


def test_an_unknown_token_says_how_to_send_one_on_each_surface(env: dict[str, str], tmp_path: Path) -> None:
    """An HTTP caller with an unknown token was told `check PODIUM_TOKEN` (the CLI's variable):
    the message now names the header too, on every surface (one message, from the engine)."""
    pytest.importorskip("fastapi")
    import asyncio

    import httpx

    from podium.server import Settings, create_app

    added = invoke(env, "users", "add", "root", "--role", "admin", "--token")
    assert added.exit_code == 0
    token = added.stdout.strip()
    cli_answer = invoke({**env, "PODIUM_TOKEN": "pod_nope"}, "runs")
    assert cli_answer.exit_code == 2 and "PODIUM_TOKEN" in cli_answer.stderr

    async def main() -> None:
        app = create_app(Settings(store=env["PODIUM_DB"], token=token, execute=False, triggers=False))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                r = await http.get("/api/runs", headers={"Authorization": "Bearer pod_nope"})
                assert r.status_code == 401
                assert "'Authorization: Bearer pod_...' header over HTTP" in r.json()["error"]["message"]

    asyncio.run(main())


def test_a_step_of_an_unknown_kind_still_has_its_references_checked() -> None:
    """README: `podium workflows validate` reports "every problem at once". A step whose `uses` was
    a typo (`sett`) or a module that does not import had its templates left unchecked, so a wrong
    reference in it came out only on the next round."""
    from podium.yaml import validate_text

    text = (
        "name: h\ninput: {name: string}\nsteps:\n"
        '  - id: greet\n    uses: sett\n    with: {text: "{{ input.nme }} {{ steps.gret.output }}"}\n'
        '  - id: other\n    uses: nosuchmodule_nu.x:fn\n    with: {t: "{{ steps.zz.output }}"}\n'
    )
    found = [(p.line, p.code) for p in validate_text(text, "h.yaml")]
    assert (5, "unknown-kind") in found and (8, "python") in found
    assert [line for line, code in found if code == "unknown-reference"] == [6, 6, 9]


def test_a_parked_run_names_the_signal_it_waits_for(env: dict[str, str], tmp_path: Path) -> None:
    """docs/python-api.md's signal example: `podium run` said `wake it with: podium runs signal RUN
    NAME --payload JSON` though the run's log names the signal ('approval'); a run parked on a timer
    only was told to send a signal."""
    (tmp_path / "sig.py").write_text(
        "import podium\n"
        "wf = podium.Workflow('refund-sig')\n"
        "@wf.step\n"
        "async def approve_refund(ctx: podium.StepContext, input):\n"
        "    return await ctx.wait_for('approval', timeout=24 * 3600, default={'ok': False})\n"
        "nap = podium.Workflow('nap')\n"
        "@nap.step\n"
        "async def rest(ctx: podium.StepContext):\n"
        "    await ctx.sleep(3600)\n"
    )
    waiting = invoke(env, "run", "sig.py:wf", "--input", "{}")
    assert waiting.exit_code == 3, waiting.output + waiting.stderr
    assert "wake it with: podium runs signal " in waiting.output and " approval --payload JSON" in waiting.output
    assert "NAME --payload" not in waiting.output
    napping = invoke(env, "run", "sig.py:nap", "--input", "{}")
    assert napping.exit_code == 3
    assert "parked on a timer due at" in napping.output and "podium runs signal" not in napping.output


def test_a_mistyped_knowledge_base_names_the_ones_there_are(env: dict[str, str], tmp_path: Path) -> None:
    """`podium kb search handbok ...` said only how to create 'handbok' (the HTTP API names the bases
    there are)."""
    pytest.importorskip("numpy")
    (tmp_path / "doc.md").write_text("# Refunds\n\nThe refund window is 30 days.\n")
    made = invoke({**env, "PODIUM_EMBEDDER": "hash:64"}, "kb", "ingest", "doc.md", "--kb", "handbook")
    assert made.exit_code == 0, made.output + made.stderr
    typo = invoke({**env, "PODIUM_EMBEDDER": "hash:64"}, "kb", "search", "handbok", "refund")
    assert typo.exit_code == 2
    assert "(did you mean 'handbook'?); there are: handbook" in typo.stderr


@pytest.mark.parametrize("tables", ["orders,customers", '["orders", "customers"]', "['orders']"])
def test_a_registered_sql_connector_takes_its_tables_as_a_list_or_json(
    env: dict[str, str], tmp_path: Path, tables: str
) -> None:
    """`podium connectors add orders sql --set url_env=... --set 'tables=["orders"]'` stored the text
    as one table name, and every call failed with "table 'orders' is not one this connector may use
    (["orders"])". A JSON-looking list is read as the list (docs/connectors.md shows the comma form)."""
    pytest.importorskip("sqlalchemy")
    import sqlite3

    with sqlite3.connect(tmp_path / "orders.db") as db:
        db.execute("create table orders(id integer primary key, status text)")
        db.execute("insert into orders values (1, 'new')")
    env = {**env, "ORDERS_DB_URL": f"sqlite:///{tmp_path}/orders.db"}
    added = invoke(env, "connectors", "add", "orders", "sql", "--set", "url_env=ORDERS_DB_URL", "--set", f"tables={tables}")
    assert added.exit_code == 0, added.output + added.stderr
    (tmp_path / "o.yaml").write_text(
        "name: ord\ninput: {id: integer}\nsteps:\n  - id: mark\n    uses: connector\n    with:\n"
        "      connector: orders\n      operation: update\n"
        '      arguments: {table: orders, values: {status: shipped}, where: {id: "{{ input.id }}"}}\n'
    )
    ran = invoke(env, "run", "o.yaml", "--input", '{"id": 1}', "-q")
    assert ran.exit_code == 0, ran.output + ran.stderr
    with sqlite3.connect(tmp_path / "orders.db") as db:
        assert db.execute("select status from orders").fetchall() == [("shipped",)]


def test_a_mistyped_connector_in_a_workflow_file_says_did_you_mean(env: dict[str, str], tmp_path: Path) -> None:
    """`connector: ordrs` in a file validated against a store holding `orders` said only how to
    register 'ordrs'."""
    env = {**env, "ORDERS_DB_URL": f"sqlite:///{tmp_path}/orders.db"}
    assert invoke(env, "connectors", "add", "orders", "sql", "--set", "url_env=ORDERS_DB_URL").exit_code == 0
    (tmp_path / "o.yaml").write_text(
        "name: ord\nsteps:\n  - id: get\n    uses: connector\n    with:\n      connector: ordrs\n"
        "      operation: query\n      arguments: {table: orders}\n"
    )
    checked = invoke(env, "workflows", "validate", "o.yaml")
    assert checked.exit_code == 2
    assert "connector 'ordrs' is not registered" in checked.output and "did you mean 'orders'?" in checked.output


def test_a_submitted_run_says_what_takes_it_up(env: dict[str, str], tmp_path: Path) -> None:
    """`podium run WF --submit --queue bulk`, then `podium runs show RUN`: a pending run said
    nothing of why nothing happens (docs/operations.md: a worker claims it)."""
    (tmp_path / "x.yaml").write_text('name: x\nsteps:\n  - id: s\n    uses: set\n    with: {a: 1}\n')
    submitted = invoke(env, "run", "x.yaml", "--submit", "--queue", "bulk")
    assert submitted.exit_code == 0, submitted.output + submitted.stderr
    run_id = submitted.stdout.strip()
    shown = invoke(env, "runs", "show", run_id)
    assert "pending: run" in shown.output and "waits in queue bulk for a worker" in shown.output
    assert f"podium runs resume {run_id}" in shown.output
    assert invoke(env, "runs", "resume", run_id).exit_code == 0
    assert "waits in queue" not in invoke(env, "runs", "show", run_id).output


def test_a_yaml_sleep_step_is_a_durable_timer(env: dict[str, str], tmp_path: Path) -> None:
    """docs/yaml.md's `sleep` step ran `asyncio.sleep`: a `sleep: {seconds: 3600}` held a process,
    a lease and a run slot for the hour, and a run resumed after Ctrl-C slept the whole time again.
    It is `ctx.sleep` now: the run parks, and `runs show` says when its timer is due."""
    import asyncio

    import podium
    from podium.yaml import load_text

    text = "name: nap\nsteps:\n  - id: rest\n    uses: sleep\n    with: {seconds: 3600}\n  - id: after\n    uses: set\n    needs: rest\n    with: {a: 1}\n"
    (tmp_path / "nap.yaml").write_text(text)

    async def main() -> str:
        async with podium.Client(env["PODIUM_DB"]) as client:
            handle = await client.start(load_text(text, str(tmp_path / "nap.yaml")), {})
            await asyncio.wait_for(client.driving.settled(handle.id), 60)  # parked, not held for an hour
            run = await client.get(handle.id)
            assert run.status is podium.RunStatus.WAITING, run.status
            return handle.id

    run_id = asyncio.run(main())
    shown = invoke(env, "runs", "show", run_id)
    assert "parked on a timer due at" in shown.output


def test_validate_with_no_argument_checks_the_projects_workflows_folder(env: dict[str, str], tmp_path: Path) -> None:
    """The `workflows` setting (written by `podium init`, documented as "the folder of the project's
    workflow files") was read by nothing: `podium workflows validate` alone was a usage error. It
    checks that folder now, from any sub-folder of the project; outside a project it says what to
    name."""
    assert invoke(env, "init", "proj").exit_code == 0
    os.chdir(tmp_path / "proj" / "workflows")
    checked = invoke(env, "workflows", "validate")
    assert checked.exit_code == 0, checked.output + checked.stderr
    assert "hello.yaml (3 steps)" in checked.output
    os.chdir(tmp_path)
    lost = invoke(env, "workflows", "validate")
    assert lost.exit_code == 2 and "name the workflows to check" in lost.stderr


def test_a_runs_filter_that_matches_nothing_is_not_called_an_empty_store(env: dict[str, str], tmp_path: Path) -> None:
    """`podium runs --workflow ordr-demo` (a typo) in a store full of runs said `no runs yet; start
    one with: podium run MODULE:WORKFLOW`."""
    (tmp_path / "x.yaml").write_text('name: x\nsteps:\n  - id: s\n    uses: set\n    with: {a: 1}\n')
    assert invoke(env, "run", "x.yaml", "-q").exit_code == 0
    filtered = invoke(env, "runs", "--workflow", "y", "--status", "failed")
    assert filtered.exit_code == 0
    assert "no runs match (workflow 'y', status failed)" in filtered.output and "no runs yet" not in filtered.output
    assert "no runs yet" in invoke({"PODIUM_DB": made_store(f"sqlite:///{tmp_path}/empty.db")}, "runs").output


def test_memory_forget_in_a_script_says_to_pass_yes(env: dict[str, str]) -> None:
    """README: `podium memory forget customer:42 --value ann@example.com` run from a script (no
    terminal) printed click's bare `Aborted!` (exit 1); it now says to pass --yes (exit 2), and
    --yes erases."""
    asked = invoke(env, "memory", "forget", "customer:42", "--value", "ann@example.com")
    assert asked.exit_code == 2 and "pass --yes" in asked.stderr and "Aborted" not in asked.output
    erased = invoke(env, "memory", "forget", "customer:42", "--value", "ann@example.com", "--yes")
    assert erased.exit_code == 0, erased.output + erased.stderr
