"""Observability for Podium: OpenTelemetry traces, structured JSON logs, and alerts.

Everything here listens to a :class:`podium.Client` (its events and audit entries); the engine
does not depend on it. OpenTelemetry is imported only by :func:`instrument` and
:func:`tracer_provider` (``pip install 'podium[otel]'``).

>>> from podium.telemetry import instrument, configure_logging, Alerts, AlertRule, Webhook
>>> instrument(client)                                   # spans to the global tracer provider
>>> configure_logging("json")                            # one JSON object per log line
>>> alerts = Alerts([AlertRule(name="failures", kind="run_failed")], [Webhook(url="https://...")])
>>> alerts.attach(client); await alerts.start()
"""

from ._alerts import KINDS, Alert, AlertRule, Alerts
from ._channels import Channel, DeliveryError, Email, Webhook
from ._config import AlertsFileError, alerts_from_dict, load_alerts
from ._logs import JsonFormatter, RunLog, configure_logging, log_runs, redact
from ._setup import Telemetry, start_telemetry, tracer_provider
from ._tracing import Tracing, instrument

__all__ = [
    "KINDS",
    "Alert",
    "AlertRule",
    "Alerts",
    "AlertsFileError",
    "Channel",
    "DeliveryError",
    "Email",
    "JsonFormatter",
    "RunLog",
    "Telemetry",
    "Tracing",
    "Webhook",
    "alerts_from_dict",
    "configure_logging",
    "instrument",
    "load_alerts",
    "log_runs",
    "redact",
    "start_telemetry",
    "tracer_provider",
]
