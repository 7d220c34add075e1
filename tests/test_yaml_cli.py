"""``podium validate``, ``graph``, ``init`` and ``run`` with YAML files and MODULE:WORKFLOW alike:
real subprocesses, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def podium(
    *args: str, cwd: Path = ROOT, check: int | None = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
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


def test_validate_accepts_yaml_files_folders_and_python_workflows() -> None:
    out = podium("validate", "examples/", "examples.demo:workflow").stdout
    assert "ok  examples/triage.yaml (7 steps)" in out and "ok  examples.demo:workflow (5 steps)" in out


def test_validate_reports_every_problem_with_position_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nsteps:\n  - id: classify\n    uses: set\n"
        "  - id: reply\n    uses: log\n    with: {message: '{{ steps.clasify.output }}'}\n"
        "  - id: other\n    uses: lgo\n"
    )
    proc = podium("validate", str(bad), "examples/hello.yaml", check=2)
    assert f"{bad}:7:25: error [unknown-reference] step 'reply'" in proc.stderr
    assert "hint: did you mean 'classify'?" in proc.stderr
    assert f"{bad}:9:11: error [unknown-kind] step 'other': unknown step kind 'lgo'" in proc.stderr
    assert "2 problems in 1 of 2 workflows" in proc.stderr
    assert "ok  examples/hello.yaml" in proc.stdout
    rows = [json.loads(line) for line in podium("validate", "--json", str(bad), check=2).stdout.splitlines()]
    assert rows[0]["valid"] is False and [p["line"] for p in rows[0]["problems"]] == [7, 9]


def test_validate_python_workflow_problems_and_bad_references(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "import podium\nwf = podium.Workflow('broken')\n\n@wf.step\ndef a(missing_step):\n    return 1\n"
    )
    proc = podium("validate", "flows:wf", "nothing_here:wf", "notaref", cwd=tmp_path, check=2)
    assert "flows:wf: error [definition] step 'a'" in proc.stderr and "missing_step" in proc.stderr
    assert "nothing_here:wf: error [definition]" in proc.stderr
    assert "notaref: error [definition] 'notaref' is neither a .yaml file nor MODULE:WORKFLOW" in proc.stderr


def test_graph_text_mermaid_and_dot_for_yaml_and_python(tmp_path: Path) -> None:
    text = podium("graph", "examples/triage.yaml").stdout
    assert "ticket-triage v1: 7 steps in 3 layers" in text
    assert (
        "draft         examples.support:draft_reply  [<- classify, customer; on error: canned_reply]" in text
    )
    assert "canned_reply  set  [runs if draft fails]" in text
    loops = podium("graph", "examples/review_loop.yaml").stdout
    assert "review -> back to write while its condition holds, at most 5 times" in loops
    md = tmp_path / "flow.md"
    podium("graph", "examples.demo:workflow", "-o", str(md))
    assert md.read_text().startswith("```mermaid\nflowchart TD\n") and "s0 --> s1" in md.read_text()
    dot = podium("graph", "examples/review_loop.yaml", "--format", "dot").stdout
    assert dot.startswith('digraph "review-loop" {') and '"review" -> "write" [style=dashed' in dot


def test_graph_images_need_graphviz(tmp_path: Path) -> None:
    proc = podium(
        "graph", "examples/hello.yaml", "-o", str(tmp_path / "g.svg"), env={"PATH": str(tmp_path)}, check=None
    )
    if proc.returncode == 0:  # Graphviz is installed here
        assert (tmp_path / "g.svg").read_text().lstrip().startswith("<")
    else:
        assert proc.returncode == 2 and "needs Graphviz's 'dot' program" in proc.stderr


def test_graph_of_an_invalid_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: []\n")
    proc = podium("graph", str(bad), check=2)
    assert "is not a valid workflow" in proc.stderr and "'steps' is an empty list" in proc.stderr


def test_run_a_yaml_file_and_fork_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    out = podium("run", "examples/hello.yaml", "--db", db, "-q", "--input", '{"name": "Ada"}').stdout
    assert json.loads(out) == {"message": "Hello, Ada!", "letters": 3}
    run_id = json.loads(podium("runs", "--db", db, "--json").stdout.splitlines()[0])["id"]
    forked = podium("fork", run_id, "--from", "greeting", "--db", db, "--input", '{"name": "Bo"}')
    assert "Hello, Bo!" in forked.stdout
    bad = podium("run", "examples/hello.yaml", "--db", db, "--input", '{"nme": "Ada"}', check=2)
    assert "unknown field 'nme'; did you mean 'name'?" in bad.stderr


def test_init_scaffolds_a_project_that_validates_and_runs(tmp_path: Path) -> None:
    project = tmp_path / "support-bot"
    out = podium("init", str(project), cwd=tmp_path).stdout
    for rel in (
        "podium.toml",
        "README.md",
        ".gitignore",
        "workflow.schema.json",
        "workflows/hello.yaml",
        "support_bot/steps.py",
    ):
        assert (project / rel).is_file(), rel
        assert f"created {project / rel}" in out
    assert "podium run workflows/hello.yaml" in out
    podium("validate", "workflows/", cwd=project)
    result = podium(
        "run", "workflows/hello.yaml", "-q", "--input", '{"name": "Ada", "shout": true}', cwd=project
    )
    assert json.loads(result.stdout) == {"greeting": "HELLO, ADA!", "letters": 3}
    assert (project / ".podium" / "podium.db").is_file()  # the embedded default store
    # From elsewhere too: the step module is found from the workflow file's project root.
    elsewhere = podium(
        "run",
        str(project / "workflows" / "hello.yaml"),
        "-q",
        "--db",
        "memory://",
        "--input",
        '{"name": "Bo"}',
        cwd=tmp_path,
    )
    assert json.loads(elsewhere.stdout)["greeting"] == "Hello, Bo!"
    again = podium("init", str(project), cwd=tmp_path, check=2)
    assert "already a Podium project" in again.stderr


def test_help_stays_fast_to_import() -> None:
    code = (
        "import sys, podium.cli; print(sorted(m for m in ('yaml', 'jinja2', 'pydantic') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]"
    helptext = podium("--help").stdout
    assert all(cmd in helptext for cmd in ("validate", "graph", "init"))
