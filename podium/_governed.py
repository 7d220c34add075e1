"""The governance half of the engine client: who may do what, the audit log, approvals, kill
switches. Mixed into :class:`podium.Client`, so every surface that calls the client inherits it."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import _serde
from ._audit import AuditEntry, run_digest, verify
from ._errors import AuthError, ConfigError, NotFound, PermissionDenied
from ._governance import (
    BUILTIN_ROLES,
    PERMISSIONS,
    Principal,
    TokenRecord,
    User,
    new_token,
    role_permissions,
    token_hash,
)
from ._models import EventType, RunStatus
from ._policy import POLICIES, Policy

if TYPE_CHECKING:
    from .storage import Store

log = logging.getLogger("podium.governance")

_acting: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("podium_principal", default=None)

USERS, TOKENS, ROLES, SWITCHES = "users", "tokens", "roles", "switches"
SWITCH_SCOPES = ("all", "workflow", "kind", "provider", "agent")


class Governed:
    """Identity, RBAC, audit, approvals and kill switches for the client."""

    store: Store
    audit_enabled: bool
    _principal: Principal
    _switches: dict[str, dict[str, Any]]
    _policies: dict[str, Policy]
    _driving: dict[str, Any]
    _audit_listeners: list[Callable[[AuditEntry], None]]

    # -- identity -------------------------------------------------------------------------------

    async def _resolve_principal(self, token: str | None) -> Principal:
        users = await self.store.kv_list(USERS)
        if token is None:
            if users:
                raise AuthError(
                    "this store has users, so every client needs an API token: pass token=... or set "
                    "PODIUM_TOKEN (an admin creates one with 'podium tokens create USER')"
                )
            return Principal.local_user()
        return await self.authenticate(token)

    async def authenticate(self, token: str) -> Principal:
        """The principal an API token stands for. Raises :class:`AuthError` if it is not valid."""
        text = await self.store.kv_get(TOKENS, token_hash(token))
        if text is None:
            raise AuthError("unknown API token: check PODIUM_TOKEN, or ask an admin for a new one")
        rec = TokenRecord.from_json(text)
        if rec.revoked:
            raise AuthError(f"API token {rec.name!r} of {rec.user!r} was revoked")
        if rec.expires_at is not None and rec.expires_at < time.time():
            raise AuthError(f"API token {rec.name!r} of {rec.user!r} expired; create a new one")
        user_text = await self.store.kv_get(USERS, rec.user)
        if user_text is None:
            raise AuthError(f"API token {rec.name!r} belongs to user {rec.user!r}, who no longer exists")
        user = User.from_json(rec.user, user_text)
        if user.disabled:
            raise AuthError(f"user {user.name!r} is disabled")
        perms = role_permissions(user.roles, await self._custom_roles())
        if rec.scopes is not None:
            perms = perms & frozenset(rec.scopes)
        return Principal(
            name=user.name,
            roles=tuple(user.roles),
            permissions=perms,
            service=user.service,
            token_name=rec.name,
        )

    async def _custom_roles(self) -> dict[str, frozenset[str]]:
        return {k: frozenset(json.loads(v)) for k, v in (await self.store.kv_list(ROLES)).items()}

    @property
    def principal(self) -> Principal:
        """Who this client acts as now (see :meth:`acting_as`)."""
        return _acting.get() or self._principal

    @contextlib.contextmanager
    def acting_as(self, principal: Principal) -> Iterator[None]:
        """Act as ``principal`` inside the block (an HTTP request handler sets its caller here)."""
        reset = _acting.set(principal)
        try:
            yield
        finally:
            _acting.reset(reset)

    async def authorize(self, permission: str, target: str = "") -> Principal:
        """The acting principal, if it holds ``permission``; otherwise audit the refusal and raise
        :class:`PermissionDenied`. Every surface checks through here."""
        who = self.principal
        if who.can(permission):
            return who
        await self._audit("access.denied", target, actor=who.name, permission=permission)
        roles = ", ".join(who.roles) or "none"
        raise PermissionDenied(
            f"{who.name} (roles: {roles}) may not {permission}"
            + (f" on {target}" if target else "")
            + f"; an admin can grant a role that allows it: podium users grant {who.name} ROLE"
        )

    # -- users, roles, tokens -------------------------------------------------------------------

    async def create_user(self, name: str, roles: list[str], *, service: bool = False) -> User:
        """Create (or update) a user or service account with ``roles``."""
        await self.authorize("users.manage", f"user:{name}")
        known = set(BUILTIN_ROLES) | set(await self._custom_roles())
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise ConfigError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(sorted(known))}")
        user = User(name=name, roles=list(roles), service=service)
        await self.store.kv_put(USERS, name, user.to_json())
        await self._audit("user.put", f"user:{name}", roles=roles, service=service)
        return user

    async def grant(self, name: str, roles: list[str]) -> User:
        """Add ``roles`` to user ``name`` (keeping the roles it has)."""
        await self.authorize("users.manage", f"user:{name}")
        text = await self.store.kv_get(USERS, name)
        if text is None:
            raise NotFound(f"no user {name!r}; create it with 'podium users add {name} --role ROLE'")
        user = User.from_json(name, text)
        return await self.create_user(name, sorted(set(user.roles) | set(roles)), service=user.service)

    async def disable_user(self, name: str) -> None:
        await self.authorize("users.manage", f"user:{name}")
        text = await self.store.kv_get(USERS, name)
        if text is None:
            raise NotFound(f"no user {name!r}")
        user = User.from_json(name, text)
        user.disabled = True
        await self.store.kv_put(USERS, name, user.to_json())
        await self._audit("user.disable", f"user:{name}")

    async def users(self) -> list[User]:
        await self.authorize("users.manage")
        return [User.from_json(k, v) for k, v in (await self.store.kv_list(USERS)).items()]

    async def define_role(self, name: str, permissions: list[str]) -> None:
        """Define a custom role as a set of permissions."""
        await self.authorize("users.manage", f"role:{name}")
        if name in BUILTIN_ROLES:
            raise ConfigError(f"{name!r} is a built-in role; choose another name")
        bad = [p for p in permissions if p not in PERMISSIONS]
        if bad:
            raise ConfigError(
                f"unknown permission(s) {', '.join(bad)}; permissions are: {', '.join(PERMISSIONS)}"
            )
        await self.store.kv_put(ROLES, name, json.dumps(sorted(permissions)))
        await self._audit("role.put", f"role:{name}", permissions=sorted(permissions))

    async def create_token(
        self, user: str, *, name: str = "default", scopes: list[str] | None = None, ttl: float | None = None
    ) -> str:
        """Create an API token for ``user``; returns it (the only time it is shown: only its hash is kept)."""
        await self.authorize("users.manage", f"user:{user}")
        if await self.store.kv_get(USERS, user) is None:
            raise NotFound(f"no user {user!r}; create it first with 'podium users add {user} --role ROLE'")
        if scopes is not None:
            bad = [p for p in scopes if p not in PERMISSIONS]
            if bad:
                raise ConfigError(
                    f"unknown scope(s) {', '.join(bad)}; scopes are permissions: {', '.join(PERMISSIONS)}"
                )
        token = new_token()
        rec = TokenRecord(user=user, name=name, scopes=scopes, expires_at=time.time() + ttl if ttl else None)
        await self.store.kv_put(TOKENS, token_hash(token), rec.to_json())
        await self._audit(
            "token.create", f"user:{user}", token=name, scopes=scopes, expires_at=rec.expires_at
        )
        return token

    async def revoke_token(self, user: str, name: str) -> int:
        """Revoke ``user``'s tokens called ``name``; returns how many."""
        await self.authorize("users.manage", f"user:{user}")
        n = 0
        for key, text in (await self.store.kv_list(TOKENS)).items():
            rec = TokenRecord.from_json(text)
            if rec.user == user and rec.name == name and not rec.revoked:
                rec.revoked = True
                await self.store.kv_put(TOKENS, key, rec.to_json())
                n += 1
        await self._audit("token.revoke", f"user:{user}", token=name, count=n)
        return n

    # -- audit ----------------------------------------------------------------------------------

    async def _audit(self, action: str, target: str = "", *, actor: str | None = None, **data: Any) -> None:
        if not self.audit_enabled:
            return
        entry = AuditEntry(
            ts=time.time(),
            actor=actor or self.principal.name,
            action=action,
            target=target,
            data=json.dumps(data, ensure_ascii=False, default=str),
        )
        await self.store.append_audit(entry)
        for listener in self._audit_listeners:
            try:
                listener(entry)
            except Exception:  # a broken observer (an alert sender) must not fail the audited action
                log.exception("audit listener %r failed", listener)

    async def record(self, action: str, target: str = "", **data: Any) -> None:
        """Write an audit entry as the acting principal: for surfaces that act beside the client
        (the trigger runner, CLI commands, memory routes)."""
        await self._audit(action, target, **data)

    def subscribe_audit(self, listener: Callable[[AuditEntry], None]) -> Callable[[], None]:
        """Call ``listener`` with every audit entry this client writes (alerts on budgets, refusals...).
        Returns an unsubscribe."""
        self._audit_listeners.append(listener)
        return lambda: self._audit_listeners.remove(listener) if listener in self._audit_listeners else None

    async def audit_log(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries, oldest first."""
        await self.authorize("audit.read")
        return await self.store.list_audit(after=after, limit=limit)

    async def verify_audit(self) -> tuple[int, str | None]:
        """Check the whole audit chain, and every ended run's history against the digest anchored
        in the log when it ended. Returns (entries checked, the first problem or None)."""
        await self.authorize("audit.read")
        entries: list[AuditEntry] = []
        after = 0
        while True:
            page = await self.store.list_audit(after=after, limit=5000)
            if not page:
                break
            entries.extend(page)
            after = page[-1].seq
        n, problem = verify(entries)
        if problem:
            return n, problem
        # The latest anchor of each run: its end, or a later recorded redaction (podium forget).
        anchors: dict[str, AuditEntry] = {}
        pruned: set[str] = set()
        for e in entries:
            if e.action in ("run.end", "run.redact"):
                anchors[e.target] = e
            elif e.action == "run.prune":
                pruned.add(e.target)
        for run_id, e in anchors.items():
            if run_id in pruned:
                continue
            events = await self.store.load_events(run_id)
            if run_digest(events) != e.details().get("digest"):
                what = "deleted" if not events else "changed"
                return n, (
                    f"run {run_id}'s history was {what} after it ended: it no longer matches the digest "
                    f"recorded in audit entry {e.seq}"
                )
        return n, None

    async def _audit_run_end(
        self, run_id: str, status: RunStatus, workflow: str, digest: str, events: int
    ) -> None:
        if not self.audit_enabled:
            return
        await self._audit(
            "run.end",
            run_id,
            actor="engine",
            workflow=workflow,
            status=status.value,
            events=events,
            digest=digest,
        )

    # -- kill switches --------------------------------------------------------------------------

    async def set_switch(self, scope: str, name: str = "*", *, mode: str = "pause", reason: str = "") -> None:
        """Switch off a workflow, a step kind, a provider, an agent, or everything (``scope='all'``).

        Runs it affects stop at their next step boundary: with ``mode='pause'`` they are parked
        (and continue when the switch is cleared), with ``mode='cancel'`` they are cancelled."""
        if scope not in SWITCH_SCOPES:
            raise ConfigError(
                f"kill switch scope {scope!r} is unknown; scopes are: {', '.join(SWITCH_SCOPES)}"
            )
        if mode not in ("pause", "cancel"):
            raise ConfigError(f"kill switch mode must be 'pause' or 'cancel', got {mode!r}")
        who = await self.authorize("killswitch.use", f"{scope}:{name}")
        value = {"mode": mode, "reason": reason, "by": who.name, "ts": time.time()}
        await self.store.kv_put(SWITCHES, f"{scope}:{name}", json.dumps(value))
        self._switches[f"{scope}:{name}"] = value
        await self._audit("killswitch.set", f"{scope}:{name}", mode=mode, reason=reason)
        await self._apply_switches()

    async def clear_switch(self, scope: str, name: str = "*") -> int:
        """Switch back on; paused runs continue. Returns how many parked runs were woken."""
        await self.authorize("killswitch.use", f"{scope}:{name}")
        await self.store.kv_put(SWITCHES, f"{scope}:{name}", None)
        self._switches.pop(f"{scope}:{name}", None)
        await self._audit("killswitch.clear", f"{scope}:{name}")
        woken = 0
        for run in await self.store.list_runs(status=[RunStatus.WAITING], limit=100_000):
            if "__killswitch__" in json.dumps(await self._waiting_on(run.id)):
                # Delivered like any signal: this client resumes the run at once if it executes runs;
                # otherwise a worker picks it up.
                await self._deliver_signal(run.id, f"__unpause__:{time.time_ns()}", None)  # type: ignore[attr-defined]
                woken += 1
        return woken

    async def switches(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in (await self.store.kv_list(SWITCHES)).items()}

    def switched_off(
        self, workflow: str, kind: str | None = None, *, provider: str | None = None, agent: str | None = None
    ) -> dict[str, Any] | None:
        """The switch that stops this, if any (looked up in memory: cheap enough for every step)."""
        sw = self._switches
        if not sw:
            return None
        for key in (
            "all:*",
            f"workflow:{workflow}",
            f"kind:{kind}" if kind else "",
            f"provider:{provider}" if provider else "",
            f"agent:{agent}" if agent else "",
            "workflow:*",  # a whole scope, switched off explicitly (podium killswitch set SCOPE --all)
            "kind:*" if kind else "",
            "provider:*" if provider else "",
            "agent:*" if agent else "",
        ):
            if key and key in sw:
                return sw[key]
        return None

    async def _refresh_switches(self) -> None:
        self._switches = await self.switches()
        self._policies = await self.policies()

    async def _apply_switches(self) -> None:
        """Cancel the runs a ``cancel`` switch stops (a ``pause`` switch acts at step boundaries)."""
        for rid, (ex, _) in list(self._driving.items()):
            off = self.switched_off(ex.wf.name)
            if off is not None and off.get("mode") == "cancel" and ex.reason is None:
                await self._audit("run.cancel", rid, actor="engine", reason="kill switch")
                await self._cancel_local(rid)

    async def _cancel_local(self, run_id: str) -> bool:
        raise NotImplementedError  # the client implements it

    async def _waiting_on(self, run_id: str) -> list[str]:
        """The signal names a parked run waits for."""
        events = await self.store.load_events(run_id)
        for ev in reversed(events):
            if ev.type == EventType.RUN_WAITING and ev.data:
                return list(json.loads(ev.data).get("signals", []))
        return []

    # -- policies -------------------------------------------------------------------------------

    async def set_policy(self, workflow: str, policy: Policy | None) -> None:
        """Set (or with None remove) the policy of ``workflow`` (``*``: the default for all)."""
        await self.authorize("policies.write", f"workflow:{workflow}")
        await self.store.kv_put(POLICIES, workflow, policy.to_json() if policy else None)
        await self._audit(
            "policy.set", f"workflow:{workflow}", policy=json.loads(policy.to_json()) if policy else None
        )
        await self._refresh_policies()

    async def policies(self) -> dict[str, Policy]:
        return {k: Policy.from_json(v) for k, v in (await self.store.kv_list(POLICIES)).items()}

    def policy_for(self, workflow: str) -> Policy | None:
        """The policy in force for ``workflow`` (cached; refreshed with the kill switches)."""
        return self._policies.get(workflow) or self._policies.get("*")

    async def _refresh_policies(self) -> None:
        self._policies = await self.policies()

    # -- approvals ------------------------------------------------------------------------------

    async def approvals(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Open approval requests: runs parked in ``ctx.approval(...)`` without a decision yet."""
        await self.authorize("approvals.read")
        runs = (
            [await self.store.get_run(run_id)]
            if run_id
            else await self.store.list_runs(status=[RunStatus.WAITING, RunStatus.RUNNING], limit=10_000)
        )
        inbox = []
        for run in runs:
            if run is None:
                continue
            events = await self.store.load_events(run.id)
            signals = await self.store.get_signals(run.id)
            for ev in events:
                if ev.type != EventType.STEP_WAITING or not ev.data:
                    continue
                data = json.loads(ev.data)
                info = data.get("approval")
                if info is None or data["signal"] in signals:
                    continue
                inbox.append(
                    {
                        "run_id": run.id,
                        "workflow": run.workflow,
                        "step": ev.step.split("/", 1)[0] if ev.step else None,
                        "name": data["signal"],
                        "requested_at": ev.ts,
                        "deadline": data.get("deadline"),
                        **info,
                    }
                )
        return inbox

    async def decide(
        self,
        run_id: str,
        name: str,
        *,
        approve: bool,
        comment: str = "",
        payload: Any = None,
    ) -> bool:
        """Approve or reject an approval request, optionally with an edited ``payload``. The decision
        is audited and resumes the run. Returns False if the request was already decided."""
        who = await self.authorize("approvals.decide", run_id)
        pending = [a for a in await self.approvals(run_id=run_id) if a["name"] == name]
        if not pending:
            raise NotFound(
                f"run {run_id} has no open approval request {name!r}; see them with 'podium approvals'"
            )
        request = pending[0]
        required = request.get("role")
        if required and required not in self.principal.roles and "admin" not in self.principal.roles:
            raise PermissionDenied(
                f"approval {name!r} of run {run_id} needs role {required!r}; {who.name} has {', '.join(who.roles) or 'none'}"
            )
        decision = {
            "approved": approve,
            "by": who.name,
            "comment": comment,
            "payload": payload if payload is not None else request.get("payload"),
            "edited": payload is not None,
        }
        await self._audit(
            "approval.decide",
            run_id,
            name=name,
            approved=approve,
            comment=comment,
            edited=payload is not None,
        )
        sent: bool = await self._deliver_signal(run_id, name, decision)  # type: ignore[attr-defined]
        return sent


__all__ = ["Governed", "_serde"]
