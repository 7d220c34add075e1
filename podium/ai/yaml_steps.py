"""Model steps for YAML workflows: ``uses: llm``, ``classify``, ``tool``, ``agent`` and ``route``.

They are registered through the ``podium.step_types`` entry-point group (see pyproject.toml), which
the YAML loader reads the first time a kind is missing. Each step calls the same helpers as Python
code, so every model, classifier and tool call is a durable, accounted sub-step::

    - id: intent
      uses: classify
      with:
        text: "{{ input.message }}"
        labels: {billing: ["I was charged twice"], shipping: ["Where is my parcel?"]}
    - id: reply
      uses: llm
      when: "{{ steps.intent.output.confidence >= 0.6 }}"
      with:
        prompt: "Reply to: {{ input.message }}"
        max_tokens: 120
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from ..classifiers import Classifier, EmbeddingClassifier, LLMClassifier
from ..tools import HttpTool, Tool, Toolset
from ._agent import Agent
from ._classify import classify
from ._llm import llm
from ._route import Router, Rule
from ._tools import call_tool

_CACHE: dict[str, Any] = {}


def _cached(kind: str, spec: Any, build: Any) -> Any:
    key = kind + json.dumps(spec, sort_keys=True, default=str)
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def _usage(u: Any) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "latency": u.latency,
        "cost": u.cost,
    }


def _classifier(labels: Any, method: str, embedder: str, model: str | None) -> Classifier:
    def build() -> Classifier:
        if method == "llm":
            return LLMClassifier(labels, model=model)
        if not isinstance(labels, dict) or not all(isinstance(v, list) for v in labels.values()):
            raise ValueError(f"classify with method {method!r} needs labels: {{label: [example texts]}}")
        return EmbeddingClassifier(labels, embedder=embedder, method=method)

    return _cached("classifier", [labels, method, embedder, model], build)


def _tool_from(spec: dict[str, Any]) -> Tool | Toolset:
    if "http" in spec:
        h = dict(spec["http"])
        return _cached(
            "http", h, lambda: HttpTool(h.pop("name", spec.get("name", "http")), h.pop("url"), **h)
        )
    if "mcp" in spec:
        from ..tools.mcp import MCPToolset

        m = spec["mcp"]
        target = m["url"] if "url" in m else list(m["command"])
        opts = {k: m[k] for k in ("prefix", "include", "env", "cwd") if k in m}
        return _cached("mcp", m, lambda: MCPToolset(target, **opts))
    if "python" in spec:
        module, _, attr = str(spec["python"]).partition(":")
        from ..tools import as_tool

        return as_tool(getattr(importlib.import_module(module), attr))
    raise ValueError(
        f"a tool is {{http: {{...}}}}, {{mcp: {{...}}}} or {{python: module:function}}, got {spec!r}"
    )


async def _llm_step(
    ctx: Any,
    prompt: str,
    system: str | None = None,
    model: str | None = None,
    output: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    repair: int = 1,
) -> dict[str, Any]:
    """Calls a model; returns text, the structured output (with output:), model and usage."""
    r = await llm(
        ctx,
        prompt,
        system=system,
        model=model,
        output=output,
        max_tokens=max_tokens,
        temperature=temperature,
        repair=repair,
    )
    return {"text": r.text, "output": r.output, "model": r.model, "usage": _usage(r.usage)}


async def _classify_step(
    ctx: Any,
    text: str,
    labels: Any,
    method: str = "centroid",
    embedder: str = "local:all-minilm-l6-v2",
    model: str | None = None,
) -> dict[str, Any]:
    """Classifies a text; returns label, confidence and every label's score."""
    c = await classify(ctx, text, _classifier(labels, method, embedder, model))
    return {"label": c.label, "confidence": c.confidence, "scores": c.scores}


async def _tool_step(ctx: Any, arguments: dict[str, Any] | None = None, **spec: Any) -> Any:
    """Calls a tool (http, mcp with name, or python) and returns its value."""
    made = _tool_from(spec)
    if isinstance(made, Toolset):
        tools = {t.name: t for t in await made.tools()}
        if spec.get("name") not in tools:
            raise ValueError(f"tool step: name must be one of {sorted(tools)}, got {spec.get('name')!r}")
        made = tools[spec["name"]]
    return await call_tool(ctx, made, arguments or {})


