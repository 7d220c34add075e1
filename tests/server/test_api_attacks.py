"""Attacks from the second security review, over HTTP: a deploy body that names a server-side file
or module, an approval skipped by forking with a new input, and a duplicated Content-Type header
that once slipped past the request limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium import Client, StepContext, Workflow


async def test_a_deploy_body_is_yaml_text_never_a_path_or_a_module(server: Any, store_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "payload.py"
    marker = tmp_path / "PWNED"
    payload.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-7")
    async with server(store_url) as (_app, http):
        for body in (f"{payload}:wf", str(secret), "antigravity:x", f"{tmp_path}/flow.yaml"):
            r = await http.post("/api/workflows", content=body, headers={"content-type": "application/yaml"})
            assert r.status_code in (400, 422), (body, r.status_code, r.text)
            assert "TOPSECRET" not in r.text
    assert not marker.exists()


def _approved_payment(paid: list[int]) -> Workflow:
    wf = Workflow("payment")

    @wf.step
    async def approve(ctx: StepContext, input: dict[str, int]) -> bool:
        decision = await ctx.approval(input, title="pay?", timeout=3600)
        return bool(decision["approved"])

    @wf.step
    def pay(input: dict[str, int], approve: bool) -> str:
        if approve:
            paid.append(input["amount"])
        return f"paid {input['amount']}" if approve else "refused"

    return wf


async def test_forking_with_a_new_input_asks_the_approval_again(store_url: str) -> None:
    paid: list[int] = []
    wf = _approved_payment(paid)
    async with Client(store_url, workflows=[wf]) as c:
        run = await c.start(wf, {"amount": 10})
        while not await c.approvals(run_id=run.id):
            await c.driving.settled(run.id)
        [request] = await c.approvals(run_id=run.id)
        await c.decide(run.id, request["name"], approve=True)
        assert await c.result(run.id, timeout=30) == "paid 10"
        same = await c.fork(run.id, "pay")  # same input: the decision stands
        assert await same.result(timeout=30) == "paid 10"
        bigger = await c.fork(run.id, "pay", input={"amount": 1_000_000})
        await c.driving.settled(bigger.id)
        assert [a["run_id"] for a in await c.approvals(run_id=bigger.id)] == [bigger.id]  # asked again
        assert paid == [10, 10]


async def test_a_duplicated_content_type_cannot_skip_the_json_checks(server: Any, store_url: str) -> None:
    from .flows import hello

    dup = [("content-type", "application/json"), ("content-type", "text/plain")]
    async with server(store_url, workflows=[hello]) as (_app, http):
        for body in (
            '{"workflow":"hello","input":{"x":NaN}}',
            '{"workflow":"hello","input":{"d":' + "[" * 300 + "]" * 300 + "}}",
            '{"workflow":"hello","input":{"s":"\\ud800"}}',
        ):
            r = await http.post("/api/runs", content=body, headers=dup)
            assert r.status_code in (400, 415, 422), (r.status_code, r.text)
        assert (await http.get("/api/runs")).status_code == 200


async def test_a_forged_approvals_cursor_is_refused_cleanly(server: Any, store_url: str) -> None:
    """Attack: cursors the API never gave (a number too big for a float, NaN, a NUL byte PostgreSQL
    cannot store, SQL text): each is a 200 with no rows or a 422, never a 500 or a traceback."""
    import base64
    import json

    def forged(where: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(where).encode()).decode().rstrip("=")

    big = base64.urlsafe_b64encode(b"[1" + b"0" * 400 + b', "r", "n"]').decode()
    async with server(store_url) as (_app, http):
        for params in (
            {"cursor": big},
            {"cursor": base64.urlsafe_b64encode(b'[NaN, "r", "n"]').decode()},
            {"cursor": forged([1.0, "r\x00", "n"])},
            {"cursor": forged([1.0, "r') OR 1=1 --", "n"])},
        ):
            r = await http.get("/api/approvals", params=params)
            assert r.status_code in (200, 422), (params, r.status_code, r.text)
            assert "Traceback" not in r.text and "psycopg" not in r.text.lower()
            if r.status_code == 200:
                assert r.json()["approvals"] == []


async def test_a_nul_byte_in_a_filter_is_a_clear_422_not_a_store_outage(server: Any, store_url: str) -> None:
    """Attack: a NUL byte in a run id or a workflow filter (PostgreSQL text cannot hold one) must
    be the caller's 422, not a 503 that says the store is down."""
    async with server(store_url) as (_app, http):
        for path, params in (
            ("/api/runs", {"workflow": "a\x00b"}),
            ("/api/approvals", {"workflow": "a\x00b"}),
            ("/api/runs/a%00b", {}),
        ):
            r = await http.get(path, params=params)
            assert r.status_code in (200, 404, 422), (path, r.status_code, r.text)
            assert "Traceback" not in r.text


