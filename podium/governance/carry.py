"""What ``podium db migrate-to`` signs into the target store for the governance rows it copies.

Users, custom roles, policies, kill switches, prompts, deployed versions and which of them is
active count only as far as the store's signed audit log backs them (:mod:`.accounts`,
:mod:`.backed`), and the log is not copied (it is signed for its own store). So for each such row copied, the target gets one entry
saying what the source's log backs (``user.put``, ``role.put``, ``policy.set``, ``killswitch.set``,
``prompt.put``, ``ml.reference``, then a ``workflow.rollback`` / ``prompt.rollback`` to the version the source's log
made active, each with ``migrated_from``), made by whoever ran the migration; a
``workflow.deploy`` keeps its deployer (its triggers start runs as them) and names the
migration's maker as ``migrated_by``. A row the source's log does not back is taken out of the
target and named; a policy or kill switch the source's log holds in force whose row was deleted
there (still in force in the source) is written into the target all the same. Token rows are sealed with the audit key, which both stores share on this host;
a row of an earlier release that the source's log backs is sealed on the way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ..storage import Store
from . import accounts, backed, references
from .policy import POLICIES
from .service import Governance


async def carry_over(src: Store, dst: Store, copied: Mapping[str, Sequence[str]], *, actor: str) -> list[str]:
    """Sign into ``dst`` the governance rows copied from ``src`` (``copied``: namespace -> keys);
    returns what was left out, and why."""
    gov, left = Governance(dst), []
    where = src.url
    touched = {"workflow": {k.rpartition("@")[0] for k in copied.get(backed.META, ())},
               "prompt": {k.rpartition("@")[0] for k in copied.get(backed.PROMPTS, ())}}  # fmt: skip
    before = {
        (kind, name): (await backed.active_in(dst, kind, name, None))[0] for kind, names in touched.items() for name in names
    }  # what the target's own log made active: carrying versions over does not change it

    async def drop(ns: str, key: str, why: str) -> None:
        await dst.kv_put(ns, key, None)
        left.append(why)

    for name in copied.get(accounts.USERS, ()):
        user, problem = await accounts.checked_user(src, name, await src.kv_get(accounts.USERS, name) or "{}", audited=True)
        if problem:
            await drop(accounts.USERS, name, problem)
            continue
        await gov.record("user.put", f"user:{name}", actor=actor, roles=user.roles, service=user.service, migrated_from=where)
        if user.disabled:
            await gov.record("user.disable", f"user:{name}", actor=actor, migrated_from=where)
    for name in copied.get(accounts.ROLES, ()):
        perms = sorted(json.loads(await src.kv_get(accounts.ROLES, name) or "[]"))
        problem = accounts.role_problem(name, frozenset(perms), await accounts.signed(src, f"role:{name}"))
        if problem:
            await drop(accounts.ROLES, name, problem)
            continue
        await gov.record("role.put", f"role:{name}", actor=actor, permissions=perms, migrated_from=where)
    for key in copied.get(accounts.TOKENS, ()):
        text = await src.kv_get(accounts.TOKENS, key) or ""
        rec, problem = await accounts.token_problem(src, key, text, audited=True)
        if problem or rec is None:
            await drop(accounts.TOKENS, key, problem or accounts.UNREADABLE)
        elif accounts.unseal_token(dst, key, text) is None:
            await dst.kv_put(accounts.TOKENS, key, accounts.seal_token(dst, key, rec))
    # every one the source's log holds in force, its row copied or not (deleted from the source, it
    # is still in force there: backed.in_force), unless the target has a row of its own
    heads = await src.governing_heads()
    policies = await backed.in_force(src, await src.kv_list(POLICIES), {}, policies=True, heads=heads)
    switches = await backed.in_force(src, await src.kv_list(backed.SWITCHES), {}, policies=False, heads=heads)
    unrowed = {ns: [k for k in logged if k not in copied.get(ns, ()) and await dst.kv_get(ns, k) is None]
               for ns, logged in ((POLICIES, policies), (backed.SWITCHES, switches))}  # fmt: skip
    for name in [*copied.get(POLICIES, ()), *unrowed[POLICIES]]:
        if name not in policies:
            await drop(POLICIES, name, f"the policy of {name!r}: no signed policy.set entry of {where} backs it")
            continue
        await dst.kv_put(POLICIES, name, policies[name].to_json())
        await gov.record("policy.set", f"workflow:{name}", actor=actor, policy=json.loads(policies[name].to_json()), migrated_from=where)
    for key in [*copied.get(backed.SWITCHES, ()), *unrowed[backed.SWITCHES]]:
        value = switches.get(key)
        if value is None:
            await drop(backed.SWITCHES, key, f"kill switch {key}: no signed killswitch.set entry of {where} backs it")
            continue
        await gov.record("killswitch.set", key, actor=actor, mode=value["mode"], reason=value["reason"], migrated_from=where)
        await dst.kv_put(backed.SWITCHES, key, json.dumps({**value, "by": actor}))
    for key in copied.get(backed.PROMPTS, ()):
        name, _, version = key.rpartition("@")
        record = json.loads(await src.kv_get(backed.PROMPTS, key) or "null")
        if problem := await backed.prompt_problem(src, name, version, record):
            await drop(backed.PROMPTS, key, problem)
            continue
        await gov.record("prompt.put", f"prompt:{name}", actor=actor, version=version, hash=record["hash"], migrated_from=where)
    for key in copied.get(backed.META, ()):
        name, _, version = key.rpartition("@")
        meta = json.loads(await src.kv_get(backed.META, key) or "null")
        body = await src.kv_get(backed.TEXTS, key)
        if problem := await backed.deployed_problem_in(src, name, version, body, meta):
            await drop(backed.META, key, problem)
            await dst.kv_put(backed.TEXTS, key, None)
            continue
        entry = [e for e in await accounts.signed(src, f"workflow:{name}") if e.action == "workflow.deploy" and e.details().get("version") == version][-1]
        # who deployed it stays its deployer (their triggers start runs as them, docs/governance.md)
        await gov.record("workflow.deploy", f"workflow:{name}", actor=entry.actor, **entry.details(), migrated_from=where, migrated_by=actor)
    for name in copied.get(references.REFERENCES, ()):  # drift references: as the source's log recorded them
        stored = await src.kv_get(references.REFERENCES, name)
        entries, problem = await references.checked(src, name, stored)
        if problem:
            await drop(references.REFERENCES, name, problem)
            continue
        owner = references.logged_owner(entries)[0] or ""
        await gov.record(references.SAVE, references.target(name), actor=actor, hash=references.digest(stored or ""), owner=owner, migrated_from=where)
        await dst.kv_put(references.REFERENCE_OWNERS, name, owner)
    for kind, ns in backed.ACTIVE_ROWS.items():  # which version is active: as the source's log says, or as it was here
        wanted = {name: version for (k, name), version in before.items() if k == kind and version is not None}
        for name in copied.get(ns, ()):
            made, _ = await backed.active_in(src, kind, name, None)
            if made is None:
                await drop(ns, name, f"the active version of {kind} {name!r}: no signed entry of {where} made a version active")
                continue
            wanted[name] = made
        for name, version in sorted(wanted.items()):
            if (await backed.active_in(dst, kind, name, None))[0] != version:
                await gov.record(f"{kind}.rollback", f"{kind}:{name}", actor=actor, from_version=None, to_version=version, migrated_from=where)
            await dst.kv_put(ns, name, version)
    return left
