"""Commands about runs: run (also runs start), runs list, show, resume, cancel, fork."""

from __future__ import annotations

import json
from typing import Any

import click

from ._app import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USER_ERROR,
    EXIT_WAITING,
    cli,
    console,
    db_option,
    fail,
    load_ref,
    make_client,
    parse_input,
    requires,
    run_async,
    runs_group,
)


async def _finish(client: Any, run_id: str, *, quiet: bool) -> int:
    """Wait for a run, print its outcome, return the exit code."""
    import asyncio

    from podium import RunStatus
    from podium._serde import loads

    told: set[str] = set()
    while True:
        run = await client.get(run_id)
        if run.status.finished:
            break
        if run_id in client.driving:
            await _settled(client, run_id, told)
            continue
        if run.status is RunStatus.WAITING and await _sleep_through(client, run, told, quiet=quiet):
            continue
        if run.status is RunStatus.WAITING or run.owner is None:
            return await _parked(client, run)
        await asyncio.sleep(0.05)
    out = console()
    if run.status is RunStatus.COMPLETED:
        from podium.secret import mask

        from ._render import plain, print_json

        text = json.dumps(mask(json.loads(json.dumps(loads(run.output), default=plain))), ensure_ascii=False)
        if quiet:
            click.echo(text)
        else:
            out.print(f"[bold green]completed[/] run {run_id}", highlight=False)
            print_json(out, text)
        return EXIT_OK
    err = json.loads(run.error) if run.error else {}
    where = f" at step {err['step']!r}" if err.get("step") else ""
    from ._render import escape  # markup and terminal control characters: the message quotes data

    console(stderr=True).print(
        f"[bold red]{run.status.value}[/] run {run_id}{escape(where)}: {escape(err.get('message', ''))}\n"
        f"  see the details with: podium runs show {run_id}",
        highlight=False,
        soft_wrap=True,  # the terminal wraps: a command the message names stays whole for copying
    )
    return EXIT_RUN_FAILED


#: How long a timer ``podium run`` waits for in the foreground (a ``sleep`` step of a few minutes).
FOREGROUND_SLEEP = 300.0


async def _sleep_through(client: Any, run: Any, told: set[str], *, quiet: bool) -> bool:
    """A run parked on a timer alone (a ``sleep`` step) due within FOREGROUND_SLEEP: this foreground
    command waits for it and drives it on when due, as it waited when a sleep held the process. The run stays parked
    meanwhile, so Ctrl-C loses nothing. False (say it is parked) for any other wait."""
    import asyncio
    import time

    from ._render import when
    from ._why import timer_alone

    due = await timer_alone(client, run)
    if due is None or not due <= time.time() + FOREGROUND_SLEEP or not client.principal.can("runs.resume"):
        return False  # a longer wait (ctx.sleep(3600)) leaves the run parked for a worker: exit 3
    line = f"run {run.id} sleeps until {when(due)} (a durable timer): this command waits; Ctrl-C leaves it parked"
    if not quiet and line not in told:
        told.add(line)
        console().print(f"[bold blue]sleeping[/] {line} (podium runs resume {run.id} goes on)", highlight=False, soft_wrap=True)
    await asyncio.sleep(min(max(due - time.time(), 0.0), 1.0))  # looked at again each second
    if time.time() >= due and run.id not in client.driving:
        await client.resume([run.id])
    return True


async def _settled(client: Any, run_id: str, told: set[str]) -> None:
    """Wait until this process stops driving the run for now. Meanwhile say, once each, what holds a
    run under it that its step waits for (a child parked by a kill switch, waiting for a person...):
    the run itself goes on running, so nothing else would say it (``_why.held_below``)."""
    import asyncio
    import time

    from ._render import escape
    from ._why import held_below

    settled = asyncio.ensure_future(client.driving.settled(run_id))
    try:
        while not (await asyncio.wait({settled}, timeout=1.0))[0]:
            for child, label, line in await held_below(client, run_id):
                if child.wake_at is not None and child.wake_at <= time.time() and client.principal.can("runs.resume"):
                    # woken from another process (its switch cleared, its signal sent): driven on here, with
                    # the run above it, at once (as its parent's step waiting for it would, within 0.5 s),
                    # having read the switches first (else it parks again under the switch it remembers)
                    await client.governance.refresh()
                    await client.resume([child.id])
                    continue
                if line not in told:
                    told.add(line)
                    where = f" (step {escape(child.parent_step)})" if child.parent_step else ""
                    console().print(
                        f"[bold blue]{label}[/] run {run_id} waits for its child run {child.id}{where}: {line} "
                        "(this command waits until it goes on)",
                        highlight=False,
                        soft_wrap=True,
                    )
    finally:
        settled.cancel()
    settled.result()  # a driver that failed says so, as it did before


