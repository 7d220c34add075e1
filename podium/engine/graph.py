"""Pictures of a workflow's graph: plain text for terminals, Mermaid and Graphviz DOT for documents.

Built only on what :meth:`Workflow.freeze` computes (``deps``, ``data_deps``, ``order``, loops), so
Python and YAML workflows draw the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .workflow import StepDef, Workflow


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: str
    """``data`` (uses the output), ``order`` (waits only), ``loop`` (routes back), ``fallback``."""
    label: str = ""


def layers(wf: Workflow) -> list[list[str]]:
    """Steps by depth: a step's layer is one more than the deepest step it waits for, so the steps
    of one layer can run at the same time."""
    wf.freeze()
    depth: dict[str, int] = {}
    for sid in wf.order:
        deps = wf.steps[sid].deps
        depth[sid] = 1 + max((depth[d] for d in deps), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for sid in wf.order:
        out[depth[sid]].append(sid)
    return out


def edges(wf: Workflow) -> list[Edge]:
    wf.freeze()
    out = []
    for sid in wf.order:
        s = wf.steps[sid]
        primary = _meta(s).get("fallback_of")
        # A fallback waits for its step's inputs only to know whether the step would have run:
        # drawn as the one "on error" edge from that step.
        hidden = {primary, *wf.steps[primary].deps} if primary in wf.steps else set()
        for d in s.deps:
            if d in s.data_deps:
                out.append(Edge(d, sid, "data"))
            elif d not in hidden:
                out.append(Edge(d, sid, "order"))
        if s.loop is not None:
            out.append(Edge(sid, s.loop.to, "loop", f"while ... (at most {s.loop.max_iterations})"))
        meta = _meta(s)
        if meta.get("fallback"):
            out.append(Edge(sid, meta["fallback"], "fallback", "on error"))
    return out


def _meta(s: StepDef) -> dict[str, Any]:
    return dict(getattr(s.fn, "__podium_yaml__", None) or {})


def uses(s: StepDef) -> str:
    """What a step runs, in a few words."""
    meta = _meta(s)
    if meta.get("uses"):
        return str(meta["uses"])
    if s.child is not None:
        return f"subworkflow {s.child.name}"
    fn = s.fn
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "") or type(fn).__name__
    return f"{module}:{name}" if module else name


def notes(s: StepDef) -> list[str]:
    """Short notes on how a step runs: condition, fan-out, retries, error handling."""
    out = []
    meta = _meta(s)
    if s.when is not None:
        out.append(f"runs if {meta['fallback_of']} fails" if meta.get("fallback_of") else "if ...")
    if s.map is not None:
        out.append(f"for each item of {s.map}" + (f", {s.max_parallel} at a time" if s.max_parallel else ""))
    if s.retry.max_attempts > 1:
        out.append(f"retry x{s.retry.max_attempts}")
    if s.timeout is not None:
        out.append(f"timeout {s.timeout:g}s")
    if meta.get("fallback"):
        out.append(f"on error: {meta['fallback']}")
    elif s.on_error != "fail":
        out.append(f"on error: {s.on_error}")
    if s.kind:
        out.append(f"concurrency {s.kind}")
    labels = getattr(s, "labels", ())
    if labels:
        out.append("needs " + ", ".join(labels))
    return out


def to_text(wf: Workflow) -> str:
    """The graph as text: steps layer by layer, with what each waits for."""
    wf.freeze()
    rows = layers(wf)
    width = max((len(sid) for sid in wf.steps), default=4)
    lines = [
        f"{wf.name} v{wf.version}: {len(wf.steps)} step{'s' if len(wf.steps) != 1 else ''} in {len(rows)} "
        f"layer{'s' if len(rows) != 1 else ''} (steps in one layer can run at the same time)",
    ]
    if wf.description:
        lines.append(wf.description)
    for i, row in enumerate(rows, 1):
        lines.append("")
        lines.append(f"layer {i}")
        for sid in row:
            s = wf.steps[sid]
            line = f"  {sid.ljust(width)}  {uses(s)}"
            primary = _meta(s).get("fallback_of")
            hidden = {primary, *wf.steps[primary].deps} if primary in wf.steps else set()
            data = [d for d in s.deps if d in s.data_deps]
            order = [d for d in s.deps if d not in s.data_deps and d not in hidden]
            after = []
            if data:
                after.append("<- " + ", ".join(data))
            if order:
                after.append("after " + ", ".join(order))
            extra = after + notes(s)
            if extra:
                line += "  [" + "; ".join(extra) + "]"
            lines.append(line)
    loops = [(sid, wf.steps[sid].loop) for sid in wf.order if wf.steps[sid].loop is not None]
    if loops:
        lines.append("")
        lines.append("loops")
        for sid, lp in loops:
            assert lp is not None
            body = wf.loop_bodies.get(sid, ())
            lines.append(
                f"  {sid} -> back to {lp.to} while its condition holds, at most {lp.max_iterations} times "
                f"(repeats {', '.join(body)})"
            )
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(wf: Workflow) -> str:
    """The graph as a Mermaid flowchart (paste it in Markdown inside a ```mermaid block)."""
    wf.freeze()
    ids = {sid: f"s{i}" for i, sid in enumerate(wf.order)}
    lines = ["flowchart TD"]
    for sid in wf.order:
        s = wf.steps[sid]
        label = f"{sid}<br/><small>{uses(s)}</small>"
        n = notes(s)
        if n:
            label += f"<br/><small>{'; '.join(n)}</small>"
        label = _mermaid_label(label).replace("#lt;br/#gt;", "<br/>").replace("#lt;small#gt;", "<small>")
        label = label.replace("#lt;/small#gt;", "</small>")
        if s.when is not None:
            shape = ("{{", "}}")
        elif s.map is not None:
            shape = ("[[", "]]")
        elif s.child is not None or uses(s) == "subworkflow":
            shape = ("[/", "/]")
        else:
            shape = ("[", "]")
        lines.append(f'    {ids[sid]}{shape[0]}"{label}"{shape[1]}')
    for e in edges(wf):
        a, b = ids[e.source], ids[e.target]
        if e.kind == "data":
            lines.append(f"    {a} --> {b}")
        elif e.kind == "order":
            lines.append(f"    {a} -.-> {b}")
        else:
            lines.append(f'    {a} -. "{_mermaid_label(e.label)}" .-> {b}')
    return "\n".join(lines) + "\n"


def to_dot(wf: Workflow) -> str:
    """The graph in Graphviz DOT (render with ``dot -Tsvg``)."""
    wf.freeze()

    def q(text: str) -> str:
        return json.dumps(text)

    lines = [
        f"digraph {q(wf.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
    ]
    for sid in wf.order:
        s = wf.steps[sid]
        label = "\n".join([sid, uses(s), *(["; ".join(notes(s))] if notes(s) else [])])
        shape = "hexagon" if s.when is not None else ("box3d" if s.map is not None else "box")
        lines.append(f"  {q(sid)} [label={q(label)}, shape={shape}];")
    for e in edges(wf):
        style = {"data": "solid", "order": "dashed", "loop": "dashed", "fallback": "dotted"}[e.kind]
        attrs = f"style={style}" + (f", label={q(e.label)}" if e.label else "")
        if e.kind == "loop":
            attrs += ", constraint=false"
        lines.append(f"  {q(e.source)} -> {q(e.target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
