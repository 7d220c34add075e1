"""Broker triggers in a workflow file: start a run per message of a registered broker connector::

    triggers:
      - nats: {connector: bus, stream: ORDERS, subject: orders.created}
      - redis: {connector: cache, stream: orders}
      - amqp: {connector: rabbit, queue: orders}
      - mqtt: {connector: plant, topic: "plant/+/alarms"}

The settings are checked when the file is read (:func:`podium.connectors._sources.check_source`), and
the connector's name against the capability registry (deny by default: ``podium connectors add``),
with its kind, when a registry is given; the server checks it again before it consumes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..connectors._sources import BROKER_KINDS, check_source
from ..errors import ConfigError
from ._source import Span, YMap, YSeq, value_span


def check_broker(kind: str, value: Any, span: Span) -> list[tuple[Span, str, str | None]]:
    """Problems of one ``kind: {...}`` trigger's settings."""
    example = {"nats": "stream: ORDERS", "redis": "stream: orders", "amqp": "queue: orders", "mqtt": "topic: plant/#"}[kind]
    if not isinstance(value, Mapping):
        return [(span, f"a {kind} trigger is a mapping of settings", f"{kind}: {{connector: NAME, {example}}}")]
    name = value.get("connector")
    where = value_span(value, "connector") if isinstance(value, YMap) and "connector" in value else span
    if not isinstance(name, str) or not name:
        return [(where, f"a {kind} trigger names its connector (a registered name)", f"{kind}: {{connector: NAME, {example}}}")]
    if "{{" in name:
        return [(where, f"a {kind} trigger's connector cannot be a template: write the registered name", None)]
    try:
        check_source(kind, dict(value), name="workflow")
    except ConfigError as exc:
        return [(span, str(exc), None)]
    return []


def registry_problems(doc: YMap, capabilities: Mapping[str, Any]) -> list[tuple[Span, str, str | None]]:
    """The broker triggers of ``doc`` whose connector is not registered, or not of that kind."""
    from ..governance.capabilities import add_command

    out: list[tuple[Span, str, str | None]] = []
    triggers = doc.get("triggers")
    if not isinstance(triggers, YSeq):
        return out
    for t in triggers:
        for kind in BROKER_KINDS:
            value = t.get(kind) if isinstance(t, YMap) else None
            if not isinstance(value, YMap) or not isinstance(value.get("connector"), str):
                continue
            name = value["connector"]
            span = value_span(value, "connector")
            cap = capabilities.get(name)
            if cap is None:
                out.append(
                    (span, f"connector {name!r} is not registered", f"an admin adds it with {add_command(name, 'connector', kind + ' --set url_env=BROKER_URL')}")
                )
            elif cap.kind != "connector" or cap.target.get("kind") != kind:
                got = cap.target.get("kind") if cap.kind == "connector" else cap.kind
                out.append((span, f"{name!r} is registered as a {got} connector, not {kind}", None))
    return out
