"""The integration tax, continued: credentials. A real OAuth2 server (Authlib's, in
``oauth_server``) whose refresh tokens rotate, that revokes a token family on reuse, and APIs and
token endpoints that echo credentials, change their format or ask to slow down; see
``test_integration_tax`` for the rest."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import Client, RunFailed, Workflow
from podium.connectors import ConnectorError, open_connector
from podium.connectors.relay import OutboxRelay
from podium.connectors.sql import SqlConnector
from podium.resilience import Backoff
from podium.storage.secrets import SecretStore

from .oauth_server import CLIENT_ID, CLIENT_SECRET, TokenServer, start_token_server
from .test_outbox import orders_table, place


@pytest.fixture
def oauth() -> Iterator[TokenServer]:
    """Tokens that live a minute: refused or revoked here, never expired by a slow machine."""
    state, stop = start_token_server(expires_in=60)
    yield state
    stop()


async def test_attack_a_refresh_token_rotated_by_another_process_does_not_fail_the_run(
    oauth: TokenServer, tmp_path: Path
) -> None:
    """Two workers share one refresh token in the secret store, and the server rotates it on use.
    Before: a connector kept the refresh token it had rotated itself in memory and used it after the
    other worker had rotated it again; the server answered invalid_grant and the call failed, telling
    the admin to set a refresh token the store already held."""
    first_rt = oauth.issue_refresh_token()
    auth = {
        "type": "oauth2_refresh_token", "token_url": oauth.token_url, "client_id": CLIENT_ID,
        "client_secret": "secret:CRM_CLIENT_SECRET", "refresh_token": "secret:CRM_REFRESH_TOKEN",
    }  # fmt: skip
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        key = client.secrets.source.key  # type: ignore[union-attr]
        workers = []
        for _ in range(2):  # each as another process has it: its own secret store reader and cache
            conn = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth)
            conn.secrets = SecretStore(client.store, key=key)
            conn.retry = Backoff(max_attempts=1)
            workers.append(conn)
        a, b = workers
        assert await a.guarded_call("echo", {"n": 1}) == {"n": 1}  # A rotates the first refresh token
        assert await b.guarded_call("echo", {"n": 2}) == {"n": 2}  # B reads A's and rotates it in turn
        oauth.revoke_all()
        assert await a.guarded_call("echo", {"n": 3}) == {"n": 3}  # A's own is spent: B's is in the store
        assert await b.guarded_call("echo", {"n": 4}) == {"n": 4}
        live = [t for t, rec in oauth.by_refresh.items() if not rec.refresh_revoked]
        assert [(await client.secrets.get("CRM_REFRESH_TOKEN")).reveal()] == live
        for conn in workers:
            await conn.close()
        # a refresh token revoked at the server (nothing newer in the store) still fails, saying which secret
        oauth.by_refresh[live[0]].refresh_revoked = True
        oauth.revoke_all()
        late = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth)
        late.secrets = client.secrets.source
        with pytest.raises(ConnectorError, match="podium secrets set CRM_REFRESH_TOKEN") as caught:
            await late.guarded_call("echo", {"n": 5})
        assert not caught.value.retryable
        await late.close()


async def test_attack_an_api_that_echoes_the_access_token_in_an_error_leaks_it_nowhere(
    oauth: TokenServer, tmp_path: Path
) -> None:
    """An API answers 403 insufficient_scope and names the bearer token it was given (a gateway's
    debugging message). Before: the access token fetched from the token endpoint was no value the
    process masked, so the live token went into the run's error, its events and the audit log."""
    wf = Workflow("report")

    @wf.step
    async def fetch(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("api").call("report", {})

    conn = open_connector(
        "openapi", spec=oauth.spec, allow_private=True,
        auth={"type": "oauth2_client_credentials", "token_url": oauth.token_url, "client_id": CLIENT_ID,
              "client_secret": "secret:CRM_CLIENT_SECRET"},
    )  # fmt: skip
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"api": conn}) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        handle = await client.start(wf, None)
        with pytest.raises(RunFailed) as caught:
            await handle.result()
        run = await client.store.get_run(handle.id)
        events = await client.store.load_events(handle.id)
        audit = await client.store.list_audit(limit=10_000)
    tokens = list(oauth.by_access)
    assert tokens and oauth.scoped_refusals >= 1
    stored = "\n".join([str(caught.value), repr(run), *map(repr, events), *map(repr, audit)])
    assert "HTTP 403" in stored and "insufficient_scope" in stored
    assert not [t for t in tokens if t in stored]


