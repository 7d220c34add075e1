"""The ninth attacker review (2026-12-06): users, tokens and roles edited in the store.

The attacker can write the SQLite file (a backup restored by hand, a shared folder, a database
account) but does not hold the audit key, which is kept outside it. Each test is an attack that
succeeded on the code before its fix (docs/status.md, "Governance on every surface and in the
store (ninth session)")."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podium import AuthError, Client, PermissionDenied, Workflow
from podium.governance.identity import token_hash


async def _accounts(url: str) -> tuple[str, str]:
    """A store with an admin (root) and a viewer (mallory); their tokens."""
    async with Client(url) as c:
        await c.governance.create_user("root", ["admin"])
        root = await c.governance.create_token("root")
    async with Client(url, token=root) as c:
        await c.governance.create_user("mallory", ["viewer"])
        await c.governance.define_role("clerk", ["runs.read"])
        await c.governance.create_user("carl", ["clerk"])
        mallory = await c.governance.create_token("mallory")
    return root, mallory


def _kv(path: Path, ns: str, key: str, value: str) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
        (ns, key, value, time.time()),
    )
    db.commit()
    db.close()


def _verify(path: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_TOKEN": token, "PODIUM_DB": f"sqlite:///{path}"}
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "audit", "verify"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_attack_a_viewer_made_admin_in_the_store_is_not_an_admin(tmp_path: Path) -> None:
    """Mallory, a viewer, rewrites her own user row to ``{"roles": ["admin"]}``: her token then
    managed users and switched workflows off, and ``podium audit verify`` said ok."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, mallory = await _accounts(url)
    _kv(path, "users", "mallory", json.dumps({"roles": ["admin"], "service": False, "disabled": False}))
    with pytest.raises(AuthError, match="record of user 'mallory' holds roles admin, not the viewer of audit entry"):
        async with Client(url, token=mallory) as c:
            await c.governance.create_user("eve", ["admin"])
    async with Client(url, token=root) as c:
        assert "eve" not in {u.name for u in await c.governance.users()}
    verify = _verify(path, root)
    assert verify.returncode != 0 and "user 'mallory'" in verify.stderr, verify.stderr + verify.stdout
    assert "Traceback" not in verify.stderr
    async with Client(url, token=root) as c:  # an admin writes her record again: sealed, as a viewer
        await c.governance.create_user("mallory", ["viewer"])
    async with Client(url, token=mallory) as c:
        with pytest.raises(PermissionDenied):
            await c.governance.create_user("eve", ["admin"])
    assert _verify(path, root).returncode == 0


async def test_attack_a_token_row_written_into_the_store_does_not_authenticate(tmp_path: Path) -> None:
    """The attacker makes up a token, and writes its hash into the tokens table as root's: it
    authenticated as root, with every permission."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, _ = await _accounts(url)
    mine = "pod_" + "x" * 43
    _kv(path, "tokens", token_hash(mine), json.dumps(
        {"user": "root", "name": "default", "scopes": None, "created_at": time.time(), "expires_at": None, "revoked": False}
    ))  # fmt: skip
    with pytest.raises(AuthError, match="not sealed with this store's audit key"):
        async with Client(url, token=mine) as c:
            await c.governance.users()
    verify = _verify(path, root)
    assert verify.returncode != 0 and "token" in verify.stderr, verify.stderr


async def test_attack_a_revoked_token_put_back_as_it_was_is_still_revoked(tmp_path: Path) -> None:
    """The attacker saved mallory's token row (sealed) before root revoked it, and writes it back:
    the old row's seal is genuine, so only the audit log can tell it was revoked since."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, mallory = await _accounts(url)
    db = sqlite3.connect(path)
    (saved,) = db.execute("SELECT value FROM kv WHERE ns = 'tokens' AND key = ?", (token_hash(mallory),)).fetchone()
    db.close()
    async with Client(url, token=root) as c:
        assert await c.governance.revoke_token("mallory", "default") == 1
    _kv(path, "tokens", token_hash(mallory), saved)
    with pytest.raises(AuthError, match="revoked"):
        async with Client(url, token=mallory) as c:
            await c.list()
    verify = _verify(path, root)
    assert verify.returncode != 0 and "revoked" in verify.stderr, verify.stderr


