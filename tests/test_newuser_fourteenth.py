"""What a new user met following README.md and docs/*.md as written (2026-12-07, fourteenth
session): each test is one documented command, or a usual step, that answered unclearly before its
fix."""

from __future__ import annotations

import json
import textwrap
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
    return {"PODIUM_DB": f"sqlite:///{tmp_path}/nu.db", "PODIUM_AUDIT_KEY": str(tmp_path / "key" / "audit.key")}


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
    return result


HELLO = """\
name: hello
input: {name: string}
steps:
  - id: greet
    uses: set
    with: {text: "Hello, {{ input.name }}!"}
"""


def test_verify_of_a_store_made_again_names_the_head_log_to_move_aside(env: dict[str, str], tmp_path: Path) -> None:
    """governance.md: "If you delete and re-create a store on purpose, delete its head log too (the
    message names the file)". A newcomer who starts over (`rm .podium/podium.db`, a run, then
    `podium audit verify`) was told the log was rewritten, with no file named and nothing to do."""
    (tmp_path / "hello.yaml").write_text(HELLO)
    assert invoke(env, "run", "hello.yaml", "--input", '{"name": "Ada"}').exit_code == 0
    for name in ("nu.db", "nu.db-wal", "nu.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert invoke(env, "run", "hello.yaml", "--input", '{"name": "Bo"}').exit_code == 0

    bad = invoke(env, "audit", "verify")
    assert bad.exit_code != 0
    heads = sorted((tmp_path / "key" / "audit-heads").glob("*.jsonl"))
    assert len(heads) == 1
    said = " ".join((bad.output + bad.stderr).split())
    assert f"it is recorded in the head log {heads[0]}" in said, said
    assert "deleted and made again on purpose" in said and "move the file aside" in said

    heads[0].rename(tmp_path / "old-heads.jsonl")  # what the message says to do
    good = invoke(env, "audit", "verify")
    assert good.exit_code == 0, good.output + good.stderr
    assert good.output.startswith("ok:")


def test_resume_of_runs_whose_workflow_cannot_be_loaded_does_not_say_there_are_none(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`podium runs resume` with unfinished runs whose module now fails to import logged the reason
    once and then printed `no unfinished runs to resume`, exit 0, while every run stayed unfinished."""
    module = tmp_path / "flow.py"
    module.write_text(
        textwrap.dedent(
            """
            import podium

            wf = podium.Workflow("flow", version="1")

            @wf.step
            async def one(input):
                return input
            """
        )
    )
    run = invoke(env, "run", "flow.py:wf", "--input", "1", "--submit")
    assert run.exit_code == 0, run.output + run.stderr
    module.write_text("raise RuntimeError('broken on import')\n")

    resumed = invoke(env, "runs", "resume")
    assert resumed.exit_code == 2, resumed.output + resumed.stderr
    assert "no unfinished runs to resume" not in resumed.output
    said = " ".join(resumed.stderr.split())
    assert "the unfinished runs of workflow 'flow' version 1" in said and "were not resumed" in said
    assert "podium runs resume again" in said


def test_a_mistyped_setting_variable_is_named_by_config_show(env: dict[str, str]) -> None:
    """configuration.md: settings come from `PODIUM_<NAME>`. `PODIUM_DURABLITY=power` (a typo of
    `PODIUM_DURABILITY`) was ignored without a word: `config show` said `durability crash default`
    and nothing else, while a podium.toml typo is refused with did-you-mean."""
    shown = invoke({**env, "PODIUM_DURABLITY": "power"}, "config", "show")
    assert shown.exit_code == 0, shown.stderr
    said = " ".join(shown.stderr.split())
    assert "$PODIUM_DURABLITY is not a setting (did you mean $PODIUM_DURABILITY?)" in said

    from podium.settings import mistyped_environment

    # variables that are not settings but are documented (or are other tools') are not taken for typos
    assert mistyped_environment({"PODIUM_SKILLS": "x", "PODIUM_HEALTH_PORT": "1", "PODIUM_LOCAL_GEMMA": "x"}) == []
    assert mistyped_environment({"PODIUM_GC": "python", "PODIUM_DURABILITY": "power", "HOME": "/"}) == []


def test_the_demo_approval_prompt_takes_the_words_it_offers() -> None:
    """`podium demo support` on a terminal says "approve or reject the reply" and asked `approve?
    [Y/n]`: typing `reject` answered `Error: invalid input` (twice, then Aborted! at the end of
    input), without saying what to type."""
    import click

    from podium.cli._demo import ask_approval

    @click.command()
    def ask() -> None:
        click.echo(f"answer={ask_approval()}")

    for typed, meant in (("reject\n", False), ("approve\n", True), ("\n", True), ("n\n", False), ("Y\n", True)):
        result = CliRunner().invoke(ask, input=typed)
        assert result.exit_code == 0 and f"answer={meant}" in result.output, (typed, result.output)
    wrong = CliRunner().invoke(ask, input="maybe\nreject\n")
    assert "'maybe' is not an answer: type y or approve, n or reject" in wrong.output
    assert "answer=False" in wrong.output


def test_runs_show_points_at_the_trace_with_the_command_the_readme_teaches(env: dict[str, str], tmp_path: Path) -> None:
    """`podium runs show RUN` ended with `... a timeline: podium show RUN --trace`: the old hidden
    verb, which on a terminal then says it moved. It names `podium runs show RUN --trace` now."""
    (tmp_path / "asked.py").write_text(
        textwrap.dedent(
            """
            import podium
            from podium import ai
            from podium.models.testing import ScriptedModel

            wf = podium.Workflow("asked", version="1")

            @wf.step
            async def answer(ctx: podium.StepContext, input):
                return (await ai.llm(ctx, "hi", model=ScriptedModel([(None, "hello")]))).text
            """
        )
    )
    run = invoke(env, "run", "asked.py:wf", "--input", "1")
    assert run.exit_code == 0, run.output + run.stderr
    run_id = next(w for w in run.output.split() if len(w) == 24 and w.isalnum())
    shown = invoke(env, "runs", "show", run_id)
    said = " ".join(shown.output.split())
    assert f"podium runs show {run_id} --trace" in said, said


def test_the_worker_says_who_it_is_before_the_runs_it_takes_up(env: dict[str, str], tmp_path: Path) -> None:
    """operations.md: `podium run ... --submit`, then `podium worker`. The worker's first line
    (`worker OWNER on URL queues=...`) came after the lines of the runs it took up when it opened
    (`run_resumed`, `run_started`), so its log read as if those runs ran before it started; and off a
    terminal (a pod's log) it was wrapped at 80 columns into two lines."""
    import os
    import signal
    import subprocess
    import sys

    (tmp_path / "hello.yaml").write_text(HELLO)
    submitted = invoke(env, "run", "hello.yaml", "--input", '{"name": "Ada"}', "--submit")
    assert submitted.exit_code == 0, submitted.output + submitted.stderr
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium.cli", "worker"],
        cwd=tmp_path, env={**os.environ, **env, "PYTHONPATH": root}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:  # the worker prints as it goes; it ends when stopped below
            lines.append(line)
            if line.startswith("run_completed"):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    kinds = [line.split()[0] for line in lines if line.strip()]
    assert "run_completed" in kinds, lines
    assert kinds[0] == "worker", lines
    assert "concurrency=100" in lines[0], lines  # one line, not wrapped at 80 columns off a terminal



def test_the_runs_list_marks_a_running_run_no_engine_drives(env: dict[str, str], tmp_path: Path) -> None:
    """durability.md, "Starts in a burst": after a crash the next engine creates the runs of the start
    log and hands them back, to be resumed. `podium runs` then listed them as `… running` with a
    growing duration, like runs under way (only `runs show` said nobody drives them)."""
    import sqlite3

    (tmp_path / "hello.yaml").write_text(HELLO)
    assert invoke(env, "run", "hello.yaml", "--input", '{"name": "Ada"}').exit_code == 0
    db = sqlite3.connect(tmp_path / "nu.db")  # what a hand-back leaves: running, no owner
    db.execute("UPDATE runs SET status = 'running', owner = NULL, finished_at = NULL")
    db.commit()
    db.close()
    listed = invoke(env, "runs")
    said = " ".join(listed.output.split())
    assert "running (no engine drives it: podium runs resume)" in said, said
    as_json = invoke(env, "runs", "--json")  # the same judgement for scripts (durability.md: null only when driven)
    assert json.loads(as_json.output.splitlines()[0])["orphaned"] == "no engine drives it", as_json.output


def test_the_sandbox_demo_ends_with_the_line_to_paste() -> None:
    from types import SimpleNamespace

    from podium.cli._demo import _kept

    company = SimpleNamespace(db=SimpleNamespace(path=None, shown="postgresql+psycopg://u:***@h/db"), directory="/x")
    assert _kept(company, "postgresql://postgres@127.0.0.1:5432/sb") == (
        "postgresql://postgres@127.0.0.1:5432/sb: PODIUM_SANDBOX_DB=postgresql://postgres@127.0.0.1:5432/sb podium serve"
    )
    masked = _kept(company, "postgresql://u:secret@db.example:5433/sb?sslmode=require")
    assert "secret" not in masked and "u:PASSWORD@db.example:5433/sb?sslmode=require" in masked
    assert "PODIUM_SANDBOX_DB='postgresql://u:PASSWORD@db.example:5433/sb?sslmode=require' podium serve" in masked
