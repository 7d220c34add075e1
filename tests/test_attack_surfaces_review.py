"""A sceptic's review of the surfaces' fixes (fifteenth session): each test an attack on a fix of
``tests/test_attack_surfaces.py``, failing on the code before its own fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import podium
from tests.server.served import ROOT, admin_token, approver_token

#: A password as a password manager makes them: '?' and '#' are taken by libpq as the password's
#: own (it reads up to the '@'), not as the URL's query or fragment.
PASSWORD = "Hunter2?vault#7f3a"
TAILS = ("vault", "7f3a")  # what a mask that stopped at '?' or '#' left in clear


def _with_password(url: str, user: str | None = None) -> str:
    scheme, _, rest = url.partition("://")
    name, _, host = rest.partition("@")
    return f"{scheme}://{name if user is None else user}:{PASSWORD}@{host}"


def _leaks(text: str) -> list[str]:
    return [t for t in (PASSWORD, *TAILS) if t in text]


def test_attack_a_store_password_holding_a_question_mark_is_masked_on_readyz_and_in_the_worker_line(pg_url: str) -> None:
    """The masks read a URL's password up to the first '?' or '#', but libpq reads it up to the '@':
    ``postgresql://u:Hunter2?vault#7f3a@host/db`` is a valid URL whose password is all of that, and
    /readyz (anyone), the worker's first line and ``podium db`` showed it in clear."""
    from psycopg.conninfo import conninfo_to_dict

    from podium._sqldb import shown_url
    from podium.server.health import _shown

    url = _with_password(pg_url)
    assert conninfo_to_dict(url)["password"] == PASSWORD  # the store takes it so
    for form in (url, _with_password(pg_url, user="")):  # also with no user name (libpq's default one)
        assert not _leaks(_shown(form)), _shown(form)
        assert not _leaks(shown_url(form)), shown_url(form)
        assert "127.0.0.1" in shown_url(form)


