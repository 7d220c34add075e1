"""Alert rules and channels from a YAML or JSON file (``podium serve --alerts alerts.yaml``).

.. code-block:: yaml

    poll_interval: 30            # seconds between checks of open approvals and running runs
    channels:
      ops:
        type: webhook
        url: https://hooks.example.com/podium
        headers: {Authorization: "Bearer ${OPS_HOOK_TOKEN}"}
      oncall:
        type: email
        host: smtp.example.com
        port: 587
        starttls: true
        sender: podium@example.com
        to: [oncall@example.com]
        username: podium
        password: ${SMTP_PASSWORD}
    rules:
      - {name: failures, kind: run_failed, workflow: "billing-*", channels: [ops, oncall], severity: critical}
      - {name: slow-runs, kind: latency_slo, seconds: 300}

``${VAR}`` is replaced by the environment variable ``VAR``, so secrets stay out of the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._alerts import AlertRule, Alerts
from ._channels import Email, Webhook, channel_from_dict

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP = ("channels", "rules", "poll_interval")


class AlertsFileError(ConfigError):
    """An alerts file that cannot be used: the message names the file, the field and the fix."""


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "name" or cls is AlertRule]


def _expand(value: Any, where: str, fail: Any) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in os.environ:
                fail(where, f"environment variable {var} is not set; export it or write the value")
            return os.environ[var]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", fail) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", fail) for i, v in enumerate(value)]
    return value


def alerts_from_dict(spec: Any, source: str = "alerts") -> Alerts:
    """An :class:`Alerts` manager from a parsed alerts file (see the module docs for the format)."""

    def fail(where: str, problem: str) -> None:
        raise AlertsFileError(f"{source}: {where}: {problem}")

    if not isinstance(spec, dict):
        fail("top level", "must be a mapping with 'rules' (and 'channels'); see docs/observability.md")
    for key in spec:
        if key not in _TOP:
            fail(str(key), f"unknown key; the file may have: {', '.join(_TOP)}")
    channels = []
    raw_channels = spec.get("channels") or {}
    if not isinstance(raw_channels, dict):
        fail("channels", "must map channel names to settings, e.g. 'ops: {type: webhook, url: https://...}'")
    for name, ch in raw_channels.items():
        where = f"channels.{name}"
        if not isinstance(ch, dict):
            fail(where, "must be a mapping with 'type: webhook' or 'type: email'")
        kind = ch.get("type")
        if kind not in ("webhook", "email"):
            fail(f"{where}.type", f"must be 'webhook' or 'email', got {kind!r}")
        cls = Webhook if kind == "webhook" else Email
        allowed = [f for f in _fields(cls) if f != "name"]
        for key in ch:
            if key != "type" and key not in allowed:
                fail(f"{where}.{key}", f"unknown field for a {kind} channel; allowed: {', '.join(allowed)}")
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and f.name not in ch
        ]
        if missing:
            fail(where, f"{'an' if kind == 'email' else 'a'} {kind} channel needs {', '.join(missing)}")
        try:
            channels.append(channel_from_dict(str(name), _expand(ch, where, fail)))
        except (TypeError, ValueError, ConfigError) as exc:
            fail(where, str(exc))
    rules = []
    raw_rules = spec.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        fail("rules", "must be a non-empty list of rules, e.g. '- {name: failures, kind: run_failed}'")
    allowed = _fields(AlertRule)
    for i, r in enumerate(raw_rules):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            fail(where, "must be a mapping with at least name and kind")
        if "name" in r:
            where = f"rules[{i}] ({r['name']})"
        for key in r:
            if isinstance(key, bool):  # YAML reads on/off/yes/no unquoted as true/false
                fail(where, f"a key reads as {str(key).lower()} (YAML takes on, off, yes and no unquoted as booleans): "
                     f"quote it, or use the field you meant; a rule may have: {', '.join(allowed)}")
            if key not in allowed:
                fail(f"{where}.{key}", f"unknown field; a rule may have: {', '.join(allowed)}")
        for key in ("name", "kind"):
            if key not in r:
                fail(where, f"needs '{key}'")
        if isinstance(r.get("channels"), str):
            r = {**r, "channels": [r["channels"]]}
        for num in ("seconds", "cooldown"):
            if num in r and (isinstance(r[num], bool) or not isinstance(r[num], int | float)):
                fail(f"{where}.{num}", f"must be a number of seconds, got {r[num]!r}")
        try:
            rules.append(AlertRule(**r))
        except (TypeError, ConfigError) as exc:
            fail(where, str(exc))
    interval = spec.get("poll_interval", 30.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        fail("poll_interval", f"must be a number of seconds > 0, got {interval!r}")
    try:
        return Alerts(rules, channels, poll_interval=float(interval))
    except ConfigError as exc:
        fail("rules", str(exc))
    raise AssertionError("unreachable")


def load_alerts(path: str | os.PathLike[str]) -> Alerts:
    """An :class:`Alerts` manager from a YAML (``.yaml``/``.yml``) or JSON file. Raises
    :class:`AlertsFileError` naming the file, the field and how to fix it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertsFileError(f"{p}: cannot read the alerts file: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".json":
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AlertsFileError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        import yaml

        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise AlertsFileError(f"{p}{at}: not valid YAML: {problem}") from None
    return alerts_from_dict(spec, str(p))
