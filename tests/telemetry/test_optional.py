"""OpenTelemetry stays optional: importing podium never imports it, and a missing package says what
to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from podium.telemetry import instrument, tracer_provider


def test_importing_podium_does_not_import_opentelemetry():
    # (podium.server is left out: recent FastAPI versions import opentelemetry themselves.)
    code = "import sys, podium, podium.telemetry; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_opentelemetry_says_what_to_install(monkeypatch, client):
    for name in ("opentelemetry", "opentelemetry.trace", "opentelemetry.sdk", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install (-e )?'[^']*\[otel\]'"):
        instrument(client)
    with pytest.raises(ImportError, match=r"pip install (-e )?'[^']*\[otel\]'"):
        tracer_provider()
