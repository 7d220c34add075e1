"""The connector series of ``/metrics``: every connector the server's client holds or its store
has registered (see :mod:`podium.connectors._health`). Counters and the latency histogram are this
process's; the breaker, credential expiry and quarantine depth are read at scrape time. Nothing is
probed on a scrape (that is ``podium connectors status`` and the dashboard's Connectors page)."""

from __future__ import annotations

import time
from typing import Any


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    """Prometheus labels (the same escaping as metrics.py, which imports this module)."""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), chr(92) + "n")}"' for k, v in labels)
    return "{" + inner + "}" if labels else ""

_HELP = {
    "podium_connector_calls_total": ("counter", "Attempts sent to the connector's system (each retry counts)."),
    "podium_connector_errors_total": ("counter", "Attempts that failed."),
    "podium_connector_retries_total": ("counter", "Attempts retried after a retryable failure."),
    "podium_connector_breaker_open": ("gauge", "1 while the connector's circuit breaker is open or half-open."),
    "podium_connector_token_expiry_seconds": ("gauge", "Seconds until the connector's credential expires."),
    "podium_connector_token_refreshes_total": ("counter", "Credentials fetched or refreshed."),
    "podium_connector_drift_total": ("counter", "Responses or events that did not match the operation's contract."),
    "podium_connector_quarantine_depth": ("gauge", "Items of the connector waiting in the quarantine."),
    "podium_outbox_messages": ("gauge", "Messages in a database's transactional outbox, by status."),
}
_LATENCY = "podium_connector_latency_seconds"


async def connector_lines(client: Any) -> list[str]:
    """The Prometheus text lines of every connector of ``client``."""
    from ..connectors._health import connectors_of, quarantine_depth

    found = {n: c for n, c in (await connectors_of(client)).items() if not isinstance(c, Exception)}
    if not found:
        return []
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    latency: list[str] = []
    now = time.time()
    for name, conn in sorted(found.items()):
        labels = (("connector", name), ("kind", conn.kind))
        snap = conn.stats.snapshot()
        series["podium_connector_calls_total"].append(f"podium_connector_calls_total{_labels(labels)} {snap['calls']}")
        series["podium_connector_errors_total"].append(f"podium_connector_errors_total{_labels(labels)} {snap['errors']}")
        series["podium_connector_retries_total"].append(f"podium_connector_retries_total{_labels(labels)} {snap['retries']}")
        state = conn.breaker.state
        series["podium_connector_breaker_open"].append(
            f"podium_connector_breaker_open{_labels((*labels, ('state', state)))} {0 if state == 'closed' else 1}"
        )
        if snap["token_expires_at"] is not None:
            series["podium_connector_token_expiry_seconds"].append(
                f"podium_connector_token_expiry_seconds{_labels(labels)} {snap['token_expires_at'] - now:.1f}"
            )
        series["podium_connector_token_refreshes_total"].append(
            f"podium_connector_token_refreshes_total{_labels(labels)} {snap['token_refreshes']}"
        )
        series["podium_connector_drift_total"].append(f"podium_connector_drift_total{_labels(labels)} {snap['drifted']}")
        depth = await quarantine_depth(getattr(client, "store", None), name)
        series["podium_connector_quarantine_depth"].append(f"podium_connector_quarantine_depth{_labels(labels)} {depth}")
        for le, count in snap["latency_buckets"].items():
            latency.append(f"{_LATENCY}_bucket{_labels((*labels, ('le', le)))} {count}")
        latency += [f"{_LATENCY}_sum{_labels(labels)} {snap['latency_sum']:g}", f"{_LATENCY}_count{_labels(labels)} {snap['calls']}"]
        series["podium_outbox_messages"] += await _outbox(name, conn)
    lines: list[str] = []
    for name, rows in series.items():
        if rows:
            kind, text = _HELP[name]
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *rows]
    lines += [f"# HELP {_LATENCY} Connector call latency (each attempt).", f"# TYPE {_LATENCY} histogram", *latency]
    return lines


async def _outbox(name: str, conn: Any) -> list[str]:
    """Outbox depth of a sql connector whose outbox this process uses (nothing is created here)."""
    if getattr(conn, "kind", "") != "sql" or not getattr(conn, "outbox_in_use", False):
        return []
    try:
        counts = await conn.outbox_counts()
    except Exception:  # the database is down: the connector's own figures say so
        return []
    return [
        f"podium_outbox_messages{_labels((('connector', name), ('status', s)))} {n}" for s, n in sorted(counts.items())
    ]
