"""Stored secrets are masked by their value, whatever their shape.

Credentials are masked by shape (``sk-...``, ``Bearer ...``, ``password=...``); a stored secret with
no such shape (an API key of random letters), echoed by a remote service into an error, went into
the run's error and events, the ``tool.call`` audit entry (chained: it cannot be taken out again)
and alerts in clear. The servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import podium
from podium import yaml as podium_yaml
from podium.ai import yaml_steps as ai_steps
from podium.secret import redact
from podium.telemetry import AlertRule, Alerts
from podium.yaml import _registry

ROOT = Path(__file__).resolve().parent.parent
FLOW = "name: call\nsteps:\n  - id: call\n    uses: tool\n    with: {name: crm}\n"


class _Echo(http.server.BaseHTTPRequestHandler):
    """A CRM that refuses the key and quotes it back, as many services do."""

    def do_GET(self) -> None:
        body = f"unknown API key {self.headers.get('X-Api-Key')} for this account".encode()
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/contacts"
    srv.shutdown()
    srv.server_close()


def _set_in_another_process(name: str, value: str, db: str) -> None:
    """``podium secrets set`` in its own process: this one learns the value only by reading it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_DB": db}
    env.pop("PODIUM_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "secrets", "set", name],
        env=env, input=value, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_a_stored_secret_of_no_known_shape_is_masked_by_its_value(echo: str, tmp_path: Path) -> None:
    value = "Zq" + secrets.token_hex(12)  # random letters and digits: no credential shape
    assert redact(f"key {value}") == f"key {value}"  # not known to this process yet
    db = f"sqlite:///{tmp_path}/p.db"
    _set_in_another_process("CRM_KEY", value, db)
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), *ai_steps.step_types()], entry_points=False)
    async with podium.Client(db) as client:
        alerts = Alerts([AlertRule(name="failures", kind="run_failed")], [])
        alerts.attach(client)
        await client.add_capability(
            "crm", "http", {"url": echo, "method": "GET", "headers": {"X-Api-Key": "secret:CRM_KEY"}},
            allow_private=True,
        )  # fmt: skip
        wf = podium_yaml.load_text(FLOW, registry=kinds, capabilities=await client.capabilities())
        with pytest.raises(podium.RunFailed) as failed:
            await client.run(wf, {})
        await alerts.stop()
        run = (await client.list(limit=1))[0]
        events = [e.to_json() if hasattr(e, "to_json") else repr(e) for e in (await client.history(run.id)).events]
        audit = [e.data for e in await client.audit_log() if e.action == "tool.call"]
    shown = {
        "the run's error": str(failed.value),
        "the run's events": json.dumps(events, default=str),
        "the tool.call audit entry": " ".join(audit),
        "the alert": " ".join(f"{a.title} {a.text} {json.dumps(a.details, default=str)}" for a in alerts.sent),
    }
    for where, text in shown.items():
        assert "401" in text, f"{where} should still say what failed: {text}"
        assert value not in text, f"{where} holds the stored secret in clear: {text}"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("p.db*"))
    assert value.encode() not in stored, "the store holds the secret in clear (an error or an event)"
    assert redact(f"CRM said: {value}.") == "CRM said: ***."


def test_a_known_value_is_masked_in_the_forms_text_takes_and_short_values_are_not() -> None:
    from podium.secret import MIN_LENGTH, remember

    value = 'Tr0ub4dor "&" 3-' + secrets.token_hex(4)  # a quote, spaces and an ampersand
    remember(value)
    assert value not in redact(json.dumps({"echo": value}))  # inside a JSON string, escaped
    assert quote(value, safe="") not in redact(f"GET /x?k={quote(value, safe='')}")  # in a URL
    assert redact(f"a{value}b") == "a***b"
    short = "4711"[:MIN_LENGTH - 1]
    remember(short)  # a PIN would mask every number it appears in: its shape is masked, not its value
    assert redact("order 4711 shipped") == "order 4711 shipped"
    assert redact("pin=4711") == "pin=4711" and "4711" not in redact("password=4711")
