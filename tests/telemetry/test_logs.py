"""Structured JSON logs, secret masking, and the run log (logger podium.runs)."""

from __future__ import annotations

import io
import json
import logging

import pytest

import podium
from podium import ConfigError
from podium.telemetry import JsonFormatter, configure_logging, log_runs, redact


def record(msg: str, *args, exc: BaseException | None = None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("podium.engine", logging.WARNING, __file__, 1, msg, args, None)
    if exc is not None:
        try:
            raise exc
        except BaseException:
            import sys

            rec.exc_info = sys.exc_info()
    rec.__dict__.update(extra)
    return rec


def test_one_json_object_per_line():
    out = JsonFormatter().format(record("step %s failed", "score", run_id="r1", step_id="score", attempt=2))
    assert "\n" not in out
    data = json.loads(out)
    assert data["level"] == "WARNING" and data["logger"] == "podium.engine"
    assert data["message"] == "step score failed"
    assert data["run_id"] == "r1" and data["step_id"] == "score" and data["attempt"] == 2
    assert data["ts"].endswith("Z") and "T" in data["ts"]


def test_exceptions_are_a_string_field():
    data = json.loads(JsonFormatter().format(record("boom", exc=ValueError("bad value"))))
    assert isinstance(data["exception"], str)
    assert "ValueError: bad value" in data["exception"] and "Traceback" in data["exception"]


def test_secrets_are_masked():
    token = "pod_" + "a1B2" * 10
    rec = record(
        "GET /api/runs/1/stream?token=%s HTTP/1.1 with Bearer %s",
        token,
        token,
        password="hunter2",
        api_key="sk-verysecretvalue",
        input_tokens=12,
    )
    out = JsonFormatter().format(rec)
    assert token not in out and "hunter2" not in out and "verysecret" not in out
    data = json.loads(out)
    assert data["password"] == "***" and data["api_key"] == "***"
    assert data["input_tokens"] == 12  # token counts are not secrets
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"


def test_configure_logging_json_and_text(monkeypatch):
    root = logging.getLogger()
    old_level = root.level
    try:
        buf = io.StringIO()
        configure_logging("json", "debug", stream=buf)
        logging.getLogger("podium.test").info("hello %s", "world", extra={"workflow": "w"})
        assert json.loads(buf.getvalue().splitlines()[-1])["workflow"] == "w"
        # Calling again replaces the handler instead of adding one.
        buf2 = io.StringIO()
        monkeypatch.setenv("PODIUM_LOG_FORMAT", "text")
        h = configure_logging(stream=buf2)
        logging.getLogger("podium.test").warning("plain pod_secretsecret")
        assert "podium.test: plain pod_***" in buf2.getvalue()
        assert buf.getvalue().count("\n") == 1
        assert sum(1 for x in root.handlers if getattr(x, "_podium_handler", False)) == 1
        root.removeHandler(h)
    finally:
        root.setLevel(old_level)
    with pytest.raises(ConfigError, match="'text' or 'json'"):
        configure_logging("xml")


async def test_run_log_lines(client, caplog):
    wf = podium.Workflow("orders")

    @wf.step
    async def ok(input: dict) -> int:
        return 1

    @wf.step
    async def charge(ok: int) -> None:
        raise RuntimeError("card declined")

    log_runs(client)
    with caplog.at_level(logging.INFO, logger="podium.runs"):
        run_id = (await client.start(wf, {"card": "4111 zebra"})).id
        await client.wait(run_id)
    recs = [r for r in caplog.records if r.name == "podium.runs"]
    step_fail = next(r for r in recs if getattr(r, "step_id", None) == "charge" and r.levelname == "ERROR")
    assert step_fail.run_id == run_id and step_fail.workflow == "orders"
    run_end = next(r for r in recs if getattr(r, "status", None) == "failed")
    assert "card declined" in run_end.getMessage() and run_end.duration >= 0
    assert "zebra" not in "".join(JsonFormatter().format(r) for r in recs)  # inputs are never logged
