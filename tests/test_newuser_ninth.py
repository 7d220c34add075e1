"""What a new user met following README.md and docs/*.md as written (2026-12-06, ninth session):
each test is one documented command, or a usual mistake, that failed or answered unclearly before
its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_helpers import made_store

from podium.cli import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in ("PODIUM_TOKEN", "PODIUM_DB", "PODIUM_AUDIT_KEY", "PODIUM_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return {"PODIUM_DB": f"sqlite:///{tmp_path}/nu.db", "PODIUM_AUDIT_KEY": str(tmp_path / "audit.key")}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
    return result


def test_revoking_a_token_that_is_not_there_says_so(env: dict[str, str]) -> None:
    """docs/governance.md: `podium tokens revoke alice readonly`. A mistyped token name (or user)
    answered `revoked 0 token(s)` with exit 0: the admin believes a token is dead while it still
    works. Now it fails (exit 2), names the user's live tokens (did you mean), or the users."""
    added = invoke(env, "users", "add", "root", "--role", "admin", "--token")
    assert added.exit_code == 0, added.stderr
    token = next(w for w in added.output.split() if w.startswith("pod_"))
    env = {**env, "PODIUM_TOKEN": token}
    assert invoke(env, "users", "add", "alice", "--role", "approver").exit_code == 0
    assert invoke(env, "tokens", "create", "alice", "--name", "readonly", "--scope", "runs.read").exit_code == 0

    typo = invoke(env, "tokens", "revoke", "alice", "redonly")
    assert typo.exit_code == 2, typo.output
    assert "alice has no live token called 'redonly'" in typo.stderr
    assert "did you mean 'readonly'?" in typo.stderr and "revoked 0" not in typo.output

    nobody = invoke(env, "tokens", "revoke", "alcie", "readonly")
    assert nobody.exit_code == 2
    assert "no user 'alcie'" in nobody.stderr and "did you mean 'alice'?" in nobody.stderr

    done = invoke(env, "tokens", "revoke", "alice", "readonly")
    assert done.exit_code == 0 and "revoked 1 token(s)" in done.output
    again = invoke(env, "tokens", "revoke", "alice", "readonly")
    assert again.exit_code == 0, again.stderr  # revoking twice is not a mistake: it is already dead
    assert "already revoked" in again.output


def test_a_store_url_without_its_slashes_is_refused_not_taken_for_a_file(env: dict[str, str], tmp_path: Path) -> None:
    """`--db sqlite:/srv/x.db` (one slash) was read as a plain file path: the store was made in a
    new folder called `sqlite:` under the working directory, and `podium runs` answered `no runs
    yet`. Now a scheme without `://` is refused, with the two spellings that work."""
    for url in ("sqlite:/srv/x.db", "postgresql:/db", "sqlite:x.db"):
        ran = invoke(env, "runs", "--db", url)
        assert ran.exit_code == 2, (url, ran.output)
        assert "'://'" in ran.stderr and "sqlite:////" in ran.stderr, ran.stderr
    assert not (tmp_path / "sqlite:").exists() and not (tmp_path / "postgresql:").exists()
    from podium import ConfigError, open_store
    from podium._sqldb import open_database

    with pytest.raises(ConfigError):
        open_store("sqlite:/srv/x.db")
    with pytest.raises(ConfigError):
        open_database("sqlite:/srv/x.db")
    assert open_store(str(tmp_path / "plain.db")).url.endswith("plain.db")  # a plain path still works


