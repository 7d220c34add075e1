"""Podium's MCP server, driven by the official ``mcp`` client: over stdio (``podium mcp`` as a real
subprocess) and over streamable HTTP (``podium serve``'s ``/mcp``, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import podium

from . import flows

mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")
uvicorn = pytest.importorskip("uvicorn", reason="the server needs the 'server' extra")

from podium.server import Settings, create_app  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[2])
PODIUM = [sys.executable, "-c", "from podium.cli import main; main()"]
FLOWS = [
    "-w",
    "tests.server.flows:hello",
    "-w",
    "tests.server.flows:review",
    "-w",
    "tests.server.flows:tickets",
]


def stdio(db: str, token: str | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_TOKEN", "PODIUM_DB")}
    if token:
        env["PODIUM_TOKEN"] = token
    return mcp.StdioServerParameters(
        command=PODIUM[0], args=[*PODIUM[1:], "mcp", "--db", db, *FLOWS], env=env, cwd=ROOT
    )


async def call(client: Any, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tool's structured result; fails the test with the tool's message if it is an error."""
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, result.content[0].text
    content: dict[str, Any] = result.structured_content
    return content


async def error_of(client: Any, tool: str, arguments: dict[str, Any] | None = None) -> str:
    result = await client.call_tool(tool, arguments or {})
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    assert "Traceback" not in text
    return text


async def users(db: str) -> dict[str, str]:
    """An admin, an operator, an approver and a viewer; their tokens by role."""
    tokens = {}
    async with podium.Client(db) as client:
        for role in ("admin", "operator", "approver", "viewer"):
            await client.create_user(f"{role}-user", [role])
            tokens[role] = await client.create_token(f"{role}-user")
    return tokens


