"""The connector families of ``/metrics``: every connector the server's client holds or its store
has registered (see :mod:`podium.connectors._health`). Counters and the latency histogram are this
process's; the breaker, credential expiry and quarantine depth are read at scrape time. Nothing is
probed on a scrape (that is ``podium connectors status`` and the dashboard's Connectors page)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

_LABELS = ["connector", "kind"]


async def connector_families(client: Any) -> list[Metric]:
    """The Prometheus families of every connector of ``client`` (none when it has no connector)."""
    from ..connectors._health import connectors_of, quarantine_depth

    found = {n: c for n, c in (await connectors_of(client)).items() if not isinstance(c, Exception)}
    if not found:
        return []
    calls = CounterMetricFamily(
        "podium_connector_calls", "Attempts sent to the connector's system (each retry counts).", labels=_LABELS
    )
    errors = CounterMetricFamily("podium_connector_errors", "Attempts that failed.", labels=_LABELS)
    retries = CounterMetricFamily(
        "podium_connector_retries", "Attempts retried after a retryable failure.", labels=_LABELS
    )
    breaker = GaugeMetricFamily(
        "podium_connector_breaker_open",
        "1 while the connector's circuit breaker is open or half-open.",
        labels=[*_LABELS, "state"],
    )
    expiry = GaugeMetricFamily(
        "podium_connector_token_expiry_seconds", "Seconds until the connector's credential expires.", labels=_LABELS
    )
    refreshes = CounterMetricFamily(
        "podium_connector_token_refreshes", "Credentials fetched or refreshed.", labels=_LABELS
    )
    drift = CounterMetricFamily(
        "podium_connector_drift", "Responses or events that did not match the operation's contract.", labels=_LABELS
    )
    depth = GaugeMetricFamily(
        "podium_connector_quarantine_depth", "Items of the connector waiting in the quarantine.", labels=_LABELS
    )
    latency = HistogramMetricFamily(
        "podium_connector_latency_seconds", "Connector call latency (each attempt).", labels=_LABELS
    )
    outbox = GaugeMetricFamily(
        "podium_outbox_messages", "Messages in a database's transactional outbox, by status.", labels=["connector", "status"]
    )
    now = time.time()
    for name, conn in sorted(found.items()):
        labels = [name, conn.kind]
        snap = conn.stats.snapshot()
        calls.add_metric(labels, snap["calls"])
        errors.add_metric(labels, snap["errors"])
        retries.add_metric(labels, snap["retries"])
        state = conn.breaker.state
        breaker.add_metric([*labels, state], 0 if state == "closed" else 1)
        if snap["token_expires_at"] is not None:
            expiry.add_metric(labels, snap["token_expires_at"] - now)
        refreshes.add_metric(labels, snap["token_refreshes"])
        drift.add_metric(labels, snap["drifted"])
        depth.add_metric(labels, await quarantine_depth(getattr(client, "store", None), name))
        latency.add_metric(labels, list(snap["latency_buckets"].items()), sum_value=snap["latency_sum"])
        for status, n in await _outbox(conn):
            outbox.add_metric([name, status], n)
    families: list[Metric] = [calls, errors, retries, breaker, expiry, refreshes, drift, depth, latency, outbox]
    return [f for f in families if f.samples]


async def _outbox(conn: Any) -> list[tuple[str, int]]:
    """Outbox depth of a sql connector whose outbox this process uses (nothing is created here)."""
    if getattr(conn, "kind", "") != "sql" or not getattr(conn, "outbox_in_use", False):
        return []
    try:
        counts = await conn.outbox_counts()
    except Exception:  # the database is down: the connector's own figures say so
        return []
    return sorted(counts.items())
