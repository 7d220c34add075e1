"""The workflow file format as a JSON Schema: published for editors, and the one list of fields.

``schema.json`` next to this module (and ``docs/workflow.schema.json``) is
``workflow_schema(default_registry)``; a test keeps them equal. The loader takes its field names from
:data:`WORKFLOW_FIELDS` and :data:`STEP_FIELDS`, so the schema and the loader cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ._registry import StepTypes

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
PYTHON_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
TEMPLATE_PATTERN = r"\{\{|\{%"

_DURATION: dict[str, Any] = {
    "description": "Seconds (a number), or a duration such as '500ms', '30s', '5m', '2h'.",
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
}
_CONDITION: dict[str, Any] = {
    "description": "An expression, bare (steps.score.output > 0.5) or as one {{ ... }}; or true/false.",
    "type": ["string", "boolean"],
}

_STEP: dict[str, Any] = {
    "type": "object",
    "description": "One step of the workflow.",
    "required": ["id", "uses"],
    "additionalProperties": False,
    "properties": {
        "id": {
            "type": "string",
            "pattern": STEP_ID_PATTERN,
            "description": "Unique step id (letters, digits, '_'); later steps read its result as steps.<id>.output.",
        },
        "uses": {
            "type": "string",
            "description": "What the step runs: a registered step type (set, log, sleep, fail, subworkflow, "
            "and plug-in kinds) or a Python function as package.module:function.",
        },
        "description": {"type": "string", "description": "What the step is for (shown by 'podium runs show')."},
        "with": {
            "type": "object",
            "description": "Arguments, templated: strings may use {{ input... }} and {{ steps.<id>.output... }}. A "
            "string that is exactly one {{ expression }} passes the value itself (a list stays a list).",
        },
        "needs": {
            "description": "Steps to wait for without using their output (a step id or a list of them).",
            "anyOf": [
                {"type": "string", "pattern": STEP_ID_PATTERN},
                {"type": "array", "items": {"type": "string", "pattern": STEP_ID_PATTERN}},
            ],
        },
        "if": {
            **_CONDITION,
            "description": "Run the step only when this holds; otherwise it is recorded as skipped. "
            + str(_CONDITION["description"]),
        },
        "for_each": {
            "description": "Fan out: run the step once per item of this list ({{ expression }} or a literal list); "
            "'item' and 'index' are the current item and its position; the output is the list of results.",
            "type": ["string", "array"],
        },
        "max_parallel": {"type": "integer", "minimum": 1, "description": "With for_each: items run at once."},
        "loop": {
            "type": "object",
            "description": "Route back to an earlier step (or this one) while a condition holds.",
            "required": ["to", "while", "max_iterations"],
            "additionalProperties": False,
            "properties": {
                "to": {
                    "type": "string",
                    "pattern": STEP_ID_PATTERN,
                    "description": "Where the next iteration starts.",
                },
                "while": {
                    **_CONDITION,
                    "description": "Loop again while this holds (evaluated after this step).",
                },
                "max_iterations": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The guard: the run fails if the condition still holds after this many passes.",
                },
            },
        },
        "retry": {
            "description": "Attempts in all (a number), or a retry policy.",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "max_attempts": {"type": "integer", "minimum": 1},
                        "initial_interval": _DURATION,
                        "backoff": {"type": "number", "minimum": 1},
                        "max_interval": _DURATION,
                        "jitter": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                },
            ],
        },
        "timeout": {**_DURATION, "description": "How long one attempt may take. " + _DURATION["description"]},
        "on_error": {
            "type": "string",
            "description": "When the step fails for good: 'fail' (the run fails; the default), 'continue' (steps "
            "that use its output are skipped), or the id of a fallback step that runs instead and whose "
            "output later steps receive as this step's output.",
        },
        "labels": {
            "description": "Worker labels the step needs (gpu, bulk): only workers started with them run it.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "concurrency": {
            "type": "string",
            "description": "Concurrency class: Client(limits={class: n}) caps how many such steps run at once.",
        },
        "escalate": {
            "type": "object",
            "description": "Ask a person when the step is not sure: below this confidence its output goes to the "
            "approvals inbox to be accepted, edited or rejected.",
            "additionalProperties": False,
            "required": ["below"],
            "properties": {
                "below": {"type": "number", "minimum": 0, "maximum": 1},
                "field": {"type": "string", "description": "Where the output holds its confidence (default: confidence)."},
                "role": {"type": "string"},
                "title": {"type": "string"},
                "timeout": _DURATION,
                "on_timeout": {"enum": ["reject", "accept"]},
            },
        },
        "gate": {
            "description": "A data-quality gate over the step's output (docs/ml.md): rules checked before the output "
            "is recorded; a failing rule halts the run for a person, sets bad rows aside (quarantine), asks for "
            "approval (escalate) or warns. A list of rules, or a mapping with 'rules'.",
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/gate_rule"}},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["rules"],
                    "properties": {
                        "rules": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/gate_rule"}},
                        "name": {"type": "string"},
                        "rows": {"type": "string", "description": "Where the records are in the output (a key)."},
                        "role": {"type": "string", "description": "Who may accept halted or escalated data."},
                        "timeout": _DURATION,
                        "on_timeout": {"enum": ["reject", "accept"]},
                        "report": {"type": "string", "description": "Put the gate's findings in the output under this key."},
                    },
                },
            ],
        },
        "executor": {
            "type": "string",
            "description": "Where the step's heavy work runs: 'ray' (a local Ray started on demand, or "
            "$PODIUM_RAY_ADDRESS). Default: in the engine's process.",
        },
    },
}

_GATE_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["rule"],
    "description": "One gate rule: {rule: range, column: age, min: 0, on: quarantine}.",
    "properties": {
        "rule": {"enum": ["schema", "nulls", "range", "unique", "row_count", "fresh", "drift", "anomaly"]},
        "on": {"enum": ["halt", "quarantine", "escalate", "warn"]},
    },
}

def _broker_trigger(kind: str) -> dict[str, Any]:
    """A broker trigger's settings (checked in full by podium.connectors._sources)."""
    from ..connectors._sources import COMMON, FIELDS

    fields: dict[str, Any] = {f: {} for f in FIELDS[kind]}
    fields["connector"] = {"type": "string", "description": "a registered connector's name"}
    return {
        "type": "object",
        "description": f"Start a run per {kind} message (docs/connectors.md).",
        "required": ["connector", *(f for f, need in FIELDS[kind].items() if need)],
        "properties": {**fields, **{c: {} for c in sorted(COMMON) if c != "connector"}},
    }