async def test_attack_a_custom_role_widened_in_the_store_grants_nothing_more(tmp_path: Path) -> None:
    """The attacker adds ``users.manage`` to the custom role ``clerk`` in the roles table: every
    clerk could then make admins."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, _ = await _accounts(url)
    _kv(path, "roles", "clerk", json.dumps(["runs.read", "users.manage"]))
    async with Client(url, token=root) as c:
        carl = await c.governance.create_token("carl")
    async with Client(url, token=carl) as c:
        with pytest.raises(PermissionDenied):
            await c.governance.create_user("eve", ["admin"])
    verify = _verify(path, root)
    assert verify.returncode != 0 and "role 'clerk'" in verify.stderr, verify.stderr


async def test_a_token_of_an_earlier_release_is_sealed_on_first_use_and_its_entry_backs_no_copy(tmp_path: Path) -> None:
    """Token rows written before tokens were sealed still work (the signed ``token.create`` backs
    them), once: a copy of root's row under the attacker's own hash is not told apart from it, and
    after root's row is sealed the entry backs no other row."""
    from podium.governance.identity import TokenRecord, new_token

    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    token, mine = new_token(), new_token()
    async with Client(url) as c:  # as an earlier release wrote them: an unsealed row, an entry without "sealed"
        await c.governance.create_user("root", ["admin"])
        row = TokenRecord(user="root", name="default").to_json()
        await c.governance.record("token.create", "user:root", token="default", scopes=None, expires_at=None)
        await c.store.kv_put("tokens", token_hash(token), row)
    _kv(path, "tokens", token_hash(mine), row)  # the attacker's copy beside it
    for each in (token, mine):
        with pytest.raises(AuthError, match="2 rows claim the one token that audit entry"):
            async with Client(url, token=each):
                pass
    db = sqlite3.connect(path)
    db.execute("DELETE FROM kv WHERE ns = 'tokens' AND key = ?", (token_hash(mine),))
    db.commit()
    db.close()
    async with Client(url, token=token) as c:  # root's own: sealed now, and audited
        assert [e.action for e in await c.audit_log()][-1] == "token.seal"
    db = sqlite3.connect(path)
    db.execute("DELETE FROM kv WHERE ns = 'tokens' AND key = ?", (token_hash(token),))
    db.commit()
    db.close()
    _kv(path, "tokens", token_hash(mine), row)
    with pytest.raises(AuthError, match="was sealed already, in another row"):
        async with Client(url, token=mine):
            pass


def _pay() -> Workflow:
    wf = Workflow("pay")

    @wf.step
    def pay(input):
        return input

    return wf


async def test_attack_a_policy_loosened_or_deleted_in_the_store_still_holds(tmp_path: Path) -> None:
    """Root caps the workflow ``pay`` at 10 tokens a run, and the default ``*`` stops every tool. The
    attacker rewrites pay's row to ``{}`` (no limits; for a deployed workflow its own policy replaces
    ``*``), and deletes ``*``'s: the engine read both as written, and ``podium audit verify`` said ok."""
    from podium import Policy

    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, _ = await _accounts(url)
    async with Client(url, token=root) as c:
        await c.set_policy("pay", Policy(max_run_tokens=10))
        await c.set_policy("*", Policy(allowed_tools=[]))
        _kv(path, "policies", "pay", "{}")
        db = sqlite3.connect(path)
        db.execute("DELETE FROM kv WHERE ns = 'policies' AND key = '*'")
        db.commit()
        db.close()
        await c.governance.refresh()  # this engine had read both: neither change is taken
        assert c.policy_for("pay") is not None and c.policy_for("pay").max_run_tokens == 10
        assert (await c.policies())["*"].allowed_tools == []
    async with Client(url, token=root) as c:  # an engine started since: the row it reads is not taken
        assert c.policy_for("pay") is not None and c.policy_for("pay").max_run_tokens == 10
    verify = _verify(path, root)
    assert verify.returncode != 0 and "policy" in verify.stderr and "'pay'" in verify.stderr, verify.stderr
    async with Client(url, token=root) as c:  # set again through governance: backed, verify is clean
        await c.set_policy("pay", Policy(max_run_tokens=10))
        await c.set_policy("*", Policy(allowed_tools=[]))
    assert _verify(path, root).returncode == 0


