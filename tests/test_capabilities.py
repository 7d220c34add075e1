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

    def do_GET(self) -> None:
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


def podium_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
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
async def test_attack_a_workflow_file_cannot_pick_code_or_commands(
    kinds: Any, tmp_path: Path, tool: str
) -> None:
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
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
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


async def test_attack_kb_ingest_cannot_read_files_outside_registered_roots(
    kinds: Any, tmp_path: Path
) -> None:
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


def _tool_flow(tool: str) -> str:
    return f"name: call\nsteps:\n  - id: call\n    uses: tool\n    with: {tool}\n"


async def test_attack_ssrf_registered_http_tool_cannot_reach_loopback_or_probe_ports(
    kinds: Any, tmp_path: Path, web: tuple[int, list[str]]
) -> None:
    port, seen = web
    shut = closed_port()
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("open", "http", {"url": f"http://127.0.0.1:{port}/x", "method": "GET"})
        await client.add_capability("closed", "http", {"url": f"http://127.0.0.1:{shut}/x", "method": "GET"})
        await client.add_capability("byname", "http", {"url": f"http://localhost:{port}/x", "method": "GET"})
        await client.add_capability(
            "mapped", "http", {"url": f"http://[::ffff:127.0.0.1]:{port}/x", "method": "GET"}
        )
        caps = await client.capabilities()
        errors = {}
        for name in ("open", "closed", "byname", "mapped"):
            wf = podium_yaml.load_text(_tool_flow(f"{{name: {name}}}"), registry=kinds, capabilities=caps)
            with pytest.raises(podium.RunFailed) as err:
                await client.run(wf, {})
            errors[name] = err.value.error["message"]
        assert seen == [], "a denied host was connected to"
        for message in errors.values():
            assert "may not reach" in message and "--allow-private" in message, message
        # an open port and a closed one give the same answer: nothing tells them apart
        same = errors["open"].replace(str(port), "P").replace("open", "N")
        assert same == errors["closed"].replace(str(shut), "P").replace("closed", "N")
        assert "localhost" in errors["byname"] and "127.0.0.1" in errors["byname"]
        # an admin's explicit allow lets it through
        await client.add_capability(
            "open", "http", {"url": f"http://127.0.0.1:{port}/x/{{id}}", "method": "GET"}, allow_private=True
        )
        wf = podium_yaml.load_text(
            _tool_flow("{name: open, arguments: {id: '1/../../admin'}}"), registry=kinds, capabilities=caps
        )
        assert await client.run(wf, {}) is not None
        assert seen == ["/x/1%2F..%2F..%2Fadmin"]