_TRIGGER = {
    "description": "How runs start (validated now; servers act on them): 'manual', or one of schedule, webhook, event, nats, redis, amqp, mqtt.",
    "anyOf": [
        {"const": "manual"},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "schedule": {
                    "type": "string",
                    "description": "Cron (5 fields) or @hourly, @daily, @weekly, @monthly.",
                },
                "webhook": {
                    "anyOf": [
                        {"type": "string", "pattern": "^/"},
                        {
                            "type": "object",
                            "required": ["path"],
                            "additionalProperties": False,
                            "properties": {
                                "path": {"type": "string", "pattern": "^/"},
                                "method": {
                                    "type": "string",
                                    "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                                },
                            },
                        },
                    ]
                },
                "event": {"type": "string", "minLength": 1},
                **{kind: _broker_trigger(kind) for kind in ("nats", "redis", "amqp", "mqtt")},
                "input": {"description": "The run input this trigger starts runs with (templated later)."},
                "description": {"type": "string"},
            },
            "anyOf": [{"required": [k]} for k in ("schedule", "webhook", "event", "nats", "redis", "amqp", "mqtt")],
        },
    ],
}

_WORKFLOW: dict[str, Any] = {
    "$schema": SCHEMA_DRAFT,
    "title": "Podium workflow",
    "description": "A Podium workflow file: a named, versioned graph of steps.",
    "type": "object",
    "required": ["name", "steps"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "name": {
            "type": "string",
            "minLength": 1,
            "description": "The workflow's name (runs are listed under it).",
        },
        "version": {
            "type": ["string", "integer"],
            "description": "Runs are pinned to the version they started on. Quote versions like '1.10'.",
        },
        "description": {"type": "string"},
        "input": {
            "type": "object",
            "description": "The run input: a JSON Schema, or a compact field list (ticket: string, "
            "priority: integer?, tags: list[string]).",
        },
        "timeout": {**_DURATION, "description": "How long a whole run may take. " + _DURATION["description"]},
        "triggers": {"type": "array", "items": {"$ref": "#/$defs/trigger"}},
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
        "outputs": {
            "description": "What a run returns: a template or a mapping of templates (default: the output of the "
            "last step, or of each step nothing waits for).",
            "type": ["string", "object", "array"],
        },
    },
    "$defs": {"step": _STEP, "trigger": _TRIGGER, "gate_rule": _GATE_RULE},
}

