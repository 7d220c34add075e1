"""API version changes seen in answers: ``Deprecation``/``Sunset`` headers (RFC 9745, RFC 8594),
``Link: <...>; rel="successor-version"``, and HTTP 410 Gone.

A deprecated operation still works: the call succeeds, a warning is logged once per connector and
operation, and a ``connector.deprecated`` audit entry is written (an alert rule of kind
``connector_api_change`` sends it on). A 410, or a 404 on an operation whose new version was
announced, is the end of that version: a non-retryable :class:`~podium.ConnectorError` that names
the operation, what the server said, and how to fix it, audited as ``connector.gone``. Being
non-retryable, it neither loops in retries nor opens the breaker.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConnectorError

log = logging.getLogger("podium.connectors")

_SUCCESSOR = re.compile(r'<([^>]*)>\s*;[^,]*rel="?(?:successor-version|latest-version)"?', re.I)


@dataclass(kw_only=True, slots=True)
class ApiNotices:
    """What one connector object has heard of its API's versions (``connector.api_notices``)."""

    deprecated: dict[str, dict[str, str]] = field(default_factory=dict)
    """Operation -> what its answers said (``deprecation``, ``sunset``, ``successor``)."""
    gone: dict[str, str] = field(default_factory=dict)
    """Operation -> the last 'gone' message."""
    pending: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=64))
    """Audit entries not written yet (the next call made inside a run writes them)."""


def notices(connector: Any) -> ApiNotices:
    found: ApiNotices | None = connector.__dict__.get("_api_notices")
    if found is None:
        found = connector.__dict__["_api_notices"] = ApiNotices()
    return found


def successor(headers: Mapping[str, str]) -> str:
    """The ``successor-version`` (or ``latest-version``) link of an answer, or ''."""
    found = _SUCCESSOR.search(headers.get("link", "") or "")
    return found.group(1) if found else ""


def note_deprecation(connector: Any, operation: str, headers: Mapping[str, str], where: str) -> None:
    """Remember a ``Deprecation``/``Sunset`` answer; warn and queue an audit entry the first time."""
    deprecation, sunset, link = headers.get("deprecation", ""), headers.get("sunset", ""), successor(headers)
    if not (deprecation or sunset):
        return
    state = notices(connector)
    first = operation not in state.deprecated
    state.deprecated[operation] = {"deprecation": deprecation, "sunset": sunset, "successor": link}
    if not first:
        return
    text = (
        f"{where}: the API marks {operation} deprecated"
        + (f" (Deprecation: {deprecation})" if deprecation else "")
        + (f"; it stops working at {sunset}" if sunset else "")
        + (f"; its successor is {link}" if link else "")
        + ": update the connector's spec/base_url to the new version before then"
    )
    log.warning(text)
    state.pending.append({"action": "connector.deprecated", "operation": operation, "deprecation": deprecation, "sunset": sunset, "successor": link, "message": text})


def gone_error(
    connector: Any, operation: str, where: str, request: str, status: int, headers: Mapping[str, str], body: str
) -> ConnectorError | None:
    """The error for an answer that says this version of ``operation`` is gone, or None. ``request``
    names the route (``GET /contacts/{id}``), never the URL with the call's arguments in it."""
    state = notices(connector)
    link = successor(headers) or state.deprecated.get(operation, {}).get("successor", "")
    if status != 410 and not (status == 404 and link):  # a plain 404 is a missing record, not a version
        return None
    said = " ".join(body[:400].split())[:200] or "(no body)"  # not the whole body split into words

    def told(server: str) -> str:
        return (
            f"{where}: {operation} ({request}) answered HTTP {status}"
            + (" Gone" if status == 410 else " on an operation whose new version was announced")
            + server
            + (f"; the new version is at {link}" if link else "")
            + ". This version of the API is retired: update the connector's OpenAPI document (spec) and base_url "
            "to the new version (podium connectors add NAME openapi --set spec=... --set base_url=...); "
            "retrying will not help"
        )

    # The log, the audit log (never erased) and the alerts it feeds get no value: ``request`` is the
    # route (its template), and what the server said (it may echo the call's data) stays in the error.
    text = told("")
    if state.gone.get(operation) != text:
        log.error(text)
        state.pending.append({"action": "connector.gone", "operation": operation, "status": status, "successor": link, "message": text})
    state.gone[operation] = text
    return ConnectorError(told(f": the server said {said!r}"), retryable=False, operation=operation, status=status)


async def flush(connector: Any, scope: Any, name: str) -> None:
    """Write the queued ``connector.deprecated``/``connector.gone`` entries through ``scope``'s audit."""
    found: ApiNotices | None = connector.__dict__.get("_api_notices")
    gov = getattr(scope, "governance", None)
    if found is None or not found.pending or gov is None:
        return
    while found.pending:
        entry = dict(found.pending.popleft())
        await gov.audit(entry.pop("action"), workflow=gov.workflow, step=scope.step_id, connector=name, **entry)
