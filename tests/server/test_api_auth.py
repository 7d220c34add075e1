"""Every API route, walked: without a valid token it answers 401, and a viewer's token on a route
that changes something answers 403, each with the JSON error shape. A new route is covered without
touching this file (a mutating one must add a sample body below)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from . import flows

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/")}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

#: A body each mutating route accepts (so the permission check, not validation, answers).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/goals"): {"goal": "check stock of a vendor"},
    ("POST", "/hooks/{path:path}"): {},
    ("PUT", "/hooks/{path:path}"): {},
    ("PATCH", "/hooks/{path:path}"): {},
    ("POST", "/api/runs"): {"workflow": "hello"},
    ("POST", "/api/runs/{run_id:path}/fork"): {"from_step": "greet"},
    ("POST", "/api/runs/{run_id:path}/signal"): {"name": "go"},
    ("POST", "/api/approvals/{run_id:path}/{name}"): {"approve": True},
    ("POST", "/api/switches"): {"scope": "workflow", "name": "hello"},
    ("POST", "/api/memory/{entity}"): {"text": "likes tea"},
    ("POST", "/api/graph/relations"): {"src": "a:1", "relation": "knows", "dst": "b:2"},
    ("POST", "/api/kb/{name}/documents"): {"source": "a.txt", "text": "hello"},
    ("PUT", "/api/policies/{workflow}"): {"max_run_tokens": 10},
    ("POST", "/api/events/{event_type}"): {"id": 1, "subject": "x"},
    ("POST", "/api/events"): {"events": [{"type": "ticket.created", "idempotency_key": "k", "payload": {"id": 1, "subject": "x"}}]},
}
#: POST routes without a JSON body.
BODYLESS = {
    "/api/runs/{run_id:path}/cancel",
    "/api/runs/{run_id:path}/resume",
    "/api/deadletters/{letter_id}/replay",
    "/api/workflows",  # a YAML body, read after the permission check
}
PARAMS = {"entity": "customer:1", "name": "handbook", "workflow": "hello", "event_type": "ticket.created"}


def api_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every API route of the app (not the docs, static files or the dashboard)."""
    from fastapi.routing import APIRoute

    def walk(routes: list[Any], prefix: str) -> list[tuple[str, str]]:
        out = []
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.16x: included routers
            if included is not None:
                out += walk(included.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif isinstance(route, APIRoute):
                out += [(m, prefix + route.path) for m in sorted(route.methods - {"HEAD"})]
        return out

    return [r for r in walk(app.routes, "") if r not in PUBLIC]


def concrete(path: str, run_id: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS.get(m.group(1), run_id), path)


def assert_error(r: Any, status: int, code: str, where: str) -> None:
    assert r.status_code == status, (where, r.status_code, r.text[:300])
    err = r.json()["error"]
    assert err["code"] == code and isinstance(err["message"], str) and len(err["message"]) > 10, (where, err)


async def test_every_route_needs_a_valid_token_and_its_permission(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        run = await c.run(flows.hello, {"name": "x"})  # local mode still: a real run for {run_id}
        rid = (await c.list(limit=1))[0].id
        assert run == "HELLO X"
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        viewer = await c.create_token("vic")
        revoked = await c.create_token("vic", name="old")
        await c.revoke_token("vic", "old")
        expired = await c.create_token("vic", name="brief", ttl=0.001)
        await asyncio.sleep(0.01)
        bad_auth: list[dict[str, str]] = [
            {},
            {"Authorization": "Basic dXNlcjpwdw=="},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer pod_unknown"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {expired}"},
        ]

        routes = api_routes(app)
        assert len(routes) >= 35 and ("GET", "/api/runs/stream") in routes
        missing = [
            (m, p)
            for m, p in routes
            if m in {"POST", "PUT", "PATCH"} and (m, p) not in BODIES and p not in BODYLESS
        ]
        assert not missing, f"add a sample body to BODIES for {missing}"
        for method, path in routes:
            url = concrete(path, rid)
            body = BODIES.get((method, path))
            where = f"{method} {path}"
            for headers in bad_auth:
                r = await http.request(method, url, json=body, headers=headers)
                assert_error(r, 401, "unauthorized", f"{where} {headers}")
                assert r.headers["www-authenticate"] == "Bearer"
            if method in MUTATING:
                r = await http.request(method, url, json=body, headers={"Authorization": f"Bearer {viewer}"})
                assert_error(r, 403, "permission_denied", where)


@pytest.mark.parametrize("path", ["/api/runs", "/api/memory/customer:1", "/api/policies"])
async def test_local_mode_needs_no_token(server: Any, path: str) -> None:
    async with server("memory://") as (app, http):
        from podium.memory import Memory, attach

        attach(app.state.client, Memory(app.state.client.store, embedder="hash:256"))
        assert (await http.get(path)).status_code == 200


async def test_api_answers_are_no_store_and_the_streams_no_cache(server: Any) -> None:
    """Authenticated answers (runs, payloads, the audit log) carried no cache policy, so a browser
    could keep them on disk: every ``/api/`` answer is ``no-store``, errors and 401s too; the event
    streams keep their ``no-cache``; the dashboard's page and static files are not ``/api/``."""
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        await c.run(flows.hello, {"name": "x"})
        rid = (await c.list(limit=1))[0].id
        await c.create_user("root", ["admin"])
        root = {"Authorization": f"Bearer {await c.create_token('root')}"}
        gets = [p for m, p in api_routes(app) if m == "GET" and p.startswith("/api/") and not p.endswith("/stream")]
        assert len(gets) >= 20, gets
        for path in gets:
            r = await http.get(concrete(path, rid), headers=root)
            assert r.headers.get("cache-control") == "no-store", (path, r.status_code, r.headers)
        for r in (
            await http.get("/api/runs"),  # 401
            await http.post("/api/runs", json={"workflow": "nope"}, headers=root),  # 404
            await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "y"}}, headers=root),
        ):
            assert r.headers.get("cache-control") == "no-store", (r.status_code, r.headers)
        for url in ("/api/runs/stream?timeout=0.2", f"/api/runs/{rid}/stream"):
            async with http.stream("GET", url, headers=root) as r:
                assert r.headers.get("cache-control") == "no-cache", (url, r.headers)
        assert "no-store" not in (await http.get("/")).headers.get("cache-control", "")
        assert "no-store" not in (await http.get("/openapi.json")).headers.get("cache-control", "")
