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
import re
from collections.abc import Mapping
from typing import Any

from ..classifiers import Classifier, EmbeddingClassifier, LLMClassifier
from ..tools import HttpTool, Tool, Toolset, as_tool
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


_TOOL_FORMS = "{name: NAME}, {mcp: SERVER, name: TOOL} or {python: package.module:function}"


def _tool_uses(spec: Any, at: tuple[str | int, ...] = ()) -> list[Any]:
    """What one tool spec of a workflow file reaches (see podium.governance.capabilities.Use)."""
    from ..governance.capabilities import Use, is_template, templated, tool_kinds

    if is_template(spec):
        return [templated(at, "a tool")]
    if not isinstance(spec, Mapping):
        return [Use(at=at, problem=f"a tool is {_TOOL_FORMS}, got {spec!r}")]

    def named(key: str, kinds: tuple[str, ...], what: str) -> Use:
        value = spec[key]
        if is_template(value):
            return templated((*at, key), what)
        if isinstance(value, Mapping):
            flag = {"http": "--http URL [--method GET]", "mcp": "--mcp 'COMMAND ARGS' (or --mcp-url URL)"}[
                key
            ]
            return Use(
                at=(*at, key),
                problem=f"{what} cannot be defined in a workflow file: a file could then start any command "
                "or reach any host; it names one an admin registered",
                hint=f"an admin registers it with podium tools add NAME {flag}, and the step names it: "
                + (f"{{{key}: NAME}}" if key == "mcp" else "{name: NAME}"),
            )
        if not isinstance(value, str):
            return Use(at=(*at, key), problem=f"{what} is a registered name, got {value!r}")
        return Use(at=(*at, key), kinds=kinds, name=value)

    if "mcp" in spec:
        uses = [named("mcp", ("mcp",), "an MCP server")]
        if is_template(spec.get("name")):
            uses.append(templated((*at, "name"), "the MCP tool's name"))
        return uses
    if "http" in spec:
        return [named("http", ("http",), "an HTTP tool")]
    if "python" in spec:
        ref = spec["python"]
        if is_template(ref):
            return [templated((*at, "python"), "the python function of a tool")]
        if not isinstance(ref, str):
            return [
                Use(
                    at=(*at, "python"),
                    problem=f"python names a function as package.module:function, got {ref!r}",
                )
            ]
        return [Use(at=(*at, "python"), python=ref)]
    if "name" in spec:
        return [named("name", tool_kinds(), "a tool")]
    return [Use(at=at, problem=f"a tool names what an admin registered: {_TOOL_FORMS}")]


def _tool_step_uses(w: Mapping[str, Any]) -> list[Any]:
    return _tool_uses({k: v for k, v in w.items() if k != "arguments"})


_AGENT_NAME = re.compile(r"[\w.-]{1,100}")


def _agent_name_uses(name: Any) -> list[Any]:
    """An agent's name keys its ``agent:NAME`` policy and kill switch: it is written in the file (a
    run's input naming it would choose which controls apply), as a plain name."""
    from ..governance.capabilities import Use, is_template

    if name is None:
        return []
    if is_template(name):
        return [
            Use(
                at=("name",),
                problem="an agent's name cannot be a template: it decides which agent:NAME policy and kill "
                "switch apply, so it is written in the file, never computed from the input or a step's output",
                hint="write the name itself (name: triage); the admin's policy for it: podium policy set agent:triage ...",
            )
        ]
    if not isinstance(name, str) or not _AGENT_NAME.fullmatch(name):
        return [
            Use(
                at=("name",),
                problem=f"an agent's name is a plain name (letters, digits, '_', '-', '.'; at most 100), got {name!r}",
                hint="e.g. name: triage ('*' and 'agent:' are the admin's: podium policy set agent:* ...)",
            )
        ]
    return []


def _agent_step_uses(w: Mapping[str, Any]) -> list[Any]:
    from ..governance.capabilities import Use, is_template, templated

    named = _agent_name_uses(w.get("name"))
    tools = w.get("tools")
    if tools is None:
        return named
    if is_template(tools):
        return [*named, templated(("tools",), "an agent's tools")]
    if not isinstance(tools, list):
        return [*named, Use(at=("tools",), problem=f"tools is a list of {_TOOL_FORMS}")]
    return [*named, *(u for i, t in enumerate(tools) for u in _tool_uses(t, ("tools", i)))]


