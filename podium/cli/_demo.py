"""``podium demo [NAME]``: start the sandbox company, run a scenario on embedded defaults, show the
outcome and what each system received, stop the sandbox. See docs/scenarios.md.

A scenario is ``examples/scenarios/NAME.py``: its ``workflow``, ``DEMO_INPUTS`` (the inputs the
demo runs, in order; default: ``[{}]``) and ``NEEDS`` (the modules it imports beyond the core, each
with the extra that installs it, e.g. ``{"sklearn": "ml"}``: checked before the sandbox starts).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ._app import EXIT_OK, EXIT_RUN_FAILED, cli, console, db_option, fail, make_client, requires, run_async
from ._render import escape, print_json


def scenarios_dir() -> Path:
    """``examples/scenarios`` of this checkout (beside the package), else of the working directory."""
    import podium

    beside = Path(podium.__file__).resolve().parent.parent / "examples" / "scenarios"
    return beside if beside.is_dir() else Path("examples") / "scenarios"


def available() -> list[str]:
    """The scenarios: modules of the folder that define a top-level ``workflow`` (read, not imported:
    helper scripts such as a data generator are not scenarios)."""
    import re

    folder = scenarios_dir()
    if not folder.is_dir():
        return []
    defines = re.compile(r"^workflow\s*[:=]", re.MULTILINE)
    return sorted(
        p.stem for p in folder.glob("*.py")
        if not p.stem.startswith("_") and defines.search(p.read_text(encoding="utf-8", errors="replace"))
    )


async def _warm(out: Any) -> None:
    """Load the embedder and the model before the first run, saying so (they take seconds)."""
    import asyncio

    from podium.ai import resolve_model
    from podium.memory import resolve_embedder

    started = time.monotonic()
    with out.status("loading the embedding model (MiniLM, int8 ONNX)..."):
        await resolve_embedder(None).embed(["warm up"])
    out.print(f"  [green]✓[/] embeddings ready [dim]({time.monotonic() - started:.1f} s)[/]", highlight=False)
    started = time.monotonic()
    model = resolve_model(None)
    name = getattr(model, "name", None) or type(model).__name__
    local = embedded(model)
    if local is not None:  # load the embedded model's weights now, in a thread
        with out.status(f"loading the embedded model {escape(name)}..."):
            await asyncio.to_thread(lambda: local.llama)
    out.print(f"  [green]✓[/] model ready: {escape(name)} [dim]({time.monotonic() - started:.1f} s)[/]", highlight=False)


def embedded(model: Any) -> Any:
    """The embedded (llama.cpp) model inside ``model``, which the gateway wraps (a guard, a fallback
    chain), or None when it is a remote one."""
    seen = [model]
    while seen:
        m = seen.pop(0)
        if hasattr(type(m), "llama"):
            return m
        seen += [x for x in [getattr(m, "inner", None), *(getattr(m, "models", None) or [])] if x is not None]
    return None


def missing(module: Any) -> list[str]:
    """What the scenario ``module`` needs (its ``NEEDS``) and this installation lacks, each with the
    command that installs it."""
    import importlib.util

    from podium.errors import install_hint

    needs: dict[str, str] = getattr(module, "NEEDS", None) or {}
    return [f"{name} ({install_hint(extra)})" for name, extra in needs.items() if importlib.util.find_spec(name) is None]


_ANSWERS = {"y": True, "yes": True, "a": True, "approve": True, "n": False, "no": False, "r": False, "reject": False}


def _answer(text: str) -> bool:
    key = text.strip().lower()
    if key not in _ANSWERS:
        raise click.UsageError(f"{text.strip()!r} is not an answer: type y or approve, n or reject (Enter approves)")
    return _ANSWERS[key]


def ask_approval() -> bool:
    """Ask on the terminal: y/yes/approve (or Enter), n/no/reject; anything else is asked again,
    saying what to type (the title above said "approve or reject", so those words are answers too)."""
    return bool(click.prompt("  approve? [Y/n]", default="y", show_default=False, value_proc=_answer))


async def _decide(client: Any, run_id: str, approvals: list[dict[str, Any]], how: str, out: Any) -> None:
    for a in approvals:
        out.print(f"  [bold blue]approval requested[/]: {escape(a.get('title') or a['name'])}", highlight=False)
        print_json(out, json.dumps(a.get("payload"), ensure_ascii=False, default=str))
        if how == "ask" and sys.stdin.isatty():
            # the title above says what is asked (a reply, a price, a purchase order...): the prompt stays neutral
            approve = ask_approval()
            by = "you"
        else:
            approve = how != "reject"
            by = "the demo (--decide approve|reject|ask)"
        await client.decide(run_id, a["name"], approve=approve, comment=f"decided by {by}")
        out.print(f"  {'approved' if approve else 'rejected'} by {by}", highlight=False)


async def _drive(client: Any, run_id: str, how: str, out: Any) -> Any:
    """Wait for the run; answer its approvals; return its final record."""
    import asyncio

    from podium import RunStatus

    while True:
        run = await client.get(run_id)
        if run.status.finished:
            return run
        if run_id in client.driving:
            await client.driving.settled(run_id)
            continue
        if run.status is RunStatus.WAITING:
            pending = list(await client.approvals(run_id=run_id))
            if not pending:
                return run  # parked on something the demo cannot answer
            await _decide(client, run_id, pending, how, out)
            await client.resume(run_id) if run_id not in client.driving else None
            continue
        await asyncio.sleep(0.05)


def _show_received(company: Any, out: Any) -> None:
    from rich.table import Table

    table = Table(title="what each system received", show_lines=False)
    for col in ("system", "operation", "what"):
        table.add_column(col, overflow="fold")
    for row in company.received():
        table.add_row(escape(row["system"]), escape(row["operation"]), escape(json.dumps(row["body"], ensure_ascii=False)[:400]))
    out.print(table)
    topics: dict[str, int] = {}
    for event in company.events():
        topics[event["topic"]] = topics.get(event["topic"], 0) + 1
    if topics:
        shown = escape(", ".join(f"{topic} x{n}" for topic, n in topics.items()))
        out.print(f"[bold]business events published on the event bus[/]: {shown}", highlight=False)


def show_mails(mails: list[dict[str, Any]], out: Any) -> None:
    """The mail the finance mailbox received. SMTP bodies end their lines with CRLF: shown as lines,
    not as ``\\x0d`` on every one (other control characters stay escaped)."""
    for mail in mails:
        body = str(mail["body"]).replace("\r\n", "\n")
        out.print(f"[bold]finance mailbox[/]: to {escape(mail['recipients'])}: {escape(mail['subject'])}\n"
                  f"{escape(body)}", highlight=False)


class _DemoCommand(click.Command):
    """Lists the scenarios at the end of ``podium demo --help`` (read when the help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Scenarios"):
            formatter.write_text(", ".join(available()) or f"none found in {scenarios_dir()}")
        super().format_epilog(ctx, formatter)


@cli.command(cls=_DemoCommand)
@click.argument("name", required=False, default="support")
@click.option("--input", "-i", "input_text", metavar="JSON", help="Run this input instead of the scenario's samples.")
@click.option(
    "--decide",
    type=click.Choice(["ask", "approve", "reject"]),
    default="ask",
    show_default=True,
    help="How approvals are answered: ask (on a terminal; approve otherwise), approve or reject.",
)
@click.option(
    "--sandbox-db",
    metavar="URL",
    help="The sandbox company's database: postgresql://user@host:5432/NAME or mysql+pymysql://user@host:3306/NAME "
    "(the database must exist; default: $PODIUM_SANDBOX_DB, else a SQLite file beside the store).",
)
@db_option
@run_async
@requires("runs.start", lambda kw: f"workflow:{kw['name']}")
async def demo(name: str, input_text: str | None, decide: str, sandbox_db: str | None, db: str | None) -> int:
    """Run scenario NAME (default: support) against the sandbox company, on embedded defaults.

    Starts the sandbox afresh (a CRM, a support desk, a marketing tool, an ERP and a finance mailbox
    on 127.0.0.1, with an event bus), loads the local models, runs the scenario's sample inputs,
    prints each outcome and what every system received, and stops the sandbox. The runs stay in the
    store (podium runs show RUN_ID), and what the systems received stays beside it: podium serve
    shows it on the dashboard's Sandbox page.
    """
    from podium.sandbox import Sandbox, default_directory, use

    from ._app import parse_input
    from ._render import Progress

    if name not in available():
        import difflib

        close = difflib.get_close_matches(name, available(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        fail(f"no scenario {name!r}; {hint}scenarios are: {', '.join(available()) or 'none'} (in {scenarios_dir()})")
    out = console()
    module = _load(scenarios_dir() / f"{name}.py")
    if lacking := missing(module):
        fail(f"scenario {name} needs {', '.join(lacking)}; the demo extra installs them all")
    quiet_libraries()
    workflow = module.workflow
    inputs = [parse_input(input_text)] if input_text else list(getattr(module, "DEMO_INPUTS", None) or [{}])
    started = time.monotonic()
    out.print(f"[bold]== podium demo {name}[/]: starting the sandbox company", highlight=False)
    company = Sandbox(default_directory(db), fresh=True, database=sandbox_db).start()
    use(company)
    failed = False
    try:
        for system, url in company.urls.items():
            out.print(f"  [green]✓[/] {system:<13} {url}  (OpenAPI: {url}/openapi.json)", highlight=False)
        assert company.smtp is not None
        out.print(f"  [green]✓[/] finance mail  smtp://{company.smtp[0]}:{company.smtp[1]}", highlight=False)
        await _warm(out)
        async with make_client(db, connectors=company.connectors()) as client:
            client.subscribe(Progress(out))
            await company.attach(client)  # the company's business events go on the client's bus
            for value in inputs:
                out.print(f"[bold]== run[/] {json.dumps(value, ensure_ascii=False)}", highlight=False)
                handle = await client.start(workflow, value)
                run = await _drive(client, handle.id, decide, out)
                if run.status.value == "completed":
                    from podium._serde import loads

                    out.print(f"[bold green]completed[/] run {handle.id}", highlight=False)
                    print_json(out, json.dumps(loads(run.output), ensure_ascii=False, default=str))
                else:
                    failed = True
                    err = json.loads(run.error) if run.error else {}
                    out.print(f"[bold red]{run.status.value}[/] run {handle.id}: {escape(err.get('message', ''))}",
                              highlight=False)
            await company.detach()
        _show_received(company, out)
        show_mails(company.mails(), out)
    finally:
        use(None)
        company.stop()
    out.print(
        f"[bold]== done[/] in {time.monotonic() - started:.0f} s; the sandbox is stopped. What its systems received "
        f"stays in {_kept(company, sandbox_db)} shows it on the dashboard's Sandbox page.",
        highlight=False,
    )
    return EXIT_RUN_FAILED if failed else EXIT_OK


def quiet_libraries() -> None:
    """Keep MLflow's INFO lines (its tracking database being created, runs logged) out of the demo's
    output; a level the user set in $MLFLOW_LOGGING_LEVEL stays theirs."""
    import logging
    import os

    if "MLFLOW_LOGGING_LEVEL" in os.environ:
        return
    os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"  # MLflow sets its loggers from it when imported
    for name in ("mlflow", "alembic"):  # and when it already was
        logging.getLogger(name).setLevel(logging.WARNING)


def _kept(company: Any, given: str | None = None) -> str:
    """Where what the systems received stays, and the command that shows it (the database's URL as
    it was given, its password left out: the line pastes as it is when it has none)."""
    if company.db.path is not None:
        return f"{company.directory}: podium serve"
    if not given:
        return f"{company.db.shown}: PODIUM_SANDBOX_DB=URL podium serve"
    import shlex
    from urllib.parse import urlsplit

    parts = urlsplit(given)
    if parts.password is not None:
        netloc = f"{parts.username}:PASSWORD@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        given = parts._replace(netloc=netloc).geturl()
    return f"{given}: PODIUM_SANDBOX_DB={shlex.quote(given)} podium serve"


def _load(path: Path) -> Any:
    """The scenario's module (its ``workflow`` and ``DEMO_INPUTS``)."""
    import importlib.util

    name = f"podium_scenario_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "workflow"):
        fail(f"{path} defines no `workflow`; a scenario module must define one")
    return module
