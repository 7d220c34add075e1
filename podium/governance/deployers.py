"""Whom a workflow's own triggers act as: its deployer.

A cron schedule, a watched folder or a broker message has no caller: the server starts the run.
It starts as whoever deployed the workflow's active version (the actor of the newest signed
``workflow.deploy`` entry for that version), with the roles that deployment recorded narrowed to
the roles the deployer holds now. So a deployer who may not start runs cannot have the server's
account start them on a timer, and a deployer who is disabled, deleted or loses ``runs.start``
stops their schedules: each fire becomes a dead letter that says why.

Unchanged: local mode (no users), workflows the server's operator registered without deploying
them into the store (``podium serve --workflow``), and deployments made by the server's own
account or by the local user before users existed: those start as the server.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

from ..errors import AuthError
from .audit import entry_signed
from .identity import Principal, User, role_permissions
from .service import ROLES, USERS

if TYPE_CHECKING:
    from .service import Governance


async def deployer(gov: Governance, workflow: str, version: str | None) -> Principal | None:
    """The principal the triggers of ``workflow`` act as when ``version`` (None: not deployed into
    the store) is its active version; None: the server itself. Raises :class:`AuthError` (the
    trigger's fire is dead-lettered) when the deployment names nobody who may act now."""
    store = gov.store
    if version is None or not await store.kv_list(USERS):
        return None
    keys = store.audit_keys.all()
    deploys = [
        e
        for e in await store.audit_for(f"workflow:{workflow}")
        if e.action == "workflow.deploy" and entry_signed(e, keys) and _data(e.data).get("version") == version
    ]
    if not deploys:
        raise AuthError(
            f"no signed audit entry names who deployed {workflow!r} version {version}, and its triggers "
            "start runs as their deployer: deploy it again (with auditing on) as someone who may start it"
        )
    entry = deploys[-1]
    data = _data(entry.data)
    # The local user (before users existed) is marked so: a user an admin named 'local' is not it.
    # An entry of an earlier release records no roles, and the local user was the only 'local' then.
    local = entry.actor == "local" and (data.get("local") is True or "roles" not in data)
    if local or entry.actor == gov.principal_default.name:
        return None
    again = f"deploy {workflow!r} again as someone who may start it"
    text = await store.kv_get(USERS, entry.actor)
    if text is None:
        raise AuthError(
            f"{workflow!r} version {version} was deployed by {entry.actor!r}, who is no longer a user, and its "
            f"triggers start runs as their deployer: {again}"
        )
    user = User.from_json(entry.actor, text)
    if user.disabled:
        raise AuthError(
            f"{workflow!r} version {version} was deployed by {entry.actor!r}, who is disabled, and its triggers "
            f"start runs as their deployer: enable them (podium users enable {shlex.quote(user.name)}) or {again}"
        )
    recorded = data.get("roles")
    roles = [r for r in user.roles if r in recorded] if isinstance(recorded, list) else list(user.roles)
    custom = {k: frozenset(json.loads(v)) for k, v in (await store.kv_list(ROLES)).items()}
    who = Principal(name=user.name, roles=tuple(roles), permissions=role_permissions(roles, custom), service=user.service)
    if who.can("runs.start"):
        return who
    if role_permissions(user.roles, custom) >= {"runs.start"}:  # a scoped token, or roles changed since
        rec, kept = ", ".join(map(str, recorded if isinstance(recorded, list) else [])) or "none", ", ".join(roles) or "none"
        raise AuthError(
            f"{workflow!r} version {version} was deployed by {user.name!r} (roles recorded with the deploy: {rec}; "
            f"of them still held: {kept}), none of which may start runs, and its triggers start runs as their "
            f"deployer: deploy it again with a token whose scopes cover runs.start"
        )
    raise AuthError(
        f"{workflow!r} version {version} was deployed by {user.name!r}, whose roles ({', '.join(user.roles) or 'none'}) "
        f"may not start runs, and its triggers start runs as their deployer: grant a role with runs.start "
        f"(podium users grant {shlex.quote(user.name)} ROLE) or {again}"
    )


def _data(text: str | None) -> dict[str, object]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