async def test_stdio_tools_runs_and_approvals(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/podium.db"
    async with mcp.Client(stdio(db)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {
            "list_workflows",
            "start_run",
            "get_run",
            "list_runs",
            "list_approvals",
            "decide_approval",
        } <= set(tools)
        assert {"run_hello", "run_review", "run_tickets"} <= set(tools)
        ticket = tools["run_tickets"].input_schema
        assert ticket["required"] == ["input"]
        assert ticket["properties"]["input"]["properties"]["id"]["type"] == "integer"
        assert tools["get_run"].annotations.read_only_hint is True

        done = await call(client, "run_hello", {"input": {"name": "ada"}})
        assert done["status"] == "completed" and done["output"] == "HELLO ADA"
        assert [s["step"] for s in done["steps"]] == ["greet", "shout"]
        again = await call(client, "get_run", {"run_id": done["run_id"]})
        assert again["output"] == "HELLO ADA"

        bad = await error_of(client, "run_tickets", {"input": {"id": "seven"}})
        assert bad.startswith("invalid_input:") and "tickets" in bad
        assert (await error_of(client, "start_run", {"workflow": "nope"})).startswith("not_found:")
        wrong = await error_of(client, "start_run", {"wf": "hello"})
        assert wrong.startswith("invalid_arguments:") and "workflow: Field required" in wrong

        waiting = await call(client, "start_run", {"workflow": "review", "input": {"topic": "mcp"}})
        assert waiting["status"] == "waiting"
        assert waiting["waiting_for"][0]["title"] == "publish the draft?"
        assert [(st["step"], st["status"]) for st in waiting["steps"]] == [
            ("draft", "completed"),
            ("approve", "waiting"),
        ]
        inbox = (await call(client, "list_approvals"))["approvals"]
        assert [(a["run_id"], a["payload"]) for a in inbox] == [
            (waiting["run_id"], {"text": "draft for mcp"})
        ]
        decided = await call(
            client,
            "decide_approval",
            {"run_id": waiting["run_id"], "approve": True, "payload": {"text": "edited"}},
        )
        assert decided["decided"] is True and decided["by"] == "local"
        assert decided["run"]["status"] == "completed" and decided["run"]["output"] == "published: edited"
        assert (await call(client, "list_approvals"))["approvals"] == []
        listed = (await call(client, "list_workflows"))["workflows"]
        assert {w["name"]: w["tool"] for w in listed}["review"] == "run_review"


async def test_stdio_acts_as_podium_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/podium.db"
    tokens = await users(db)
    async with mcp.Client(stdio(db, tokens["viewer"])) as client:
        refused = await error_of(client, "start_run", {"workflow": "hello", "input": {}})
        assert (
            refused.startswith("permission_denied:") and "viewer-user" in refused and "runs.start" in refused
        )
        assert (await call(client, "list_approvals"))["approvals"] == []
    # Without a token, a store with users refuses to serve, in one line and without a traceback.
    proc = subprocess.run(
        [*PODIUM, "mcp", "--db", db], cwd=ROOT, env=stdio(db).env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "PODIUM_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


class Item(BaseModel):
    sku: str
    qty: int = 1


class Order(BaseModel):
    customer: str
    items: list[Item]


orders = podium.Workflow("orders/eu v2", input=Order, description="Price an order.")


@orders.step
def total(input: Order) -> int:
    return sum(i.qty for i in input.items)


async def test_in_process_schemas_and_errors() -> None:
    """The SDK's in-process client: nested input schemas, tool names, and engine errors as tool errors."""
    from podium.server.mcp import PodiumMCP

    async with podium.Client("memory://", workflows=[orders, flows.hello]) as engine:
        async with mcp.Client(PodiumMCP(engine).server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["run_orders_eu_v2"].input_schema
            assert tools["run_orders_eu_v2"].description.startswith("Start a run of Price an order")
            order = schema["properties"]["input"]
            assert order["required"] == ["customer", "items"] and schema["required"] == ["input"]
            assert (
                order["properties"]["items"]["items"]["$ref"] == "#/$defs/Item" and "Item" in schema["$defs"]
            )
            done = await call(
                client, "run_orders_eu_v2", {"input": {"customer": "c", "items": [{"sku": "a", "qty": 2}]}}
            )
            assert done["output"] == 2

            assert (await error_of(client, "get_run", {"run_id": "nope"})).startswith("not_found:")
            assert (
                await error_of(client, "decide_approval", {"run_id": done["run_id"], "approve": True})
            ).startswith("not_found:")
            assert (await error_of(client, "run_nope")).startswith("not_found: no tool 'run_nope'")
            await engine.set_switch("workflow", "hello", reason="maintenance")
            off = await error_of(client, "run_hello", {"input": {}})
            assert off.startswith("kill_switch_active:") and "maintenance" in off
            runs = (await call(client, "list_runs", {"status": ["completed"]}))["runs"]
            assert [r["run_id"] for r in runs] == [done["run_id"]]
            deep: Any = "x"
            for _ in range(100):  # the HTTP API's limits apply to MCP inputs too
                deep = [deep]
            too_deep = await error_of(client, "start_run", {"workflow": "orders/eu v2", "input": {"a": deep}})
            assert too_deep.startswith("invalid_input:") and "nested deeper than" in too_deep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(db: str, tmp_path: Path, token: str) -> AsyncIterator[str]:
    """``podium serve``'s app on 127.0.0.1, acting as ``token``; yields its MCP endpoint's URL."""
    settings = Settings(
        store=db, token=token, workflows=flows.ALL, deploy_dir=str(tmp_path / "deployed"), triggers=False
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


def as_user(url: str, token: str) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return mcp.Client(streamable_http_client(url, http_client=http))


async def test_http_rbac_per_request(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/podium.db"
    tokens = await users(db)
    async with serving(db, tmp_path, tokens["admin"]) as url:
        async with as_user(url, tokens["operator"]) as operator:
            assert "run_review" in {t.name for t in (await operator.list_tools()).tools}
            started = await call(operator, "run_review", {"input": {"topic": "http"}, "wait_seconds": 5})
            assert started["status"] == "waiting"
            run_id = started["run_id"]
            denied = await error_of(operator, "decide_approval", {"run_id": run_id, "approve": True})
            assert denied.startswith("permission_denied:") and "approvals.decide" in denied

        async with as_user(url, tokens["viewer"]) as viewer:
            refused = await error_of(viewer, "start_run", {"workflow": "hello"})
            assert refused.startswith("permission_denied:") and "viewer-user" in refused
            inbox = (await call(viewer, "list_approvals"))["approvals"]
            assert [a["run_id"] for a in inbox] == [run_id]
            assert inbox[0]["payload"] == "[hidden: needs payloads.read]"

        async with as_user(url, tokens["approver"]) as approver:
            decided = await call(
                approver, "decide_approval", {"run_id": run_id, "approve": False, "comment": "no"}
            )
            assert decided["by"] == "approver-user"
            assert (
                decided["run"]["status"] == "completed"
                and decided["run"]["output"] == "dropped: draft for http"
            )

        async with podium.Client(db, token=tokens["admin"]) as admin:
            actions = [(e.actor, e.action) for e in await admin.audit_log()]
        assert ("operator-user", "run.start") in actions and ("approver-user", "approval.decide") in actions
        assert ("viewer-user", "access.denied") in actions

        async with httpx.AsyncClient() as http:
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            for headers in ({}, {"Authorization": "Bearer pod_not-a-token"}):
                r = await http.post(url, json=initialize, headers=headers)
                assert r.status_code == 401, r.text
                assert r.json()["error"]["code"] == "unauthorized"
        with pytest.raises(BaseException) as refused:  # the SDK reports it inside task groups
            async with as_user(url, "pod_not-a-token") as nobody:
                await nobody.list_tools()
        assert any(isinstance(e, mcp.MCPError) for e in leaves(refused.value))


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in leaves(e)]
    return [exc]


async def test_podium_mcp_over_http(tmp_path: Path) -> None:
    """``podium mcp --transport http``: the endpoint alone, as its own process."""
    db = f"sqlite:///{tmp_path}/podium.db"
    tokens = await users(db)
    port = free_port()
    env = {**stdio(db).env, "PODIUM_TOKEN": tokens["admin"]}
    args = [*PODIUM, "mcp", "--db", db, *FLOWS, "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    r = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert r.status_code == 401 and "podium tokens create" in r.json()["error"]["message"]
        async with as_user(url, tokens["operator"]) as operator:
            done = await call(operator, "run_hello", {"input": {"name": "http"}})
            assert done["output"] == "HELLO HTTP"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_podium_mcp_over_http_keeps_allow_remote_local_mode(tmp_path: Path) -> None:
    """Review: ``podium mcp --transport http --allow-remote-local-mode`` refused every host name but
    loopback ones all the same (the endpoint read the flag from the Starlette app's settings, which
    the standalone app has none of; on a loopback address the SDK's own host check refused them
    too), so the documented way to reach it on a trusted network did not work. 127.0.0.2 stands for
    0.0.0.0 here (no SDK host check). Without the flag a foreign Host is still refused."""
    db = f"sqlite:///{tmp_path}/podium.db"
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }  # fmt: skip
    accept = {"accept": "application/json, text/event-stream"}
    allow = ["--allow-remote-local-mode"]
    for where, flag, expected in ("127.0.0.2", allow, 200), ("127.0.0.1", allow, 200), ("127.0.0.2", [], 403):
        port = free_port()
        args = [*PODIUM, "mcp", "--db", db, *FLOWS, "--transport", "http", "--host", where, "--port", str(port), *flag]
        proc = subprocess.Popen(args, cwd=ROOT, env=stdio(db).env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            url = f"http://{where}:{port}/mcp"
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    try:
                        assert (await http.post(url, json=initialize, headers=accept)).status_code == 200
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                named = await http.post(url, json=initialize, headers={**accept, "host": f"devbox.lan:{port}"})
                assert named.status_code == expected, (where, flag, named.text)
                page = {**accept, "host": f"devbox.lan:{port}", "origin": "http://evil.example", "sec-fetch-site": "cross-site"}
                assert (await http.post(url, json=initialize, headers=page)).status_code == 403  # another site's page: never
        finally:
            proc.terminate()
            proc.wait(10)


async def test_stdio_lists_a_workflow_deployed_after_it_started(tmp_path: Path) -> None:
    """``podium mcp`` over stdio listed the workflows it saw when it started: one deployed
    afterwards (``podium workflows deploy`` elsewhere) had no tool until the client restarted
    the server. The tool list now follows the store's deployments."""
    db = f"sqlite:///{tmp_path}/podium.db"
    flow = tmp_path / "late.yaml"
    flow.write_text('name: late\nversion: "1"\nsteps:\n  - id: say\n    uses: set\n    with: {text: "late"}\n')
    async with mcp.Client(stdio(db)) as client:
        assert "run_late" not in {t.name for t in (await client.list_tools()).tools}
        async with podium.Client(db, recover=False, execute=False) as other:
            await other.deploy(str(flow))
        assert "run_late" in {t.name for t in (await client.list_tools()).tools}
        done = await call(client, "run_late", {"input": {}})
        assert done["status"] == "completed" and done["output"] == {"text": "late"}, done


async def test_attack_a_caller_without_workflows_read_makes_the_listing_load_deployed_code(tmp_path: Path) -> None:
    """Review of the last fixes (fifth session): listing tools loaded every workflow deployed into
    the store (a Python version's module is imported) before looking at who asked, so a caller
    whose role may not read workflows (here an auditor) had ``podium mcp`` load deployed code it
    would not otherwise load. ``GET /api/workflows`` checks ``workflows.read`` first; so does the
    listing now (deployed.py: "only after the caller's permission")."""
    from podium.server.mcp import PodiumMCP

    db = f"sqlite:///{tmp_path}/podium.db"
    flow = tmp_path / "late.yaml"
    flow.write_text('name: late\nversion: "1"\nsteps:\n  - id: say\n    uses: set\n    with: {text: "late"}\n')
    async with podium.Client(db, recover=False, execute=False) as admin:
        await admin.create_user("root", ["admin"])
        root = await admin.create_token("root")
    async with podium.Client(db, token=root, recover=False, execute=False) as admin:
        await admin.define_role("auditor", ["audit.read"])
        await admin.create_user("audra", ["auditor"])
        audra = await admin.create_token("audra")
        await admin.deploy(str(flow))
    async with podium.Client(db, token=audra, recover=False, execute=False) as engine:
        async with mcp.Client(PodiumMCP(engine).server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
        assert "run_late" not in names
        assert engine.registry.latest("late") is None  # nothing of the store's deployments was loaded
    async with podium.Client(db, token=root, recover=False, execute=False) as engine:
        async with mcp.Client(PodiumMCP(engine).server) as client:  # who may read workflows sees it
            assert "run_late" in {t.name for t in (await client.list_tools()).tools}