def test_a_read_command_on_a_store_in_a_folder_that_is_not_there_says_so(env: dict[str, str], tmp_path: Path) -> None:
    """A mistyped SQLite path (`PODIUM_DB=sqlite:///nonexist/dir/x.db podium runs`) made the folders
    and an empty store and answered `no runs yet`: a typo looked like an empty system. A command that
    only reads now refuses a store whose folder does not exist, naming the path and where the URL
    came from, and makes nothing; a command that writes still creates it, and the default store (or
    one of the default name, as `podium init` writes) still answers `no runs yet`."""
    typo = f"sqlite:///{tmp_path}/nonexist/dir/x.db"
    for args in (("runs",), ("approvals",), ("workflows", "list"), ("runs", "show", "01abc")):
        ran = invoke({**env, "PODIUM_DB": typo}, *args)
        assert ran.exit_code == 2, (args, ran.output)
        assert f"{tmp_path}/nonexist/dir/x.db" in ran.stderr and "$PODIUM_DB" in ran.stderr, ran.stderr
        assert "does not exist" in ran.stderr
    flagged = invoke(env, "runs", "--db", f"sqlite:///{tmp_path}/tpyo/x.db")
    assert flagged.exit_code == 2 and "--db" in flagged.stderr
    assert not (tmp_path / "nonexist").exists() and not (tmp_path / "tpyo").exists()

    (tmp_path / "hello.yaml").write_text("name: hello\nsteps:\n  - id: a\n    uses: set\n    with: {x: 1}\n")
    assert invoke({**env, "PODIUM_DB": typo}, "run", "hello.yaml").exit_code == 0  # writing creates it
    assert "hello" in invoke({**env, "PODIUM_DB": typo}, "runs").output

    fresh = {k: v for k, v in env.items() if k != "PODIUM_DB"}
    empty = invoke(fresh, "runs")
    assert empty.exit_code == 0 and "no runs yet" in empty.output
    (tmp_path / "proj").mkdir()
    init_like = invoke(fresh, "runs", "--db", f"sqlite:///{tmp_path}/proj/.podium/podium.db")
    assert init_like.exit_code == 0 and "no runs yet" in init_like.output


def test_a_step_without_uses_is_still_a_step_for_validation(tmp_path: Path) -> None:
    """`podium workflows validate` of a step that lacks `uses` said, for a later step reading it,
    `unknown reference steps.a: there is no step 'a'` (there is), its own templates were not
    checked, and it dropped out of "did you mean". Now only the missing `uses` is said of it, its
    templates are checked, and it is named in hints."""
    from podium.yaml import validate_text

    text = (
        "name: nouses\ninput: {name: string}\nsteps:\n"
        "  - id: greet\n    with: {text: \"{{ input.nme }}\"}\n"
        "  - id: say\n    uses: log\n    with: {message: \"{{ steps.greet.output.text }} {{ steps.gret.output }}\"}\n"
        "  - id: bad\n    uses: [set]\n    with: {x: \"{{ steps.greeet.output }}\"}\n"
    )
    problems = validate_text(text, "nouses.yaml")
    said = [f"{p.line}:{p.step}:{p.message}:{p.hint}" for p in problems]
    assert any("the step has no 'uses'" in s and s.startswith("4:greet") for s in said), said
    assert any("'uses' must be text" in s for s in said), said
    assert not any("there is no step 'greet'" in s for s in said), said
    assert any("input.nme" in s and "did you mean 'name'" in s for s in said), said  # its own templates
    assert any("steps.gret" in s and "did you mean 'greet'" in s for s in said), said
    assert any("steps.greeet" in s and "did you mean 'greet'" in s for s in said), said


def test_an_unknown_input_type_does_not_hide_the_input_references(tmp_path: Path) -> None:
    """`input: {name: strin}` was reported, but `{{ input.nme }}` in a step came out only once the
    type was fixed, against "every problem at once". The field is known (of any type) meanwhile."""
    from podium.yaml import validate_text

    text = (
        "name: t\ninput: {name: strin, age: integer}\nsteps:\n"
        "  - id: a\n    uses: set\n    with: {text: \"{{ input.nme }} {{ input.name }}\"}\n"
    )
    said = [p.message + str(p.hint) for p in validate_text(text, "t.yaml")]
    assert any("unknown type 'strin'" in s for s in said), said
    assert any("input.nme" in s for s in said), said
    assert not any("reference input.name:" in s for s in said), said


def test_an_empty_steps_list_is_called_empty(tmp_path: Path) -> None:
    """`steps: []` was reported as "'steps' must be a non-empty list of steps, not a list"."""
    from podium.yaml import validate_text

    (problem,) = validate_text("name: a\nsteps: []\n", "a.yaml")
    assert "not a list" not in problem.message and "empty" in problem.message, problem.message


