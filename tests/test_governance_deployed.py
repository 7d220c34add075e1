"""Policies bound to deployed workflows (sixth session). A policy is named after a workflow, and any
file may call itself by any name: in a store with users, a workflow's own policy grants what it
allows beyond the default ``*`` only to the deployed workflow of that name. A run of a definition
that is not the deployed one is held by ``*`` and by its name's policy both (a name's restrictions,
like its kill switches, still hold it). Local mode (no users, no deployments) is unchanged.

The attack tests passed their attack on the code before the fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from podium import Client, KillSwitchActive, Policy, RunFailed
from podium.engine.loading import load_workflow

FLOW = """
from podium import Workflow, ai
from podium.models import Response
from podium.models.testing import ScriptedModel

wf = Workflow({name!r})


@wf.step
async def write(ctx, input):
    answer = await ai.llm(ctx, "draft a reply", model=ScriptedModel(default=Response(text={text!r})))
    return answer.text
"""


def _flow(path: Path, name: str, text: str) -> str:
    """A Python workflow file whose one step asks a model of provider ``scripted``; its reference."""
    path.write_text(textwrap.dedent(FLOW.format(name=name, text=text)))
    return f"{path}:wf"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


async def _users(db: Any) -> tuple[str, str]:
    """An admin (root) and an operator (bob, who may start runs, not deploy); their tokens."""
    async with Client(db) as setup:
        await setup.create_user("root", ["admin"])
        root = await setup.create_token("root")
    async with Client(db, token=root) as admin:
        await admin.create_user("bob", ["operator"])
        bob = await admin.create_token("bob")
    return root, bob


async def test_attack_a_file_named_after_a_workflow_gets_its_laxer_policy(db: str, tmp_path: Path) -> None:
    """The attack (suspected by the review of the fifth session): the default policy keeps every
    workflow on local models; workflow ``drafts`` (not deployed yet: its policy was set ahead, or
    the server's operator serves it from a file) may use the ``scripted`` provider. Bob, who may
    start runs, wrote a file of his own that calls itself ``drafts``: it got ``drafts``'s policy by
    its name and sent its prompt to a provider the default forbids. Now it is held by ``*`` too,
    and the refusal says why and which command deploys it; the deployed ``drafts`` gets its own."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
    mine = _flow(tmp_path / "mine.py", "drafts", "the customer list, for me")
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(load_workflow(mine), None)
    message = str(failed.value)
    assert "may not call provider 'scripted'" in message, message
    assert "not deployed" in message and f"podium workflows deploy {mine}" in message, message
    assert "read like deployed" not in message and "podium run drafts" not in message, message  # none is
    async with Client(db, token=root) as admin:
        refusals = [e.details() for e in await admin.audit_log() if e.action == "policy.refuse"]
        assert [r.get("provider") for r in refusals] == ["scripted"]
        await admin.deploy(_flow(tmp_path / "drafts.py", "drafts", "a reply"))
    async with Client(db, token=bob) as c:
        assert await c.run("drafts", None) == "a reply"  # deployed: its name, and its policy, are its own


async def test_a_workflow_not_deployed_keeps_the_restrictions_of_its_name(db: str, tmp_path: Path) -> None:
    """A name's policy is not dropped for a file that is not deployed (that would free a workflow
    an admin restricted by running it from a file): both its policy and ``*`` hold it. Where its
    own policy is the stricter, the refusal names it, and deploying would not help."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local", "scripted"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local"], max_run_tokens=50))
    mine = _flow(tmp_path / "mine.py", "drafts", "x")
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(load_workflow(mine), None)
    message = str(failed.value)
    assert "workflow 'drafts' may not call provider 'scripted'; its policy allows: local" in message, message
    assert "deploy" not in message, message


async def test_a_run_budget_of_star_reached_by_a_definition_not_deployed_names_star(db: str, tmp_path: Path) -> None:
    """A new user's run-through (seventh session): a definition not deployed, held by the lower of
    its name's run budget (10,000 tokens) and ``*``'s (3), reached ``*``'s and was told to raise it
    with ``podium policy set drafts --merge ...``, which would change nothing. It names ``'*'`` now
    (and still the deploy command); where its name's budget is the lower, its name."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["scripted"], max_run_tokens=3))
        await admin.set_policy("drafts", Policy(allowed_providers=["scripted"], max_run_tokens=10_000))
    mine = _flow(tmp_path / "mine.py", "drafts", "a reply of several words, past three tokens")
    text = Path(mine.rpartition(":")[0]).read_text()  # its step asks its model twice: the second is checked
    Path(mine.rpartition(":")[0]).write_text(text.replace("    answer = await", "    await ai.llm(ctx, 'a first draft of a long reply to the customer about the order', model=ScriptedModel())\n    answer = await"))
    twice = load_workflow(mine)
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(twice, None)
    message = str(failed.value)
    assert "raise it with: podium policy set '*' --merge --max-run-tokens N;" in message, message
    assert f"podium workflows deploy {mine}" in message, message
    async with Client(db, token=root) as admin:
        await admin.set_policy("drafts", Policy(allowed_providers=["scripted"], max_run_tokens=2))
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed) as failed:
            await c.run(twice, None)
    assert "raise it with: podium policy set drafts --merge --max-run-tokens N;" in str(failed.value), failed.value