WORKFLOW_FIELDS = frozenset(_WORKFLOW["properties"])
STEP_FIELDS = frozenset(_STEP["properties"])
LOOP_FIELDS = frozenset(_STEP["properties"]["loop"]["properties"])
RETRY_FIELDS = frozenset(_STEP["properties"]["retry"]["anyOf"][1]["properties"])


def field_description(name: str, *, step: bool = True) -> str:
    props = _STEP["properties"] if step else _WORKFLOW["properties"]
    return str(props.get(name, {}).get("description", ""))


def _templatable(schema: Any) -> Any:
    """An argument schema that also accepts template strings wherever a value goes (editors cannot
    know what a template will produce)."""
    if not isinstance(schema, dict):
        return schema
    out = copy.deepcopy(schema)
    props = out.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            props[name] = {"anyOf": [sub, {"type": "string", "pattern": TEMPLATE_PATTERN}]}
    return out


def workflow_schema(registry: StepTypes | None = None) -> dict[str, Any]:
    """The JSON Schema of workflow files, with each registered kind's ``with:`` arguments."""
    from ._registry import default_registry

    reg = registry if registry is not None else default_registry
    schema = copy.deepcopy(_WORKFLOW)
    step = schema["$defs"]["step"]
    names = reg.names()
    step["properties"]["uses"]["anyOf"] = [
        {"enum": names},
        {"pattern": PYTHON_REF_PATTERN},
        {"pattern": r"^[a-z][a-z0-9_-]*$"},
    ]
    rules = []
    for t in reg:
        args = _templatable(dict(t.args))
        if t.description:
            args.setdefault("description", t.description)
        rules.append(
            {
                "if": {"properties": {"uses": {"const": t.name}}, "required": ["uses"]},
                "then": {"properties": {"with": args}},
            }
        )
    if rules:
        step["allOf"] = rules
    return schema


def published_registry() -> StepTypes:
    """What the published schema describes: the built-in kinds and those Podium itself ships as
    plug-ins (the model steps), not whatever other plug-ins this environment has."""
    from importlib.metadata import entry_points

    from ._registry import ENTRY_POINT_GROUP, StepType, builtin_step_types

    registry = StepTypes(builtin_step_types(), entry_points=False)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None and dist.name == "podium" and ep.name not in registry.names():
            try:
                obj = ep.load()
            except ImportError as exc:  # an install out of step with its metadata: say so, go on
                import logging

                logging.getLogger("podium.yaml").warning(
                    "step kind %r (%s) cannot be loaded: %s; reinstall Podium (pip install -e .)", ep.name, ep.value, exc
                )
                continue
            if isinstance(obj, StepType):
                registry.add(obj)
    return registry


def schema_text(registry: StepTypes | None = None) -> str:
    """The JSON Schema as text; by default the published one (see :func:`published_registry`)."""
    reg = registry if registry is not None else published_registry()
    return json.dumps(workflow_schema(reg), indent=2, ensure_ascii=False) + "\n"
