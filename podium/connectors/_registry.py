"""The kinds of connector, and :func:`open_connector`: a connector from a kind and its settings.

A kind is registered as a factory, or as ``"package.module:Class"`` text imported on first use, so
that listing kinds imports no client library::

    register_kind("crm", "my_package.crm:CrmConnector")
    crm = open_connector("crm", base_url="https://crm.example.com")
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError, install_hint
from ._base import Connector
from ._contracts import Contracts

Factory = Callable[..., Connector]

_KINDS: dict[str, Factory | str] = {
    "sql": "podium.connectors.sql:SqlConnector",
    "openapi": "podium.connectors.openapi:OpenApiConnector",
    "nats": "podium.connectors.broker_nats:NatsConnector",
    "redis": "podium.connectors.broker_redis:RedisConnector",
    "amqp": "podium.connectors.broker_amqp:AmqpConnector",
    "mqtt": "podium.connectors.broker_mqtt:MqttConnector",
    "smtp": "podium.connectors.smtp:SmtpConnector",
    "webhook": "podium.connectors.webhook:WebhookConnector",
}
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def register_kind(kind: str, factory: Factory | str, *, replace: bool = False) -> None:
    """Add a kind of connector: ``factory(**settings)`` returns a :class:`Connector` (a class works),
    or ``"package.module:Class"`` names one, imported when first opened."""
    if not _KIND.match(kind):
        raise ConfigError(f"connector kind {kind!r}: use lowercase letters, digits, '_' and '-'")
    if kind in _KINDS and not replace:
        raise ConfigError(f"connector kind {kind!r} is already registered; pass replace=True to override it")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise ConfigError(f"connector kind {kind!r}: the factory must be callable or 'package.module:Class'")
    _KINDS[kind] = factory


def available_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(_KINDS)


def factory(kind: str) -> Factory:
    """The factory of ``kind`` (importing it if it was registered by name)."""
    found = _KINDS.get(kind)
    if found is None:
        raise ConfigError(f"unknown connector kind {kind!r}; kinds are: {', '.join(available_kinds())}")
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        try:
            found = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise ConfigError(
                f"the {kind} connector needs a library that is not installed ({exc.name}): "
                f"{install_hint('connectors')}"
            ) from exc
        _KINDS[kind] = found
    assert callable(found)
    return found


def open_connector(kind: str, **settings: Any) -> Connector:
    """A connector of ``kind`` built from ``settings`` (not yet connected: it connects on first use,
    or ``await connector.open()``)::

        db = open_connector("sql", url="postgresql://app@db/crm")
        crm = open_connector("openapi", spec="crm.yaml", base_url="https://crm.example.com")

    Every kind also takes ``contracts`` (``{operation: pydantic model | JSON Schema | file}``),
    ``mappings`` (``{operation: field mapping}`` or a YAML file) and ``on_drift`` (``park``, ``fail``
    or ``skip``, or ``{operation: policy, "*": default}``): see docs/connectors.md.
    """
    drift = {k: settings.pop(k) for k in ("contracts", "mappings", "on_drift") if k in settings}
    connector = factory(kind)(**settings)
    if not isinstance(connector, Connector):
        raise ConfigError(f"the {kind} connector factory returned a {type(connector).__name__}, not a Connector")
    if drift:
        declared = drift.get("contracts")
        if isinstance(declared, str):  # a file of {operation: schema}
            declared = _schema_file(declared)
        connector.contracts = Contracts(declared=declared, mappings=drift.get("mappings"), on_drift=drift.get("on_drift", "park"))
    return connector


def _schema_file(path: str) -> dict[str, Any]:
    import os

    import yaml

    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the contracts file {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a contracts file maps each operation to its JSON Schema")
    return data
#: Kinds whose factory takes ``allow_private`` (the capability's flag is passed to them).
PRIVATE_AWARE = {"openapi", "webhook"}
_OPENED: dict[str, tuple[str, Connector]] = {}


def open_registered(target: Mapping[str, Any], *, allow_private: bool = False, name: str = "") -> Connector:
    """The connector a registered capability describes (``{"kind": "sql", "url_env": "ORDERS_DB"}``),
    opened once per process and settings, so that every run, the outbox relay and the health report
    share one object (and its breaker and figures). ``url_env`` names the environment variable that
    holds the URL (the registry is readable by workflow readers, so it never holds a secret)."""
    key = json.dumps([dict(target), allow_private], sort_keys=True, default=str)
    found = _OPENED.get(key)
    if found is None:
        settings = {k: v for k, v in target.items() if k != "kind"}
        env = settings.pop("url_env", None)
        if env:
            if not os.environ.get(str(env)):
                raise ConfigError(
                    f"connector {name or target.get('kind')!r}: its URL is in the environment variable {env}, "
                    "which is not set in this process"
                )
            settings["url"] = os.environ[str(env)]
        if target.get("kind") in PRIVATE_AWARE:
            settings["allow_private"] = allow_private
        try:
            found = (name, open_connector(str(target.get("kind")), **settings))
        except ConfigError as exc:
            if not env:
                raise
            raise ConfigError(_without_url(str(exc), settings["url"], name or str(target.get("kind")), str(env))) from None
        _OPENED[key] = found
    return found[1]


def _without_url(message: str, url: str, name: str, env: str) -> str:
    """A connector's settings error without the URL it quotes (the URL from ``url_env`` may hold a
    password, and health reports show errors to every workflow reader), saying where the URL is."""
    for text in sorted({url, repr(url), json.dumps(url)}, key=len, reverse=True):
        message = message.replace(text, f"<the URL in ${env}>")
    return f"connector {name!r}: {message} (fix the URL in the environment variable {env})"


def opened_registered() -> dict[str, Connector]:
    """The registered connectors this process has opened, by capability name."""
    return {name: c for name, c in _OPENED.values() if name}