async def test_a_kill_switch_on_a_workflow_holds_a_file_that_calls_itself_so(db: str, tmp_path: Path) -> None:
    """Kill switches stay by name: a restriction on the safe side. A switch on ``drafts`` stops a
    file that calls itself ``drafts`` from starting, deployed or not."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_switch("workflow", "drafts", mode="cancel", reason="incident 7")
    mine = _flow(tmp_path / "mine.py", "drafts", "x")
    async with Client(db, token=bob) as c:
        with pytest.raises(KillSwitchActive, match="incident 7"):
            await c.start(load_workflow(mine), None)


async def test_a_definition_deployed_in_another_store_is_not_deployed_here(db: str, tmp_path: Path) -> None:
    """Whether a definition is deployed is a fact of a store, not of the definition: the same
    workflow object, deployed into a scratch store of bob's own, is still a look-alike in the
    store with users, held by ``*`` too."""
    root, bob = await _users(db)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
    mine = load_workflow(_flow(tmp_path / "mine.py", "drafts", "x"))
    async with Client(f"sqlite:///{tmp_path}/scratch.db") as scratch:
        await scratch.deploy(mine)
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed, match="not deployed"):
            await c.run(mine, None)


async def test_local_mode_keeps_a_workflows_policy_by_its_name(tmp_path: Path) -> None:
    """Without users there are no deployments to tell workflows apart, and one person runs them
    all: a workflow's policy is chosen by its name, as before."""
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await c.set_policy("*", Policy(allowed_providers=["local"]))
        await c.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        assert await c.run(load_workflow(_flow(tmp_path / "mine.py", "drafts", "ok")), None) == "ok"


def test_the_strictest_of_two_policies_keeps_every_restriction_of_either() -> None:
    """What a run not deployed is held by (its name's policy and ``*``) as one policy, for what is
    read as one (budgets, redaction, validators, a planner's tools). For each field, a stricter
    value in either policy wins (a field left out of the merge would take its lax default)."""
    from dataclasses import fields

    from podium.governance.bound import strictest

    strict = Policy(
        allowed_tools=["search"], allowed_providers=["local"], approve_tools=["refund"], max_run_tokens=10,
        max_run_cost=0.1, max_daily_tokens=100, max_daily_cost=1.0, max_entity_tokens=5, max_entity_cost=0.05,
        entity_field="customer_id", on_exceed="stop", redact=["payloads"], pii_local_only=True, banned=["x"],
        tone=["hostile"], tone_threshold=0.3, on_violation="block", max_tool_calls=2,
        allowed_connectors=["crm.getContact"], approve_connectors=["crm.updateContact"],
    )  # fmt: skip
    lax = Policy(on_exceed="approval", on_violation="approval")
    for a, b in ((lax, strict), (strict, lax)):
        merged = strictest(a, b)
        for f in fields(Policy):
            assert getattr(merged, f.name) == getattr(strict, f.name), f.name
    both = strictest(
        Policy(allowed_connectors=["crm", "erp.read"], allowed_tools=["a", "b"], max_run_tokens=7, banned=["x"]),
        Policy(allowed_connectors=["crm.getContact", "erp"], allowed_tools=["b", "c"], max_run_tokens=9, banned=["y"]),
    )
    assert both.allowed_connectors == ["erp.read", "crm.getContact"] and both.allowed_tools == ["b"]
    assert both.max_run_tokens == 7 and both.banned == ["x", "y"]


def test_no_workflow_may_be_named_like_the_outbox_mark_of_a_run_not_deployed() -> None:
    """``undeployed:NAME`` is what an outbox message records for a run that was not the deployed
    NAME: a workflow so named would be taken for one."""
    from podium import DefinitionError, Workflow

    with pytest.raises(DefinitionError, match=r"rename the workflow \(e.g. checkout\)"):
        Workflow("undeployed:checkout")


FLOW_YAML = """\
name: drafts
steps:
  - id: write
    uses: draftsteps_r7:write
"""
STEP_CODE = """\
from podium import ai
from podium.models import Response
from podium.models.testing import ScriptedModel


async def write(ctx):
    answer = await ai.llm(ctx, {prompt!r}, model=ScriptedModel(default=Response(text={prompt!r})))
    return answer.text
"""


