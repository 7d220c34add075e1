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

Finding the deployment reads and verifies every audit entry of the workflow; a broker trigger asks
before each poll (every second). A server keeps the entry found for :data:`CACHE_SECONDS` per
workflow version (:class:`Deployers`); the deployer's user record and roles are read at every ask,
so disabling, deleting or demoting a deployer stops their triggers at the next fire or poll.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import TYPE_CHECKING

from ..errors import AuthError
from . import accounts
from .audit import entry_signed
from .identity import Principal, role_permissions
from .service import USERS

if TYPE_CHECKING:
    from .audit import AuditEntry
    from .service import Governance

CACHE_SECONDS = 5.0
"""How long a server keeps the deploy entry its triggers act on. Only a deploy of the same version
made in another process goes unseen that long (a deploy through the server, or any change of the
active version, is seen at once); who the deployer is allowed to be is read at every ask."""


class Deployers:
    """:func:`deployer` for one server's triggers, keeping each workflow version's deploy entry for
    ``seconds`` (the scan of its audit entries), never the deployer's standing."""

    def __init__(self, gov: Governance, *, seconds: float = CACHE_SECONDS) -> None:
        self.gov = gov
        self.seconds = seconds
        self._entries: dict[tuple[str, str], tuple[float, AuditEntry]] = {}

    def forget(self) -> None:
        """Drop the entries kept (after a deploy: the next ask reads the audit log again)."""
        self._entries.clear()

    async def __call__(self, workflow: str, version: str | None) -> Principal | None:
        return await deployer(self.gov, workflow, version, cache=self)

    async def entry(self, workflow: str, version: str) -> AuditEntry:
        kept = self._entries.get((workflow, version))
        if kept is not None and time.monotonic() - kept[0] < self.seconds:
            return kept[1]
        found = await _deploy_entry(self.gov, workflow, version)
        self._entries[(workflow, version)] = (time.monotonic(), found)
        return found


async def deployer(
    gov: Governance, workflow: str, version: str | None, *, cache: Deployers | None = None
) -> Principal | None:
    """The principal the triggers of ``workflow`` act as when ``version`` (None: not deployed into
    the store) is its active version; None: the server itself. Raises :class:`AuthError` (the
    trigger's fire is dead-lettered) when the deployment names nobody who may act now. ``cache``:
    the deploy entries a server keeps for a while (:class:`Deployers`)."""
    store = gov.store
    if version is None or not await store.kv_list(USERS):
        return None
    entry = await (cache.entry(workflow, version) if cache is not None else _deploy_entry(gov, workflow, version))
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
    user, problem = await accounts.checked_user(store, entry.actor, text, audited=gov.audit_enabled)
    if problem:
        raise AuthError(f"{workflow!r} version {version} was deployed by {entry.actor!r}, and {problem}")
    if user.disabled:
        raise AuthError(
            f"{workflow!r} version {version} was deployed by {entry.actor!r}, who is disabled, and its triggers "
            f"start runs as their deployer: enable them (podium users enable {shlex.quote(user.name)}) or {again}"
        )
    recorded = data.get("roles")
    roles = [r for r in user.roles if r in recorded] if isinstance(recorded, list) else list(user.roles)
    custom = await accounts.custom_roles(store, audited=gov.audit_enabled)
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


async def _deploy_entry(gov: Governance, workflow: str, version: str) -> AuditEntry:
    """The newest signed ``workflow.deploy`` entry of ``workflow`` ``version``."""
    keys = gov.store.audit_keys.all()
    deploys = [
        e
        for e in await gov.store.audit_for(f"workflow:{workflow}")
        if e.action == "workflow.deploy" and entry_signed(e, keys) and _data(e.data).get("version") == version
    ]
    if not deploys:
        raise AuthError(
            f"no signed audit entry names who deployed {workflow!r} version {version}, and its triggers "
            "start runs as their deployer: deploy it again (with auditing on) as someone who may start it"
        )
    return deploys[-1]


def _data(text: str | None) -> dict[str, object]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def sender(gov: Governance, name: str, what: str) -> Principal:
    """Whom ``what`` (a dead letter) is replayed as: ``name``, the user who sent its event, with the
    roles they hold now. Replayed as whoever replays it, the run's starter would be someone else, and
    the sender could approve what they asked for (four eyes). :class:`AuthError` when ``name`` is no
    longer a user who may start runs."""
    store = gov.store
    again = "discard it (DELETE /api/deadletters/ID) and have the event sent again by someone who may start runs"
    text = await store.kv_get(USERS, name)
    if text is None:
        raise AuthError(f"{what} was sent by {name!r}, who is no longer a user, and replays as its sender: {again}")
    user, problem = await accounts.checked_user(store, name, text, audited=gov.audit_enabled)
    if problem or user.disabled:
        raise AuthError(f"{what} was sent by {name!r}, who {problem or 'is disabled'}, and replays as its sender: {again}")
    custom = await accounts.custom_roles(store, audited=gov.audit_enabled)
    who = Principal(name=user.name, roles=tuple(user.roles), permissions=role_permissions(user.roles, custom), service=user.service)
    if not who.can("runs.start"):
        raise AuthError(
            f"{what} was sent by {name!r}, whose roles ({', '.join(user.roles) or 'none'}) may no longer start runs, "
            f"and replays as its sender: {again}"
        )
    return who
