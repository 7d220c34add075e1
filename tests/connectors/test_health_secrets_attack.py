"""``GET /api/connectors`` (a viewer's ``workflows.read``) shows why a registered connector cannot be
opened. A connector's URL, password included, lives in an environment variable (``url_env``) so
that the registry never holds a secret; a URL with a typo made the connector's settings error quote
it whole, and the health page showed the database password to every viewer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium import Client

from .test_health import server

CASES = {
    "orders": ("sql", "PODIUM_TEST_ORDERS_URL", "postgresql//app:Pw-Orders-1@db.internal/orders"),
    "cache": ("redis", "PODIUM_TEST_CACHE_URL", "redis//:Pw-Cache-2@cache.internal:6379/0"),
    "bus": ("nats", "PODIUM_TEST_BUS_URL", "nats//svc:Pw-Bus-3@bus.internal:4222"),
    "iot": ("mqtt", "PODIUM_TEST_IOT_URL", "mqtts//svc:Pw-Iot-4@iot.internal:8883"),
}


async def test_a_mistyped_url_never_shows_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sqlalchemy")
    store = f"sqlite:///{tmp_path}/p.db"
    for _, env, url in CASES.values():
        monkeypatch.setenv(env, url)
    async with Client(store) as c:
        for name, (kind, env, _) in CASES.items():
            await c.add_capability(name, "connector", {"kind": kind, "url_env": env})
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        admin, token = await c.create_token("root"), await c.create_token("vic")
    async with server(store, token=admin) as (_, http):
        answer = await http.get("/api/connectors", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    found = {c["name"]: c for c in answer.json()["connectors"]}
    text = json.dumps(found)
    for name, (_, env, url) in CASES.items():
        assert found[name]["ok"] is False
        assert env in found[name]["error"], found[name]  # says where the bad URL is
        assert url not in found[name]["error"]
    for secret in ("Pw-Orders-1", "Pw-Cache-2", "Pw-Bus-3", "Pw-Iot-4", "db.internal/orders"):
        assert secret not in text
