"""Commands about workflow definitions: ``validate``, ``graph``, ``init``. YAML files and
MODULE:WORKFLOW references work the same way in each."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from typing import Any

import click

from ._app import (
    EXIT_OK,
    EXIT_USER_ERROR,
    cli,
    db_option,
    fail,
    load_ref,
    make_client,
    requires,
    workflows_group,
)

_YAML = (".yaml", ".yml")


def _load(ref: str) -> Any:
    """A workflow from a YAML file or MODULE:WORKFLOW, or exit with the reason (never a traceback)."""
    from podium import PodiumError

    try:
        wf = load_ref(ref)
        return wf.freeze()
    except PodiumError as exc:
        fail(str(exc))


def _expand(refs: tuple[str, ...]) -> list[str]:
    out = []
    for ref in refs:
        if os.path.isdir(ref):
            found = sorted(os.path.join(ref, f) for f in os.listdir(ref) if f.endswith(_YAML))
            if not found:
                fail(f"{ref!r} is a folder without .yaml files; name workflow files or MODULE:WORKFLOW")
            out.extend(found)
        else:
            out.append(ref)
    return out


def _capabilities(db: str | None) -> dict[str, Any]:
    """The capability registry of the store (empty when there is no store yet: nothing is registered)."""
    import asyncio

    from podium.storage import default_url

    url = db or default_url()
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        return {}

    async def read() -> dict[str, Any]:
        async with make_client(url, recover=False, execute=False) as client:
            return dict(await client.capabilities())

    from podium import PodiumError

    try:
        return asyncio.run(read())
    except PodiumError as exc:
        fail(f"cannot read the capability registry from {url}: {exc}")
        return {}


def _check(ref: str, capabilities: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Problems of one workflow (as dicts) and its number of steps."""
    from podium import DefinitionError, PodiumError

    if ref.endswith(_YAML):
        from podium.yaml import check_file

        wf, problems = check_file(ref, capabilities=capabilities)
        found = [p.to_dict() for p in problems]
        if wf is not None and not found:
            found = _schedule_problems(ref, wf)
        return found, len(wf.steps) if wf is not None else 0
    if ":" not in ref:
        return [_problem(ref, f"{ref!r} is neither a .yaml file nor MODULE:WORKFLOW")], 0
    try:
        wf = load_ref(ref)
        wf.freeze()
    except DefinitionError as exc:
        return [_problem(ref, p) for p in exc.problems], 0
    except PodiumError as exc:
        return [_problem(ref, str(exc))], 0
    return _schedule_problems(ref, wf), len(wf.steps)


def _schedule_problems(ref: str, wf: Any) -> list[dict[str, Any]]:
    """Schedules checked with croniter, as the server's trigger runner will read them (a character
    check lets '99 99 * * *' through), each with the file and line of its cron string."""
    from podium.yaml._cron import cron_problem

    out = []
    for t in getattr(wf, "triggers", None) or []:
        if not isinstance(t, dict) or "schedule" not in t:
            continue
        message = cron_problem(t["schedule"], t.get("timezone"))
        if message:
            p = _problem(ref, message)
            p.update(code="schedule", line=_line_of(ref, str(t["schedule"])), column=1)
            if p["line"] is None:
                p["column"] = None
            out.append(p)
    return out


