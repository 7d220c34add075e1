"""The `podium` command as a user runs it: real subprocesses, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from store_helpers import made_store

ROOT = Path(__file__).resolve().parent.parent


def podium(
    *args: str, cwd: Path = ROOT, db: str | None = None, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if db:
        env["PODIUM_DB"] = db
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check is not None:
        assert proc.returncode == check, (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def db(tmp_path: Path) -> str:
    return made_store(f"sqlite:///{tmp_path}/cli.db")


def _last_run_id(db: str) -> str:
    out = podium("runs", "--json", db=db).stdout.splitlines()
    return json.loads(out[0])["id"]


def test_demo_run_show_runs_fork(db: str) -> None:
    out = podium("run", "examples.demo:workflow", "--input", '{"order_id": 42, "amount": 1250}', db=db).stdout
    assert "✓ check_fraud" in out and "↻ check_fraud attempt 1 failed" in out
    assert '"status": "confirmed"' in out
    run_id = _last_run_id(db)

    table = podium("runs", db=db).stdout
    assert run_id in table and "order-demo" in table and "completed" in table

    shown = podium("show", run_id, db=db).stdout
    for step in ("load", "check_stock", "check_fraud", "manager_review", "confirm"):
        assert step in shown
    doc = json.loads(podium("show", run_id, "--json", db=db).stdout)
    fraud = next(s for s in doc["steps"] if s["step"] == "check_fraud")
    assert fraud["attempts"] == 2 and "ConnectionError" in fraud["errors"][0]["traceback"]

    forked = podium("fork", run_id, "--from", "confirm", db=db).stdout
    assert "forked from" in forked and "✓ confirm" in forked and "✓ load" not in forked


def test_small_order_skips_review(db: str) -> None:
    out = podium(
        "run", "examples.demo:workflow", "-q", "--input", '{"order_id": 1, "amount": 10}', db=db
    ).stdout
    assert json.loads(out)["review"] == "not needed"
    shown = podium("show", _last_run_id(db), db=db).stdout
    assert "skipped" in shown and "condition is false" in shown


def test_failed_run_exits_1_and_show_has_the_traceback(db: str, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "import podium\nwf = podium.Workflow('broken')\n\n@wf.step\ndef explode():\n    raise ValueError('bad data in row 7')\n"
    )
    proc = podium("run", "broken:wf", cwd=tmp_path, db=db, check=1)
    assert "failed" in proc.stderr and "bad data in row 7" in proc.stderr and "podium runs show" in proc.stderr
    shown = podium("show", _last_run_id(db), cwd=tmp_path, db=db).stdout
    assert "ValueError: bad data in row 7" in shown and "Traceback" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuchmodule:wf"], "cannot import module 'nosuchmodule'"),
        (["run", "examples.demo:nope"], "has no workflow named 'nope'; workflows there: workflow"),
        (["run", "examples.demo"], "is neither a deployed workflow nor a workflow reference"),
        (["run", "examples.demo:workflow", "--input", "{bad json"], "--input is not valid JSON"),
        (["run", "examples.demo:workflow", "--input", "@/no/such/file.json"], "cannot read input file"),
        (["show", "nope"], "no run with id 'nope'"),
        (["show", "run[bold]"], "no run with id 'run[bold]'"),  # brackets are text, not markup
        (["cancel", "nope"], "no run with id 'nope'"),
        (["runs", "--status", "weird"], "statuses are"),
        (["runs", "--db", "mysql://x"], "unknown store URL"),
    ],
)
def test_user_mistakes_get_one_clear_paragraph(db: str, args: list[str], message: str) -> None:
    proc = podium(*args, db=db, check=2)
    assert message in proc.stderr
    assert proc.stderr.startswith("error:")


def test_definition_errors_are_reported_with_the_fix(db: str, tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text(
        "import podium\nwf = podium.Workflow('typo')\n\n@wf.step\ndef classify():\n    return 1\n\n"
        "@wf.step\ndef route(clasify):\n    return 2\n"
    )
    proc = podium("run", "typo:wf", cwd=tmp_path, db=db, check=2)
    assert (
        "did you mean 'classify'?" in proc.stderr and "typo.py:8" in proc.stderr
    )  # the decorator line of route


def test_resume_with_nothing_to_do(db: str) -> None:
    assert "no unfinished runs" in podium("resume", db=db).stdout


def test_db_upgrade(db: str) -> None:
    from podium.storage.sqlite import MIGRATIONS

    assert f"schema version {MIGRATIONS[-1][0]}" in podium("db", "upgrade", db=db).stdout


def test_help_lists_commands() -> None:
    out = podium("--help").stdout
    for cmd in ("run", "runs", "show", "resume", "cancel", "fork"):
        assert cmd in out


def test_sqlite_upgrade_from_the_previous_schema(tmp_path: Path) -> None:
    """A database made by the previous release (schema 1) is upgraded in place, data kept."""
    import sqlite3

    from podium.storage.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for stmt in MIGRATIONS[0][1].split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 0)")
    conn.execute(
        "INSERT INTO runs (id, workflow, version, status, created_at) VALUES ('old-run', 'legacy', '1', 'completed', 1.0)"
    )
    conn.commit()
    conn.close()
    db = f"sqlite:///{path}"
    later = [v for v, _ in MIGRATIONS[1:]]
    assert f"schema version {later[-1]} (applied {', '.join(map(str, later))})" in podium("db", "upgrade", db=db).stdout
    table = podium("runs", db=db).stdout
    assert "old-run" in table and "legacy" in table


def test_submit_then_worker_then_signal(db: str, tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "import podium\n"
        "wf = podium.Workflow('refund')\n\n"
        "@wf.step\n"
        "async def ask(ctx: podium.StepContext, input):\n"
        "    d = await ctx.wait_for('approval', timeout=3600)\n"
        "    return {'amount': input['amount'], 'approved': d['ok']}\n"
    )
    # `run` parks the run and says how to wake it (exit code 3: waiting)
    parked = podium("run", "flows:wf", "--input", '{"amount": 70}', cwd=tmp_path, db=db, check=3)
    assert "waiting" in parked.stdout and "podium runs signal" in parked.stdout
    run_id = _last_run_id_in(tmp_path, db)
    assert "waiting for signal 'approval'" in podium("show", run_id, cwd=tmp_path, db=db).stdout
    woke = podium("signal", run_id, "approval", "--payload", '{"ok": true}', cwd=tmp_path, db=db)
    assert "completed" in woke.stdout
    again = podium("signal", run_id, "approval", "--payload", '{"ok": false}', cwd=tmp_path, db=db, check=2)
    assert "already completed" in again.stderr

    # --submit only records the run; a worker process executes it
    submitted = podium("run", "flows:wf", "--submit", "--input", '{"amount": 5}', cwd=tmp_path, db=db).stdout.strip()
    env = {**os.environ, "PODIUM_DB": db}
    worker = subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--concurrency", "4"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        deadline = time.monotonic() + 30
        while _status(tmp_path, db, submitted) != "waiting":
            assert time.monotonic() < deadline, "the worker never picked the run up"
            time.sleep(0.1)
        podium("signal", submitted, "approval", "--payload", '{"ok": false}', cwd=tmp_path, db=db)
    finally:
        worker.send_signal(subprocess.signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "worker" in out and "run_started" in out
    assert "run_resumed" not in out.split("run_started")[0]  # taken up for its first start: not a resume
    doc = json.loads(podium("show", submitted, "--json", cwd=tmp_path, db=db).stdout)
    assert doc["run"]["status"] == "completed" and doc["run"]["output"] == {"amount": 5, "approved": False}


def _last_run_id_in(cwd: Path, db: str) -> str:
    return json.loads(podium("runs", "--json", cwd=cwd, db=db).stdout.splitlines()[0])["id"]


def _status(cwd: Path, db: str, run_id: str) -> str:
    rows = [json.loads(line) for line in podium("runs", "--json", cwd=cwd, db=db).stdout.splitlines()]
    return next(r["status"] for r in rows if r["id"] == run_id)


def test_db_migrate_to_another_store(db: str, tmp_path: Path) -> None:
    podium("run", "examples.demo:workflow", "-q", "--input", '{"order_id": 3, "amount": 10}', db=db)
    run_id = _last_run_id(db)
    target = f"sqlite:///{tmp_path}/target.db"
    (tmp_path / "prompt.txt").write_text("Hello {{ name }}")
    podium("prompts", "put", "greeting", str(tmp_path / "prompt.txt"), db=db)
    podium("policy", "set", "order-demo", "--max-run-tokens", "100", db=db)
    moved = podium("db", "migrate-to", target, db=db).stdout
    assert "copied 1 run(s)" in moved and "policies 1" in moved and "prompts 1" in moved
    assert "left in" in moved and "the audit log (" in moved and "capabilities (" in moved  # says what stays
    assert "copied 0 run(s)" in podium("db", "migrate-to", target, db=db).stdout  # idempotent
    assert "greeting" in podium("prompts", "list", db=target).stdout
    assert "order-demo" in podium("policy", "list", db=target).stdout
    before = json.loads(podium("show", run_id, "--json", db=db).stdout)
    after = json.loads(podium("show", run_id, "--json", db=target).stdout)
    assert before["events"] == after["events"] and before["run"]["output"] == after["run"]["output"]
    assert "same store" in podium("db", "migrate-to", db, db=db, check=2).stderr


def test_resume_of_a_run_whose_workflow_cannot_be_loaded_says_so(db: str) -> None:
    """A named run of a workflow this process cannot load was left as it was while the command
    said "no unfinished runs to resume" and exited 0 (ninth session's chaos review)."""
    import asyncio

    from podium import Client, Workflow

    ghost = Workflow("ghost_flow")

    @ghost.step
    async def only() -> int:
        return 1

    async def pending() -> str:
        async with Client(db, execute=False) as c:  # created, never driven: unfinished
            return (await c.start(ghost)).id

    rid = asyncio.run(pending())
    proc = podium("runs", "resume", rid, db=db, check=2)
    out = proc.stdout + proc.stderr
    assert "no unfinished runs" not in out
    assert rid in out and "ghost_flow" in out and "cannot load" in out, out
    assert "podium workflows deploy" in out, out
