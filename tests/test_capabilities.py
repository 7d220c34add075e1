"""The capability registry: what a workflow file (YAML, or one deployed over HTTP) may reach.

The first tests reproduce the attacks of the security review (arbitrary code from YAML, file reads,
SSRF and port probing, path traversal through tool arguments); each must be refused, before anything
runs or connects. Servers are real, on 127.0.0.1; nothing here goes further.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import podium
from podium import yaml as podium_yaml
from podium.ai import yaml_steps as ai_steps
from podium.knowledge import yaml_steps as kb_steps
from podium.yaml import _registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def kinds() -> Any:
    return _registry.StepTypes(
        [*_registry.builtin_step_types(), *ai_steps.step_types(), *kb_steps.step_types()], entry_points=False
    )


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.seen.append(self.path)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records the paths it is asked for."""
    seen: list[str] = []
    handler = type("H", (_Recorder,), {"seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def podium_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# -- attack 1: a workflow file runs code --------------------------------------------------------


def _code_attack(marker: Path) -> str:
    return f"""name: attack
steps:
  - id: pwn
    uses: tool
    with:
      python: "subprocess:getoutput"
      arguments: {{cmd: "touch {marker}"}}
"""


@pytest.mark.parametrize(
    "tool",
    [
        '{python: "subprocess:getoutput", arguments: {cmd: "touch MARKER"}}',
        '{python: "os:system", arguments: {command: "touch MARKER"}}',
        '{mcp: {command: ["sh", "-c", "touch MARKER"]}, name: x}',
        '{python: "{{ input.fn }}", arguments: {cmd: "touch MARKER"}}',
        '{http: {url: "http://127.0.0.1:9/"}}',
    ],
)
async def test_attack_a_workflow_file_cannot_pick_code_or_commands(kinds: Any, tmp_path: Path, tool: str) -> None:
    marker = tmp_path / "pwned"
    text = f"name: attack\nsteps:\n  - id: pwn\n    uses: tool\n    with: {tool.replace('MARKER', str(marker))}\n"
    problems = podium_yaml.validate_text(text, registry=kinds)
    assert problems, "validation says ok"
    assert problems[0].line == 5 and problems[0].code == "capability", problems
    with pytest.raises(podium_yaml.WorkflowFileError):
        wf = podium_yaml.load_text(text, registry=kinds)
        async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
            await client.run(wf, {"fn": "os:system"})
    assert not marker.exists()


def test_attack_podium_validate_reports_it_with_file_and_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    flow = tmp_path / "attack.yaml"
    flow.write_text(_code_attack(marker))
    proc = podium_cli("validate", str(flow), env={"PODIUM_DB": f"sqlite:///{tmp_path}/p.db"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{flow}:6:" in proc.stderr and "[capability]" in proc.stderr, proc.stderr
    assert "podium tools add" in proc.stderr
    assert not marker.exists()


async def test_attack_deploy_over_http_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    import httpx

    from podium.server import Settings, create_app

    marker = tmp_path / "pwned"
    app = create_app(Settings(store=f"sqlite:///{tmp_path}/s.db", deploy_dir=str(tmp_path / "d")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as http:
            r = await http.post(
                "/api/workflows", content=_code_attack(marker), headers={"Content-Type": "application/yaml"}
            )
            assert r.status_code in (400, 422), r.text
            assert "not registered" in r.text or "is not allowed" in r.text, r.text
            run = await http.post("/api/runs", json={"workflow": "attack", "input": {}})
            assert run.status_code == 404, run.text
    assert not marker.exists()


# -- attack 2: file reads and SSRF --------------------------------------------------------------


def _ingest_flow(paths: str, extra: str = "") -> str:
    return f"""name: leak
steps:
  - id: load
    uses: kb_ingest
    with: {{kb: loot, paths: {paths}{extra}}}
  - id: get
    uses: retrieve
    needs: [load]
    with: {{kb: loot, query: "password", k: 3}}
"""


async def test_attack_kb_ingest_cannot_read_files_outside_registered_roots(kinds: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the root password is hunter2")
    text = _ingest_flow(json.dumps([str(secret)]))
    problems = podium_yaml.validate_text(text, registry=kinds, capabilities={})
    assert problems and problems[0].line == 5 and problems[0].code == "capability", problems
    assert "podium tools add" in (problems[0].hint or "") + problems[0].message
    # without the registry at load time, the run itself refuses (the store's registry is empty)
    wf = podium_yaml.load_text(text, registry=kinds)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        with pytest.raises(podium.RunFailed) as err:
            await client.run(wf, {})
        assert "hunter2" not in str(err.value.error)
        assert "registered" in str(err.value.error)


# -- attack 8: model-chosen path parameters -----------------------------------------------------


async def test_attack_path_parameters_are_percent_encoded(web: tuple[int, list[str]]) -> None:
    from podium.tools import HttpTool

    port, seen = web
    tool = HttpTool("order", f"http://127.0.0.1:{port}/orders/{{order_id}}", method="GET")
    await tool.call({"order_id": "42/../../admin/users"})
    await tool.call({"order_id": ".."})
    await tool.call({"order_id": "7?admin=1#x"})
    await tool.aclose()
    assert seen == ["/orders/42%2F..%2F..%2Fadmin%2Fusers", "/orders/%2E%2E", "/orders/7%3Fadmin%3D1%23x"]