async def _agent_step(
    ctx: Any,
    input: Any,
    instructions: str = "",
    model: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    max_iterations: int = 8,
    max_tokens: int | None = None,
    output: dict[str, Any] | None = None,
    name: str = "agent",
) -> dict[str, Any]:
    """Runs an agent loop; returns output, stop_reason, iterations and usage."""
    agent = Agent(
        model=model,
        instructions=instructions,
        tools=[_tool_from(t) for t in tools or ()],
        max_iterations=max_iterations,
        max_tokens=max_tokens,
        output=output,
        name=name,
    )
    r = await agent.run(ctx, input)
    return {
        "output": r.output,
        "stop_reason": r.stop_reason,
        "iterations": r.iterations,
        "usage": _usage(r.usage),
    }


def _no_dispatch(ctx: Any, input: Any) -> None:
    """YAML routes are taken by later steps' when: conditions."""


async def _route_step(
    ctx: Any,
    text: str,
    routes: dict[str, Any],
    rules: list[dict[str, str]] | None = None,
    threshold: float = 0.6,
    default: str | None = None,
    method: str = "centroid",
    embedder: str = "local:all-minilm-l6-v2",
    model: str | None = None,
) -> dict[str, Any]:
    """Chooses a route by rules, then a classifier (examples per route, or descriptions with method: llm)."""
    router = Router(
        routes={name: _no_dispatch for name in routes},
        rules=[Rule(route=r["route"], match=r["match"]) for r in rules or ()],
        classifier=_classifier(routes, method, embedder, model),
        threshold=threshold,
        default=default,
        name="route",
    )
    d = await router.decide(ctx, text)
    return {
        "route": d.route,
        "confidence": d.confidence,
        "by": d.by,
        "label": d.label,
        "reason": d.reason,
        "escalate": d.escalate,
    }


_OBJ: dict[str, Any] = {"type": "object"}
_KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "llm": (
        _llm_step,
        {
            "type": "object",
            "properties": {
                "prompt": {"type": "string"},
                "system": {"type": "string"},
                "model": {"type": "string", "description": "provider:model, or a|b fallback chain"},
                "output": {"type": "object", "description": "JSON Schema of a structured answer"},
                "max_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0},
                "repair": {"type": "integer", "minimum": 0, "default": 1},
            },
            "required": ["prompt"],
            "additionalProperties": False,
        },
    ),
    "classify": (
        _classify_step,
        {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "labels": {
                    "description": "{label: [examples]}; with method llm, a list or {label: description}"
                },
                "method": {"type": "string", "enum": ["centroid", "logreg", "llm"], "default": "centroid"},
                "embedder": {"type": "string"},
                "model": {"type": "string"},
            },
            "required": ["text", "labels"],
            "additionalProperties": False,
        },
    ),
    "tool": (
        _tool_step,
        {
            "type": "object",
            "properties": {
                "http": {"type": "object", "description": "{url, method, name, description, headers}"},
                "mcp": {"type": "object", "description": "{command: [...]} or {url: ...}"},
                "python": {"type": "string", "description": "module:function"},
                "name": {"type": "string", "description": "the tool's name (MCP)"},
                "arguments": {"type": "object"},
            },
            "additionalProperties": False,
        },
    ),
    "agent": (
        _agent_step,
        {
            "type": "object",
            "properties": {
                "input": {},
                "instructions": {"type": "string"},
                "model": {"type": "string"},
                "tools": {"type": "array", "items": {"type": "object"}},
                "max_iterations": {"type": "integer", "minimum": 1, "default": 8},
                "max_tokens": {"type": "integer", "minimum": 1},
                "output": {"type": "object"},
                "name": {"type": "string"},
            },
            "required": ["input"],
            "additionalProperties": False,
        },
    ),
    "route": (
        _route_step,
        {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "routes": {
                    "type": "object",
                    "description": "{route: [examples]} or, with method llm, {route: description}",
                },
                "rules": {"type": "array", "items": {"type": "object"}},
                "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.6},
                "default": {"type": "string"},
                "method": {"type": "string", "enum": ["centroid", "logreg", "llm"], "default": "centroid"},
                "embedder": {"type": "string"},
                "model": {"type": "string"},
            },
            "required": ["text", "routes"],
            "additionalProperties": False,
        },
    ),
}


def step_types() -> list[Any]:
    """The model step types, as ``podium.yaml.StepType``s (the YAML package is imported here)."""
    registry = importlib.import_module("podium.yaml._registry")
    return [
        registry.StepType(
            name=name, fn=fn, args=args, description=(fn.__doc__ or "").split("\n")[0], concurrency=None
        )
        for name, (fn, args) in _KINDS.items()
    ]


def __getattr__(name: str) -> Any:
    # Entry points name podium.ai.yaml_steps:llm_step and so on; the StepType is built when loaded.
    kind = name.removesuffix("_step")
    if name.endswith("_step") and kind in _KINDS:
        return next(t for t in step_types() if t.name == kind)
    raise AttributeError(name)