async def test_attack_a_target_that_echoes_its_api_key_leaves_it_in_the_business_databases_outbox(
    oauth: TokenServer, tmp_path: Path
) -> None:
    """A relay delivers to an API whose refusal names the API key it was sent (`the key k-... may
    not write notes`). Before: the relay wrote the error as it came into the outbox row's
    `last_error`, in the business database, where `podium outbox list` (a process that never read
    the secret, so cannot mask it) and every reader of that database saw the live key."""
    key = "k-" + "7f3c9a" * 4
    url = f"sqlite:///{tmp_path}/orders.db"
    orders_table(url)
    db = SqlConnector(url)
    message = {"target": "api", "operation": "keyedNote", "arguments": {"body": {"text": "hello"}}}
    await db.call("transact", {"writes": place(1)["writes"], "messages": [message]}, idempotency_key="k1")
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("NOTES_KEY", key)
        api = open_connector(
            "openapi", spec=oauth.spec, allow_private=True, auth={"type": "api_key", "value": "secret:NOTES_KEY"}
        )
        api.secrets = client.secrets.source
        done = await OutboxRelay(db, {"api": api}).run_once()
        await api.close()
    assert done.failed == 1
    (row,) = await db.call("query", {"sql": "SELECT status, last_error FROM podium_outbox"})
    assert row["status"] == "failed" and "HTTP 403" in row["last_error"] and "may not write notes" in row["last_error"]
    assert key not in row["last_error"]
    await db.close()


class _DriftedTokens(http.server.BaseHTTPRequestHandler):
    """A token endpoint whose provider changed its answer's format (a renamed field, a lifetime in words)."""

    answers: list[dict[str, Any]]
    requests: list[str]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append(self.path)
        answer = dict(self.answers[min(len(self.requests), len(self.answers)) - 1])
        status = int(answer.pop("__status", 200))
        data = json.dumps(answer).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


async def test_attack_a_token_endpoint_that_changed_its_format_fails_clearly_without_hammering_it() -> None:
    """Before: a token answer whose `access_token` was renamed failed the call with `KeyError:
    'access_token'`, and one whose `expires_in` was not a number said the endpoint `could not be
    reached` and was retried as if it were down."""
    from podium.secret import Secret

    answers = [{"accessToken": "at-renamed-0000000000", "expires_in": 3600}, {"access_token": "at-00000000000", "expires_in": "one hour"}]
    handler = type("Tokens", (_DriftedTokens,), {"answers": answers, "requests": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    token_url = f"http://127.0.0.1:{srv.server_address[1]}/token"
    spec = {
        "openapi": "3.0.3", "info": {"title": "Reports", "version": "1"}, "servers": [{"url": token_url[: -len("/token")]}],
        "paths": {"/reports": {"get": {"operationId": "reports", "responses": {"200": {}}}}},
    }  # fmt: skip
    api = open_connector(
        "openapi", spec=spec, allow_private=True,
        auth={"type": "oauth2_client_credentials", "token_url": token_url, "client_id": "podium", "client_secret": Secret("s" * 24)},
    )  # fmt: skip
    try:
        with pytest.raises(ConnectorError) as renamed:
            await api.guarded_call("reports", {})
        assert "without an access_token" in str(renamed.value) and "accessToken" in str(renamed.value)
        assert "at-renamed" not in str(renamed.value) and not renamed.value.retryable
        with pytest.raises(ConnectorError) as unreadable:
            await api.guarded_call("reports", {})
        assert "cannot be read" in str(unreadable.value) and "could not be reached" not in str(unreadable.value)
        assert not unreadable.value.retryable
        assert len(handler.requests) == 2  # one request each: nothing retried
    finally:
        await api.close()
        srv.shutdown()
        srv.server_close()


class _Echo(http.server.BaseHTTPRequestHandler):
    """An API whose refusal quotes the Authorization header it received."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        data = json.dumps({"error": f"{self.headers.get('Authorization')} may not read reports"}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


async def test_attack_an_api_that_echoes_basic_credentials_leaves_them_in_the_run_record(tmp_path: Path) -> None:
    """Basic auth with the password in the secret store; the API's 403 quotes the header. Before:
    the password was masked by value, but the header carries base64(user:password), which no mask
    knew: the run's stored error held it, and anyone reading the run store could decode it."""
    import base64
    import sqlite3

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    spec = {
        "openapi": "3.0.3", "info": {"title": "Reports", "version": "1"},
        "servers": [{"url": f"http://127.0.0.1:{srv.server_address[1]}"}],
        "paths": {"/reports": {"get": {"operationId": "reports", "responses": {"200": {}}}}},
    }  # fmt: skip
    password = "pw-" + "q7" * 10
    encoded = base64.b64encode(f"svc-reports:{password}".encode()).decode()
    wf = Workflow("reports")

    @wf.step
    async def fetch(ctx, input):  # type: ignore[no-untyped-def]
        return await ctx.connector("api").call("reports", {})

    api = open_connector(
        "openapi", spec=spec, allow_private=True,
        auth={"type": "basic", "username": "svc-reports", "password": "secret:REPORTS_PASSWORD"},
    )  # fmt: skip
    try:
        async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"api": api}) as client:
            await client.secrets.set("REPORTS_PASSWORD", password)
            handle = await client.start(wf, None)
            with pytest.raises(RunFailed) as caught:
                await handle.result()
        assert "HTTP 403" in str(caught.value) and "may not read reports" in str(caught.value)
        db = sqlite3.connect(f"{tmp_path}/p.db")
        dump = "\n".join(db.iterdump())
        db.close()
        assert "may not read reports" in dump  # the error is stored...
        assert encoded not in dump and password not in dump  # ...without the credentials
    finally:
        srv.shutdown()
        srv.server_close()


