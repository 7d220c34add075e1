"""The governance service: who may do what, the audit log, approvals, kill switches and policies.

One :class:`Governance` belongs to each engine client (``client.governance``); the client's public
methods for users, tokens, audit, switches, policies and approvals delegate to it, so every surface
that calls the client goes through the same checks. Governance never imports the engine: what it
needs of the engine it governs (the runs it drives, cancelling one, delivering a decision) it gets
as the small :class:`EngineControl` port at construction.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import shlex
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _serde
from ..errors import AuthError, ConfigError, KillSwitchActive, NotFound, PermissionDenied
from ..records import Event, EventType, RunRecord, RunStatus
from . import accounts, backed, capabilities
from .audit import (
    HISTORY_MISMATCH,
    AuditEntry,
    ChainCheck,
    check_run,
    entry_json,
    entry_signed,
    payload_hash,
    record_hash,
    unanchored,
)
from .bound import in_force, stored_for_run
from .capabilities import Capability
from .identity import (
    BUILTIN_ROLES,
    PERMISSIONS,
    OwnToken,
    Principal,
    TokenRecord,
    User,
    check_new_token,
    new_token,
    role_permissions,
    token_hash,
)
from .inbox import open_requests, pick, requests_of
from .limits import refuse_outside
from .policy import POLICIES, Policy, check_switch
from .refusals import DENIED, Refusals
from .verifying import check_store

if TYPE_CHECKING:
    from ..storage import Store

log = logging.getLogger("podium.governance")
_ENCODE = entry_json
"""An audit entry's details as JSON text (one encoder, made once). ASCII, so that any text a caller
gives (a comment, a reason: a lone surrogate too) is written as escapes that every store and the
signature can take."""

_acting: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("podium_principal", default=None)

USERS, TOKENS, ROLES, SWITCHES = accounts.USERS, accounts.TOKENS, accounts.ROLES, "switches"
SWITCH_SCOPES = ("all", "workflow", "kind", "provider", "agent", "connector")
#: Waits under these names are answered only by the engine: approvals through :meth:`Governance.decide`
#: (with its role check and audit), timers and kill switches by the engine itself.
APPROVAL_PREFIX = "approval:"
QUARANTINE_PREFIX = "quarantine:"  # answered by a replay that checked the contract (client.quarantine)
RESERVED_SIGNALS = (APPROVAL_PREFIX, QUARANTINE_PREFIX, "__")


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineControl:
    """What governance asks of the engine it governs."""

    driving: Callable[[], list[tuple[str, str, tuple[str, ...]]]]
    """The runs this engine drives now and that are not already stopping: (run id, workflow, the
    workflows of its parent runs)."""
    cancel: Callable[[str], Awaitable[bool]]
    """Cancel a run this engine drives (a ``cancel`` kill switch)."""
    deliver: Callable[..., Awaitable[bool]]
    """Deliver a decision to a parked run (the approval path; no permission check of its own):
    ``deliver(run_id, name, payload, request=seq)``, ``request`` the seq of the request decided."""


class Governance:
    """Identity, RBAC, audit, approvals, kill switches and policies over one store."""

    def __init__(self, store: Store, *, audit: bool = True, engine: EngineControl | None = None) -> None:
        self.store = store
        self.audit_enabled = audit
        self.engine = engine
        self.principal_default = Principal.local_user()
        """Who the client acts as outside :meth:`acting_as` (resolved from its token on open)."""
        self.switch_cache: dict[str, dict[str, Any]] = {}
        """Kill switches in force, refreshed by the engine's maintenance sweep."""
        self.policy_cache: dict[str, Policy] = {}
        """Policies in force, refreshed with the switches."""
        self.users_exist = False  # then a policy's name covers only the deployed workflow (bound.py)
        self._audit_listeners: list[Callable[[AuditEntry], None]] = []
        self._own: OwnToken | None = None
        self._checked = backed.Checked()  # policy and switch rows checked against the log (backed.py)
        self.spend_floors: dict[str, float] = {}  # what each spending counter held at least (counters.py)
        self.refusals = Refusals.from_settings(self._denied)  # the first of each kind at once, repeats counted

    async def open(self, token: str | None, principal: Principal | None) -> None:
        """Resolve who the client acts as and load switches and policies."""
        self.principal_default = principal or await self._resolve_principal(token)
        self._own = OwnToken(token=token) if principal is None and token is not None else None
        await self.refresh()

    # -- identity -------------------------------------------------------------------------------

    async def _resolve_principal(self, token: str | None) -> Principal:
        users = await self.store.kv_list(USERS)
        if token is None:
            if users:
                raise AuthError(
                    "this store has users, so every client needs an API token: set PODIUM_TOKEN (or, in Python, "
                    "pass token=...); an admin creates one with 'podium tokens create USER'"
                )
            return Principal.local_user()
        return await self.authenticate(token)

    async def authenticate(self, token: str) -> Principal:
        """The principal an API token stands for. Raises :class:`AuthError` if it is not valid."""
        rec, user = await accounts.account(self, token)
        custom = await accounts.custom_roles(self.store, audited=self.audit_enabled, held=user.roles)
        perms = role_permissions(user.roles, custom)
        whole = None
        if rec.scopes is not None:
            perms = perms & frozenset(rec.scopes)
            whole = tuple(r for r in user.roles if role_permissions([r], custom) <= perms)
        return Principal(
            name=user.name, roles=tuple(user.roles), permissions=perms, service=user.service, token_name=rec.name, whole_roles=whole
        )

    async def _custom_roles(self) -> dict[str, frozenset[str]]:
        return await accounts.custom_roles(self.store, audited=self.audit_enabled)

    @property
    def principal(self) -> Principal:
        """Who this client acts as now (see :meth:`acting_as`)."""
        return _acting.get() or self.principal_default

    def as_itself(self) -> contextlib.AbstractContextManager[None]:
        """Act as the client itself inside the block (a run's task, which outlives the request that
        started or woke it); nothing to set where no caller is acting."""
        return contextlib.nullcontext() if _acting.get() is None else self.acting_as(self.principal_default)

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
        if self._own is not None and self._own.stands_for(who, self.principal_default):  # its token, again
            if refused := await self.own_refusal():
                raise AuthError(refused)
            who = self.principal_default
        if who.can(permission):
            return who
        await self.record("access.denied", target, actor=who.name, permission=permission)
        roles = ", ".join(who.roles) or "none"
        raise PermissionDenied(
            f"{who.name} (roles: {roles}) may not {permission}"
            + (f" on {target}" if target else "")
            + f"; an admin can grant a role that allows it: podium users grant {shlex.quote(who.name)} ROLE"
        )

    async def own_refusal(self) -> str | None:
        """Why this client's own token no longer stands (checked again when due); None while it does."""
        if self._own is None:
            return None
        self.principal_default = await self._own.check(self.authenticate, self.principal_default)
        return self._own.refused

    # -- users, roles, tokens -------------------------------------------------------------------

    async def create_user(self, name: str, roles: list[str], *, service: bool = False) -> User:
        """Create (or update) a user or service account; a disabled one stays disabled (:meth:`disable_user`)."""
        await self.authorize("users.manage", f"user:{name}")
        known = set(BUILTIN_ROLES) | set(await self._custom_roles())
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise ConfigError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(sorted(known))}")
        before = await self.store.kv_get(USERS, name)
        disabled = before is not None and User.from_json(name, before).disabled
        user = User(name=name, roles=list(roles), service=service, disabled=disabled)
        await self.record("user.put", f"user:{name}", roles=roles, service=service)  # first: the row is checked against it
        await self.store.kv_put(USERS, name, user.to_json())
        self.users_exist = True
        return user

    async def grant(self, name: str, roles: list[str]) -> User:
        """Add ``roles`` to user ``name`` (keeping the roles it has)."""
        await self.authorize("users.manage", f"user:{name}")
        text = await self.store.kv_get(USERS, name)
        if text is None:
            raise NotFound(f"no user {name!r}; create it with 'podium users add {name} --role ROLE'")
        user, problem = await accounts.checked_user(self.store, name, text, audited=self.audit_enabled)
        if problem:  # keeping the roles of an edited row would sign them into the log
            raise ConfigError(problem)
        return await self.create_user(name, sorted(set(user.roles) | set(roles)), service=user.service)

    async def disable_user(self, name: str, *, disabled: bool = True) -> None:
        """Disable a user (their tokens stop working), or with ``disabled=False`` enable them again."""
        await self.authorize("users.manage", f"user:{name}")
        text = await self.store.kv_get(USERS, name)
        if text is None:
            raise NotFound(f"no user {name!r}; list them with 'podium users list'")
        user = User.from_json(name, text)
        user.disabled = disabled
        await self.record("user.disable" if disabled else "user.enable", f"user:{name}")
        await self.store.kv_put(USERS, name, user.to_json())

    async def users(self) -> list[User]:
        """Every user, as in force: one whose row the signed log does not back, with no roles and disabled."""
        await self.authorize("users.manage")
        out = []
        for name, text in (await self.store.kv_list(USERS)).items():
            user, problem = await accounts.checked_user(self.store, name, text, audited=self.audit_enabled)
            out.append(User(name=name, service=user.service, disabled=True) if problem else user)
        return out

    async def define_role(self, name: str, permissions: list[str]) -> None:
        """Define a custom role as a set of permissions."""
        await self.authorize("users.manage", f"role:{name}")
        if name in BUILTIN_ROLES:
            raise ConfigError(f"{name!r} is a built-in role; choose another name")
        if bad := [p for p in permissions if p not in PERMISSIONS]:
            raise ConfigError(f"unknown permission(s) {', '.join(bad)}; permissions are: {', '.join(PERMISSIONS)}")
        await self.record("role.put", f"role:{name}", permissions=sorted(permissions))
        await self.store.kv_put(ROLES, name, json.dumps(sorted(permissions)))

    async def create_token(
        self, user: str, *, name: str = "default", scopes: list[str] | None = None, ttl: float | None = None
    ) -> str:
        """Create an API token for ``user``; returns it (the only time it is shown: only its hash is kept)."""
        await self.authorize("users.manage", f"user:{user}")
        check_new_token(user, await self.store.kv_get(USERS, user), scopes, ttl)
        token = new_token()
        rec = TokenRecord(user=user, name=name, scopes=scopes, expires_at=time.time() + ttl if ttl else None)
        await self.store.kv_put(TOKENS, key := token_hash(token), accounts.seal_token(self.store, key, rec))
        await self.record("token.create", f"user:{user}", token=name, scopes=scopes, expires_at=rec.expires_at, sealed=True)
        return token

    async def revoke_token(self, user: str, name: str) -> int:
        """Revoke ``user``'s tokens called ``name``; returns how many."""
        await self.authorize("users.manage", f"user:{user}")
        n = 0
        for key, text in (await self.store.kv_list(TOKENS)).items():
            rec = accounts.unseal_token(self.store, key, text) or accounts.legacy_token(text)
            if rec is not None and rec.user == user and rec.name == name and not rec.revoked:
                rec.revoked = True
                await self.store.kv_put(TOKENS, key, accounts.seal_token(self.store, key, rec))
                n += 1
        await self.record("token.revoke", f"user:{user}", token=name, count=n)
        return n

    # -- audit ----------------------------------------------------------------------------------

    async def record(self, action: str, target: str = "", *, actor: str | None = None, **data: Any) -> None:
        """Append an entry to the audit log (as the acting principal unless ``actor`` is given)."""
        if not self.audit_enabled:
            return
        if action == DENIED:  # the first refusal of each kind at once, repeats counted (refusals.py)
            await self.refusals.refused(actor or self.principal.name, target, data)
            return
        entry = self._entry(action, target, actor, data)
        await self.store.append_audit(entry)
        self.announce(entry)

    async def _denied(self, actor: str, target: str, data: dict[str, Any]) -> None:
        entry = self._entry(DENIED, target, actor, data)
        await self.store.append_audit(entry)
        self.announce(entry)

    def _entry(self, action: str, target: str, actor: str | None, data: Mapping[str, Any]) -> AuditEntry:
        return AuditEntry(
            ts=time.time(),
            actor=actor or self.principal.name,
            action=action,
            target=target,
            data=_ENCODE(data),
        )

    def announce(self, entry: AuditEntry) -> None:
        """Tell the audit listeners about ``entry``, once it is written."""
        for listener in self._audit_listeners:
            try:
                listener(entry)
            except Exception:  # a broken observer (an alert sender) must not fail the audited action
                log.exception("audit listener %r failed", listener)

    def subscribe_audit(self, listener: Callable[[AuditEntry], None]) -> Callable[[], None]:
        """Call ``listener`` with every audit entry this client writes; returns an unsubscribe."""
        self._audit_listeners.append(listener)
        return lambda: self._audit_listeners.remove(listener) if listener in self._audit_listeners else None

    async def audit_log(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries, oldest first."""
        await self.authorize("audit.read")
        return await self.store.list_audit(after=after, limit=limit)

    async def verify_audit(self) -> tuple[int, str | None]:
        """Check the whole audit chain (signed with the audit key), the head log kept outside the
        store, and every anchored run's history and record. Returns (entries checked, the first
        problem or None)."""
        check = await self.check_audit()
        return check.entries, check.problem

    async def check_audit(self, *, checkpoints: Sequence[str] = (), compact: bool = True) -> ChainCheck:
        """:meth:`verify_audit` in full: the chain check, with where keyed entries start, also
        against checkpoint files (``podium audit checkpoint``). A clean check compacts a long head
        log to the heads that pin the log down (``compact``)."""
        await self.authorize("audit.read")
        check, logged = await check_store(self.store, checkpoints)
        if check.problem:  # a read racing concurrent writers (seq drawn before commit) can see an
            check, logged = await check_store(self.store, checkpoints)  # anchor without its entry: read again
        if not check.problem and compact and logged > 1000:
            self.store.audit_keys.compact(check.heads)  # keep the head log small
        return check

    async def check_history(self, run: RunRecord, events: list[Event]) -> str | None:
        """Before a run resumes: do its record and history still match the latest anchors the audit
        log holds for it (only entries whose keyed hash checks out count)? The problem, or None."""
        if not self.audit_enabled:
            return None
        keys = self.store.audit_keys.all()
        every = await self.store.audit_for(run.id)
        anchors = [e for e in every if entry_signed(e, keys)]
        refused = unanchored(run.id, every, keys)  # inserted behind the engine's back, or a key not here
        if refused:
            return refused
        problem = check_run(run.id, run, events, anchors)
        if problem:
            return f"run {run.id}'s {HISTORY_MISMATCH}: {problem}"
        return None

    async def record_start(
        self, run_id: str, workflow: str, version: str, payload: str, *, actor: str | None = None, **data: Any
    ) -> None:
        """Anchor a run before it exists (``run.start``, with its input's hash): an engine resumes only
        runs it can find anchored. The client writes it with the run instead (:meth:`start_entry`)."""
        entry = self.start_entry(run_id, workflow, version, payload, actor=actor, **data)
        if entry is not None:
            await self.store.append_audit(entry)
            self.announce(entry)

    def start_entry(
        self, run_id: str, workflow: str, version: str, payload: str, *, actor: str | None = None, **data: Any
    ) -> AuditEntry | None:
        """The ``run.start`` anchor of a new run, for the client to write in the transaction that
        creates the run (``Store.create_run(audit=)``) and then :meth:`announce`; None when auditing
        is off."""
        if actor is None:  # who started it, and as what: step code reads it back (started_by)
            data = {**data, **self.starter()}
        return self.entry("run.start", run_id, actor=actor, workflow=workflow, version=version, input=payload_hash(payload), **data)

    def starter(self) -> dict[str, Any]:
        """What a run's ``run.start`` or ``run.fork`` entry says of the acting principal for
        :meth:`started_by`: its roles (those a token's scopes leave whole), and whether it is the local user."""
        who = self.principal
        roles = who.roles if who.whole_roles is None else who.whole_roles
        return {"roles": list(roles), **({"local": True} if who.local else {})}

    def entry(self, action: str, target: str = "", *, actor: str | None = None, **data: Any) -> AuditEntry | None:
        """An audit entry to write with the state it describes, then :meth:`announce`; None when
        auditing is off."""
        return self._entry(action, target, actor, data) if self.audit_enabled else None

    async def started_by(self, run_id: str) -> Principal | None:
        """Who started run ``run_id``, from the audit log (never from the run's input): the actor of
        its signed ``run.start`` (or ``run.fork``) entry, with the roles it held then. A child run
        was started by the engine for its parent: the answer is whoever started the root run.

        The local user (local mode, no users in the store) is :meth:`Principal.local_user` with
        ``local=True``. None when the log does not say (auditing off in a store with users, or an
        actor that is no longer a user and whose roles were not recorded): trust nobody then."""
        keys = self.store.audit_keys.all()
        seen: set[str] = set()
        rid: str | None = run_id
        while rid is not None and rid not in seen:
            seen.add(rid)
            run = await self.store.get_run(rid)
            if run is not None and run.parent_run_id:  # started by the engine, for its parent's step
                rid = run.parent_run_id
                continue
            starts = [
                e for e in await self.store.audit_for(rid)
                if e.action in ("run.start", "run.fork") and e.actor != "engine" and entry_signed(e, keys)
            ]  # fmt: skip
            if starts:
                return await self._as_started(starts[0])
            break
        if not self.audit_enabled and not await self.store.kv_list(USERS):
            return Principal.local_user()  # no users: only the local user can have started it
        return None

    async def _as_started(self, entry: AuditEntry) -> Principal | None:
        data = json.loads(entry.data or "{}")
        if data.get("local"):
            return Principal.local_user()
        custom = await self._custom_roles()
        if isinstance(data.get("roles"), list):
            roles = tuple(str(r) for r in data["roles"])
            return Principal(name=entry.actor, roles=roles, permissions=role_permissions(roles, custom))
        text = await self.store.kv_get(USERS, entry.actor)  # an entry without roles (a fork): the user's now
        if text is None:
            users = await self.store.kv_list(USERS)
            return Principal.local_user() if entry.actor == "local" and not users else None
        user, problem = await accounts.checked_user(self.store, entry.actor, text, audited=self.audit_enabled)
        if problem or user.disabled:
            return None
        return Principal(name=user.name, roles=tuple(user.roles), permissions=role_permissions(user.roles, custom))

    async def record_checkpoint(self, run: RunRecord, digest: str, events: int, why: str) -> None:
        """Anchor an unfinished run's history so far (it parks or is handed off)."""
        if not self.audit_enabled:
            return
        await self.record(
            "run.checkpoint", run.id, actor="engine", why=why, events=events, digest=digest,
            input=payload_hash(run.input),
        )  # fmt: skip

    def run_end_entry(self, run: RunRecord, workflow: str, digest: str, events: int) -> AuditEntry | None:
        """The ``run.end`` anchor of ``run`` (its record as it ends, the digest of its ``events``
        events), for the executor to write with the run's final state (``Store.append(audit=)``)
        and then :meth:`announce`; None when auditing is off."""
        if not self.audit_enabled:
            return None
        return self._entry(
            "run.end", run.id, "engine",
            {"workflow": workflow, "status": run.status.value, "events": events, "digest": digest, "record": record_hash(run)},
        )  # fmt: skip

    # -- kill switches --------------------------------------------------------------------------

    async def set_switch(self, scope: str, name: str = "*", *, mode: str = "pause", reason: str = "") -> None:
        """Switch off a workflow, a step kind, a provider, an agent, or everything (``scope='all'``).

        Runs it affects stop at their next step boundary: with ``mode='pause'`` they are parked
        (and continue when the switch is cleared), with ``mode='cancel'`` they are cancelled."""
        check_switch(scope, name, mode, SWITCH_SCOPES)
        who = await self.authorize("killswitch.use", f"{scope}:{name}")
        value = {"mode": mode, "reason": reason, "by": who.name, "ts": time.time()}
        await self.record("killswitch.set", f"{scope}:{name}", mode=mode, reason=reason)  # first: rows are checked against it
        await self.store.kv_put(SWITCHES, f"{scope}:{name}", json.dumps(value))
        self.switch_cache[f"{scope}:{name}"] = value
        await self.apply_switches()
        if mode == "cancel":  # runs a pause parked meet the cancel (or park again under another switch)
            await self.wake_paused()

    async def clear_switch(self, scope: str, name: str = "*") -> int:
        """Switch back on; paused runs continue. Returns how many parked runs were woken."""
        await self.authorize("killswitch.use", f"{scope}:{name}")
        await self.record("killswitch.clear", f"{scope}:{name}")
        await self.store.kv_put(SWITCHES, f"{scope}:{name}", None)
        self.switch_cache.pop(f"{scope}:{name}", None)
        return await self.wake_paused()

    async def wake_paused(self) -> int:
        """Wake the runs parked by a pause switch (each looks at the switches again: one still off
        parks them again); how many. Clearing a switch that is not on does this only."""
        woken = 0
        for run in await self.store.list_runs(status=[RunStatus.WAITING], limit=100_000):
            if "__killswitch__" in json.dumps(await self._waiting_on(run.id)):
                # Delivered like any signal: this client resumes the run at once if it executes runs;
                # otherwise a worker picks it up.
                if self.engine is not None:
                    await self.engine.deliver(run.id, f"__unpause__:{time.time_ns()}", None)
                woken += 1
        return woken

    async def switches(self, heads: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """The kill switches in force: as the signed log set them (:mod:`.backed`; ``heads``: the store's
        governing stamps when just read), or as stored with auditing off."""
        rows = await self.store.kv_list(SWITCHES)
        if not self.audit_enabled:
            return {k: json.loads(v) for k, v in rows.items()}
        heads = heads if heads is not None else await self.store.governing_heads()
        return await backed.in_force(self.store, rows, self._checked.switches, policies=False, known=self.switch_cache, heads=heads)

    def check_startable(self, workflow: str) -> None:  # raises KillSwitchActive: no new run (start, fork)
        off = self.switched_off(workflow)
        if off is not None:
            raise KillSwitchActive(
                f"workflow {workflow!r} is switched off ({off.get('reason') or 'no reason given'}, by {off.get('by')}); "
                "clear the switch with 'podium killswitch clear' to start runs again"
            )

    def switched_off(
        self, workflow: str, kind: str | None = None, *, provider: str | None = None, agent: str | None = None,
        lineage: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """The switch that stops this, if any (looked up in memory: cheap enough for every step);
        ``lineage``: the workflows of the run's parents (a child works for them: their switches hold it)."""
        sw = self.switch_cache
        if not sw:
            return None
        for key in (
            *[f"workflow:{name}" for name in lineage],
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

    def switch(self, key: str) -> dict[str, Any] | None:
        """The switch set on exactly ``key`` (``agent:NAME``...), if any."""
        return self.switch_cache.get(key) if self.switch_cache else None

    async def refresh(self) -> None:
        """Reload kill switches and policies from the store (other processes may have changed them)."""
        heads = await self.store.governing_heads() if self.audit_enabled else None  # one read for both
        self.switch_cache = await self.switches(heads)
        self.policy_cache = await self.policies(heads)
        self.users_exist = self.users_exist or bool(await self.store.kv_list(USERS))  # once some, for good
        await self.refusals.flush()  # the engine's sweep: a window's count waits at most a sweep

    async def apply_switches(self) -> None:
        """Cancel the runs a ``cancel`` switch stops (a ``pause`` switch acts at step boundaries)."""
        if self.engine is None:
            return
        for rid, workflow, lineage in self.engine.driving():
            off = self.switched_off(workflow, lineage=lineage)
            if off is not None and off.get("mode") == "cancel":
                await self.record("run.cancel", rid, actor="engine", reason="kill switch")
                await self.engine.cancel(rid)

    async def _waiting_on(self, run_id: str) -> list[str]:
        """The signal names a parked run waits for."""
        for ev in reversed(await self.store.load_events(run_id)):
            if ev.type == EventType.RUN_WAITING and ev.data:
                return list(json.loads(ev.data).get("signals", []))
        return []

    # -- policies -------------------------------------------------------------------------------

    async def set_policy(self, workflow: str, policy: Policy | None) -> None:
        """Set (or with None remove) the policy of ``workflow`` (``*``: the default for all)."""
        await self.authorize("policies.write", f"workflow:{workflow}")
        stored = policy.to_json() if policy else None
        await self.record("policy.set", f"workflow:{workflow}", policy=json.loads(stored) if stored else None)
        await self.store.kv_put(POLICIES, workflow, stored)
        self.policy_cache = await self.policies()

    async def policies(self, heads: dict[str, str] | None = None) -> dict[str, Policy]:
        """The policies in force: as the signed log set them (:mod:`.backed`; ``heads`` as for
        :meth:`switches`), or as stored with auditing off."""
        rows = await self.store.kv_list(POLICIES)
        if not self.audit_enabled:
            return {k: Policy.from_json(v) for k, v in rows.items()}
        heads = heads if heads is not None else await self.store.governing_heads()
        return await backed.in_force(self.store, rows, self._checked.policies, policies=True, known=self.policy_cache, heads=heads)

    def policy_for(self, workflow: str, *, deployed: bool = True) -> Policy | None:
        """The policy in force for a run of ``workflow`` (cached; not deployed: :func:`bound.in_force`)."""
        return in_force(self.policy_cache, workflow, deployed=deployed)

    def stored_payload(self, workflow: str, payload: str, *, deployed: bool = True) -> str:
        """A payload (run input, signal) as it is stored: redacted when the run's policy says ``payloads``."""
        policy = self.policy_for(workflow, deployed=deployed)
        if policy is not None and "payloads" in policy.redact:
            from .pii import redact_json

            return redact_json(payload)
        return payload

    def agent_policy(self, agent: str) -> Policy | None:
        """The policy set for agent ``agent`` (``agent:NAME``; ``"*"``: the default for agents), if any."""
        return self.policy_cache.get(f"agent:{agent}") if self.policy_cache else None

    # -- capabilities: what workflow files may reach (podium/governance/capabilities.py) ----------

    async def capabilities(self) -> dict[str, Capability]:
        """The registry: what workflow files may use, by name (needs ``workflows.read``)."""
        await self.authorize("workflows.read", "capabilities")
        return await capabilities.load(self.store)

    async def add_capability(
        self,
        name: str,
        kind: str,
        target: Mapping[str, Any],
        *,
        allow_private: bool = False,
        description: str = "",
    ) -> Capability:
        """Register (or replace) what workflow files may use as ``name`` (needs ``tools.manage``)::

        await client.add_capability("crm", "http", {"url": "https://crm/api/{id}", "method": "GET"})
        await client.add_capability("lookup", "python", {"function": "myproject.tools:lookup"})
        await client.add_capability("files", "mcp", {"command": ["python", "-m", "files_server"]})
        await client.add_capability("handbook", "files", {"root": "/srv/handbook"})
        """
        who = await self.authorize(capabilities.PERMISSION, f"capability:{name}")
        if any(str(k).lower().replace("-", "_") == "allow_private" for k in target):  # stored, never read
            raise ConfigError(f"capability {name!r}: allow_private is not a target setting; pass allow_private=True "
                              "(CLI: --allow-private) to let it reach private addresses")  # fmt: skip
        cap = capabilities.make_capability(
            name, kind, target, allow_private=allow_private, description=description, added_by=who.name
        )
        await self.store.kv_put(capabilities.NAMESPACE, name, capabilities.seal(self.store, cap))
        await self.record(
            "capability.add", f"capability:{name}", kind=kind, spec=cap.target, allow_private=allow_private
        )
        return cap

    async def remove_capability(self, name: str) -> bool:
        """Unregister ``name``; runs that use it fail from their next use (needs ``tools.manage``)."""
        await self.authorize(capabilities.PERMISSION, f"capability:{name}")
        if await self.store.kv_get(capabilities.NAMESPACE, name) is None:
            return False
        await self.store.kv_put(capabilities.NAMESPACE, name, None)
        await self.record("capability.remove", f"capability:{name}")
        return True

    async def check_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Refuse (and audit) a signal under a name only the engine answers: an approval cannot be
        given by sending a signal, nor a timer or a kill switch ended; refuse a payload a run's input
        would be refused for (NaN, Infinity, deep nesting)."""
        if not name.startswith(RESERVED_SIGNALS):
            return refuse_outside(payload, where=f"the payload of signal {name!r}", what=f"nothing was sent to run {run_id}")
        who = self.principal
        await self.record("signal.refuse", run_id, name=name, reason="reserved name")
        raise PermissionDenied(
            f"{who.name} may not send signal {name!r} to run {run_id}: names starting with "
            f"{' or '.join(repr(p) for p in RESERVED_SIGNALS)} are answered only by the engine; an "
            "approval is decided with 'podium approvals approve' / client.decide(), which checks the approver's role; "
            "a quarantined item is replayed with 'podium quarantine replay', which checks its contract"
        )

    # -- approvals ------------------------------------------------------------------------------

    async def approvals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        after: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Open approval requests: runs parked in ``ctx.approval(...)`` without a decision yet, oldest
        first, at most ``limit`` (1 to 1000). The next page: ``after=`` the last request of this one.
        Read from the store's index of open requests: a page costs the same however many runs are
        parked. Without ``payloads.read``, a request's ``payload`` (what to approve) is None, as on the API."""
        who = await self.authorize("approvals.read")
        inbox = await open_requests(self.store, run_id, workflow, limit, after)
        return inbox if who.can("payloads.read") else [{**a, "payload": None} for a in inbox]

    async def decide(
        self,
        run_id: str,
        name: str,
        *,
        approve: bool,
        comment: str = "",
        payload: Any = None,
        request: int | None = None,
    ) -> bool:
        """Approve or reject an approval request, optionally with an edited ``payload``. The decision
        is audited and resumes the run. Returns False if the request was already decided or its
        wait timed out meanwhile (audited too, as ``approval.void``: the decision had no effect).

        ``request``: the ``seq`` of the request as the approver was shown it (the inbox lists it). A
        run may ask again under the same name (a loop, a wait that timed out): without it, a decision
        made on what was shown goes to whatever request is open now, with its payload. A step asking
        under one name about several questions at once has a request open per question (``NAME``,
        ``NAME@DIGEST``): naming the approval then picks none of them (ConfigError, listing them);
        ``request`` picks one."""
        who = await self.authorize("approvals.decide", run_id)
        await self.authorize("approvals.read")
        asked = pick(run_id, name, await requests_of(self.store, run_id, name), request)
        name = str(asked["name"])  # NAME@DIGEST when picked by its number under the approval's name
        required = asked.get("role")
        if required and required not in self.principal.roles and "admin" not in self.principal.roles:
            await self.record("access.denied", run_id, actor=who.name, permission="approvals.decide", reason=f"needs role {required}", name=name)
            raise PermissionDenied(
                f"approval {name!r} of run {run_id} needs role {required!r}; {who.name} has {', '.join(who.roles) or 'none'}"
            )
        await self._four_eyes(who, run_id, name, required)
        refuse_outside(payload, where=f"the edited payload of approval {name!r}", what="nothing was decided")
        decision = {
            "approved": approve,
            "by": who.name,
            "comment": comment,
            "payload": payload if payload is not None else asked.get("payload"),
            "edited": payload is not None,
        }
        await self.record(
            "approval.decide",
            run_id,
            name=name,
            approved=approve,
            comment=comment,
            edited=payload is not None,
            request=asked.get("seq"),  # the decision as it will be stored: the waiting step takes only that one
            decision=payload_hash(await stored_for_run(self, run_id, str(asked.get("workflow")), _serde.dumps(decision))),
        )
        if self.engine is None:
            raise ConfigError("this governance service has no engine to deliver decisions to")
        void = "the request was decided by someone else, timed out or was asked again before this decision reached it"
        try:
            delivered = await self.engine.deliver(run_id, name, decision, request=asked.get("seq"))
        except ConfigError as exc:  # the run ended meanwhile (cancelled, failed, timed out)
            await self.record("approval.void", run_id, name=name, reason=str(exc))
            raise
        if not delivered:  # the entry above says what was decided; this one, that it had no effect
            await self.record("approval.void", run_id, name=name, reason=void)
        return delivered

    async def _four_eyes(self, who: Principal, run_id: str, name: str, role: str | None) -> None:
        """Refuse (and audit) a decision by the person who started the run (its root run, for a
        child): whoever asks for something does not approve it too. Local mode is one person."""
        if who.local:
            return
        starter = await self.started_by(run_id)
        if starter is None or starter.local or starter.name != who.name:
            return
        await self.record("access.denied", run_id, actor=who.name, permission="approvals.decide", reason="four eyes", name=name)
        raise PermissionDenied(
            f"{who.name} started run {run_id} and may not decide its approval {name!r} too (four eyes): "
            f"someone else with approvals.decide{f' and role {role!r}' if role else ''} must decide it"
        )


__all__ = ["EngineControl", "Governance"]