async def _tool_from(ctx: Any, spec: Any) -> Tool | Toolset:
    """The tool a workflow file names, through the capability registry in the run's store."""
    from ..governance import capabilities as caps
    from ..memory._steps import store_of

    where = f"step {ctx.step_id!r}"
    problems = [u for u in _tool_uses(spec) if u.problem is not None]
    if problems:
        raise caps.CapabilityDenied(f"{where}: {problems[0].problem}")
    store = store_of(ctx)
    if "python" in spec:  # a project function, by the uses: rule (checked again here)
        from ..yaml._python import Refused, resolve_function

        ref = str(spec["python"])
        try:
            fn = resolve_function(ref, base_dir=None)
        except Refused as exc:
            raise caps.CapabilityDenied(
                f"{where}: the tool {ref!r} is not allowed: {exc.message}; an admin registers it with "
                f"podium tools add NAME --python {ref}, and the step names it: {{name: NAME}}"
            ) from None
        return as_tool(fn.fn)
    if "mcp" in spec:
        cap = await caps.require(store, spec["mcp"], ("mcp",), where=where)
    elif "http" in spec:
        cap = await caps.require(store, spec["http"], ("http",), where=where)
    else:
        cap = await caps.require(store, spec["name"], caps.tool_kinds(), where=where)
    return await _tool_for(cap, spec, where, store)


async def _tool_for(cap: Any, spec: Mapping[str, Any], where: str, store: Any) -> Tool | Toolset:
    t = cap.target
    if cap.kind == "python":
        module, _, attr = t["function"].partition(":")
        from ..tools import FunctionTool

        fn = getattr(importlib.import_module(module), attr)  # registered by an admin: trusted
        return _cached("python", cap.to_json(), lambda: FunctionTool(fn, name=cap.name))
    if cap.kind == "http":
        # secret:NAME headers are read at each use, so a rotated secret is used at once (not cached)
        headers, refs = await _with_secrets(t.get("headers"), store, f"{where}: tool {cap.name!r}, header")

        def build() -> HttpTool:
            return HttpTool(
                cap.name,
                t["url"],
                method=t.get("method", "POST"),
                description=t.get("description") or cap.description,
                parameters=t.get("parameters"),
                headers=headers,
                allow_private=cap.allow_private,
                **{k: t[k] for k in ("max_response_bytes", "deadline") if k in t},
            )

        return build() if refs else _cached("http", cap.to_json(), build)
    if cap.kind == "mcp":
        from ..tools.mcp import MCPToolset

        target = t["url"] if "url" in t else list(t["command"])
        opts = {k: spec[k] for k in ("prefix", "include") if k in spec}
        key = [cap.to_json(), opts]
        # secret:NAME in env are read when the server starts (a rotation: podium tools add again)
        env, _ = await _with_secrets(t.get("env"), store, f"{where}: MCP server {cap.name!r}, env")
        return _cached(
            "mcp",
            key,
            # a URL's host is checked when connecting, and the address checked is the one connected
            # to (no second lookup by the SDK: DNS rebinding)
            lambda: MCPToolset(
                target, env=env or None, cwd=t.get("cwd"), allow_private=cap.allow_private, registered_as=cap.name,
                **opts, **{k: t[k] for k in ("max_response_bytes",) if k in t},
            ),
        )
    raise ValueError(f"{where}: a {cap.kind} capability ({cap.name!r}) is not a tool")


async def _with_secrets(values: Mapping[str, Any] | None, store: Any, what: str) -> tuple[dict[str, Any], bool]:
    """``values`` with each ``secret:NAME`` read from the store's secret store (the registry keeps
    the reference, never the credential), and whether any was."""
    from ..errors import ConfigError
    from ..storage.secrets import secret_store

    out, found = dict(values or {}), False
    for k, v in out.items():
        if isinstance(v, str) and v.startswith("secret:"):
            try:
                out[k] = (await secret_store(store).get(v[len("secret:") :].strip())).reveal()
            except ConfigError as exc:
                raise ConfigError(f"{what} {k!r}: {exc}") from None
            found = True
    return out, found


