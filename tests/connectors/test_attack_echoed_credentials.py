"""A system answering 2xx with the credentials it was sent (a debugging API returning the headers
it got) does not put them in the step's output, the events or the store; a key the system issues
(nobody sent it) is kept as it came."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import Client, Workflow
from podium.connectors import open_connector

from .oauth_server import CLIENT_ID, CLIENT_SECRET, TokenServer, start_token_server


@pytest.fixture
def oauth() -> Iterator[TokenServer]:
    state, stop = start_token_server(expires_in=60)
    yield state
    stop()


AUTHS: dict[str, dict[str, Any]] = {
    "oauth2": {"type": "oauth2_client_credentials", "client_id": CLIENT_ID, "client_secret": "secret:CS"},
    "basic": {"type": "basic", "username": "svc-user", "password": "secret:PW"},
    "api_key": {"type": "api_key", "header": "X-API-Key", "value": "secret:KEY"},
    "bearer": {"type": "bearer", "token": "secret:TOK"},
}
PASSWORD = "pw-" + "p" * 24
KEY = "key-" + "k" * 24
TOKEN = "tok-" + "t" * 24


@pytest.mark.parametrize("kind", sorted(AUTHS))
async def test_attack_a_2xx_answer_echoing_the_credentials_is_stored_masked(
    oauth: TokenServer, tmp_path: Path, kind: str
) -> None:
    auth = dict(AUTHS[kind])
    if kind == "oauth2":
        auth["token_url"] = oauth.token_url
    conn = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth, headers={"X-Tenant": "secret:TENANT"})
    wf = Workflow("echoed")

    @wf.step
    async def ask(ctx, input):
        return await ctx.connector("api").call("debugHeaders")

    db = f"sqlite:///{tmp_path}/p.db"
    tenant = "tenant-" + "q" * 20
    async with Client(db, workflows=[wf], connectors={"api": conn}) as client:
        for name, value in (("CS", CLIENT_SECRET), ("PW", PASSWORD), ("KEY", KEY), ("TOK", TOKEN), ("TENANT", tenant)):
            await client.secrets.set(name, value)
        handle = await client.start(wf, None)
        out = await handle.result()
        run = await client.store.get_run(handle.id)
        events = await client.store.load_events(handle.id)
    sent = [tenant]
    if kind == "oauth2":
        sent += list(oauth.by_access)
        assert sent[1:]
    sent += {"basic": [PASSWORD, base64.b64encode(f"svc-user:{PASSWORD}".encode()).decode()], "api_key": [KEY], "bearer": [TOKEN]}.get(kind, [])
    stored = "\n".join([repr(out), repr(run), *(repr(e) for e in events)])
    headers = {k.lower(): v for k, v in out["headers"].items()}
    assert headers["x-tenant"] == "***"
    header = "x-api-key" if kind == "api_key" else "authorization"
    assert "***" in headers[header] and len(headers[header]) < 20, headers[header]
    for value in sent:
        assert value not in stored
    assert "\\u" not in out["seen"] and "***" in out["seen"]
    assert out["issued_key"] == "ik-issued-" + "z" * 20  # data the system made: kept
