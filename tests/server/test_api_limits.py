"""Requests the review found answered 500, accepted without limit, or accepted where they must not be:
each is refused with a 4xx in the JSON error shape that names the field or says the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium.server import Settings

from . import flows


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def assert_error(r: Any, status: int, *says: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:400])
    err = r.json()["error"]
    for text in says:
        assert text in err["message"], (text, err)


@pytest.mark.parametrize("depth", [400, 900])
async def test_deeply_nested_input_is_a_422_not_a_500(server: Any, depth: int) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        body = json.dumps({"workflow": "hello", "input": {"deep": nested(depth)}})
        r = await http.post("/api/runs", content=body, headers={"content-type": "application/json"})
        assert_error(r, 422, "nested deeper than")


async def test_deeply_nested_memory_data_is_a_422(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_EMBEDDER", "hash:64")
    async with server("memory://") as (_app, http):
        body = json.dumps({"text": "likes tea", "data": nested(900)})
        r = await http.post("/api/memory/customer:1", content=body, headers={"content-type": "application/json"})
        assert_error(r, 422, "nested deeper than")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/api/runs", '{"workflow": "hello", "input": {"name": "\\ud800"}}'),
        ("POST", "/api/switches", '{"scope": "workflow", "name": "\\ud800"}'),
        ("PUT", "/api/policies/%ED%A0%80", '{"max_run_tokens": 10}'),
        ("DELETE", "/api/switches/workflow/%ED%A0%80", None),
        ("POST", "/api/memory/customer:1", '{"text": "\\ud800"}'),
    ],
)
async def test_lone_surrogates_are_a_4xx(server: Any, method: str, path: str, body: str | None) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        headers = {"content-type": "application/json"}
        r = await http.request(method, path, content=body, headers=headers)
        if "%ED" in path:  # invalid UTF-8 in a URL arrives as U+FFFD: no surrogate, no crash
            assert r.status_code < 500, (r.status_code, r.text[:300])
            return
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        assert r.json()["error"]["code"] != "internal" and "surrogate" in r.text


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"workflow": "hello", "input": {"amount": NaN}}', "input.amount"),
        ('{"workflow": "hello", "input": {"xs": [1, Infinity]}}', "input.xs[1]"),
        ('{"workflow": "hello", "input": -Infinity}', "input"),
    ],
)
async def test_nan_and_infinity_are_refused_naming_the_field(server: Any, body: str, field: str) -> None:
    async with server("memory://", workflows=flows.ALL) as (app, http):
        r = await http.post("/api/runs", content=body, headers={"content-type": "application/json"})
        assert_error(r, 422, field)
        assert not await app.state.client.list()  # nothing was started with a null in its place


async def test_request_size_is_limited(tmp_path: Any) -> None:
    from .conftest import serve

    assert Settings().max_request_bytes == 10 * 1024 * 1024
    async with serve(Settings(store="memory://", workflows=flows.ALL, max_request_bytes=2000)) as (_app, http):
        big = json.dumps({"workflow": "hello", "input": {"name": "x" * 5000}})
        r = await http.post("/api/runs", content=big, headers={"content-type": "application/json"})
        assert_error(r, 413, "2000 bytes")

        async def chunks() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"x" * 500

        r = await http.post("/api/runs", content=chunks(), headers={"content-type": "application/json"})
        assert_error(r, 413, "2000 bytes")
        ok = await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "x"}})
        assert ok.status_code == 201, ok.text


async def test_query_token_only_on_the_live_streams(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (app, http):
        c = app.state.client
        await c.run(flows.hello, {"name": "x"})
        rid = (await c.list(limit=1))[0].id
        await c.create_user("root", ["admin"])
        token = await c.create_token("root")
        q = {"token": token}
        assert_error(await http.post("/api/runs", params=q, json={"workflow": "hello"}), 401, "Authorization")
        assert_error(await http.get("/api/runs", params=q), 401, "Authorization")
        assert_error(await http.delete("/api/policies/hello", params=q), 401, "Authorization")
        r = await http.get(f"/api/runs/{rid}/stream", params=q)  # a finished run: the stream ends
        assert r.status_code == 200 and "event: end" in r.text
        r = await http.get("/api/runs/stream", params={**q, "timeout": 0.2})
        assert r.status_code == 200 and "event: ready" in r.text


async def test_idempotency_keys_are_scoped_per_tenant(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        body = {"workflow": "hello", "input": {"name": "x"}, "idempotency_key": "order-1"}
        a = (await http.post("/api/runs", json={**body, "tenant": "acme"})).json()
        b = (await http.post("/api/runs", json={**body, "tenant": "globex"})).json()
        again = (await http.post("/api/runs", json={**body, "tenant": "acme"})).json()
        assert a["run"]["id"] != b["run"]["id"]
        assert again["duplicate"] and again["run"]["id"] == a["run"]["id"]
        assert not b["duplicate"]


async def test_a_kill_switch_with_a_slash_in_its_name_can_be_cleared(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        r = await http.post("/api/switches", json={"scope": "provider", "name": "openai/gpt-4o"})
        assert r.status_code == 200 and "provider:openai/gpt-4o" in r.json()["switches"]
        r = await http.delete("/api/switches/provider/openai/gpt-4o")
        assert r.status_code == 200, r.text
        assert (await http.get("/api/switches")).json()["switches"] == {}


async def test_clearing_a_kill_switch_that_is_not_set_is_404(server: Any) -> None:
    """DELETE of a switch never set answered 200 ``{"woken": 0}``: a mistyped name looked cleared."""
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        assert (await http.post("/api/switches", json={"scope": "workflow", "name": "hello"})).status_code == 200
        assert_error(await http.delete("/api/switches/workflow/helo"), 404, "no kill switch workflow:helo is set")
        r = await http.delete("/api/switches/workflow/helo")
        assert "on now: workflow:hello" in r.json()["error"]["message"]
        assert "workflow:hello" in (await http.get("/api/switches")).json()["switches"]
        assert (await http.delete("/api/switches/workflow/hello")).status_code == 200


async def test_a_scope_wide_kill_switch_needs_an_explicit_name(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (_app, http):
        assert_error(await http.post("/api/switches", json={"scope": "workflow"}), 422, "name")
        r = await http.post("/api/switches", json={"scope": "workflow", "name": "*"})
        assert r.status_code == 200 and "workflow:*" in r.json()["switches"]