def _model(ctx: Any, spec: str | None) -> str | None:
    """A model a workflow file names (or a template fills in from a run's input): a ``local:`` model
    by name only. A path would have the engine open any file of its host and hand it to llama.cpp's
    parser, and its errors would tell which files exist."""
    import os

    from ..governance.capabilities import CapabilityDenied

    for one in (spec or "").split("|"):
        provider, _, name = one.strip().partition(":")
        base = name.partition("?")[0]
        if provider == "local" and (base.endswith(".gguf") or "/" in base or "\\" in base or os.sep in base):
            raise CapabilityDenied(
                f"step {ctx.step_id!r}: model {one.strip()[:200]!r}: a workflow file names a local model by name, "
                "not by path; an admin points a name at the file (PODIUM_LOCAL_NAME=/models/x.gguf) and "
                "the step names it: model: local:name"
            )
    return spec


async def _llm_step(
    ctx: Any,
    prompt: str,
    system: str | None = None,
    model: str | None = None,
    output: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    repair: int = 1,
    stream: bool | None = None,
) -> dict[str, Any]:
    """Calls a model; returns text, the structured output (with output:), model and usage."""
    r = await llm(
        ctx,
        prompt,
        system=system,
        model=_model(ctx, model),
        output=output,
        max_tokens=max_tokens,
        temperature=temperature,
        repair=repair,
        stream=stream,
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
    c = await classify(ctx, text, _classifier(labels, method, embedder, _model(ctx, model)))
    return {"label": c.label, "confidence": c.confidence, "scores": c.scores}


async def _tool_step(ctx: Any, arguments: dict[str, Any] | None = None, **spec: Any) -> Any:
    """Calls a registered tool (name, or mcp with name) or a project function (python)."""
    made = await _tool_from(ctx, spec)
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
    max_tool_calls: int = 32,
) -> dict[str, Any]:
    """Runs an agent loop; returns output, stop_reason, iterations and usage."""
    agent = Agent(
        model=_model(ctx, model),
        instructions=instructions,
        tools=[await _tool_from(ctx, t) for t in tools or ()],
        max_iterations=max_iterations,
        max_tool_calls=max_tool_calls,
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
        classifier=_classifier(routes, method, embedder, _model(ctx, model)),
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
                "stream": {
                    "type": "boolean",
                    "description": "send the text as it is generated (default: plain-text answers do)",
                },
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
                "name": {
                    "type": "string",
                    "description": "a registered tool (podium tools list); with mcp, the server's tool",
                },
                "mcp": {"description": "a registered MCP server's name"},
                "http": {"description": "a registered HTTP tool's name (same as name)"},
                "python": {"type": "string", "description": "package.module:function of the project"},
                "prefix": {"type": "string"},
                "include": {"type": "array", "items": {"type": "string"}},
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
                "max_tool_calls": {"type": "integer", "minimum": 0, "default": 32},
                "max_tokens": {"type": "integer", "minimum": 1},
                "output": {"type": "object"},
                "name": {
                    "type": "string",
                    "default": "agent",
                    "description": "the agent's name, written in the file: its agent:NAME policy and kill "
                    "switch (agent:* for a name no policy names)",
                },
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
    hooks = {"tool": _tool_step_uses, "agent": _agent_step_uses}
    return [
        registry.StepType(
            name=name,
            fn=fn,
            args=args,
            description=(fn.__doc__ or "").split("\n")[0],
            concurrency=None,
            capabilities=hooks.get(name),
        )
        for name, (fn, args) in _KINDS.items()
    ]


def __getattr__(name: str) -> Any:
    # Entry points name podium.ai.yaml_steps:llm_step and so on; the StepType is built when loaded.
    kind = name.removesuffix("_step")
    if name.endswith("_step") and kind in _KINDS:
        return next(t for t in step_types() if t.name == kind)
    raise AttributeError(name)