async def test_a_viewer_reads_no_payload_from_the_dead_letters(server: Any, store_url: str) -> None:
    """Attack: GET /api/deadletters (runs.read) gave a viewer each dead-lettered event's payload,
    the input of the run it was to start, and its error (which can quote it), which every run view
    hides without payloads.read."""
    from . import flows

    async with server(store_url, workflows=flows.TRIGGERS) as (app, http):
        c = app.state.client
        await c.set_switch("workflow", "tickets", reason="maintenance")
        ticket = {"id": 7, "subject": "card 4111 1111 1111 1111"}
        r = await http.post("/api/events/ticket.created", json=ticket, headers={"Idempotency-Key": "t-7"})
        assert r.status_code == 202 and len(r.json()["dead_lettered"]) == 1
        await c.create_user("root", ["admin"])
        await c.create_user("vic", ["viewer"])
        viewer = {"Authorization": f"Bearer {await c.create_token('vic')}"}
        admin = {"Authorization": f"Bearer {await c.create_token('root')}"}
        seen = await http.get("/api/deadletters", headers=viewer)
        assert seen.status_code == 200 and len(seen.json()["dead_letters"]) == 1
        assert "4111 1111" not in seen.text
        [letter] = seen.json()["dead_letters"]
        assert letter["payload"] == "[hidden: needs payloads.read]" and letter["event"] == "ticket.created"
        full = (await http.get("/api/deadletters", headers=admin)).json()["dead_letters"]
        assert full[0]["payload"] == ticket and "maintenance" in full[0]["error"]


async def test_a_viewer_reads_no_error_message_over_the_api(server: Any, store_url: str) -> None:
    """Attack: GET /api/runs/{id} and GET /api/runs gave a viewer a failed run's error message
    (the exception text quotes the data), which the same answer's steps hide."""
    wf = Workflow("declines")

    @wf.step
    async def charge(input: dict[str, str]) -> None:
        raise ValueError(f"card {input['card']} declined")

    async with server(store_url, workflows=[wf]) as (app, http):
        c = app.state.client
        handle = await c.start(wf, {"card": "4111 1111 1111 1111"})
        await c.wait(handle.id)
        await c.create_user("vic", ["viewer"])
        viewer = {"Authorization": f"Bearer {await c.create_token('vic')}"}
        for url in (f"/api/runs/{handle.id}", "/api/runs", f"/api/runs/{handle.id}/events"):
            r = await http.get(url, headers=viewer)
            assert r.status_code == 200, (url, r.text[:200])
            assert "4111 1111" not in r.text, url  # the card (a bare "4111" can sit in a timestamp)
        run = (await http.get(f"/api/runs/{handle.id}", headers=viewer)).json()["run"]
        assert run["error"]["type"] == "builtins.ValueError" and run["error"]["step"] == "charge"


EVIL_DEPLOY = "name: evil\ntriggers: [{webhook: {path: /hooks/evil, method: GET}}]\nsteps:\n  - {id: a, uses: set, with: {v: 1}}\n"