def _line_of(path: str, text: str) -> int | None:
    """The line of a YAML file that holds ``text`` (the first ``schedule:`` line with it, else any)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    hits = [i for i, line in enumerate(lines, 1) if text in line]
    keyed = [i for i in hits if "schedule" in lines[i - 1]]
    first = keyed or hits
    return first[0] if first else None


def _problem(ref: str, message: str) -> dict[str, Any]:
    return {
        "file": ref,
        "line": None,
        "column": None,
        "code": "definition",
        "step": None,
        "message": message,
        "hint": None,
    }


def _format(p: dict[str, Any]) -> str:
    where = p["file"] if p["line"] is None else f"{p['file']}:{p['line']}:{p['column']}"
    step = f"step {p['step']!r}: " if p.get("step") else ""
    head = f"{click.style(where, bold=True)}: {click.style('error', fg='red')} [{p['code']}] {step}{p['message']}"
    return head + (f"\n    hint: {p['hint']}" if p.get("hint") else "")


def _project_folder() -> str:
    """The project's workflows folder (setting ``workflows``, relative to the project), or exit
    saying what to name instead."""
    from podium import PodiumError
    from podium.settings import find_project, setting

    try:
        folder = str(setting("workflows"))
    except PodiumError as exc:
        fail(str(exc))
    root = find_project()
    path = folder if os.path.isabs(folder) or root is None else os.path.join(root, folder)
    if not os.path.isdir(path):
        fail(
            f"name the workflows to check (podium workflows validate FILE.yaml...); the project's workflows "
            f"folder {path!r} (setting 'workflows') does not exist"
        )
    return os.path.relpath(path) if not os.path.isabs(folder) else path


@workflows_group.command("validate")
@click.argument("workflows", nargs=-1, metavar="[FILE|MODULE:WORKFLOW]...")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON (one object per workflow).")
@db_option
@requires(None)
def validate(workflows: tuple[str, ...], as_json: bool, db: str | None) -> None:
    """Check workflows without running them and report every problem at once.

    YAML files are checked for structure, unknown step kinds, references (steps.<id>.output,
    input fields), missing or unknown arguments, types, needs, loops and cycles; each problem comes
    with file:line:column, the step and a hint. A folder checks every .yaml file in it. Tools, MCP
    servers, HTTP hosts and folders a file names are checked against the capability registry of the
    store (--db; see podium tools list). Exit code 0 when everything is valid, 2 when anything is not.
    Given nothing, checks the project's workflows folder (the setting 'workflows', podium init's).
    """
    refs = _expand(workflows or (_project_folder(),))
    caps = _capabilities(db) if any(r.endswith(_YAML) for r in refs) else None
    results: list[dict[str, Any]] = []
    for ref in refs:
        problems, steps = _check(ref, caps)
        results.append({"workflow": ref, "valid": not problems, "steps": steps, "problems": problems})
    invalid = [r for r in results if not r["valid"]]
    if as_json:
        for r in results:
            click.echo(json.dumps(r, ensure_ascii=False))
    else:
        for r in results:
            if r["valid"]:
                click.echo(f"{click.style('ok', fg='green')}  {r['workflow']} ({r['steps']} steps)")
            for p in r["problems"]:
                click.echo(_format(p), err=True)
        if invalid:
            n = sum(len(r["problems"]) for r in invalid)
            click.echo(
                f"{n} problem{'s' if n != 1 else ''} in {len(invalid)} of {len(results)} workflow"
                f"{'s' if len(results) != 1 else ''}",
                err=True,
            )
    sys.exit(EXIT_USER_ERROR if invalid else EXIT_OK)


_FORMATS = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".md": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
}


@workflows_group.command("graph")
@click.argument("workflow", metavar="FILE|MODULE:WORKFLOW")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot", "svg", "png"]),
    help="Output format (default: from --output's extension, else text).",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of the terminal."
)
@requires(None)
def graph(workflow: str, fmt: str | None, output: str | None) -> None:
    """Show a workflow's graph: its steps layer by layer, as Mermaid, or as DOT/SVG/PNG (Graphviz).

    Steps in one layer can run at the same time. Mermaid output written to a .md file is fenced,
    ready to paste in documentation. SVG and PNG need Graphviz's 'dot' program.
    """
    from podium.engine import graph as _graph

    ext = os.path.splitext(output)[1].lower() if output else ""
    fmt = fmt or _FORMATS.get(ext, "text")
    if fmt in ("svg", "png") and not output:
        fail(f"--format {fmt} writes an image: add --output FILE.{fmt}")
    wf = _load(workflow)
    if fmt == "text":
        text = _graph.to_text(wf)
    elif fmt == "mermaid":
        text = _graph.to_mermaid(wf)
        if ext == ".md":
            text = f"```mermaid\n{text}```\n"
    else:
        text = _graph.to_dot(wf)
    if fmt in ("svg", "png"):
        assert output is not None
        _render_graphviz(text, fmt, output)
    elif output:
        _write(output, text)
    else:
        click.echo(text, nl=False)
    if output:
        click.echo(f"wrote {output}", err=True)


def _render_graphviz(dot: str, fmt: str, output: str) -> None:
    exe = shutil.which("dot")
    if exe is None:
        fail(
            f"writing {fmt.upper()} needs Graphviz's 'dot' program, which is not installed; install graphviz "
            "(apt install graphviz, brew install graphviz), or write Mermaid (-o graph.md) or DOT (-o graph.dot)"
        )
        return
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}", "-o", output], input=dot.encode(), capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        fail(f"Graphviz failed: {exc}")
        return
    if proc.returncode != 0:
        fail(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        fail(f"cannot write {path!r}: {exc.strerror}")


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Project name (default: the folder's name); also names its Python package.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@requires(None)
def init(folder: str, name: str | None, force: bool) -> None:
    """Start a project in FOLDER: an example workflow, its Python steps, a config file and a README.

    Existing files are kept unless --force is given.
    """
    from ._scaffold import scaffold

    project = name or os.path.basename(os.path.abspath(folder)) or "podium-project"
    if os.path.exists(os.path.join(folder, "podium.toml")) and not force:
        fail(
            f"{folder!r} is already a Podium project (it has a podium.toml); add --force to write the example files again"
        )
    try:
        written, kept, package = scaffold(folder, project, force=force)
    except OSError as exc:
        fail(f"cannot create the project in {folder!r}: {exc.strerror or exc}")
        return
    for path in written:
        click.echo(f"created {path}")
    for path in kept:
        click.echo(f"kept    {path} (exists; --force overwrites it)")
    here = "" if os.path.abspath(folder) == os.getcwd() else f"  cd {shlex.quote(folder)}\n"  # a line to paste
    click.echo(
        f"\nnext:\n{here}"
        "  podium workflows validate workflows/hello.yaml\n"
        '  podium run workflows/hello.yaml --input \'{"name": "Ada"}\'\n'
        "  podium workflows graph workflows/hello.yaml\n"
        f"Step functions live in {package}/steps.py; the file format is described in workflow.schema.json."
    )
