"""Credentials that expire and rotate, against a real local OAuth2 server (Authlib's RFC 6749 server
parts, tokens living 2 seconds) and a protected API that answers 401 to an expired or revoked token:
a run making calls across several expiries completes with no failed step; a token revoked mid-run
is replaced within the call; concurrent calls share one token fetch; an API key rotated with
``podium secrets set`` (another process) is used by the next call without a restart; secrets are
encrypted at rest and appear nowhere (audit log, run record, logs, CLI output)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import Client, RunFailed, Workflow
from podium.connectors import ConnectorError, open_connector
from podium.records import EventType
from podium.resilience import Backoff
from podium.secret import Secret
from podium.storage.secrets import KEY_ENV, SecretKeyError, SecretNotFound, SecretStore

from .oauth_server import CLIENT_ID, CLIENT_SECRET, TokenServer, start_token_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def oauth() -> Iterator[TokenServer]:
    """Tokens that live 2 seconds."""
    state, stop = start_token_server(expires_in=2)
    yield state
    stop()


@pytest.fixture
def oauth_slow() -> Iterator[TokenServer]:
    """Tokens that live a minute: for the tests where a token is revoked or refused, not expired (so
    that a slow machine does not let one expire as well)."""
    state, stop = start_token_server(expires_in=60)
    yield state
    stop()


def _podium(*args: str, db: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_DB": db, "COLUMNS": "200", **(env or {})}
    full.pop("PODIUM_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        env=full, input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def _oauth_connector(state: TokenServer, **auth: Any) -> Any:
    conn = open_connector(
        "openapi",
        spec=state.spec,
        allow_private=True,
        auth={
            "type": "oauth2_client_credentials",
            "token_url": state.token_url,
            "client_id": CLIENT_ID,
            "client_secret": "secret:CRM_CLIENT_SECRET",
            **auth,
        },
    )
    conn.retry = Backoff(max_attempts=3, initial=0.01)
    return conn


def _failures(events: list[Any]) -> list[Any]:
    return [e for e in events if e.type in (EventType.STEP_FAILED, EventType.STEP_RETRYING)]


def _our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What the process logged, less the test's own authorization server (Authlib's server parts log
    the tokens they issue at DEBUG)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("authlib.oauth2.rfc6749", "authlib.oauth2.rfc6750"))
    )


async def _everything_stored(client: Client, run_id: str) -> str:
    """The run record, its events and the whole audit log, as text."""
    run = await client.store.get_run(run_id)
    events = await client.store.load_events(run_id)
    audit = await client.store.list_audit(limit=100_000)
    return "\n".join([repr(run), *(repr(e) for e in events), *(repr(a) for a in audit)])


async def test_a_run_across_several_token_expiries_completes_without_a_failed_step(
    oauth: TokenServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wf = Workflow("sync")

    @wf.step
    async def calls(ctx, input):
        n = 0
        deadline = time.monotonic() + 60
        while oauth.issued < 4:  # three expiries at least (a token lives 2 s)
            assert time.monotonic() < deadline, "tokens never expired"
            got = await ctx.connector("api").call("echo", {"n": n})
            assert got == {"n": n}
            n += 1
            await asyncio.sleep(0.05)
        return n

    conn = _oauth_connector(oauth)
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"api": conn}) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        handle = await client.start(wf, None)
        out = await handle.result()
        events = await client.store.load_events(handle.id)
        stored = await _everything_stored(client, handle.id)
    assert out > 4
    assert not _failures(events)
    assert conn.stats.token_refreshes == oauth.issued >= 4
    assert conn.stats.token_expires_at is not None and conn.stats.token_expires_at > time.time() - 5
    assert conn.stats.errors == 0
    # the refreshes happened before expiry (the margin), or in the call that met a 401
    granted = [r for r in oauth.token_requests if r["status"] == 200]
    assert len(granted) == oauth.issued
    tokens = list(oauth.by_access)
    for text in (stored, _our_logs(caplog)):
        assert CLIENT_SECRET not in text
        assert not [t for t in tokens if t in text]


async def test_a_token_revoked_mid_run_is_replaced_within_the_call(oauth_slow: TokenServer, tmp_path: Path) -> None:
    wf = Workflow("revoked")

    @wf.step
    async def calls(ctx, input):
        first = await ctx.connector("api").call("echo", {"n": 1})
        oauth_slow.revoke_all()  # the identity provider revokes the token: the API now answers 401
        second = await ctx.connector("api").call("addNote", {"body": {"text": "hi"}})
        return [first, second]

    conn = _oauth_connector(oauth_slow, margin=0)
    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"api": conn}) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        handle = await client.start(wf, None)
        out = await handle.result()
        events = await client.store.load_events(handle.id)
        audit = [json.loads(a.data) for a in await client.audit_log() if a.action == "connector.call"]
    assert out[0] == {"n": 1} and out[1]["saved"] == {"text": "hi"}
    assert oauth_slow.rejected == 1 and oauth_slow.issued == 2 and conn.stats.token_refreshes == 2
    assert not _failures(events)
    assert [a["outcome"] for a in audit] == ["ok", "ok"]
    assert conn.breaker.state == "closed" and conn.stats.retries == 0


async def test_concurrent_calls_share_one_token_fetch(oauth_slow: TokenServer, tmp_path: Path) -> None:
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        conn = _oauth_connector(oauth_slow, margin=0)
        conn.secrets = client.secrets.source
        got = await asyncio.gather(*(conn.guarded_call("echo", {"n": i}) for i in range(20)))
        assert [g["n"] for g in got] == list(range(20))
        assert oauth_slow.issued == 1
        oauth_slow.revoke_all()  # every one of the next calls meets a 401: still one new token
        got = await asyncio.gather(*(conn.guarded_call("echo", {"n": i}) for i in range(20)))
        assert [g["n"] for g in got] == list(range(20))
        assert oauth_slow.issued == 2 and conn.stats.token_refreshes == 2
        await conn.close()


async def test_refresh_token_flow_keeps_the_rotated_refresh_token(oauth_slow: TokenServer, tmp_path: Path) -> None:
    """The server rotates refresh tokens (the old one dies once used): the connector keeps the new
    one in the secret store, so a connector built later (after a restart) still works."""

    def connector() -> Any:
        conn = open_connector(
            "openapi",
            spec=oauth_slow.spec,
            allow_private=True,
            auth={
                "type": "oauth2_refresh_token",
                "token_url": oauth_slow.token_url,
                "client_id": CLIENT_ID,
                "client_secret": "secret:CRM_CLIENT_SECRET",
                "refresh_token": "secret:CRM_REFRESH_TOKEN",
            },
        )
        conn.secrets = client.secrets.source
        return conn

    first_rt = oauth_slow.issue_refresh_token()
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        await client.secrets.set("CRM_REFRESH_TOKEN", first_rt)
        conn = connector()
        assert await conn.guarded_call("echo", {"n": 1}) == {"n": 1}
        oauth_slow.revoke_all()
        assert await conn.guarded_call("echo", {"n": 2}) == {"n": 2}  # a 401: refreshed with the rotated token
        assert oauth_slow.issued == 2 and oauth_slow.by_refresh[first_rt].refresh_revoked
        stored = await client.secrets.get("CRM_REFRESH_TOKEN")
        assert stored.reveal() != first_rt and stored.reveal() in oauth_slow.by_refresh
        assert (await client.secrets.source.info("CRM_REFRESH_TOKEN")).version == 3  # type: ignore[union-attr]
        later = connector()  # a new process would read the stored refresh token
        assert await later.guarded_call("echo", {"n": 3}) == {"n": 3}
        await conn.close()
        await later.close()


async def test_an_api_key_rotated_by_the_cli_is_used_without_a_restart(
    oauth: TokenServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = f"sqlite:///{tmp_path}/p.db"
    old_key, new_key = "key-old-" + "a" * 20, "key-new-" + "b" * 20
    oauth.api_keys = {old_key}
    set_old = _podium("secrets", "set", "CRM_API_KEY", db=db, stdin=old_key + "\n")
    assert set_old.returncode == 0, set_old.stderr
    wf = Workflow("keyed")

    @wf.step
    async def whoami(ctx, input):
        return await ctx.connector("api").call("whoami")

    conn = open_connector(
        "openapi",
        spec=oauth.spec,
        allow_private=True,
        auth={"type": "api_key", "header": "X-API-Key", "value": "secret:CRM_API_KEY"},
    )
    async with Client(db, workflows=[wf], connectors={"api": conn}) as client:
        assert await client.run(wf, None) == {"key_suffix": old_key[-4:]}
        oauth.api_keys = {new_key}  # the vendor rotates the key: the old one is refused from now on
        set_new = _podium("secrets", "set", "CRM_API_KEY", "--from-env", "NEW_KEY", db=db, env={"NEW_KEY": new_key})
        assert set_new.returncode == 0, set_new.stderr
        handle = await client.start(wf, None)
        assert await handle.result() == {"key_suffix": new_key[-4:]}  # no restart: the 401 re-read the store
        assert not _failures(await client.store.load_events(handle.id))
        stored = await _everything_stored(client, handle.id)
    listed = _podium("secrets", "list", "--json", db=db)
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["name"] == "CRM_API_KEY" and row["version"] == 2 and row["updated_by"] == "local"
    texts = [stored, _our_logs(caplog), *(p.stdout + p.stderr for p in (set_old, set_new, listed))]
    for text in texts:
        assert old_key not in text and new_key not in text
    assert "set CRM_API_KEY (version 2" in set_new.stdout
    # the store file holds no plaintext, and the audit log names the secret only
    raw = Path(tmp_path / "p.db").read_bytes()
    for wal in tmp_path.glob("p.db-*"):
        raw += wal.read_bytes()
    assert old_key.encode() not in raw and new_key.encode() not in raw
    with sqlite3.connect(tmp_path / "p.db") as con:
        actions = [r[0] for r in con.execute("SELECT action FROM audit WHERE target = 'secret:CRM_API_KEY'")]
    assert actions == ["secret.set", "secret.set"]


async def test_the_store_holds_no_plaintext_on_postgres(pg_url: str) -> None:
    value = "pg-secret-" + "z" * 20
    async with Client(pg_url) as client:
        info = await client.secrets.set("PG_TOKEN", value)
        assert info.version == 1
        assert (await client.secrets.get("PG_TOKEN")).reveal() == value
        assert [i.name for i in await client.secrets.list()] == ["PG_TOKEN"]
    import psycopg

    with psycopg.connect(pg_url) as conn:
        dump = "\n".join(str(r) for r in conn.execute("SELECT * FROM kv").fetchall())
    assert "PG_TOKEN" in dump and value not in dump
    async with Client(pg_url) as client:  # another client of the same store reads it
        assert (await client.secrets.source.get("PG_TOKEN")).reveal() == value
        assert await client.secrets.delete("PG_TOKEN")
        with pytest.raises(SecretNotFound, match="podium secrets set PG_TOKEN"):
            await client.secrets.source.get("PG_TOKEN")


async def test_the_key_file_is_created_0600_beside_the_audit_key(tmp_path: Path, audit_key: str) -> None:
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("A_TOKEN", "value-1")
        assert isinstance(await client.secrets.get("A_TOKEN"), Secret)
    key = Path(audit_key).parent / "secrets.key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "value-1" not in key.read_text()


async def test_a_wrong_key_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oauth: TokenServer) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    monkeypatch.setenv(KEY_ENV, "11" * 32)
    async with Client(db) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv(KEY_ENV, "22" * 32)
    async with Client(db) as client:
        with pytest.raises(SecretKeyError) as caught:
            await client.secrets.source.get("CRM_CLIENT_SECRET")
        text = str(caught.value)
        assert "CRM_CLIENT_SECRET" in text and KEY_ENV in text and "podium secrets set CRM_CLIENT_SECRET" in text
        conn = _oauth_connector(oauth)
        conn.secrets = client.secrets.source
        with pytest.raises(ConnectorError, match="auth.client_secret: secret 'CRM_CLIENT_SECRET' was sealed with"):
            await conn.guarded_call("echo", {"n": 1})
        await conn.close()
    monkeypatch.setenv(KEY_ENV, "not a key")
    bad = _podium("secrets", "list", db=db)
    assert bad.returncode == 2 and KEY_ENV in bad.stderr and "Traceback" not in bad.stderr


async def test_an_unknown_secret_fails_the_step_naming_it(oauth: TokenServer, tmp_path: Path) -> None:
    wf = Workflow("unknown")

    @wf.step
    async def call(ctx, input):
        return await ctx.connector("api").call("echo", {"n": 1})

    async with Client(f"sqlite:///{tmp_path}/p.db", workflows=[wf], connectors={"api": _oauth_connector(oauth)}) as client:
        with pytest.raises(RunFailed) as caught:
            await client.run(wf, None)
    text = str(caught.value)
    assert "CRM_CLIENT_SECRET" in text and "podium secrets set CRM_CLIENT_SECRET" in text
    assert oauth.token_requests == []  # nothing was sent


async def test_a_rotated_client_secret_is_picked_up(oauth_slow: TokenServer, tmp_path: Path) -> None:
    """The identity provider rotates the client secret, the admin stores the new one: the next token
    fetch (refused with invalid_client by the cached old value) reads the store again."""
    async with Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        conn = _oauth_connector(oauth_slow, margin=0)
        conn.secrets = client.secrets.source
        client.secrets.source.ttl = 3600  # only the refusal may make it read the store again
        assert await conn.guarded_call("echo", {"n": 1}) == {"n": 1}
        oauth_slow.clients[CLIENT_ID] = "cs-rotated-" + "y" * 20
        oauth_slow.revoke_all()
        other = SecretStore(client.store, key=client.secrets.source.key)  # as another process would
        await other.put("CRM_CLIENT_SECRET", oauth_slow.clients[CLIENT_ID])
        assert await conn.guarded_call("echo", {"n": 2}) == {"n": 2}
        assert [r["status"] for r in oauth_slow.token_requests] == [200, 401, 200]
        await conn.close()


async def test_a_secret_of_a_deleted_name_is_refused_with_how_to_fix(tmp_path: Path) -> None:
    async with Client("memory://") as client:  # memory stores hold a key for the process
        await client.secrets.set("X_TOKEN", "v")
        assert await client.secrets.delete("X_TOKEN") and not await client.secrets.delete("X_TOKEN")
        with pytest.raises(SecretNotFound, match="podium secrets set X_TOKEN"):
            await client.secrets.get("X_TOKEN")


def test_the_registry_refuses_credentials_in_clear_text(tmp_path: Path, oauth: TokenServer) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(oauth.spec))
    base = ["connectors", "add", "api", "openapi", "--set", f"spec={spec}", "--allow-private"]
    for bad in (
        ["--set", "token=abc123"],
        ["--set", "auth.type=oauth2_client_credentials", "--set", f"auth.token_url={oauth.token_url}",
         "--set", f"auth.client_id={CLIENT_ID}", "--set", f"auth.client_secret={CLIENT_SECRET}"],
        ["--set", "headers.Authorization=Bearer abc123"],
        ["--set", "api_key=abc123"],
    ):  # fmt: skip
        out = _podium(*base, *bad, db=db)
        assert out.returncode == 2 and "secret" in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert CLIENT_SECRET not in out.stderr and "abc123" not in out.stderr
    good = _podium(
        *base, "--set", "auth.type=oauth2_client_credentials", "--set", f"auth.token_url={oauth.token_url}",
        "--set", f"auth.client_id={CLIENT_ID}", "--set", "auth.client_secret=secret:CRM_CLIENT_SECRET", db=db,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr


async def test_a_yaml_workflow_uses_a_registered_connector_with_oauth2(oauth: TokenServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(oauth.spec))
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: notes\nversion: '1'\nsteps:\n  - id: note\n    uses: connector\n"
        "    with: {connector: api, operation: addNote, arguments: {body: {text: hello}}}\n"
    )
    async with Client(db) as client:
        await client.secrets.set("CRM_CLIENT_SECRET", CLIENT_SECRET)
        target = {
            "kind": "openapi",
            "spec": str(spec),
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": oauth.token_url,
                "client_id": CLIENT_ID,
                "client_secret": "secret:CRM_CLIENT_SECRET",
            },
        }
        await client.add_capability("api", "connector", target, allow_private=True)
        await client.deploy(str(flow))
        out = await client.run("notes", None)
    assert out["saved"] == {"text": "hello"} and oauth.issued == 1


def test_cli_set_reads_stdin_and_never_prints_a_value(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/p.db"
    empty = _podium("secrets", "set", "EMPTY", db=db, stdin="")
    assert empty.returncode == 2 and "stdin" in empty.stderr
    bad = _podium("secrets", "set", "1bad", db=db, stdin="v")
    assert bad.returncode == 2 and "secret name" in bad.stderr
    ok = _podium("secrets", "set", "SVC_PASSWORD", db=db, stdin="hunter2-is-long")
    assert ok.returncode == 0 and "hunter2" not in ok.stdout + ok.stderr
    listed = _podium("secrets", "list", db=db)
    assert "SVC_PASSWORD" in listed.stdout and "hunter2" not in listed.stdout
    gone = _podium("secrets", "delete", "SVC_PASSWORD", db=db)
    assert gone.returncode == 0 and "deleted SVC_PASSWORD" in gone.stdout
    again = _podium("secrets", "delete", "SVC_PASSWORD", db=db)
    assert again.returncode == 2 and "no secret" in again.stderr
