"""Wiring telemetry into a process: a tracer provider with an exporter, and the server's start/stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ._tracing import INSTALL_HINT

log = logging.getLogger("podium.telemetry")


def tracer_provider(exporter: str = "auto", *, service_name: str = "podium") -> Any:
    """A tracer provider that batches spans to ``exporter``: ``otlp`` (OTLP over HTTP or gRPC, set up by
    the standard ``OTEL_EXPORTER_OTLP_*`` variables; needs ``opentelemetry-exporter-otlp``),
    ``console`` (stdout), or ``auto`` (OTLP if installed, else console). ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` are honoured."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    if exporter not in ("auto", "otlp", "console"):
        from ..errors import ConfigError

        raise ConfigError(f"trace exporter must be auto, otlp or console; got {exporter!r}")
    span_exporter: Any = None
    if exporter in ("auto", "otlp"):
        span_exporter = _otlp()
        if span_exporter is None and exporter == "otlp":
            raise ImportError(
                "the OTLP exporter is not installed; install it with: pip install opentelemetry-exporter-otlp"
            )
    if span_exporter is None:
        log.info("tracing: opentelemetry-exporter-otlp is not installed; spans go to the console")
        span_exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


def _otlp() -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            return None
    return OTLPSpanExporter()


@dataclass
class Telemetry:
    """What a server turned on: tracing, run logs and alerts. :meth:`stop` turns them off."""

    tracing: Any = None
    provider: Any = None
    run_log: Any = None
    alerts: Any = None
    _own_provider: bool = field(default=False, repr=False)

    async def stop(self) -> None:
        if self.alerts is not None:
            await self.alerts.stop()
        if self.run_log is not None:
            self.run_log.close()
        if self.tracing is not None:
            self.tracing.uninstrument()
        if self.provider is not None:
            if self._own_provider:
                self.provider.shutdown()  # flushes the spans still batched
            elif hasattr(self.provider, "force_flush"):
                self.provider.force_flush()


async def start_telemetry(client: Any, settings: Any) -> Telemetry:
    """Turn on what ``settings`` asks for (``otel``, ``alerts``, ``log_format``) on ``client``; run
    logs (logger ``podium.runs``) are always on."""
    from ._alerts import Alerts
    from ._config import load_alerts
    from ._logs import configure_logging, log_runs
    from ._tracing import instrument

    tel = Telemetry()
    if getattr(settings, "log_format", None):
        configure_logging(settings.log_format)
    tel.run_log = log_runs(client)
    otel = getattr(settings, "otel", None)
    if otel:
        if otel is True or isinstance(otel, str):
            tel.provider = tracer_provider("auto" if otel is True else otel)
            tel._own_provider = True
        else:
            tel.provider = otel  # a TracerProvider the caller made
        tel.tracing = instrument(client, tel.provider)
    spec = getattr(settings, "alerts", None)
    if spec:
        alerts = spec if isinstance(spec, Alerts) else load_alerts(spec)
        alerts.attach(client)
        await alerts.start()
        tel.alerts = alerts
    return tel
