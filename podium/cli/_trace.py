"""``podium runs show RUN --trace``: a run's AI trace in the terminal (podium.engine.trace).

Every text in a trace came from a model, a tool or a user: it is printed escaped (never read as
rich markup, and with its control characters shown as ``\x1b``, so a model's answer cannot clear
the screen or write the clipboard through terminal escape sequences) and, unless ``--full``, shortened.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._render import duration, escape, status_text, when

_SHORT = 300
_BAR = 48
_FILL = {"attempt": "█", "backoff": "·", "wait": "░"}
def as_json(doc: dict[str, Any]) -> str:
    """The trace as JSON for ``--json``: C1 control characters written as ``\\u009b`` escapes (JSON
    already escapes the C0 ones), so piping it to a terminal cannot drive it either."""
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def _cut(text: Any, full: bool) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    if not full and len(s) > _SHORT:
        s = s[:_SHORT] + f"… ({len(s) - _SHORT} more characters; --full shows all)"
    return escape(s)


def _money(v: Any) -> str:
    return "cost unknown" if v is None else f"${v:.6f}"


def _secs(v: Any) -> str:
    if not isinstance(v, int | float):
        return "-"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _entry(c: dict[str, Any], full: bool) -> list[str]:
    """Lines of one trace entry (the first is its head)."""
    kind = c["kind"]
    tag = f"[bold]{kind:<9}[/]"
    failed = " [red](failed)[/]" if c.get("status") == "failed" else ""
    agent = f" · [dim]agent {escape(str(c['agent']))}, iteration {escape(c.get('iteration', 1))}[/]" if c.get("agent") else ""
    if kind == "model":
        cached = f", {escape(c['cached_tokens'])} cached" if c.get("cached_tokens") else ""
        lines = [
            f"{tag} {escape(c.get('model') or '?')}  {escape(c.get('input_tokens') or 0)} in / {escape(c.get('output_tokens') or 0)} out{cached}"
            f" · {_secs(c.get('latency'))} · {_money(c.get('cost'))}{failed}{agent}"
        ]
        if c.get("prompt") is None:
            lines.append("    [dim](prompt not stored: trace_prompts is off, the call predates it, or you lack payloads.read)[/]")
        for m in c.get("prompt") or []:
            calls = "".join(f" → {escape(t['name'])}({_cut(t.get('arguments'), full)})" for t in m.get("tool_calls", []))
            lines.append(f"    [cyan]{escape(m.get('role', '?'))}[/]: {_cut(m.get('content', ''), full)}{calls}")
        resp = c.get("response") or {}
        if resp.get("text"):
            lines.append(f"    [green]answer[/]: {_cut(resp['text'], full)}")
        for t in resp.get("tool_calls") or []:
            lines.append(f"    [green]asks[/] {escape(str(t.get('name')))}({_cut(t.get('arguments'), full)})")
        for t in c.get("trail") or []:
            lines.append(f"    [yellow]trail[/]: {_cut(t, full)}")
        return lines
    if kind in ("tool", "connector"):
        name = c.get("tool") if kind == "tool" else f"{c.get('connector')}.{c.get('operation')}"
        ok = c.get("ok", c.get("status") == "completed")
        result = _cut(c.get("result"), full) if ok else f"[red]{_cut(c.get('tool_error') or c.get('error'), full)}[/]"
        return [f"{tag} {escape(str(name))}({_cut(c.get('arguments'), full)}) → {result}  {_secs(c.get('latency'))}{agent}"]
    if kind in ("route", "classify"):
        what = c.get("route") if kind == "route" else c.get("label")
        conf = c.get("confidence")
        conf_s = f"{conf:.2f}" if isinstance(conf, int | float) else "-"
        extra = f", by {escape(str(c.get('by')))}" if c.get("by") else ""
        why = f" · {_cut(c['reason'], full)}" if c.get("reason") else ""
        esc = " [yellow](escalate)[/]" if c.get("escalate") else ""
        return [f"{tag} → {escape(str(what))} (confidence {conf_s}{extra}){esc}{why}"]
    if kind == "gate":
        verdict = "[green]passed[/]" if c.get("passed") else "[red]failed[/]"
        lines = [f"{tag} {escape(str(c.get('gate')))}: {verdict}, {escape(c.get('rows'))} rows"]
        lines += [f"    {'ok ' if r.get('ok') else '[red]bad[/]'} {escape(str(r.get('rule')))} ({escape(str(r.get('on')))}) {_cut(r.get('detail') or '', full)}" for r in c.get("rules") or []]
        return lines
    if kind == "plan":
        steps = ", ".join(f"{s.get('id')}={s.get('skill')}" for s in c.get("steps") or [])
        head = "plan" if c.get("n") == 1 else "replan"
        return [f"{tag} {head} {escape(c.get('n'))} by {escape(str(c.get('planner')))}: {_cut(c.get('reason') or '', full)}",
                f"    steps: {escape(steps) or '-'}"]
    if kind == "approval":
        title = _cut(c.get("title") or c.get("name") or "", full)
        if c.get("status") == "waiting":
            return [f"{tag} {title} · [blue]waiting[/] since {when(c.get('requested_at'))}" + (f" (role {escape(str(c['role']))})" if c.get("role") else "")]
        verdict = "[green]approved[/]" if c.get("approved") else "[red]rejected[/]"
        comment = f" “{_cut(c['comment'], full)}”" if c.get("comment") else ""
        edited = " (edited)" if c.get("edited") else ""
        waited = f", after {_secs(c['waited'])}" if isinstance(c.get("waited"), int | float) else ""
        return [f"{tag} {title} · {verdict} by {escape(str(c.get('by') or '?'))} at {when(c.get('decided_at'))}{waited}{edited}{comment}"]
    if kind == "wait":
        state = "[blue]waiting[/]" if c.get("status") == "waiting" else ("timed out" if c.get("timed_out") else "arrived")
        return [f"{tag} signal {_cut(c.get('signal') or c.get('call'), full)} · {state}"]
    return [f"{tag} {escape(c['call'])} → {_cut(c.get('result'), full)}{failed}"]


def timeline_lines(doc: dict[str, Any]) -> list[str]:
    """A text Gantt chart: one row per step execution, attempts █, backoffs ·, waits ░, failures red."""
    rows = doc.get("timeline") or []
    if not rows:
        return []
    now = doc.get("now") or 0
    t0 = min(s["start"] for r in rows for s in r["segments"])
    t1 = max((s["end"] if s["end"] is not None else now) for r in rows for s in r["segments"])
    span = max(t1 - t0, 1e-6)
    width = max(len(r["step"]) for r in rows)
    out = [f"[bold]timeline[/] [dim]({_secs(span)}; █ attempt, [red]█[/] failed, · backoff, ░ waiting)[/]"]
    for r in rows:
        cells = [" "] * _BAR
        # attempts last: a failed attempt stays visible beside the backoff that follows it
        for s in sorted(r["segments"], key=lambda s: s["kind"] == "attempt"):
            if s["kind"] not in _FILL:
                continue
            a = int((s["start"] - t0) / span * (_BAR - 1))
            b = int(((s["end"] if s["end"] is not None else now) - t0) / span * (_BAR - 1))
            mark = _FILL[s["kind"]]
            if s["kind"] == "attempt" and s.get("status") in ("retry", "failed"):
                mark = "[red]█[/]"
            for i in range(a, max(a, b) + 1):
                cells[i] = mark
        out.append(f"  {escape(r['step']).ljust(width)} │{''.join(cells)}│")
    return out


def show_trace(con: Any, doc: dict[str, Any], *, full: bool = False) -> None:
    run, t = doc["run"], doc["totals"]
    con.print(
        f"[bold]Trace of run {escape(run['id'])}[/] ({escape(run['workflow'])} v{escape(str(run['version']))}) "
        f"{status_text(run['status'])} · {duration(run.get('started_at') or run.get('created_at'), run.get('finished_at'))}",
        highlight=False,
    )
    cached = f" ({t['cached_tokens']} cached)" if t.get("cached_tokens") else ""
    con.print(
        f"{t['model_calls']} model calls · {t['input_tokens']} tokens in / {t['output_tokens']} out{cached} · "
        f"{_money(t.get('cost'))} · {_secs(t.get('latency'))} in models · {t['tool_calls']} tool/connector calls",
        highlight=False,
    )
    for child in doc.get("children") or []:
        con.print(f"started run {escape(child['id'])} ({escape(child['workflow'])}) {status_text(child['status'])}: "
                  f"podium runs show {escape(child['id'])} --trace", highlight=False)
    if doc.get("payloads_hidden"):
        con.print("[yellow]you lack payloads.read: prompts, answers and arguments are not shown[/]")
    step = None
    for c in doc["calls"]:
        if c.get("step") != step:
            step = c.get("step")
            con.print(f"\n[bold]▸ {escape(str(step))}[/]", highlight=False)
        for line in _entry(c, full):
            con.print("  " + line, highlight=False, soft_wrap=True)
    if not doc["calls"]:
        con.print("\nno model, tool or connector calls, decisions or approvals in this run", highlight=False)
    lines = timeline_lines(doc)
    if lines:
        con.print()
        for line in lines:
            con.print(line, highlight=False)