async def test_attack_file_escapes_by_dots_links_and_templates(kinds: Any, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text("# Refunds\nWithin 30 days.")
    secret = tmp_path / "secret.txt"
    secret.write_text("the root password is hunter2")
    (docs / "link.txt").symlink_to(secret)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("docs", "files", {"root": str(docs)})
        caps = await client.capabilities()
        # a computed path needs root:, which it cannot leave
        bad = podium_yaml.validate_text(_ingest_flow('"{{ input.path }}"'), registry=kinds, capabilities=caps)
        assert [(p.line, p.code) for p in bad] == [(5, "capability")] and "root" in bad[0].message
        for paths, extra in (('"../secret.txt"', ", root: docs"), ('"link.txt"', ", root: docs"),
                             ('"{{ input.path }}"', ", root: docs"), (json.dumps(str(secret)), "")):  # fmt: skip
            wf = podium_yaml.load_text(_ingest_flow(paths, extra), registry=kinds)
            with pytest.raises(podium.RunFailed) as err:
                await client.run(wf, {"path": "../secret.txt"})
            assert "hunter2" not in json.dumps(err.value.error)
            assert "outside" in err.value.error["message"], err.value.error
        # the registered folder itself works (the escaping link refused, so name the file)
        wf = podium_yaml.load_text(
            _ingest_flow('"policy.md"', ", root: docs"), registry=kinds, capabilities=caps
        )
        await client.run(wf, {})
        h = await client.history((await client.list(limit=1))[0].id)
        assert "30 days" in h.step("get").output["context"]


def test_unregistered_names_are_problems_with_position_and_fix(kinds: Any) -> None:
    flow = """name: calls
steps:
  - id: a
    uses: tool
    with: {name: crm, arguments: {id: 1}}
  - id: b
    uses: agent
    with:
      input: hi
      tools: [{mcp: files, name: read}, {name: "{{ input.tool }}"}]
  - id: c
    uses: agent
    with: {input: hi, tools: "{{ input.tools }}"}
"""
    problems = podium_yaml.validate_text(flow, "calls.yaml", registry=kinds, capabilities={})
    found = [(p.line, p.column, p.step, p.code) for p in problems if p.code == "capability"]
    assert found == [(5, 18, "a", "capability"), (10, 21, "b", "capability"), (10, 48, "b", "capability"),
                     (13, 30, "c", "capability")], problems  # fmt: skip
    crm = next(p for p in problems if p.step == "a")
    assert "'crm' is not registered" in crm.message and "podium tools add crm --http" in (crm.hint or "")
    assert str(crm).startswith("calls.yaml:5:18: step 'a': ")
    from podium.governance.capabilities import make_capability

    caps = {
        "crm": make_capability("crm", "http", {"url": "https://crm.example/api/{id}", "method": "GET"}),
        "files": make_capability("files", "mcp", {"command": ["python", "-m", "files_server"]}),
    }
    problems = podium_yaml.validate_text(flow, "calls.yaml", registry=kinds, capabilities=caps)
    assert [(p.line, p.step) for p in problems if p.code == "capability"] == [(10, "b"), (13, "c")]
    # a registered name of the wrong kind is refused too
    problems = podium_yaml.validate_text(_tool_flow("{mcp: crm, name: x}"), registry=kinds, capabilities=caps)
    assert problems and "registered as a http capability" in problems[0].message


def test_registering_checks_what_is_registered() -> None:
    from podium import ConfigError
    from podium.governance.capabilities import make_capability

    for kind, target, why in [
        ("http", {"url": "http://{host}.example/x"}, "host"),
        ("http", {"url": "file:///etc/passwd"}, "http"),
        ("http", {"url": "https://user:pw@example.com/"}, "credentials"),
        ("files", {"root": "/"}, "narrower"),
        ("files", {"root": "relative/dir"}, "absolute"),
        ("python", {"function": "os.system"}, "package.module:function"),
        ("ftp", {}, "unknown capability kind"),
    ]:
        with pytest.raises(ConfigError, match=why):
            make_capability("x", kind, target)
    with pytest.raises(ConfigError, match="allow_private"):
        make_capability("x", "files", {"root": "/tmp"}, allow_private=True)


async def test_registered_python_tool_and_removal_stop_runs(kinds: Any, tmp_path: Path) -> None:
    flow = _tool_flow("{name: textlen, arguments: {text: abc}}")
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        wf = podium_yaml.load_text(flow, registry=kinds)
        with pytest.raises(podium.RunFailed, match="'textlen' is not registered.*podium tools add textlen"):
            await client.run(wf, {})
        await client.add_capability("textlen", "python", {"function": "tests.capability_helpers:text_length"})
        assert await client.run(wf, {}) is not None
        h = await client.history((await client.list(limit=1))[0].id)
        assert h.step("call").output == 3
        assert await client.remove_capability("textlen") is True
        with pytest.raises(podium.RunFailed, match="not registered"):
            await client.run(wf, {})
        actions = [e.action for e in await client.audit_log()]
        assert "capability.add" in actions and "capability.remove" in actions


async def test_only_admins_manage_the_registry(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    async with podium.Client(db) as root:
        await root.create_user("root", ["admin"])
        admin_token = await root.create_token("root")
        await root.create_user("op", ["operator"])
        op_token = await root.create_token("op")
    env = {"PODIUM_DB": db}
    proc = podium_cli("tools", "add", "docs", "--files", str(tmp_path), env={**env, "PODIUM_TOKEN": op_token})
    assert proc.returncode == 2 and "may not tools.manage" in proc.stderr, proc.stderr
    proc = podium_cli(
        "tools", "add", "docs", "--files", str(tmp_path), env={**env, "PODIUM_TOKEN": admin_token}
    )
    assert proc.returncode == 0, proc.stderr
    proc = podium_cli("tools", "add", "crm", "--http", "http://127.0.0.1:1/{id}", "--method", "GET",
                      "--allow-private", env={**env, "PODIUM_TOKEN": admin_token})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    listing = podium_cli("tools", "list", env={**env, "PODIUM_TOKEN": op_token})
    assert listing.returncode == 0, listing.stderr
    assert f"docs\tfiles\t{os.path.realpath(tmp_path)}" in listing.stdout
    assert "crm\thttp\tGET http://127.0.0.1:1/{id} (private addresses allowed)" in listing.stdout
    proc = podium_cli("tools", "remove", "crm", env={**env, "PODIUM_TOKEN": op_token})
    assert proc.returncode == 2 and "may not tools.manage" in proc.stderr
    proc = podium_cli("tools", "remove", "crm", env={**env, "PODIUM_TOKEN": admin_token})
    assert proc.returncode == 0 and "removed crm" in proc.stdout
    # podium validate reads the same registry
    flow = tmp_path / "flow.yaml"
    flow.write_text(_ingest_flow('"a.md"', ", root: docs"))
    assert podium_cli("validate", str(flow), env={**env, "PODIUM_TOKEN": op_token}).returncode == 0
    flow.write_text(_tool_flow("{name: crm}"))
    proc = podium_cli("validate", str(flow), env={**env, "PODIUM_TOKEN": op_token})
    assert proc.returncode == 2 and f"{flow}:5:" in proc.stderr and "'crm' is not registered" in proc.stderr


async def test_registered_mcp_server_from_yaml(kinds: Any, tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    server = str(ROOT / "tests" / "ai" / "mcp_server.py")
    flow = _tool_flow("{mcp: calc, name: add, arguments: {a: 2, b: 40}}")
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.add_capability("calc", "mcp", {"command": [sys.executable, server]})
        wf = podium_yaml.load_text(flow, registry=kinds, capabilities=await client.capabilities())
        await client.run(wf, {})
        h = await client.history((await client.list(limit=1))[0].id)
        assert h.step("call").output == 42
        # an MCP server URL on loopback needs the explicit allow, checked before connecting
        await client.add_capability("calc", "mcp", {"url": f"http://127.0.0.1:{closed_port()}/mcp"})
        with pytest.raises(podium.RunFailed, match="loopback address.*--allow-private"):
            await client.run(wf, {})


async def test_attack_an_mcp_servers_key_never_sits_in_the_registry(kinds: Any, tmp_path: Path) -> None:
    """The same for an MCP server's environment (`--mcp-env GITHUB_TOKEN=...`): a credential in clear
    is refused, and `secret:NAME` is read from the secret store when the server starts."""
    pytest.importorskip("mcp")
    server = str(tmp_path / "keyed_server.py")  # a real MCP server (official SDK) that needs a key
    Path(server).write_text(
        "import os\nfrom mcp.server.mcpserver import MCPServer\nserver = MCPServer('keyed')\n\n\n"
        "@server.tool()\ndef has_key() -> bool:\n    return os.environ.get('PODIUM_TEST_API_KEY') == 'k-live-1'\n\n\n"
        "server.run('stdio')\n"
    )
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        with pytest.raises(podium.ConfigError, match="secret:") as err:
            await client.add_capability("keyed", "mcp", {"command": [sys.executable, server], "env": {"PODIUM_TEST_API_KEY": "k-live-1"}})
        assert "k-live-1" not in str(err.value) and await client.capabilities() == {}
        await client.secrets.set("MCP_KEY", "k-live-1")
        await client.add_capability(
            "keyed", "mcp", {"command": [sys.executable, server], "env": {"PODIUM_TEST_API_KEY": "secret:MCP_KEY"}}
        )
        caps = await client.capabilities()
        assert "k-live-1" not in json.dumps(caps["keyed"].to_json())
        wf = podium_yaml.load_text(_tool_flow("{mcp: keyed, name: has_key}"), registry=kinds, capabilities=caps)
        await client.run(wf, {})
        h = await client.history((await client.list(limit=1))[0].id)
        assert h.step("call").output is True


async def test_attack_a_registry_row_written_behind_the_admins_back_allows_nothing(kinds: Any, tmp_path: Path) -> None:
    """An attacker with write access to the database (not to the audit key file) inserts a python
    capability for os:system, and rewrites a registered one: neither runs."""
    marker = tmp_path / "PWNED"
    flow = _tool_flow(f'{{name: sh, arguments: {{command: "touch {marker}"}}}}')
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        forged = json.dumps({"name": "sh", "kind": "python", "target": {"function": "os:system"}})
        await client.store.kv_put("capabilities", "sh", forged)  # unsigned, as a SQL INSERT would be
        assert "sh" not in await client.capabilities()
        wf = podium_yaml.load_text(flow, registry=kinds)
        with pytest.raises(podium.RunFailed, match="not sealed"):
            await client.run(wf, {})
        # A real entry, then its target rewritten in the row: the seal no longer matches.
        await client.add_capability("sh", "python", {"function": "json:dumps"})
        row = json.loads(await client.store.kv_get("capabilities", "sh"))
        row["entry"] = row["entry"].replace("json:dumps", "os:system")
        await client.store.kv_put("capabilities", "sh", json.dumps(row))
        with pytest.raises(podium.RunFailed, match="not sealed"):
            await client.run(wf, {})
    assert not marker.exists()


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "2002:7f00:1::", "2002:a00:1::", "169.254.169.254", "10.1.2.3", "0.0.0.0"]
)
def test_loopback_private_and_wrapped_addresses_are_blocked(ip: str) -> None:
    from podium.tools._network import blocked_reason

    assert blocked_reason(ip) is not None


@pytest.mark.parametrize("ip", ["8.8.8.8", "2002:808:808::", "2606:4700:4700::1111"])
def test_public_addresses_are_not_blocked(ip: str) -> None:
    from podium.tools._network import blocked_reason

    assert blocked_reason(ip) is None


async def test_attack_an_http_tools_credential_never_sits_in_the_registry(kinds: Any, tmp_path: Path) -> None:
    """Attack (review): `podium tools add crm --http URL --header "Authorization=Bearer sk-..."`
    kept the token in the capability registry, which every workflow reader reads
    (`client.capabilities()`, GET /api/capabilities). A credential header is now refused in clear
    and given as `secret:NAME` (the secret store, encrypted), read when the tool is called."""
    heard: list[str | None] = []

    class Handler(_Recorder):
        seen: list[str] = []

        def do_GET(self) -> None:
            heard.append(self.headers.get("Authorization"))
            super().do_GET()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/x"
    try:
        async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
            with pytest.raises(podium.ConfigError, match="secret:") as err:
                await client.add_capability(
                    "crm", "http", {"url": url, "method": "GET", "headers": {"Authorization": "Bearer sk-live-123"}},
                    allow_private=True,
                )
            assert "sk-live-123" not in str(err.value) and await client.capabilities() == {}
            await client.secrets.set("CRM_AUTH", "Bearer sk-live-123")
            await client.add_capability(
                "crm", "http", {"url": url, "method": "GET", "headers": {"Authorization": "secret:CRM_AUTH"}},
                allow_private=True,
            )
            caps = await client.capabilities()
            assert "sk-live-123" not in json.dumps(caps["crm"].to_json())
            wf = podium_yaml.load_text(_tool_flow("{name: crm}"), registry=kinds, capabilities=caps)
            await client.run(wf, {})
            await client.secrets.set("CRM_AUTH", "Bearer sk-live-456")  # rotated: the next call uses it
            await client.run(wf, {})
        assert heard == ["Bearer sk-live-123", "Bearer sk-live-456"]
    finally:
        srv.shutdown()
        srv.server_close()


async def test_allow_private_given_as_a_target_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    """``add_capability("crm", "connector", {..., "allow_private": True})`` was stored and never read
    (the connector still refused the private address); only the keyword (CLI: ``--allow-private``)
    allows it. The setting is refused, naming the keyword; nothing is registered."""
    from podium.errors import ConfigError

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(ConfigError, match="allow_private=True"):
            await c.add_capability("crm", "http", {"url": "http://10.0.0.5/api", "allow-private": True})
        assert "crm" not in {cap.name for cap in await c.capabilities()}