async def test_another_site_cannot_act_as_the_local_user(server: Any, store_url: str) -> None:
    """Attack (CSRF): in local mode (a store without users) every request acts as the local admin
    with no token, so any web page the developer opens could make the browser deploy a workflow
    (a text/plain POST needs no CORS preflight, and the deploy route reads any content type), then
    start it through its GET webhook (an <img src>), or cancel and resume runs. A request that a
    browser marks as coming from another site (Sec-Fetch-Site, Origin) is now refused in local
    mode; the dashboard's own requests, and programs (curl, the CLI), still pass."""
    from .flows import hello

    async with server(store_url, workflows=[hello]) as (app, http):
        evil = {"origin": "https://evil.example", "content-type": "text/plain"}
        r = await http.post("/api/workflows", content=EVIL_DEPLOY, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied", r.text
        message = r.json()["error"]["message"]
        assert "https://evil.example" in message and "podium users add" in message
        r = await http.post("/api/workflows", content=EVIL_DEPLOY, headers={"sec-fetch-site": "cross-site"})
        assert r.status_code == 403, r.text
        assert "evil" not in app.state.client.workflows()
        # The same deploy from the dashboard's own page, then its webhook from another site.
        same = {"origin": "http://localhost", "sec-fetch-site": "same-origin", "content-type": "application/yaml"}
        assert (await http.post("/api/workflows", content=EVIL_DEPLOY, headers=same)).status_code == 201
        for headers in ({"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}, {"origin": "null"}):
            r = await http.get("/hooks/evil", headers=headers)
            assert r.status_code == 403, (headers, r.text)
        run = await app.state.client.run(hello, {"name": "x"})
        rid = (await app.state.client.list(limit=1))[0].id
        r = await http.post(f"/api/runs/{rid}/cancel", headers={"origin": "http://attacker.test:8000"})
        assert r.status_code == 403, r.text
        assert [x.workflow for x in await app.state.client.list()] == ["hello"]  # the webhook started nothing
        assert run == "HELLO X"
        # Programs send neither header; the dashboard's reads come from its own origin.
        assert (await http.get("/hooks/evil")).status_code == 202
        assert (await http.get("/api/runs", headers={"sec-fetch-site": "same-origin"})).status_code == 200
        assert (await http.get("/api/runs", headers={"origin": "http://localhost"})).status_code == 200
        # An older browser sends no Sec-Fetch-* and no Origin on a link, but says where it came from.
        r = await http.get("/hooks/evil", headers={"referer": "http://evil.example/page.html"})
        assert r.status_code == 403 and "evil.example" in r.json()["error"]["message"], r.text
        assert (await http.get("/api/runs", headers={"referer": "http://localhost/#/runs"})).status_code == 200


async def test_a_rebound_name_cannot_act_as_the_local_user(server: Any, store_url: str) -> None:
    """Attack (DNS rebinding): a page of evil.example points its own name at 127.0.0.1 once loaded;
    its requests are then same-origin to the browser (no foreign Origin, Sec-Fetch-Site
    same-origin), so the cross-site check let them act as the local admin: read every run, deploy a
    workflow. In local mode only loopback names are answered now, unless the server was started
    with --allow-remote-local-mode."""
    rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000", "sec-fetch-site": "same-origin"}
    async with server(store_url) as (app, http):
        r = await http.get("/api/runs", headers=rebound)
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied", r.text
        assert "evil.example" in r.json()["error"]["message"] and "127.0.0.1" in r.json()["error"]["message"]
        r = await http.post("/api/workflows", content=EVIL_DEPLOY, headers={**rebound, "content-type": "text/plain"})
        assert r.status_code == 403 and "evil" not in app.state.client.workflows()
        assert (await http.get("/api/runs", headers={"host": "evil.example"})).status_code == 403  # a program too
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost", "127.0.0.2"):
            assert (await http.get("/api/runs", headers={"host": host})).status_code == 200, host
        assert (await http.get("/api/runs", headers={"host": "app.localhost"})).status_code == 403  # may go to DNS
    async with server(store_url, allow_remote_local_mode=True) as (app, http):
        assert (await http.get("/api/runs", headers=rebound)).status_code == 200  # deliberately served
