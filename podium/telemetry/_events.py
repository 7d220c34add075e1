"""Reading the engine's events without importing anything heavy: timings, errors, and what a durable
call logged (a model :class:`~podium.models.Response`, a tool result, a classification).

Payloads are read as plain JSON (dataclass tags kept), so a listener never imports user types.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..records import Event

RUN_ENDS = ("run_completed", "run_failed", "run_cancelled")
STEP_ENDS = ("step_completed", "step_failed", "step_retrying", "step_cancelled")
_MODEL_CALL = re.compile(r"^(llm|.+\.model)(-\d+)?$")


def data_of(ev: Event) -> dict[str, Any]:
    """The event's details as a dict (empty when there are none or they do not parse)."""
    if not ev.data:
        return {}
    try:
        value = json.loads(ev.data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def started_of(ev: Event, data: dict[str, Any]) -> float:
    """When the step attempt or call that ``ev`` ends started (the event's time if not recorded)."""
    value = data.get("started")
    return float(value) if isinstance(value, int | float) else ev.ts


def error_of(data: dict[str, Any]) -> dict[str, Any] | None:
    err = data.get("error")
    return err if isinstance(err, dict) else None


def _untag(value: Any) -> Any:
    """A ``{"$podium": "dataclass", "value": {...}}`` payload's fields, recursively."""
    if isinstance(value, dict):
        if value.get("$podium") in ("dataclass", "pydantic") and isinstance(value.get("value"), dict):
            return {k: _untag(v) for k, v in value["value"].items()}
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, dict) and value.get("$podium") in ("dataclass", "pydantic"):
        return str(value.get("type", "")).rpartition(":")[2]
    return ""


@dataclass(kw_only=True, slots=True)
class Call:
    """One durable call made inside a step (``step/name`` in the event log)."""

    name: str
    """The call's name within its step: ``llm``, ``agent.model-2``, ``tool.search``."""
    kind: str
    """``model``, ``tool``, ``classify``, ``wait`` or ``call`` (anything else)."""
    provider: str = ""
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    finish_reason: str | None = None
    tool: str = ""
    tool_call_id: str = ""
    ok: bool = True
    error: str | None = None
    trail: list[dict[str, Any]] = field(default_factory=list)


def call_of(name: str, data: dict[str, Any]) -> Call:
    """What a durable call logged, from its ``step_completed`` (or failure) details."""
    out = data.get("output")
    tname = _type_name(out)
    fields = _untag(out) if tname else {}
    if tname in ("Response", "Classification"):
        spec = str(fields.get("model") or "")
        provider, _, model = spec.partition(":") if ":" in spec else ("", "", spec)
        raw_usage = fields.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        cost = usage.get("cost")
        return Call(
            name=name,
            kind="model" if tname == "Response" else "classify",
            provider=provider,
            model=model,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cost=float(cost) if isinstance(cost, int | float) else None,
            finish_reason=fields.get("finish_reason") if tname == "Response" else None,
            trail=[t for t in fields.get("trail") or [] if isinstance(t, dict)],
        )
    if tname == "ToolResult":
        return Call(
            name=name,
            kind="tool",
            tool=str(fields.get("name") or name),
            tool_call_id=str(fields.get("call_id") or ""),
            ok=bool(fields.get("ok", True)),
            error=fields.get("error"),
            trail=[t for t in fields.get("trail") or [] if isinstance(t, dict)],
        )
    if name.startswith("signal:"):
        return Call(name=name, kind="wait")
    if name.startswith("tool."):
        return Call(name=name, kind="tool", tool=name.removeprefix("tool."))
    if _MODEL_CALL.match(name):
        return Call(name=name, kind="model")
    return Call(name=name, kind="call")


def workflow_of(client: Any, run_id: str) -> tuple[str, Any]:
    """The workflow name and run record of a run this client drives (``("?", None)`` otherwise)."""
    ex = client.driving.get(run_id) if client is not None else None
    if ex is None:
        return "?", None
    return ex.wf.name, ex.run
