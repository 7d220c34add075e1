"""Structured logs: one JSON object per line, and a log line per run end and step failure.

>>> configure_logging(format="json", level="INFO")
{"ts": "2026-11-23T20:41:07.120Z", "level": "ERROR", "logger": "podium.runs", "message": "run 0193... of orders failed ...", "run_id": "0193...", "workflow": "orders", ...}
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys
from typing import Any, TextIO

from ..records import Event
from ._events import RUN_ENDS, data_of, error_of, started_of, workflow_of

FORMATS = ("text", "json")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
def redact(text: str) -> str:
    """``text`` with API tokens, bearer credentials, ``?token=`` query values and the values of
    ``password=``/``"api_key": "..."`` pairs masked (podium.secret)."""
    from ..secret import redact as _redact

    return _redact(text)


def _clean(key: str, value: Any) -> Any:
    from ..secret import MASK, Secret, is_secret_key

    if isinstance(value, Secret) or (key and is_secret_key(key)):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean("", v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line.

    Fields: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, then
    ``run_id``, ``step_id``, ``workflow`` and any other ``extra=`` fields the record carries, and
    ``exception`` (the formatted traceback, as a string) when there is one. Tokens, passwords and
    bearer credentials are masked in messages and fields.
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.UTC)
        out: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(key, value)
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """The text format, with the same masking of secrets as :class:`JsonFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_HANDLER_FLAG = "_podium_handler"


def configure_logging(
    format: str | None = None, level: str | int | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as text or one JSON object per line.

    ``format`` defaults to ``$PODIUM_LOG_FORMAT``, else ``text``; ``level`` to ``$PODIUM_LOG_LEVEL``,
    else ``INFO``. Calling it again replaces the handler it installed before. Returns the handler.
    """
    from ..errors import ConfigError

    if format is None and not os.environ.get("PODIUM_LOG_FORMAT"):
        from ..settings import setting

        format = setting("log_format")
    fmt = (format or os.environ.get("PODIUM_LOG_FORMAT") or "text").lower()
    if fmt not in FORMATS:
        raise ConfigError(
            f"log format must be 'text' or 'json', got {fmt!r} (check --log-format or PODIUM_LOG_FORMAT)"
        )
    if level is None and not os.environ.get("PODIUM_LOG_LEVEL"):
        from ..settings import setting

        level = setting("log_level")
    lvl = level if level is not None else os.environ.get("PODIUM_LOG_LEVEL") or "INFO"
    if isinstance(lvl, str):
        name = {"TRACE": "DEBUG", "WARN": "WARNING"}.get(lvl.upper(), lvl.upper())  # uvicorn's names too
        if not isinstance(logging.getLevelName(name), int):
            raise ConfigError(f"unknown log level {lvl!r}; use debug, info, warning, error or critical")
        lvl = logging.getLevelName(name)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    setattr(handler, _HANDLER_FLAG, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(lvl)
    from ..secret import quiet_request_lines

    quiet_request_lines()  # HTTP libraries' request lines at INFO: no URL paths (secrets, arguments)
    return handler


class RunLog:
    """A client listener that logs each run's end and each step failure or retry (logger
    ``podium.runs``), with ``run_id``, ``workflow``, ``step_id``, ``status`` and ``duration`` fields.
    Inputs and outputs are never logged. Made by :func:`log_runs`."""

    def __init__(self, client: Any, logger: logging.Logger | None = None) -> None:
        self.client = client
        self.log = logger or logging.getLogger("podium.runs")
        self._started: dict[str, float] = {}
        self._unsubscribe = client.subscribe(self.on_event)

    def close(self) -> None:
        """Stop listening."""
        self._unsubscribe()

    def on_event(self, ev: Event) -> None:
        try:
            self._on_event(ev)
        except Exception:  # logging must never break a run
            logging.getLogger("podium.telemetry").exception("run log: cannot log event %s", ev.type)

    def _on_event(self, ev: Event) -> None:
        t = ev.type
        if t in ("run_started", "run_resumed"):
            if len(self._started) > 10_000:
                self._started.clear()
            self._started.setdefault(ev.run_id, ev.ts)
            return
        if t not in RUN_ENDS and t not in ("step_failed", "step_retrying"):
            return
        wf, rec = workflow_of(self.client, ev.run_id)
        data = data_of(ev)
        extra: dict[str, Any] = {"run_id": ev.run_id, "workflow": wf}
        if t in RUN_ENDS:
            status = t.removeprefix("run_")
            start = self._started.pop(ev.run_id, None) or (rec.started_at if rec is not None else None)
            extra["status"] = status
            if start:
                extra["duration"] = round(ev.ts - start, 3)
            took = f" in {extra['duration']:.2f}s" if "duration" in extra else ""
            if status == "failed":
                err = data
                extra["error_type"] = err.get("type")
                if err.get("step"):
                    extra["step_id"] = err["step"]
                self.log.error(
                    "run %s of %s failed%s: %s", ev.run_id, wf, took, err.get("message", "?"), extra=extra
                )
            else:
                level = logging.INFO if status == "completed" else logging.WARNING
                self.log.log(level, "run %s of %s %s%s", ev.run_id, wf, status, took, extra=extra)
            return
        err = error_of(data) or {}
        extra.update(
            step_id=ev.step,
            attempt=ev.attempt,
            error_type=err.get("type"),
            duration=round(ev.ts - started_of(ev, data), 3),
        )
        if t == "step_retrying":
            extra["retry_in"] = err.get("retry_in")
            self.log.warning(
                "step %s of run %s failed attempt %d, retrying in %ss: %s",
                ev.step, ev.run_id, ev.attempt, err.get("retry_in"), err.get("message", "?"), extra=extra,
            )  # fmt: skip
        else:
            self.log.error(
                "step %s of run %s failed: %s", ev.step, ev.run_id, err.get("message", "?"), extra=extra
            )


def log_runs(client: Any, logger: logging.Logger | None = None) -> RunLog:
    """Log every run end and step failure of ``client`` (see :class:`RunLog`)."""
    return RunLog(client, logger)