async def _parked(client: Any, run: Any) -> int:
    """The run left this process unfinished: say why (it waits for a person, a switch, a signal or
    timer, or a worker) and what moves it on (``_why.explain``)."""
    from ._why import explain

    label, line = await explain(client, run) or ("waiting", f"run {run.id} is not finished: podium runs show {run.id}")
    console().print(f"[bold blue]{label}[/] {line}", highlight=False, soft_wrap=True)
    return EXIT_WAITING


def _client(db: str | None, **kw: Any) -> Any:
    return make_client(db, **kw)


@cli.command()
@click.argument("workflow")
@click.option("--input", "-i", "input_text", metavar="JSON|@FILE", help="Run input as JSON, or @file.json.")
@db_option
@click.option("--quiet", "-q", is_flag=True, help="Print only the output JSON (no live progress).")
@click.option("--submit", is_flag=True, help="Only record the run, for a worker to execute; print its id.")
@click.option("--queue", default="default", show_default=True, help="With --submit: the queue.")
@click.option("--priority", default=0, show_default=True, help="With --submit: higher runs first.")
@click.option("--tenant", default=None, help="With --submit: whose run it is (for fair scheduling).")
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Print model answers as they are generated (default: when the output is a terminal).",
)
@run_async
@requires("runs.start", lambda kw: f"workflow:{kw['workflow']}")
async def run(
    workflow: str,
    input_text: str | None,
    db: str | None,
    quiet: bool,
    submit: bool,
    queue: str,
    priority: int,
    tenant: str | None,
    stream: bool | None,
) -> int:
    """Run WORKFLOW (MODULE:WORKFLOW, FILE.py:WORKFLOW, FILE.yaml, or the name of a deployed
    workflow) and show its steps live.

    Exit code 0 when the run completes, 1 when it fails or is cancelled, 2 for a usage error, 3 when
    the run is left waiting (for a signal, an approval or a worker). The same command as
    podium runs start.
    """
    import os

    from podium import NotFound

    from ._render import Progress

    deployed = (
        ":" not in workflow and not workflow.endswith((".yaml", ".yml")) and not os.path.exists(workflow)
    )
    wf: Any = workflow if deployed else load_ref(workflow)
    value = parse_input(input_text)
    if submit:
        async with _client(db, execute=False) as client:
            handle = await client.start(wf, value, queue=queue, priority=priority, tenant=tenant)
        click.echo(handle.id)
        return EXIT_OK
    async with _client(db, recover=False) as client:
        import sys

        from ._stream import TokenPrinter

        printer = None
        # The model's text as it comes is the run's data: shown to those with payloads.read (as the API's stream).
        if (stream or (stream is None and not quiet and sys.stdout.isatty())) and client.principal.can("payloads.read"):
            from podium.ai import token_topic

            printer = TokenPrinter(sys.stderr if quiet else sys.stdout)  # --quiet: stdout is the output
            client.subscribe(printer.break_line)
            await client.on(token_topic("*"), printer)
        if not quiet:
            client.subscribe(Progress(console()))
        try:
            handle = await client.start(wf, value)
            if printer is not None:
                printer.follow(handle.id)
        except NotFound:
            if not deployed:
                raise
            import difflib

            from podium.engine.versions import ACTIVE

            names = sorted(await client.store.kv_list(ACTIVE))
            close = difflib.get_close_matches(workflow, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            fail(
                f"{workflow!r} is neither a deployed workflow nor a workflow reference; {hint}use a deployed "
                "workflow's name (podium workflows deploy FILE), MODULE:WORKFLOW (e.g. examples.demo:workflow) or a "
                f"YAML file (deployed here: {', '.join(names) or 'none'})"
            )
        if not quiet:
            run = await client.get(handle.id)
            console().print(
                f"[bold]run[/] {handle.id}  [bold]{run.workflow}[/] v{run.version}", highlight=False
            )
        return await _finish(client, handle.id, quiet=quiet)


runs_group.add_command(run, "start")  # podium run is the everyday form of podium runs start


@runs_group.command("list")
@db_option
@click.option("--workflow", "-w", help="Only runs of this workflow.")
@click.option("--status", "-s", multiple=True, help="Only runs with this status (repeatable).")
@click.option("--limit", "-n", type=click.IntRange(1, 100_000), default=20, show_default=True, help="How many runs to list.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many (for paging).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@run_async
@requires("runs.read")
async def runs(
    db: str | None, workflow: str | None, status: tuple[str, ...], limit: int, offset: int, as_json: bool
) -> int:
    """List runs, newest first."""
    from ._render import escape, orphan_text, runs_table

    async with _client(db, recover=False) as client:
        rows = await client.list(workflow=workflow, status=list(status) or None, limit=limit, offset=offset)
        url = str(client.store.url)
    if as_json:
        for r in rows:
            click.echo(
                json.dumps(
                    {
                        "id": r.id,
                        "workflow": r.workflow,
                        "version": r.version,
                        "status": r.status.value,
                        "orphaned": orphan_text(r),
                        "created_at": r.created_at,
                        "started_at": r.started_at,
                        "finished_at": r.finished_at,
                    }
                )
            )
    elif not rows and (workflow or status or offset):  # a filter matched nothing: not the same as no runs
        shown = ", ".join(x for x in (f"workflow {workflow!r}" if workflow else "", f"status {'/'.join(status)}" if status else "",
                                      f"offset {offset}" if offset else "") if x)
        console().print(f"no runs match ({escape(shown)}); podium runs (no filter) lists them all", highlight=False)
    elif not rows:
        # which file: a mistyped name in an existing folder is made empty on reading (see _storecheck)
        where = ""
        if url.startswith("sqlite://"):
            import os

            from podium._sqldb import sqlite_path

            where = f" in {os.path.abspath(sqlite_path(url))}"
        console().print(f"no runs yet{escape(where)}; start one with: podium run MODULE:WORKFLOW", highlight=False)
    else:
        console().print(runs_table(rows))
    return EXIT_OK


@runs_group.command("show")
@click.argument("run_id")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the full history (steps and events) as JSON.")
@click.option("--full", is_flag=True, help="Do not shorten outputs; show every attempt's traceback.")
@click.option(
    "--trace", "trace", is_flag=True,
    help="Show what the AI did: model calls (prompt, answer, tokens, cost), tools, decisions, approvals, timeline.",
)
@run_async
@requires("runs.read", lambda kw: kw["run_id"])
async def show(run_id: str, db: str | None, as_json: bool, full: bool, trace: bool) -> int:
    """Show a run: its steps with status, attempts, timings, outputs and errors (--trace: its AI trace).
    An unfinished run that stands still says why and what moves it on."""
    from ._render import show_run
    from ._why import child_lines, explain

    if trace:
        from podium.engine.trace import run_trace

        from ._trace import as_json as trace_json
        from ._trace import show_trace

        async with _client(db, recover=False) as client:
            traced = await run_trace(client, run_id)
        if as_json:
            click.echo(trace_json(traced))
        else:
            show_trace(console(), traced, full=full)
        return EXIT_OK
    async with _client(db, recover=False) as client:
        h = await client.history(run_id)
        why = None if as_json else await explain(client, h.run) or await child_lines(client, h.run)
    if as_json:
        from podium._serde import loads_plain

        doc: dict[str, Any] = {
            "run": {k: getattr(h.run, k) for k in h.run.__slots__},
            "steps": [
                {
                    "step": v.step,
                    "iteration": v.iteration,
                    "index": v.index,
                    "status": v.status.value,
                    "attempts": v.attempts,
                    "started_at": v.started_at,
                    "finished_at": v.finished_at,
                    "output": v.output,
                    "error": v.error,
                    "errors": v.errors,
                    "reused_from": v.reused_from,
                    "reason": v.reason,
                }
                for v in h.steps
            ],
            "events": [
                {
                    "seq": e.seq,
                    "type": e.type,
                    "ts": e.ts,
                    "step": e.step,
                    "iteration": e.iteration,
                    "index": e.index,
                    "attempt": e.attempt,
                    "data": loads_plain(e.data),
                }
                for e in h.events
            ],
        }
        doc["run"]["status"] = h.run.status.value
        for k in ("input", "output", "error"):
            doc["run"][k] = loads_plain(doc["run"][k])
        from podium.secret import mask

        click.echo(json.dumps(mask(json.loads(json.dumps(doc, default=str))), ensure_ascii=False, indent=2))
    else:
        show_run(console(), h, full=full, why=why)
    return EXIT_OK


@runs_group.command("resume")
@click.argument("run_ids", nargs=-1)
@db_option
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Print model answers as they are generated (default: when the output is a terminal).",
)
@run_async
@requires("runs.resume")
async def resume(run_ids: tuple[str, ...], db: str | None, stream: bool | None) -> int:
    """Continue unfinished runs (all, or RUN_IDS) left by a crashed or stopped engine.

    Finished steps are not executed again; a step that was running is attempted again with the same
    idempotency key. A model call that was cut mid-answer runs again and streams from its start.
    """
    import sys

    from ._render import Progress
    from ._stream import TokenPrinter

    async with _client(db, recover=False) as client:
        if (stream or (stream is None and sys.stdout.isatty())) and client.principal.can("payloads.read"):
            from podium.ai import token_topic

            printer = TokenPrinter(every_run=True)
            client.subscribe(printer.break_line)
            await client.on(token_topic("*"), printer)
        client.subscribe(Progress(console()))
        if run_ids:
            for rid in run_ids:
                run = await client.get(rid)
                if run.status.finished:
                    console().print(
                        f"run {rid} is already {run.status.value}; nothing to resume", highlight=False
                    )
        ids = await client.resume(list(run_ids) or None)
        left = await _not_resumed(client, [rid for rid in run_ids if rid not in ids])
        if not run_ids:  # every unfinished run was asked for: name the versions this process could not load
            left += _versions_not_loaded(client)
        if not ids:
            if left:
                fail("; ".join(left))
            console().print("no unfinished runs to resume" + (" among those named" if run_ids else ""))
            return EXIT_OK
        from ._render import escape

        for why in left:
            console(stderr=True).print(f"[bold red]error:[/] {escape(why)}", highlight=False, soft_wrap=True)
        code = EXIT_USER_ERROR if left else EXIT_OK
        for rid in ids:
            code = max(code, await _finish(client, rid, quiet=False))
        return code


def _versions_not_loaded(client: Any) -> list[str]:
    """Why the unfinished runs of each workflow version this process could not load were left."""
    out = []
    for workflow, version, ref in sorted(client.claims.unloadable):
        out.append(
            f"the unfinished runs of workflow {workflow!r} version {version}"
            + (f" ({ref})" if ref else "")
            + " were not resumed: this process cannot load that workflow version (the reason is logged "
            "above); fix it, or run the command from the project that defines it, or deploy that version to "
            "the store (podium workflows deploy FILE), then run podium runs resume again"
        )
    return out


async def _not_resumed(client: Any, run_ids: list[str]) -> list[str]:
    """Why each unfinished run of ``run_ids`` was not resumed (a finished one was said already)."""
    import time

    out = []
    for rid in run_ids:
        run = await client.get(rid)
        if run.status.finished:
            continue
        if client.claims.cannot_load(run):
            out.append(
                f"run {rid} (workflow {run.workflow!r} version {run.version}) was not resumed: this process "
                "cannot load that workflow version (the reason is logged above); run the command from the "
                "project that defines it, or deploy that version to the store: podium workflows deploy FILE"
            )
        elif run.owner and (run.lease_expires_at or 0) > time.time():
            out.append(f"run {rid} was not resumed: a live engine ({run.owner}) drives it; it goes on there")
    return out


@runs_group.command("cancel")
@click.argument("run_id")
@db_option
@run_async
@requires("runs.cancel", lambda kw: kw["run_id"])
async def cancel(run_id: str, db: str | None) -> int:
    """Cancel an unfinished run; its running steps are cancelled and recorded."""
    async with _client(db, recover=False) as client:
        before = await client.get(run_id)
        if before.status.finished:
            console().print(f"run {run_id} already {before.status.value}; nothing to cancel", highlight=False)
            return EXIT_OK
        after = await client.cancel(run_id)
    console().print(f"run {run_id}: {after.status.value}", highlight=False)
    return EXIT_OK if after.status.value == "cancelled" else EXIT_RUN_FAILED


@runs_group.command("fork")
@click.argument("run_id")
@click.option("--from", "from_step", required=True, metavar="STEP", help="Re-run from this step on.")
@click.option(
    "--input", "-i", "input_text", metavar="JSON|@FILE", help="New run input (default: the earlier run's)."
)
@click.option(
    "--workflow",
    "workflow_ref",
    metavar="REF",
    help="Load the workflow from REF if the run's reference no longer works.",
)
@db_option
@run_async
@requires("runs.fork", lambda kw: kw["run_id"])
async def fork(
    run_id: str, from_step: str, input_text: str | None, workflow_ref: str | None, db: str | None
) -> int:
    """Start a new run from STEP of an earlier run; the steps before it are reused, not re-executed."""
    from ._render import Progress

    async with _client(db, recover=False) as client:
        if workflow_ref:
            client.register(load_ref(workflow_ref))
        client.subscribe(Progress(console()))
        kwargs = {} if input_text is None else {"input": parse_input(input_text)}
        handle = await client.fork(run_id, from_step, **kwargs)
        console().print(
            f"[bold]run[/] {handle.id} forked from {run_id} at step {from_step!r}", highlight=False
        )
        return await _finish(client, handle.id, quiet=False)


__all__ = ["fail"]