def test_an_unknown_log_level_is_refused_by_every_command(env: dict[str, str]) -> None:
    """`PODIUM_LOG_LEVEL=loud podium config show` printed `loud` as the effective setting, and every
    command that does not log took it without a word (docs/configuration.md: debug to critical)."""
    shown = invoke({**env, "PODIUM_LOG_LEVEL": "loud"}, "config", "show")
    assert shown.exit_code == 2, shown.output
    assert "log_level (from $PODIUM_LOG_LEVEL)" in shown.stderr and "'loud'" in shown.stderr
    assert "debug, info, warning, error or critical" in shown.stderr
    for fine in ("warning", "DEBUG", "warn"):
        assert invoke({**env, "PODIUM_LOG_LEVEL": fine}, "config", "show").exit_code == 0, fine


def test_serve_logs_as_the_settings_say(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/configuration.md: every surface reads the settings; `podium init` writes
    `# log_format = "json"` to uncomment. `podium serve` ignored `log_format` and `log_level` from
    podium.toml and $PODIUM_LOG_LEVEL: its own flags defaulted to `text` and `info` (the worker
    read them). Now the flags default to the settings, and uvicorn gets the level they resolve to."""
    import logging

    import uvicorn

    seen: dict[str, Any] = {}

    def listen(app: Any, **kw: Any) -> None:  # where uvicorn would start listening: note, do not serve
        seen.update(kw, handlers=list(logging.getLogger().handlers), root=logging.getLogger().level)

    monkeypatch.setattr(uvicorn, "run", listen)
    (tmp_path / "podium.toml").write_text('[podium]\nlog_format = "json"\nlog_level = "warning"\n')
    before = (list(logging.getLogger().handlers), logging.getLogger().level)
    try:
        ran = invoke(env, "serve", "--port", "0")
        assert ran.exit_code == 0, ran.stderr
        assert seen["log_level"] == logging.WARNING and seen["root"] == logging.WARNING
        from podium.telemetry._logs import JsonFormatter

        assert any(isinstance(h.formatter, JsonFormatter) for h in seen["handlers"])
        invoke({**env, "PODIUM_LOG_LEVEL": "debug"}, "serve", "--port", "0")
        assert seen["log_level"] == logging.DEBUG
        invoke({**env, "PODIUM_LOG_LEVEL": "debug"}, "serve", "--port", "0", "--log-level", "error")
        assert seen["log_level"] == logging.ERROR  # a flag still wins
    finally:
        root = logging.getLogger()
        for h in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(h)
        root.setLevel(before[1])


def test_ml_owners_of_a_mistyped_model_names_the_models_there_are(env: dict[str, str]) -> None:
    """docs/ml.md: `podium ml owners churn`. `podium ml owners chrun` answered `no owner yet; the
    first workflow that trains ... becomes its owner`, exit 0, as for a new model; it now also names
    the models that have owners, with did-you-mean."""
    assert invoke(env, "ml", "owners", "churn", "--add", "churn-train").exit_code == 0
    typo = invoke(env, "ml", "owners", "chrun")
    assert typo.exit_code == 0
    assert "no owner yet" in typo.output and "did you mean 'churn'?" in typo.output
    assert "models with owners: churn" in typo.output
    assert "churn-train" in invoke(env, "ml", "owners", "churn").output


def test_a_connector_naming_a_secret_that_is_not_set_is_warned_of(env: dict[str, str], tmp_path: Path) -> None:
    """docs/connectors.md: `printf %s "$CRM_TOKEN" | podium secrets set CRM_TOKEN`, then `podium
    connectors add crm openapi ... --set token=secret:CRM_TOKEN`. With the reference mistyped
    (`secret:CRM_TOKN`) the connector was registered without a word, and the typo came out only at
    its first call in a run. The connector is still registered (a secret may be set later), with a
    warning naming the reference, the close name and the command that sets it."""
    stored = CliRunner().invoke(cli, ["secrets", "set", "CRM_TOKEN"], input="tok-1", env=env)
    assert stored.exit_code == 0, stored.output
    spec = tmp_path / "crm.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: {title: crm, version: '1'}\npaths: {}\n")
    added = invoke(env, "connectors", "add", "crm", "openapi", "--set", f"spec={spec}",
                   "--set", "base_url=https://crm.example.com", "--set", "token=secret:CRM_TOKN")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "registered crm" in added.output
    assert "secret:CRM_TOKN is not in the secret store" in added.stderr
    assert "did you mean secret:CRM_TOKEN?" in added.stderr and "podium secrets set CRM_TOKN" in added.stderr
    fine = invoke(env, "connectors", "add", "crm2", "openapi", "--set", f"spec={spec}",
                  "--set", "base_url=https://crm.example.com", "--set", "auth.type=bearer",
                  "--set", "auth.token=secret:CRM_TOKEN")  # fmt: skip
    assert fine.exit_code == 0, fine.stderr
    assert "warning" not in fine.stderr


def test_init_prints_a_cd_line_that_pastes(env: dict[str, str], tmp_path: Path) -> None:
    """`podium init "my project"` printed `cd my project` among its next steps, which a shell reads
    as two arguments. The folder is quoted for the shell now."""
    made = invoke(env, "init", "my project")
    assert made.exit_code == 0, made.stderr
    assert "  cd 'my project'\n" in made.output
    assert "  cd plain\n" in invoke(env, "init", "plain").output


def test_a_kill_switch_for_a_workflow_nobody_knows_is_warned_of(env: dict[str, str], tmp_path: Path) -> None:
    """docs/governance.md: `podium killswitch set workflow refunds -m "incident 42"`. With the name
    mistyped (`refnds`) it answered `switched off workflow:refnds (pause)` and nothing else, while
    `refunds` went on running. It still sets the switch (a workflow may be deployed later), and warns
    that no deployed workflow or recent run has that name, with did-you-mean."""
    (tmp_path / "refunds.yaml").write_text("name: refunds\nsteps:\n  - id: a\n    uses: set\n    with: {x: 1}\n")
    assert invoke(env, "run", "refunds.yaml").exit_code == 0
    typo = invoke(env, "killswitch", "set", "workflow", "refnds", "-m", "incident 42")
    assert typo.exit_code == 0
    assert "switched off workflow:refnds" in typo.output
    assert "did you mean 'refunds'?" in typo.stderr and "warning" in typo.stderr
    right = invoke(env, "killswitch", "set", "workflow", "refunds", "-m", "incident 42")
    assert right.exit_code == 0 and "warning" not in right.stderr


def test_clearing_the_policy_of_a_mistyped_workflow_says_did_you_mean(env: dict[str, str]) -> None:
    """docs/governance.md: `podium policy clear support`. `podium policy clear suport` answered
    `suport had no policy of its own; nothing to clear` with exit 0, and support's policy stayed.
    A name close to one with a policy now fails (exit 2) with did-you-mean; a name close to none is
    still a quiet no-op (clearing twice is no mistake)."""
    assert invoke(env, "policy", "set", "support", "--allow-provider", "local").exit_code == 0
    typo = invoke(env, "policy", "clear", "suport")
    assert typo.exit_code == 2 and "did you mean 'support'?" in typo.stderr
    assert "allowed_providers" in invoke(env, "policy", "show", "support").output
    assert invoke(env, "policy", "clear", "support").exit_code == 0
    again = invoke(env, "policy", "clear", "support")
    assert again.exit_code == 0 and "nothing to clear" in again.output


def test_a_workflow_file_that_is_not_there_names_the_one_that_is(env: dict[str, str], tmp_path: Path) -> None:
    """`podium run hello.yml` (the file is hello.yaml) said `cannot read the file: No such file or
    directory`, and nothing of the file beside it. Now: did you mean, or the folder's workflow files,
    or that the folder is missing."""
    (tmp_path / "hello.yaml").write_text("name: hello\nsteps:\n  - id: a\n    uses: set\n    with: {x: 1}\n")
    typo = invoke(env, "run", "hello.yml")
    assert typo.exit_code == 2 and "did you mean 'hello.yaml'?" in typo.stderr, typo.stderr
    other = invoke(env, "workflows", "validate", "orders.yaml")
    assert other.exit_code == 2 and "workflow files in" in other.output + other.stderr
    assert "hello.yaml" in other.output + other.stderr
    gone = invoke(env, "run", "flows/hello.yaml")
    assert gone.exit_code == 2 and "does not exist" in gone.stderr


def test_the_help_of_a_noun_shows_the_options_it_takes_alone(env: dict[str, str]) -> None:
    """`podium runs --workflow hello` works (podium runs alone lists runs), but `podium runs --help`
    showed only `-h`: the filters were found only under `podium runs list --help`."""
    shown = invoke(env, "runs", "--help")
    assert shown.exit_code == 0
    assert "runs list', which" in shown.output
    assert "--workflow" in shown.output and "--status" in shown.output and "--json" in shown.output
    assert "--json" in invoke(env, "approvals", "--help").output


def test_a_signal_the_parked_run_does_not_wait_for_is_warned_of(env: dict[str, str], tmp_path: Path) -> None:
    """docs/python-api.md: `podium runs signal RUN_ID approval --payload ...`. Sent as `approvl`, it
    answered `sent 'approvl'` and `run ...: waiting`, exit 0, and nothing said why. The signal is
    still sent (one may come before its wait_for), with a warning naming what the run waits for."""
    (tmp_path / "flows9.py").write_text(
        "import podium\n\nwf = podium.Workflow('refund9')\n\n"
        "@wf.step\nasync def approve(ctx: podium.StepContext, input):\n"
        "    return await ctx.wait_for('approval', timeout=3600, default={'ok': False})\n"
    )
    env = {**env, "PYTHONPATH": str(tmp_path)}
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        started = invoke(env, "run", "flows9:wf", "--input", "{}")
        assert started.exit_code == 3, started.output
        run_id = started.output.split()[1]
        typo = invoke(env, "runs", "signal", run_id, "approvl", "--payload", '{"ok": true}')
        assert typo.exit_code == 0
        assert "did you mean 'approval'?" in typo.stderr and f"podium runs signal {run_id} approval" in typo.stderr
        right = invoke(env, "runs", "signal", run_id, "approval", "--payload", '{"ok": true}')
        assert right.exit_code == 0 and "warning" not in right.stderr and "completed" in right.output
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("flows9", None)


def test_a_pyproject_table_in_podium_toml_is_named(env: dict[str, str], tmp_path: Path) -> None:
    """configuration.md names `[tool.podium]` (pyproject.toml) and `podium.toml`. `[tool.podium]`
    copied into podium.toml answered `unknown setting 'tool'`; it now says which table goes where."""
    (tmp_path / "podium.toml").write_text('[tool.podium]\ndb = "sqlite:///x.db"\n')
    shown = invoke({k: v for k, v in env.items() if k != "PODIUM_DB"}, "config", "show")
    assert shown.exit_code == 2
    assert "[tool.podium] is pyproject.toml's table" in shown.stderr and "[podium]" in shown.stderr
    assert "unknown setting 'tool'" not in shown.stderr


def test_a_loop_target_or_needs_naming_no_step_is_not_told_to_take_a_default() -> None:
    """python-api.md: `Loop(to="think", ...)`, `needs=[...]`. A loop target or a `needs` naming no
    step was told it is not a step "nor 'input'/'ctx'" and to "give the parameter a default", which
    fits only a parameter. Each now says what it is."""
    import podium

    wf = podium.Workflow("defs9")

    @wf.step
    async def think(input: dict) -> int:
        return 1

    @wf.step(needs=["thnk"], loop=podium.Loop(to="thinc", while_=lambda act: False, max_iterations=3))
    async def act(think: int) -> int:
        return 2

    @wf.step
    async def late(thinkk: int) -> int:
        return 3

    with pytest.raises(podium.DefinitionError) as err:
        podium.run(wf, {})  # the graph is checked before the run starts
    text = str(err.value)
    loop = next(line for line in text.splitlines() if "loop target" in line)
    needs = next(line for line in text.splitlines() if "needs names" in line)
    param = next(line for line in text.splitlines() if "parameter 'thinkk'" in line)
    for line in (loop, needs):
        assert "did you mean 'think'?" in line and "default" not in line and "'ctx'" not in line, line
    assert "give the parameter a default" in param and "did you mean 'think'?" in param


def test_a_tool_naming_a_secret_that_is_not_set_is_warned_of(env: dict[str, str]) -> None:
    """docs/governance.md: `podium secrets set CRM_AUTH`, then `podium tools add crm --http ...
    --header 'Authorization=secret:CRM_AUTH'`. Run without the first line (or with a typo), the tool
    was registered without a word; now with the same warning as `connectors add`."""
    added = invoke(env, "tools", "add", "crm", "--http", "https://crm.internal/api/customers/{customer_id}",
                   "--method", "GET", "--header", "Authorization=secret:CRM_AUTH", "--allow-private")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "registered crm (http)" in added.output
    assert "secret:CRM_AUTH is not in the secret store" in added.stderr and "tool 'crm'" in added.stderr


def test_a_mistyped_demo_scenario_says_did_you_mean(env: dict[str, str]) -> None:
    """`podium demo suport` listed the eight scenarios without pointing at `support`."""
    typo = invoke(env, "demo", "suport")
    assert typo.exit_code == 2 and "did you mean 'support'?" in typo.stderr


def test_no_runs_yet_names_the_store_file(env: dict[str, str], tmp_path: Path) -> None:
    """`no runs yet` names the store's file, so a store other than the one meant can be seen (a
    mistyped file name that does not exist is refused since the tenth session:
    tests/test_ops_tenth_cli.py)."""
    made_store(f"sqlite:///{tmp_path}/podum.db")
    shown = invoke({**env, "PODIUM_DB": f"sqlite:///{tmp_path}/podum.db"}, "runs")
    assert shown.exit_code == 0 and shown.output.startswith("no runs yet")
    assert f"no runs yet in {tmp_path}/podum.db;" in shown.output


def test_running_a_mistyped_deployed_name_says_did_you_mean(env: dict[str, str], tmp_path: Path) -> None:
    """docs/governance.md: `podium workflows deploy flows/refund.yaml`, then `podium run refund`.
    `podium run refnd` said only that it is neither deployed nor a reference; it now names the
    deployed workflow it is close to, and those deployed."""
    (tmp_path / "refund.yaml").write_text("name: refund\nsteps:\n  - id: a\n    uses: set\n    with: {x: 1}\n")
    assert invoke(env, "workflows", "deploy", "refund.yaml").exit_code == 0
    typo = invoke(env, "run", "refnd")
    assert typo.exit_code == 2
    assert "did you mean 'refund'?" in typo.stderr and "deployed here: refund" in typo.stderr


async def test_podium_run_inside_an_event_loop_says_what_to_write() -> None:
    """python-api.md: "From synchronous code: podium.run(wf, input, ...)". Called from async code (a
    notebook cell, an async function), it raised asyncio's `RuntimeError: asyncio.run() cannot be
    called from a running event loop` and left a "coroutine was never awaited" warning. It now
    raises a ConfigError that says to use the Client there, and leaves no coroutine behind."""
    import warnings

    import podium

    wf = podium.Workflow("sync9")

    @wf.step
    def a(input: dict) -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(podium.ConfigError, match="await client.run"):
            podium.run(wf, {})
    assert podium.run.__module__ == "podium"


def test_a_mistyped_module_in_uses_says_did_you_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`uses: examples.suport:classify` (yaml.md's `examples.support`) said only `No module named
    'examples.suport'`; a function's typo already had a did-you-mean, a module's now has one too."""
    from podium.yaml import validate_text

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    text = "name: t\nsteps:\n  - id: b\n    uses: examples.suport:classify\n"
    (problem,) = validate_text(text, "t.yaml")
    assert "examples.suport" in problem.message and problem.hint == "did you mean 'examples.support'?", problem


def test_a_mistyped_prompt_reads_as_one_sentence(env: dict[str, str], tmp_path: Path) -> None:
    """`podium prompts show refund.rply` said `did you mean 'refund.reply'?; store one with ...`."""
    (tmp_path / "reply.txt").write_text("Reply warmly")
    assert invoke(env, "prompts", "put", "refund.reply", "reply.txt").exit_code == 0
    typo = invoke(env, "prompts", "show", "refund.rply")
    assert typo.exit_code == 2 and "did you mean 'refund.reply'? Or store one with" in typo.stderr
    assert "?;" not in typo.stderr
