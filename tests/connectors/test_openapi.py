"""The openapi connector against a real local HTTP app that serves its OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

import pytest

from podium import ConnectorCircuitOpen, ConnectorError
from podium.connectors import connector_tools, open_connector
from podium.models import ToolError
from podium.resilience import Backoff, BreakerPolicy

from .conftest import Crm


@pytest.fixture
async def api(crm: Crm, crm_spec: dict[str, Any]) -> Any:
    conn = open_connector("openapi", spec=crm_spec, base_url=crm.url, allow_private=True)
    conn.retry = Backoff(max_attempts=3, initial=0.01)
    yield conn
    await conn.close()


async def test_operations_come_from_the_document(api: Any) -> None:
    ops = {o.name: o for o in api.operations()}
    assert set(ops) == {"createContact", "listContacts", "getContact", "updateContact", "flaky", "postHook"}
    create = ops["createContact"]
    assert create.input["required"] == ["body"]
    assert create.input["properties"]["body"]["required"] == ["email"]  # $ref resolved
    assert create.output["properties"]["email"] == {"type": "string"}
    assert ops["getContact"].input["required"] == ["id"] and ops["getContact"].safe
    assert not create.safe


async def test_calls_reach_the_service(api: Any, crm: Crm) -> None:
    made = await api.call("createContact", {"body": {"email": "a@example.com"}}, idempotency_key="k1")
    assert made == {"email": "a@example.com", "id": "1"}
    assert await api.call("getContact", {"id": "1"}) == made
    assert await api.call("listContacts", {"email": "a@example.com"}) == [made]
    assert crm.requests[-1]["path"] == "/contacts?email=a%40example.com"
    updated = await api.call("updateContact", {"id": "1", "body": {"name": "Ada"}}, idempotency_key="k2")
    assert updated["name"] == "Ada"


async def test_path_parameters_are_one_encoded_segment(api: Any, crm: Crm) -> None:
    for value, path in [("../openapi.json", "/contacts/..%2Fopenapi.json"), ("a/b?c#d", "/contacts/a%2Fb%3Fc%23d"), ("..", "/contacts/%2E%2E")]:
        with pytest.raises(ConnectorError, match="HTTP 404") as err:
            await api.call("getContact", {"id": value})
        assert not err.value.retryable
        assert crm.requests[-1]["path"] == path
    with pytest.raises(ConnectorError, match="takes no argument 'extra'"):
        await api.call("getContact", {"id": "1", "extra": 1})
    with pytest.raises(ConnectorError, match="needs the argument 'id'"):
        await api.call("getContact", {})


async def test_idempotency_key_on_unsafe_methods_only(api: Any, crm: Crm) -> None:
    await api.call("createContact", {"body": {"email": "a@example.com"}}, idempotency_key="run-1/step/op")
    await api.call("listContacts", {}, idempotency_key="run-1/step/list")
    post, get = crm.of("POST")[-1], crm.of("GET")[-1]
    assert post["headers"]["Idempotency-Key"] == "run-1/step/op"
    assert "Idempotency-Key" not in get["headers"]


async def test_503_with_retry_after_is_waited_then_retried(api: Any, crm: Crm) -> None:
    crm.failures = [(503, {"Retry-After": "0.3"})]
    t0 = time.monotonic()
    assert await api.guarded_call("flaky", {}) == {"ok": True}
    assert time.monotonic() - t0 >= 0.3  # the server's Retry-After, not the 0.01 s backoff
    assert [r["path"] for r in crm.requests] == ["/openapi.json", "/flaky", "/flaky"]


async def test_429_and_5xx_retry_4xx_does_not(api: Any, crm: Crm) -> None:
    crm.failures = [(429, {"Retry-After": "0"}), (500, {})]
    assert await api.guarded_call("flaky", {}) == {"ok": True}
    assert len(crm.of("GET")) == 4  # the document, two failures, the answer
    crm.failures = [(400, {}), (200, {})]
    with pytest.raises(ConnectorError, match="HTTP 400") as err:
        await api.guarded_call("flaky", {})
    assert err.value.status == 400 and not err.value.retryable
    assert len(crm.of("GET")) == 5  # not retried


async def test_breaker_opens_and_fails_fast(api: Any, crm: Crm) -> None:
    api.retry = Backoff(max_attempts=1)
    api.breaker_policy = BreakerPolicy(failures=2, reset_after=60)
    crm.failures = [(502, {}), (502, {})]
    for _ in range(2):
        with pytest.raises(ConnectorError, match="HTTP 502"):
            await api.guarded_call("flaky", {})
    sent = len(crm.requests)
    with pytest.raises(ConnectorCircuitOpen, match="circuit is open") as err:
        await api.guarded_call("flaky", {})
    assert err.value.retryable and err.value.retry_after and err.value.retry_after > 50
    assert len(crm.requests) == sent  # nothing was sent
    assert api.breaker.state == "open" and (await api.health())["breaker"] == "open"


async def test_loopback_is_refused_unless_allowed(crm: Crm, crm_spec: dict[str, Any]) -> None:
    conn = open_connector("openapi", spec=crm_spec, base_url=crm.url)
    with pytest.raises(ConnectorError, match="loopback") as err:
        await conn.guarded_call("flaky", {})
    assert not err.value.retryable
    assert crm.of("GET") == [r for r in crm.requests if r["path"] == "/openapi.json"]  # nothing reached it
    await conn.close()


async def test_operations_as_agent_tools(api: Any, crm: Crm) -> None:
    tools = {t.name: t for t in connector_tools(api, "crm")}
    assert "crm_createContact" in tools
    tool = tools["crm_getContact"]
    assert tool.spec.parameters["required"] == ["id"]
    await api.call("createContact", {"body": {"email": "t@example.com"}})
    assert (await tool.call({"id": "1"}))["email"] == "t@example.com"
    with pytest.raises(ToolError) as err:
        await tool.call({"id": "404"})
    assert err.value.retryable is False


def test_an_unknown_kind_and_a_bad_spec_are_config_errors(crm: Crm) -> None:
    from podium import ConfigError

    with pytest.raises(ConfigError, match="unknown connector kind 'nope'"):
        open_connector("nope")
    with pytest.raises(ConfigError, match="OpenAPI 3"):
        open_connector("openapi", spec={"swagger": "2.0"}, base_url=crm.url)
    with pytest.raises(ConfigError, match="base_url"):
        open_connector("openapi", spec={"openapi": "3.0.0", "paths": {}})


async def test_health(api: Any, crm: Crm, crm_spec: dict[str, Any]) -> None:
    assert (await api.health())["ok"]
    closed = open_connector("openapi", spec=crm_spec, base_url=crm.url)  # loopback not allowed
    assert (await closed.health()) == {"ok": False, "error": "the host is not allowed", "breaker": "closed"}
    await closed.close()