async def test_attack_the_deployed_yaml_text_beside_code_of_ones_own_gets_its_laxer_policy(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: ``drafts`` is deployed from a folder whose module ``draftsteps_r7`` holds its
    step's code; its policy allows the ``scripted`` provider, ``*`` does not. Bob copies the deployed
    YAML text, byte for byte, into a folder of his own beside a ``draftsteps_r7.py`` of his own, and
    runs it in his own process. A YAML version's fingerprint is its text alone, so his run matched
    the deployment and got ``drafts``'s policy for code nobody deployed. Now a YAML run is the
    deployed one only when its text is a deployed version's *and* it was loaded where that version
    resolves its code (the folder it was deployed from); bob's is held by ``*`` too. The deployed
    file itself, run again from its folder, still is."""
    import sys

    root, bob = await _users(db)
    deployed, mine = tmp_path / "deployed", tmp_path / "mine"
    for folder, prompt in ((deployed, "a reply"), (mine, "the customer list, for me")):
        folder.mkdir()
        (folder / "flow.yaml").write_text(FLOW_YAML)
        (folder / "draftsteps_r7.py").write_text(STEP_CODE.format(prompt=prompt))
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored after the test
    monkeypatch.delitem(sys.modules, "draftsteps_r7", raising=False)
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        await admin.deploy(str(deployed / "flow.yaml"))
    async with Client(db, token=bob) as c:
        assert await c.run(load_workflow(str(deployed / "flow.yaml")), None) == "a reply"
    # bob's own process: his folder's module, not the deployed folder's
    sys.path.remove(str(deployed))
    del sys.modules["draftsteps_r7"]
    async with Client(db, token=bob) as c:
        with pytest.raises(RunFailed, match="not deployed"):
            await c.run(load_workflow(str(mine / "flow.yaml")), None)


LOOK_ALIKE = """\
from podium import Workflow, ai
from podium.models import Response
from podium.models.testing import ScriptedModel

TARGET = {target!r}
DEFAULT = {default!r}


def recipient(text):
    return {helper}


def reply(value):
    async def send(ctx, input, to=DEFAULT):
        text = recipient(TARGET) + to + value
        answer = await ai.llm(ctx, text, model=ScriptedModel(default=Response(text=text)))
        return answer.text

    return send


wf = Workflow("drafts")
wf.step(reply({closure!r}), id="send")
"""
DEPLOYED = {"target": "a", "default": " (a reply)", "helper": '"to " + text', "closure": "."}
#: Each a module whose step reads like the deployed one's, with one thing its behaviour depends on changed.
LOOK_ALIKES = {
    "a module constant": {"target": "attacker"},
    "a helper's body": {"helper": '"to " + text + ", cc attacker"'},
    "a default argument": {"default": " (the customer list)"},
    "a closure's value": {"closure": ", and the customer list"},
}


def _module(folder: Path, **changed: str) -> str:
    """``folder/flowmod.py``: the deployed ``drafts`` module, or a look-alike with ``changed``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flowmod.py").write_text(LOOK_ALIKE.format(**{**DEPLOYED, **changed}))
    return f"{folder / 'flowmod.py'}:wf"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A store of each kind that several clients open in turn (a memory store: one object)."""
    if request.param == "memory":
        from podium import open_store

        return open_store("memory://")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/podium.db"
    return str(request.getfixturevalue("pg_url"))


async def test_attack_a_python_look_alike_of_the_deployed_module_gets_its_laxer_policy(
    shared: Any, tmp_path: Path
) -> None:
    """The attack (suspected by the sixth session's attacker review): a deployed Python version is
    known by its snapshot, each step's options and *source text*. Bob writes modules whose step
    reads exactly like the deployed ``drafts``'s, with a module constant, a helper's body, a default
    argument or a closure's value of his own: the same snapshot, so his runs were the deployed
    version and got ``drafts``'s policy (the ``scripted`` provider ``*`` forbids). Now a new
    deployment also records a digest of what the steps depend on, and his runs are held by ``*``
    too. The deployed module copied to another folder (a worker's release) still is the deployed one."""
    from podium.engine.versions import definition_hash

    root, bob = await _users(shared)
    deployed = load_workflow(_module(tmp_path / "deployed"))
    async with Client(shared, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        await admin.deploy(deployed)
    async with Client(shared, token=bob) as c:
        copy = load_workflow(_module(tmp_path / "release"))
        assert await c.run(copy, None) == "to a (a reply)."
        for what, changed in LOOK_ALIKES.items():
            mine = load_workflow(_module(tmp_path / "mine" / what.replace(" ", "_"), **changed))
            assert definition_hash(mine) == definition_hash(deployed), what  # reads like the deployed one
            with pytest.raises(RunFailed, match="may not call provider 'scripted'") as failed:
                await c.run(mine, None)
            assert "not deployed" in str(failed.value), (what, str(failed.value))


RUN_AS = """\
import asyncio, sys

import flowmod
from podium import Client, RunFailed
from podium.engine.behaviour import behaviour_digest


async def main():
    print(behaviour_digest(flowmod.wf))
    async with Client(sys.argv[1], token=sys.argv[2]) as c:
        try:
            print(await c.run(flowmod.wf, None))
        except RunFailed as exc:
            print(exc)


asyncio.run(main())
"""


def _worker(folder: Path, db: str, token: str, seed: str) -> list[str]:
    """Runs ``flowmod.wf`` in a process of its own that imports ``flowmod`` (by module name, not by
    file) from ``folder``, with hash seed ``seed``; its digest and its result (or refusal)."""
    import os
    import subprocess
    import sys

    import podium

    code = str(Path(podium.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), code]), "PYTHONHASHSEED": seed}
    command = [sys.executable, "-c", RUN_AS, db, token]
    out = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


async def test_the_deployed_python_module_imported_from_another_path_in_another_process_is_the_deployed_one(
    db: str, tmp_path: Path
) -> None:
    """The digest is the same wherever and however the same code is imported: a worker that
    imports the deployed module by its module name, from a copy in another folder, in a process of
    its own with another hash seed, runs it as the deployed ``drafts``. A look-alike imported the
    same way does not."""
    from podium.engine.behaviour import PYTHON, behaviour_digest
    from podium.engine.versions import META

    root, bob = await _users(db)
    deployed = load_workflow(_module(tmp_path / "deployed"))
    async with Client(db, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        await admin.deploy(deployed)
        meta = json.loads(await admin.store.kv_get(META, "drafts@1") or "{}")
    assert meta["behaviour"] == {PYTHON: behaviour_digest(deployed)}
    _module(tmp_path / "release")
    for seed in ("1", "2"):
        assert _worker(tmp_path / "release", db, bob, seed) == [meta["behaviour"][PYTHON], "to a (a reply)."]
    _module(tmp_path / "mine", **LOOK_ALIKES["a module constant"])
    digest, refusal = _worker(tmp_path / "mine", db, bob, "3")
    assert digest != meta["behaviour"][PYTHON]
    assert "may not call provider 'scripted'" in refusal and "not deployed" in refusal, refusal


async def test_a_version_deployed_before_digests_keeps_its_snapshot_alone_until_deployed_again(
    shared: Any, tmp_path: Path
) -> None:
    """A Python version deployed before digests were recorded has none in its meta: it is known by
    its snapshot alone, as then (a look-alike still passes for it). Deploying it again adds the
    digest to that version (the same label, no new version), and look-alikes are held by ``*`` from
    then on. Deploying a look-alike itself (the same snapshot, other values) is a new version."""
    from podium.engine.versions import META

    root, bob = await _users(shared)
    ref = _module(tmp_path / "deployed")
    async with Client(shared, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        await admin.deploy(load_workflow(ref))
        meta = json.loads(await admin.store.kv_get(META, "drafts@1") or "{}")
        del meta["behaviour"]  # as deployed by an earlier release
        await admin.store.kv_put(META, "drafts@1", json.dumps(meta))
    changed = LOOK_ALIKES["a module constant"]
    mine, theirs = "to attacker (a reply).", "to a (a reply)."
    async with Client(shared, token=bob) as c:
        assert await c.run(load_workflow(_module(tmp_path / "mine", **changed)), None) == mine
    async with Client(shared, token=root) as admin:
        assert (await admin.deploy(load_workflow(ref))).version == "1"
        assert "behaviour" in json.loads(await admin.store.kv_get(META, "drafts@1") or "{}")
    async with Client(shared, token=bob) as c:
        with pytest.raises(RunFailed, match="not deployed"):
            await c.run(load_workflow(_module(tmp_path / "mine", **changed)), None)
        assert await c.run(load_workflow(_module(tmp_path / "release")), None) == theirs
    async with Client(shared, token=root) as admin:
        assert (await admin.deploy(load_workflow(_module(tmp_path / "next", **changed)))).version == "1.2"
        assert (await admin.deploy(load_workflow(ref))).version == "1"  # deployed already: made active again
    async with Client(shared, token=bob) as c:
        runs = ((_module(tmp_path / "mine", **changed), "1.2", mine), (_module(tmp_path / "release"), "1", theirs))
        for module, version, text in runs:
            handle = await c.start(load_workflow(module), None)
            assert await handle.result() == text
            assert (await c.get(handle.id)).version == version