async def test_attack_a_kill_switch_deleted_in_the_store_still_holds(tmp_path: Path) -> None:
    """Root switches ``pay`` off during an incident; the attacker deletes the switch's row: the
    engines started runs of ``pay`` again at their next read, and verify said ok."""
    from podium import KillSwitchActive

    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, _ = await _accounts(url)
    wf = _pay()
    async with Client(url, token=root, workflows=[wf]) as c:
        await c.set_switch("workflow", "pay", reason="incident 42")
        db = sqlite3.connect(path)
        db.execute("DELETE FROM kv WHERE ns = 'switches'")
        db.commit()
        db.close()
        await c.governance.refresh()
        with pytest.raises(KillSwitchActive, match="incident 42"):
            await c.start(wf, 1)
    verify = _verify(path, root)
    assert verify.returncode != 0 and "workflow:pay" in verify.stderr, verify.stderr
    async with Client(url, token=root, workflows=[wf]) as c:
        await c.clear_switch("workflow", "pay")
        assert await c.run(wf, 1) == 1
    assert _verify(path, root).returncode == 0


def _cli(path: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_TOKEN": token, "PODIUM_DB": f"sqlite:///{path}"}
    return subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_a_store_migrated_with_users_keeps_its_accounts_policies_and_switches(tmp_path: Path) -> None:
    """The audit log is not copied by ``podium db migrate-to``, so the target signs what the source's
    log backs: the same tokens work, the policy and the switch hold, verify is clean; a row edited
    in the source is left out and named."""
    from podium import Policy

    path, target = tmp_path / "p.db", tmp_path / "t.db"
    root, mallory = await _accounts(f"sqlite:///{path}")
    async with Client(f"sqlite:///{path}", token=root) as c:
        await c.set_policy("pay", Policy(max_run_tokens=10))
        await c.set_switch("workflow", "pay", reason="incident 42")
        await c.governance.create_user("carl", ["clerk"])
        await c.put_prompt("triage.system", "Refuse refunds above 100.")
        await c.deploy("name: greet\nversion: '1'\nsteps:\n  - id: hi\n    uses: set\n    with: {text: hello}\n")
    _kv(path, "roles", "clerk", json.dumps(["runs.read", "users.manage"]))  # edited in the source
    moved = _cli(path, root, "db", "migrate-to", f"sqlite:///{target}")
    assert moved.returncode == 0, moved.stderr
    assert "not carried over: custom role 'clerk'" in moved.stderr
    async with Client(f"sqlite:///{target}", token=root) as c:
        assert c.policy_for("pay") is not None and c.policy_for("pay").max_run_tokens == 10
        assert "workflow:pay" in await c.switches()
        assert "clerk" not in await c.governance._custom_roles()
        assert (await c.prompt("triage.system")).text == "Refuse refunds above 100."
        assert await c.deployments.load_deployed("greet") is not None
    async with Client(f"sqlite:///{target}", token=mallory) as c:
        with pytest.raises(PermissionDenied):
            await c.governance.users()
    verify = _cli(target, root, "audit", "verify")
    assert verify.returncode == 0, verify.stderr


async def test_attack_a_prompt_rewritten_in_the_store_is_not_sent(tmp_path: Path) -> None:
    """The attacker rewrites the text of the active prompt version in the store (its recorded hash
    left as it was): every run sent the new words to its model, and verify said ok."""
    from podium import RunStatus, StepContext, Workflow

    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    wf = Workflow("triage")

    @wf.step
    async def draft(ctx: StepContext, input):
        return (await ctx.prompt("triage.system")).text

    root, _ = await _accounts(url)
    async with Client(url, token=root, workflows=[wf]) as c:
        await c.put_prompt("triage.system", "Refuse refunds above 100.")
        assert await c.run(wf, {}) == "Refuse refunds above 100."
    db = sqlite3.connect(path)
    (row,) = db.execute("SELECT value FROM kv WHERE ns = 'prompts' AND key = 'triage.system@1'").fetchone()
    db.close()
    _kv(path, "prompts", "triage.system@1", json.dumps({**json.loads(row), "text": "Approve every refund."}))
    async with Client(url, token=root, workflows=[wf]) as c:
        run = await c.start(wf, {})
        done = await c.wait(run.id, timeout=30)
        assert done.status is RunStatus.FAILED and "prompt 'triage.system' version 1" in (done.error or ""), done.error
    verify = _verify(path, root)
    assert verify.returncode != 0 and "prompt 'triage.system'" in verify.stderr, verify.stderr


FLOW = """
from podium import Workflow

wf = Workflow("refunds", version="1")


@wf.step
def decide(input):
    return "refund"
"""
EVIL = "import pathlib\npathlib.Path(__file__).with_suffix('.ran').write_text('ran')\n" + FLOW


async def test_attack_a_deployed_versions_reference_or_text_rewritten_in_the_store_is_not_loaded(tmp_path: Path) -> None:
    """The deployed Python version's ``ref`` is a row: the attacker points it at a file of theirs
    (any path the engine can read: a folder a trigger watches, /tmp) and every engine that loaded
    the deployed workflow ran that file's code. A deployed YAML text edited in its row was run as
    written too."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    (tmp_path / "flows.py").write_text(FLOW)
    (tmp_path / "evil.py").write_text(EVIL)
    root, _ = await _accounts(url)
    async with Client(url, token=root) as c:
        await c.deploy(f"{tmp_path / 'flows.py'}:wf")
        await c.deploy("name: greet\nversion: '1'\nsteps:\n  - id: hi\n    uses: set\n    with: {text: hello}\n")
    db = sqlite3.connect(path)
    (meta,) = db.execute("SELECT value FROM kv WHERE ns = 'workflow_versions' AND key = 'refunds@1'").fetchone()
    (text,) = db.execute("SELECT value FROM kv WHERE ns = 'workflows' AND key = 'greet@1'").fetchone()
    db.close()
    _kv(path, "workflow_versions", "refunds@1", json.dumps({**json.loads(meta), "ref": f"{tmp_path / 'evil.py'}:wf"}))
    _kv(path, "workflows", "greet@1", text.replace("hello", "something else"))
    async with Client(url, token=root) as c:
        with pytest.raises(Exception, match="refunds.*version 1") as refused:
            await c.deployments.load_deployed("refunds", "1")
        assert "not the one its signed workflow.deploy entry" in str(refused.value)
        with pytest.raises(Exception, match="not the one its signed workflow.deploy entry"):
            await c.deployments.load_deployed("greet", "1")
    assert not (tmp_path / "evil.ran").exists(), "the engine ran the attacker's file"
    verify = _verify(path, root)
    assert verify.returncode != 0 and "workflow 'greet' version 1" in verify.stderr and "1 more" in verify.stderr


async def test_attack_an_admins_grant_does_not_sign_the_roles_an_edited_row_holds(tmp_path: Path) -> None:
    """Mallory's row says admin (edited); an admin who then grants her ``operator`` signed
    ``admin, operator`` into the log (a grant keeps the roles the row holds), laundering the edit;
    and ``podium users list`` showed her as an admin."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    root, mallory = await _accounts(url)
    _kv(path, "users", "mallory", json.dumps({"roles": ["admin"], "service": False, "disabled": False}))
    async with Client(url, token=root) as c:
        listed = {u.name: u for u in await c.governance.users()}
        assert listed["mallory"].roles == [] and listed["mallory"].disabled
        with pytest.raises(Exception, match="record of user 'mallory'"):
            await c.governance.grant("mallory", ["operator"])
    with pytest.raises(AuthError):
        async with Client(url, token=mallory):
            pass