async def test_attack_a_token_endpoint_that_asks_to_slow_down_is_asked_again_later() -> None:
    """The identity provider answers a token request 429 `{"error": "slow_down"}` (or
    `temporarily_unavailable`) for a moment. Before: that was an OAuth refusal like a wrong secret,
    not retried, and the run failed. Now it is retryable, and the next attempt gets the token."""
    from podium.secret import Secret

    answers = [
        {"__status": 429, "error": "slow_down", "error_description": "too many token requests"},
        {"__status": 400, "error": "temporarily_unavailable"},
        {"access_token": "at-" + "z" * 20, "token_type": "Bearer", "expires_in": 3600},
    ]
    handler = type("Tokens", (_DriftedTokens,), {"answers": answers, "requests": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    api_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)  # answers 403: enough to see the token went
    threading.Thread(target=api_srv.serve_forever, daemon=True).start()
    spec = {
        "openapi": "3.0.3", "info": {"title": "Reports", "version": "1"},
        "servers": [{"url": f"http://127.0.0.1:{api_srv.server_address[1]}"}],
        "paths": {"/reports": {"get": {"operationId": "reports", "responses": {"200": {}}}}},
    }  # fmt: skip
    token_url = f"http://127.0.0.1:{srv.server_address[1]}/token"
    api = open_connector(
        "openapi", spec=spec, allow_private=True,
        auth={"type": "oauth2_client_credentials", "token_url": token_url, "client_id": "podium", "client_secret": Secret("s" * 24)},
    )  # fmt: skip
    api.retry = Backoff(max_attempts=4, initial=0.01)
    try:
        with pytest.raises(ConnectorError) as caught:
            await api.guarded_call("reports", {})
        assert caught.value.status == 403 and "may not read reports" in str(caught.value)  # the token was got and sent
        assert len(handler.requests) == 3
    finally:
        await api.close()
        for s in (srv, api_srv):
            s.shutdown()
            s.server_close()


async def test_attack_a_store_that_refuses_the_rotated_refresh_token_fails_the_call(
    oauth: TokenServer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server rotates the refresh token; writing the new one back to the secret store fails (the
    PostgreSQL store refuses writes to its secrets: a trigger, as a read-only role or a failover
    would). Before: the store's error failed the call, although the token had been obtained and the
    old refresh token was already spent. Now the call goes on with its token, the new refresh token
    is used from memory, and a warning names the secret to set if the process restarts first."""
    import logging

    import psycopg

    first_rt = oauth.issue_refresh_token()
    auth = {
        "type": "oauth2_refresh_token", "token_url": oauth.token_url, "client_id": CLIENT_ID,
        "client_secret": "secret:CRM_CLIENT_SECRET", "refresh_token": "secret:CRM_REFRESH_TOKEN",
    }  # fmt: skip
    caplog.set_level(logging.WARNING, logger="podium.connectors")
    async with Client(pg_url) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'secrets are read-only'; END $$ "
                "LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON kv FOR EACH ROW "
                "WHEN (NEW.ns = 'secrets') EXECUTE FUNCTION refuse()"
            )
        conn_ = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth)
        conn_.secrets = client.secrets.source
        conn_.retry = Backoff(max_attempts=1)
        try:
            assert await conn_.guarded_call("echo", {"n": 1}) == {"n": 1}
            oauth.revoke_all()
            assert await conn_.guarded_call("echo", {"n": 2}) == {"n": 2}  # refreshed with the one in memory
        finally:
            await conn_.close()
        assert (await client.secrets.get("CRM_REFRESH_TOKEN")).reveal() == first_rt  # the write never landed
    warned = "\n".join(r.getMessage() for r in caplog.records if r.name == "podium.connectors")
    assert "podium secrets set CRM_REFRESH_TOKEN" in warned
    assert not [t for t in oauth.by_refresh if t in warned]


async def test_attack_two_workers_refreshing_at_once_make_the_server_revoke_every_token(
    oauth: TokenServer, tmp_path: Path
) -> None:
    """Two workers share one refresh token and both need a token at the same moment. The server
    rotates refresh tokens and, like Auth0 or Okta, revokes the whole family when a spent one comes
    back. Before: both sent the same refresh token; the second was taken for a stolen copy and every
    token of the client was revoked (both calls failed, and so did the workers' later refreshes).
    Now the refresh of a shared refresh token is leased in the Podium store: one refreshes, the
    other waits and refreshes with the token the first wrote back."""
    first_rt = oauth.issue_refresh_token()
    oauth.reuse_detection = True
    oauth.refresh_barrier = threading.Barrier(2)
    auth = {
        "type": "oauth2_refresh_token", "token_url": oauth.token_url, "client_id": CLIENT_ID,
        "client_secret": "secret:CRM_CLIENT_SECRET", "refresh_token": "secret:CRM_REFRESH_TOKEN",
    }  # fmt: skip
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        key = client.secrets.source.key  # type: ignore[union-attr]
        workers = []
        for _ in range(2):
            conn = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth)
            conn.secrets = SecretStore(client.store, key=key)
            conn.retry = Backoff(max_attempts=1)
            workers.append(conn)
        try:
            got = await asyncio.gather(*(w.guarded_call("echo", {"n": n}) for n, w in enumerate(workers)), return_exceptions=True)
            assert got == [{"n": 0}, {"n": 1}], got
            assert oauth.family_revocations == 0 and oauth.issued == 2
            live = [t for t, rec in oauth.by_refresh.items() if not rec.refresh_revoked]
            assert [(await client.secrets.get("CRM_REFRESH_TOKEN")).reveal()] == live
            assert await client.store.kv_get("oauth_refresh", "CRM_REFRESH_TOKEN") is None  # the lease ended
        finally:
            for conn in workers:
                await conn.close()


async def test_attack_a_slow_token_endpoint_outlasted_the_refresh_lease(
    oauth: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack (review of the eighth session's fixes): the refresh lease lasted a fixed 30 s, while the
    token request may take the connector's timeout per phase (30 s by default, more when an admin
    raises it for a slow provider). A refresh still waiting for its answer when its lease ended let
    another worker take the lease and send the same refresh token: the server, seeing it twice,
    revoked the whole family. Now the lease covers the token request, which is bounded by it. (The
    lease is made short here so that the slow answer outlasts it within the test.)"""
    from podium.connectors import _refresh_lock

    monkeypatch.setattr(_refresh_lock, "LEASE", 0.3)
    monkeypatch.setitem(_refresh_lock.RefreshLock.__init__.__kwdefaults__, "lease", 0.3)  # type: ignore[index]
    first_rt = oauth.issue_refresh_token()
    oauth.reuse_detection = True
    oauth.refresh_gate = threading.Event()
    auth = {
        "type": "oauth2_refresh_token", "token_url": oauth.token_url, "client_id": CLIENT_ID,
        "client_secret": "secret:CRM_CLIENT_SECRET", "refresh_token": "secret:CRM_REFRESH_TOKEN",
    }  # fmt: skip
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        key = client.secrets.source.key  # type: ignore[union-attr]
        workers = []
        for _ in range(2):
            conn = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth, timeout=10.0)
            conn.secrets = SecretStore(client.store, key=key)
            conn.retry = Backoff(max_attempts=1)
            workers.append(conn)
        a, b = workers
        try:
            first = asyncio.create_task(a.guarded_call("echo", {"n": 1}))

            async def waiting(n: int, within: float) -> bool:
                loop = asyncio.get_running_loop()
                end = loop.time() + within
                while oauth.refresh_waiting < n and loop.time() < end:
                    await asyncio.sleep(0.01)
                return oauth.refresh_waiting >= n

            assert await waiting(1, 10.0), "A's refresh never reached the token endpoint"
            await asyncio.sleep(0.5)  # past the (shortened) fixed lease, A's request still unanswered
            second = asyncio.create_task(b.guarded_call("echo", {"n": 2}))
            await waiting(2, 2.0)  # before: B sent the same refresh token at once; now it waits for A
            oauth.refresh_gate.set()
            got = await asyncio.gather(first, second, return_exceptions=True)
            assert oauth.family_revocations == 0, "two refreshes with one refresh token were in flight"
            assert got == [{"n": 1}, {"n": 2}], got
        finally:
            oauth.refresh_gate.set()
            for conn in workers:
                await conn.close()


async def test_attack_a_lease_that_ends_far_ahead_does_not_stop_every_refresh(tmp_path: Path) -> None:
    """Attack (review): the lease's end is a time written in the store's key-value rows, which are not
    sealed; a note ending in a year (written by hand, or by a host whose clock ran a year ahead and
    died in a refresh) held every refresh of that token off until then: each waited two leases and
    failed. A lease no connector would have written (ending more than an hour after the one it would
    take) is taken over now."""
    import json as json_

    from podium.connectors._refresh_lock import NAMESPACE, RefreshLock

    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        for far in ('{"owner": "x", "until": 1e12}', '{"owner": "x", "until": Infinity}'):
            assert await client.store.kv_swap(NAMESPACE, "CRM_REFRESH_TOKEN", None, far)
            lock = RefreshLock(client.store, "CRM_REFRESH_TOKEN", lease=0.2, poll=0.01)
            mine = await lock.acquire()
            assert json_.loads(mine)["owner"] == lock.owner
            await lock.release(mine)
            assert await client.store.kv_get(NAMESPACE, "CRM_REFRESH_TOKEN") is None
        # a lease of another process, within its term, is still waited for
        other = RefreshLock(client.store, "CRM_REFRESH_TOKEN", lease=30.0)
        held = await other.acquire()
        with pytest.raises(ConnectorError, match="for too long") as err:
            await RefreshLock(client.store, "CRM_REFRESH_TOKEN", lease=0.05, poll=0.01).acquire()
        assert err.value.retryable
        await other.release(held)


async def test_attack_a_call_cancelled_during_a_refresh_loses_the_rotated_refresh_token(
    oauth: TokenServer, tmp_path: Path
) -> None:
    """Attack (review of the eighth session's fixes): a step's timeout cancelled its connector call
    while the refresh request was at the token endpoint. The server still rotated the refresh token,
    but the answer, and the new refresh token in it, went nowhere: the store kept the spent one, the
    next refresh presented it, and a server with reuse detection revoked every token of the client
    (an admin had to authorize the connector again). Now the refresh goes on when its caller is
    cancelled, and writes the rotated token back."""
    first_rt = oauth.issue_refresh_token()
    oauth.reuse_detection = True
    oauth.refresh_gate = threading.Event()
    auth = {
        "type": "oauth2_refresh_token", "token_url": oauth.token_url, "client_id": CLIENT_ID,
        "client_secret": "secret:CRM_CLIENT_SECRET", "refresh_token": "secret:CRM_REFRESH_TOKEN",
    }  # fmt: skip
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        key = client.secrets.source.key  # type: ignore[union-attr]
        workers = []
        for _ in range(2):
            conn = open_connector("openapi", spec=oauth.spec, allow_private=True, auth=auth)
            conn.secrets = SecretStore(client.store, key=key)
            conn.retry = Backoff(max_attempts=1)
            workers.append(conn)
        a, b = workers
        loop = asyncio.get_running_loop()
        try:
            call = asyncio.create_task(a.guarded_call("echo", {"n": 1}))
            end = loop.time() + 10
            while oauth.refresh_waiting < 1 and loop.time() < end:
                await asyncio.sleep(0.01)
            assert oauth.refresh_waiting == 1, "the refresh never reached the token endpoint"
            call.cancel()  # the step's timeout
            with pytest.raises(asyncio.CancelledError):
                await call
            oauth.refresh_gate.set()  # the server answers the refresh all the same (it rotated the token)
            end = loop.time() + 10
            while not oauth.token_requests and loop.time() < end:
                await asyncio.sleep(0.01)
            assert await b.guarded_call("echo", {"n": 2}) == {"n": 2}
            assert oauth.family_revocations == 0, "the rotated refresh token was lost and the spent one sent again"
            live = [t for t, rec in oauth.by_refresh.items() if not rec.refresh_revoked]
            assert [(await client.secrets.get("CRM_REFRESH_TOKEN")).reveal()] == live
        finally:
            oauth.refresh_gate.set()
            for conn in workers:
                await conn.close()
