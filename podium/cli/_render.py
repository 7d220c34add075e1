"""Terminal rendering of runs, steps and live progress (rich, imported only when used)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
import time
from typing import Any

from podium.engine.history import RunHistory
from podium.records import Event, EventType, RunRecord, RunStatus, StepStatus, step_key

STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "pending": "yellow",
    "failed": "red",
    "cancelled": "magenta",
    "skipped": "dim",
    "waiting": "blue",
}
STATUS_MARK = {
    "completed": "✓",
    "running": "…",
    "pending": "·",
    "failed": "✗",
    "cancelled": "⊘",
    "skipped": "↷",
    "waiting": "⏸",
}


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):  # a deadline past year 9999 (ctx.sleep(1e15)), or NaN
        return f"Unix time {ts:.0f}" if ts == ts else "-"


def duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    seconds = (end if end is not None else time.time()) - start
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def status_text(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{STATUS_MARK.get(status, '')} {status}[/]"


def plain(value: Any) -> Any:
    """JSON-ready form of a step value (dataclasses and pydantic models as their fields)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    return str(value)


#: C0 controls but newline and tab, DEL and the C1 controls (``\x9b`` is a CSI on 8-bit terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
"""Control characters, and the invisible ones that reorder or hide text (bidirectional overrides
and isolates, zero-width characters): a title could show "0.9 EUR" for an amount stored reversed."""


#: JSON longer than this (characters) is printed without rich's highlighting, which keeps a span
#: per token: a pricing run's 4 MB output held ~600 MB while it printed.
BIG_JSON = 256 * 1024