def test_attack_the_worker_line_does_not_show_a_password_holding_a_question_mark(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_DB": _with_password(pg_url)}
    env.pop("PODIUM_TOKEN", None)
    cmd = [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--log-format", "text"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "worker" in line and "127.0.0.1" in line, line
        assert not _leaks(line), line
    finally:
        proc.terminate()
        proc.wait(30)


def test_attack_podium_db_neither_prints_nor_audits_a_password_holding_a_question_mark(pg_url: str, tmp_path: Path) -> None:
    import podium

    src = f"sqlite:///{tmp_path}/src.db"
    root = admin_token(src)
    viewer = approver_token(src, root, "vic", ("viewer",))
    target = _with_password(pg_url)

    def cli(token: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PODIUM_TOKEN": token}
        cmd = [sys.executable, "-c", "from podium.cli import main; main()", "db", "migrate-to", target, "--db", src]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    refused = cli(viewer)
    assert refused.returncode != 0 and "data.export" in refused.stdout + refused.stderr
    assert not _leaks(refused.stdout + refused.stderr)
    done = cli(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied" in done.stdout and not _leaks(done.stdout + done.stderr), done.stdout

    async def entries() -> list[Any]:
        async with podium.Client(src, token=root) as c:
            return list(await c.audit_log(limit=5000))

    logged = asyncio.run(entries())
    assert any(e.action == "access.denied" for e in logged)
    assert not [e for e in logged if _leaks(f"{e.target} {e.data}")]




@pytest.fixture
async def client(store_url: str) -> Any:
    async with podium.Client(store_url, poll_interval=0.05) as c:
        yield c


async def _asked(client: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's open requests once it asks; none if it ends first."""
    for _ in range(1000):
        if pending := await client.approvals(run_id=run_id):
            return list(pending)
        run = await client.store.get_run(run_id)
        if str(getattr(run.status, "value", run.status)) in ("completed", "failed", "cancelled"):
            return []
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} neither asked nor ended")


async def test_attack_a_name_in_the_budgets_namespace_does_not_carry_a_decision_to_another_question(client: Any) -> None:
    """A request named like a budget's (``approval:budget:...``) is taken again by a later pass of a
    loop whatever it asks (a budget's decision waives the budget for the run): the exemption was
    the name's prefix, which any step may write. ``ctx.approval(name="budget:payout")`` in a loop
    got "pay 10?" approved and paid 50000 on it. The namespace is the engine's budgets' own now."""
    from podium import Loop, Workflow

    wf = Workflow("budget-named")

    @wf.step(loop=Loop(to="pay", while_=lambda pay: pay["round"] < 1, max_iterations=3))
    async def pay(ctx: Any, input: dict[str, Any]) -> dict[str, Any]:
        amount = input["amounts"][ctx.iteration]
        decision = await ctx.approval({"amount": amount}, title=f"pay {amount}?", name="budget:payout")
        return {"round": ctx.iteration, "paid": amount if decision["approved"] else 0}

    handle = await client.start(wf, {"amounts": [10, 50000]})
    first = await _asked(client, handle.id)
    if not first:  # refused as the engine's own name: asked nothing, paid nothing
        with pytest.raises(podium.RunFailed, match="reserved"):
            await handle.result()
        return
    assert first[0]["payload"] == {"amount": 10}
    await client.decide(handle.id, first[0]["name"], approve=True)
    second = await _asked(client, handle.id)
    if not second:
        assert await handle.result() != {"round": 1, "paid": 50000}, "the second pass paid 50000 on the decision about 10"
    else:
        assert second[0]["payload"] == {"amount": 50000}


async def test_attack_a_loops_later_pass_to_another_account_does_not_take_the_decision_about_the_first(client: Any) -> None:
    """A decision is taken again by a later pass of a loop only for the question its request
    showed, compared as the asking event stored it: redacted (a policy's ``redact: [payloads]``).
    Two payments of 10 to different accounts (IBANs, e-mails) read alike there, "[IBAN]", so the
    second pass paid the requester's own account on the approval of the first; a second ask in one
    step is compared unredacted and asked again. A question the redaction changed is asked at each pass."""
    from podium import Loop, Policy, Workflow

    wf = Workflow("payees")

    payees = [{"iban": "DE89370400440532013000", "amount": 10}, {"iban": "GB82WEST12345698765432", "amount": 10}]
    paid: list[str] = []

    @wf.step(loop=Loop(to="pay", while_=lambda pay: pay["round"] < 1, max_iterations=3))
    async def pay(ctx: Any, input: dict[str, Any]) -> dict[str, Any]:
        payee = payees[ctx.iteration]  # as read from the payables system (the run's input is redacted)
        decision = await ctx.approval(payee, title="pay 10?", name="pay")
        if decision["approved"]:
            paid.append(payee["iban"])
        return {"round": ctx.iteration}

    await client.set_policy("payees", Policy(redact=["payloads"]))
    handle = await client.start(wf, {})
    [first] = await _asked(client, handle.id)
    assert first["payload"] == {"iban": "[IBAN]", "amount": 10}
    await client.decide(handle.id, first["name"], approve=True)
    second = await _asked(client, handle.id)
    assert second, f"the second pass paid on the first pass's decision: {await handle.result()} {paid}"
    await client.decide(handle.id, second[0]["name"], approve=False)
    assert await handle.result() == {"round": 1}
    assert paid == ["DE89370400440532013000"]


def test_attack_user_rows_deleted_then_a_restart_does_not_make_the_server_trust_everyone(tmp_path: Path) -> None:
    """A server that has seen users stays one, in its memory only: the same database writer deletes
    the ``users`` rows and waits for (or causes) a restart, a deploy, a crash, a reboot. The new
    ``podium serve`` (loopback, its usual place behind a proxy) found no rows and answered every
    caller as the local admin. Users are never deleted (only disabled), so a store whose audit log
    records a ``user.put`` has users: the server starts and answers 401 until the rows are back."""
    import sqlite3

    import httpx

    from tests.server.served import serve

    path = tmp_path / "podium.db"
    db = f"sqlite:///{path}"
    admin_token(db)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM kv WHERE ns = 'users'")
    proc, url = serve(db)
    try:
        anyone = httpx.get(f"{url}/api/me", headers={"Host": "127.0.0.1"})
        assert anyone.status_code == 401, f"anyone is now {anyone.text}"
        switched = httpx.post(f"{url}/api/switches", json={"scope": "all", "mode": "pause"})
        assert switched.status_code == 401, switched.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_question_holding_a_set_has_one_name_in_every_process() -> None:
    """Fifteenth session (the surfaces review's suspected item): an approval's name carries a digest
    of what it asks; a set in the payload was written as ``str(set)``, whose order follows the string
    hashes seeded per process, so a replay in another process asked the approver again. Values JSON
    writes itself keep the digest they had."""
    import hashlib
    import json

    code = (
        "from podium.governance.enforcement import asked_about\n"
        "print(asked_about('approval:pay', ['pay?', {'to': {'DE89', 'GB82', 'FR76', 'NL91', 'ES91', 'IT60'}, "
        "'tags': frozenset({('a', 1), ('b', 2)})}, None]))\n"
    )
    names = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.getcwd()},
        )  # fmt: skip
        names.add(done.stdout.strip())
    assert len(names) == 1, names
    from podium.governance.enforcement import asked_about

    plain = ["pay?", {"amount": 10, "to": "DE89"}, "approver"]
    before = hashlib.sha256(json.dumps(["approval:pay", plain], sort_keys=True, default=str, ensure_ascii=False).encode())
    assert asked_about("approval:pay", plain) == before.hexdigest()[:16]
