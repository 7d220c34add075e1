"""The settings of a broker trigger (where its messages come from), checked without any client
library: the workflow-file validator and the consumers share these checks.

=====  ==========================================================================================
kind   settings
=====  ==========================================================================================
nats   ``stream`` (required), ``subject`` (a filter), ``durable`` (the consumer's name),
       ``deliver`` (``new``/``all``), ``ack_wait`` (seconds before an unacknowledged message returns)
redis  ``stream`` (required), ``group``, ``consumer``, ``deliver`` (``new``/``all``),
       ``claim_idle`` (seconds before another consumer's unacknowledged entry is taken over)
amqp   ``queue`` (required, declared by the admin), ``prefetch``
mqtt   ``topic`` (a filter, required), ``session`` (the persistent session's client id), ``qos``
=====  ==========================================================================================

Every kind also takes ``connector`` (the registered connector's name), ``envelope`` (the run input
is ``{key, source, payload, headers}`` instead of the payload), ``batch`` (messages per receive) and
``max_message_bytes`` (a larger message is a dead letter, unread: default 1 MiB).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError

BROKER_KINDS = ("nats", "redis", "amqp", "mqtt")
COMMON = frozenset({"connector", "envelope", "batch", "max_message_bytes"})
MAX_MESSAGE_BYTES = 1024 * 1024
"""A message's body, at most, unless the trigger sets ``max_message_bytes`` (what Podium publishes at most)."""
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_NATS_SUBJECT = re.compile(r"^[^\s\x00]+$")

FIELDS: dict[str, dict[str, str]] = {
    "nats": {"stream": "required", "subject": "", "durable": "", "deliver": "", "ack_wait": ""},
    "redis": {"stream": "required", "group": "", "consumer": "", "deliver": "", "claim_idle": ""},
    "amqp": {"queue": "required", "prefetch": ""},
    "mqtt": {"topic": "required", "session": "", "qos": ""},
}


def check_source(kind: str, source: dict[str, Any], *, name: str) -> dict[str, Any]:
    """``source`` checked, with defaults filled in; ``name`` is the default consumer name (durable,
    group, session). Raises :class:`~podium.ConfigError` naming the field and how to fix it."""
    if kind not in FIELDS:
        raise ConfigError(f"{kind!r} is not a broker kind; use one of {', '.join(BROKER_KINDS)}")
    if not isinstance(source, dict):
        raise ConfigError(f"a {kind} trigger is a mapping of settings, got {type(source).__name__}")
    fields = FIELDS[kind]
    extra = sorted(k for k in source if k not in fields and k not in COMMON and k != "workflow")
    if extra:
        raise ConfigError(
            f"a {kind} trigger has unknown field(s) {', '.join(map(str, extra))}; its fields are: "
            + ", ".join(sorted(set(fields) | COMMON))
        )
    out = dict(source)
    for f, need in fields.items():
        if need and not isinstance(source.get(f), str):
            raise ConfigError(f"a {kind} trigger needs `{f}` (text), got {source.get(f)!r}")
    for f in ("stream", "durable", "group", "consumer", "queue", "session"):
        if f in fields and f in out and not (isinstance(out[f], str) and _NAME.match(out[f])):
            raise ConfigError(
                f"a {kind} trigger's `{f}` {out[f]!r} is not a name: use letters, digits, '_', '.' and '-'"
            )
    if kind == "nats":
        out.setdefault("durable", _safe(name))
        if "subject" in out and not (isinstance(out["subject"], str) and _NATS_SUBJECT.match(out["subject"])):
            raise ConfigError(f"a nats trigger's `subject` {out['subject']!r} must be a subject without spaces")
        out["ack_wait"] = _seconds(kind, out, "ack_wait", 30.0)
    elif kind == "redis":
        out.setdefault("group", _safe(name))
        out["claim_idle"] = _seconds(kind, out, "claim_idle", 30.0)
    elif kind == "amqp":
        out["prefetch"] = _count(kind, out, "prefetch", 10)
    else:
        topic = out["topic"]
        if "\x00" in topic or len(topic.encode()) > 65535 or topic.startswith("$"):
            raise ConfigError(f"an mqtt trigger's `topic` {topic!r} is not a topic filter (no NUL, not $SYS)")
        out.setdefault("session", _safe(name))
        qos = out.setdefault("qos", 1)
        if qos not in (1, 2):
            raise ConfigError(f"an mqtt trigger's `qos` must be 1 or 2 (0 may lose messages), got {qos!r}")
    if kind in ("nats", "redis"):
        deliver = out.setdefault("deliver", "new")
        if deliver not in ("new", "all"):
            raise ConfigError(
                f"a {kind} trigger's `deliver` is 'new' (messages from now on) or 'all' (from the first), got {deliver!r}"
            )
    out["batch"] = _count(kind, out, "batch", 10)
    size = out.setdefault("max_message_bytes", MAX_MESSAGE_BYTES)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 2**31:
        raise ConfigError(
            f"a {kind} trigger's `max_message_bytes` is a whole number of bytes from 1 to 2**31, got {size!r} "
            f"(default {MAX_MESSAGE_BYTES:,})"
        )
    if not isinstance(out.get("envelope", False), bool):
        raise ConfigError(f"a {kind} trigger's `envelope` is true or false, got {out['envelope']!r}")
    return out


def _safe(name: str) -> str:
    """A consumer name brokers accept, from a workflow name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"podium-{name}")[:120]


def _seconds(kind: str, source: dict[str, Any], field: str, default: float) -> float:
    value = source.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86_400:
        raise ConfigError(f"a {kind} trigger's `{field}` is seconds (0 < n <= 86400), got {value!r}")
    return float(value)


def _count(kind: str, source: dict[str, Any], field: str, default: int) -> int:
    value = source.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ConfigError(f"a {kind} trigger's `{field}` is a whole number from 1 to 1000, got {value!r}")
    return value