def print_json(out: Any, text: str) -> None:
    """JSON ``text`` on the console ``out``: highlighted, or past :data:`BIG_JSON` indented plain
    text (control and invisible characters written as ``\\uXXXX``: the same JSON value, nothing a
    terminal acts on)."""
    if len(text) <= BIG_JSON:
        out.print_json(text)
        return
    pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    out.file.write(_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", pretty) + "\n")
    out.file.flush()


def escape(text: Any) -> str:
    """``text`` (a run's data: written by users, models, tools) safe to print: no rich markup, and
    control characters shown as ``\\xNN`` (a terminal escape sequence in a model's answer could
    clear the screen or write the clipboard)."""
    from rich.markup import escape as markup

    return markup(_CONTROL.sub(_shown, str(text)))


def one_line(text: Any) -> str:
    """``text`` (a column another system wrote) for a plain tab-separated line: control characters,
    tabs and newlines too, shown as ``\\xNN`` (no escape sequence reaches the terminal, no fake row)."""
    return _LINE_CONTROL.sub(_shown, str(text))


_LINE_CONTROL = re.compile("[\t\n" + _CONTROL.pattern[1:])


def _shown(m: re.Match[str]) -> str:
    n = ord(m.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def short(value: Any, width: int = 60) -> str:
    """``value`` on one line, at most ``width`` characters, with secrets masked (``api_key``: ``***``),
    escaped for printing (:func:`escape`)."""
    from podium.secret import mask, redact

    if isinstance(value, str):
        text = redact(value)
    else:
        text = json.dumps(mask(json.loads(json.dumps(value, default=plain))), ensure_ascii=False)
    text = text.replace("\n", " ")
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def orphan_text(run: RunRecord) -> str | None:
    """Why a run recorded as running is driven by no engine (None: it is driven, or not running):
    its engine gone or silent (:func:`podium.engine.worker.orphan_reason`), or held by none (handed
    back or off: a start log replayed, a worker stopped)."""
    from podium.engine.worker import orphan_reason

    orphan = orphan_reason(run)
    if orphan is None and run.status is RunStatus.RUNNING and not run.owner:
        orphan = "no engine drives it"
    return orphan


def runs_table(runs: list[RunRecord]) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=24)
    for col in ("workflow", "version", "status", "started", "duration"):
        table.add_column(col, no_wrap=col in ("status", "started"))
    for r in runs:
        orphan = orphan_text(r)
        table.add_row(
            r.id,
            r.workflow,
            r.version,
            status_text(r.status.value) + (f" [yellow]({orphan}: podium runs resume)[/]" if orphan else ""),
            when(r.started_at or r.created_at),
            duration(r.started_at, r.finished_at) if r.started_at else "-",
        )
    return table


def show_run(console: Any, h: RunHistory, *, full: bool = False, why: tuple[str, str] | None = None) -> None:
    """The run's header, ``why`` it stands still (label, line: ``_why.explain``), its steps and outcome."""
    from rich.table import Table

    from podium.secret import redact

    r = h.run
    console.print(f"[bold]run[/] {r.id}  [bold]{escape(r.workflow)}[/] v{escape(r.version)}  {status_text(r.status.value)}")
    console.print(
        f"  started {when(r.started_at)}  duration {duration(r.started_at, r.finished_at)}"
        + (f"  forked from {r.forked_from} at step {r.fork_step}" if r.forked_from else "")
        + (f"  child of {r.parent_run_id} (step {r.parent_step})" if r.parent_run_id else ""),
        highlight=False,
    )
    if why is not None:
        console.print(f"  [bold blue]{why[0]}[/]: {why[1]}", highlight=False, soft_wrap=True)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("step", "status", "attempts", "started", "duration", "output / error"):
        table.add_column(col, overflow="fold")
    for v in h.steps:
        detail = ""
        if v.status is StepStatus.COMPLETED:
            detail = short(v.output, 200 if full else 60)
            if v.reused_from:
                detail += f"  [dim](reused from {v.reused_from})[/]"
        elif v.error:
            detail = f"[red]{short(v.error.get('type', '').rsplit('.', 1)[-1] + ': ' + v.error.get('message', ''), 200 if full else 80)}[/]"
        elif v.reason:
            detail = f"[dim]{escape(v.reason)}[/]"
        table.add_row(
            v.key,
            status_text(v.status.value),
            str(v.attempts or ("-" if v.status is StepStatus.SKIPPED else 1)),
            when(v.started_at).split(" ")[-1],
            duration(v.started_at, v.finished_at) if v.status is not StepStatus.SKIPPED else "-",
            detail,
        )
    console.print(table)
    from podium.ai import format_usage, usage_of  # tokens, latency and cost of model and tool calls

    lines = format_usage(usage_of(h))
    for line in lines:
        console.print(line, highlight=False)
    if lines:
        console.print(f"[dim]prompts, answers, tool calls and a timeline: podium runs show {r.id} --trace[/]", highlight=False)
    if r.status is RunStatus.COMPLETED:
        console.print(f"[bold]output[/] {short(h.output, 2000)}", highlight=False)
    err = h.error
    if err:
        console.print(f"[bold red]error[/] {escape(redact(err.get('message', '')))}", highlight=False)
    for v in h.steps:
        for i, e in enumerate(v.errors):
            tb = e.get("traceback")
            if tb and (full or e is v.error):
                label = "final" if e is v.error else f"attempt {i + 1}"
                console.print(f"\n[bold]{v.key}[/] {label} traceback:", highlight=False)
                console.print(_CONTROL.sub("?", redact(tb.rstrip())), markup=False, highlight=False)


class Progress:
    """Prints one line per step event as a run goes."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def __call__(self, ev: Event) -> None:
        t = ev.type
        key = step_key(ev.step, ev.iteration, ev.index) if ev.step else ""
        data = json.loads(ev.data) if ev.data and t != EventType.STEP_COMPLETED else {}
        if t == EventType.STEP_COMPLETED:
            started = json.loads(ev.data).get("started") if ev.data else None
            self.console.print(f"  [green]✓[/] {key} [dim]{duration(started, ev.ts)}[/]", highlight=False)
        elif t == EventType.STEP_STARTED:
            self.console.print(f"  [cyan]…[/] {key} running", highlight=False)
        elif t == EventType.STEP_RETRYING:
            err = data.get("error", {})
            self.console.print(
                f"  [yellow]↻[/] {key} attempt {ev.attempt} failed: {short(err.get('message', ''), 80)}; "
                f"retrying in {err.get('retry_in', 0)} s",
                highlight=False,
            )
        elif t == EventType.STEP_SKIPPED:
            self.console.print(f"  [dim]↷ {key} skipped: {escape(data.get('reason', ''))}[/]", highlight=False)
        elif t == EventType.STEP_FAILED:
            err = data.get("error", {})
            self.console.print(
                f"  [red]✗[/] {key} failed: {short(err.get('message', ''), 120)}", highlight=False
            )
        elif t == EventType.STEP_CANCELLED:
            self.console.print(f"  [magenta]⊘[/] {key} cancelled", highlight=False)
        elif t == EventType.LOOP_ITERATION:
            self.console.print(f"  [blue]⟲[/] {ev.step} loops (iteration {ev.iteration})", highlight=False)
        elif t == EventType.RUN_RESUMED:
            self.console.print(f"[bold]resumed[/] run {ev.run_id}", highlight=False)
