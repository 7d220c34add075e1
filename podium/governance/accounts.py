"""Users, API tokens and custom roles as the store holds them, checked against what admins did.

Their rows live in the store's key-value table, which anyone who can write the database can edit
(a backup restored by hand, a shared SQLite file, a database account): a viewer could make herself
admin, write in a token of her own for root, put back a token row saved before it was revoked, or
widen a custom role. The audit log is signed with a key kept outside the store, so a row counts
only as far as the signed log backs it:

- a user's roles and service flag are those of their last signed ``user.put`` entry, and a signed
  ``user.disable`` not followed by ``user.enable`` disables them, whatever their row says (a row
  holding fewer roles than the log, or disabled, is taken: that is the moment between the entry
  and the row, and narrows only);
- a custom role grants the permissions of its last signed ``role.put`` entry, or nothing when its
  row holds more;
- a token's hash is not in the log, so its row is sealed with the audit key (an HMAC, as the tool
  registry's entries are), and a signed ``token.revoke`` of its name after it was made revokes it.
  A row an earlier release wrote (unsealed) is sealed the first time it authenticates, if the
  log's ``token.create`` entry backs it and no other row claims that entry (``token.seal``).

With auditing off (``Client(audit=False)``) there is no log to check against: rows count as
stored. ``podium audit verify`` names every row the log does not back (:func:`problems`).
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from ..errors import AuthError
from ..records import AuditEntry
from ..storage import Store
from .audit import entry_signed
from .identity import UNKNOWN_TOKEN, TokenRecord, User, token_hash


class Governance(Protocol):
    """What :func:`account` needs of the governance service (which imports this module)."""

    store: Store
    audit_enabled: bool

    async def record(self, action: str, target: str = "", *, actor: str | None = None, **data: Any) -> None: ...


USERS, TOKENS, ROLES = "users", "tokens", "roles"
log = logging.getLogger("podium.governance")
SEALED_HOW = "an admin creates a new token: podium tokens create USER"
UNREADABLE = f"the API token's row in the store is not a token record: it does not authenticate; {SEALED_HOW}"


# -- tokens -------------------------------------------------------------------------------------


def _token_text(key: str, text: str) -> str:
    return f"token\x1f{key}\x1f{text}"


def seal_token(store: Store, key: str, rec: TokenRecord) -> str:
    """The stored form of token record ``rec`` under ``key`` (the token's hash): sealed."""
    text = rec.to_json()
    return json.dumps({"entry": text, "mac": store.audit_keys.seal(_token_text(key, text))})


def unseal_token(store: Store, key: str, stored: str) -> TokenRecord | None:
    """The token record stored as ``stored`` under ``key`` if its seal holds; None otherwise (forged,
    edited, moved to another token's hash, or unsealed: written by an earlier release)."""
    try:
        sealed = json.loads(stored)
        text, mac = sealed["entry"], str(sealed["mac"])
        if store.audit_keys.verify_seal(_token_text(key, text), mac) is not True:
            return None
        return TokenRecord.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def legacy_token(stored: str) -> TokenRecord | None:
    """A token row as an earlier release wrote it (no seal), or None."""
    try:
        d = json.loads(stored)
        return None if "mac" in d else TokenRecord.from_json(stored)
    except (ValueError, KeyError, TypeError):
        return None


async def signed(store: Store, target: str) -> list[AuditEntry]:
    keys = store.audit_keys.all()
    return [e for e in await store.audit_for(target) if entry_signed(e, keys)]


def _revoked_since(entries: list[AuditEntry], rec: TokenRecord) -> AuditEntry | None:
    for e in entries:
        d = e.details()
        if e.action == "token.revoke" and d.get("token") == rec.name and d.get("count") and e.ts >= rec.created_at:
            return e
    return None


async def _legacy_backing(store: Store, rec: TokenRecord, entries: list[AuditEntry]) -> tuple[AuditEntry | None, str]:
    """The signed ``token.create`` entry of an earlier release that made the unsealed row ``rec``,
    or None and why not. One entry made one token: a row beside it claiming the same entry (the
    attacker's own hash under root's token name) is not told apart, and neither is sealed; an entry
    whose token was sealed already (``token.seal``) backs no other row."""
    made = [
        e for e in entries
        if e.action == "token.create" and not e.details().get("sealed") and e.details().get("token") == rec.name
        and e.details().get("scopes") == rec.scopes and e.details().get("expires_at") == rec.expires_at
        and abs(e.ts - rec.created_at) < 60
    ]  # fmt: skip
    if not made:
        return None, "no signed token.create entry of the audit log made it"
    entry = made[-1]
    if any(e.action == "token.seal" and e.details().get("entry") == entry.seq for e in entries):
        return None, f"the token that audit entry {entry.seq} made was sealed already, in another row"
    claims = 0
    for key, text in (await store.kv_list(TOKENS)).items():
        other = unseal_token(store, key, text) or legacy_token(text)
        same = other is not None and (other.user, other.name) == (rec.user, rec.name)
        claims += bool(same and other is not None and abs(other.created_at - entry.ts) < 60)
    if claims > 1:
        return None, f"{claims} rows claim the one token that audit entry {entry.seq} made"
    return entry, ""


async def token_problem(
    store: Store, key: str, stored: str, *, audited: bool, on_seal: Callable[[TokenRecord, AuditEntry], Awaitable[None]] | None = None,
    read: list[list[AuditEntry]] | None = None,
) -> tuple[TokenRecord | None, str | None]:
    """The token record stored under ``key``, and why it may not authenticate (None: it may, as far
    as its row and the log go; its own ``revoked`` and expiry are the caller's to check).

    An unsealed row an earlier release wrote is taken if the log backs it (:func:`_legacy_backing`);
    with ``on_seal`` it is sealed then, and ``on_seal`` audits that (``token.seal``), so the same
    entry backs no row written later. ``read`` gets the signed entries about the token's user."""
    if not audited:
        return legacy_token(stored) or unseal_token(store, key, stored), None
    rec = unseal_token(store, key, stored)
    sealed = rec is not None
    rec = rec or legacy_token(stored)
    entries = await signed(store, f"user:{rec.user}") if rec is not None else []
    if read is not None:  # the caller checks the token's user next, against the same entries
        read.append(entries)
    if not sealed:
        entry, why = await _legacy_backing(store, rec, entries) if rec is not None else (None, "it is not a token record")
        if entry is None or rec is None:
            who = f" {rec.name!r} of {rec.user!r}" if rec else ""
            return rec, (
                f"API token{who} is in the store but not sealed with this store's audit key, and {why} (it was written "
                f"into the tokens table behind the admins' back): it does not authenticate; {SEALED_HOW}"
            )
        if on_seal is not None:
            await store.kv_put(TOKENS, key, seal_token(store, key, rec))
            await on_seal(rec, entry)
    if rec is None:
        return None, UNREADABLE
    revoke = _revoked_since(entries, rec)
    if revoke is not None and not rec.revoked:
        return rec, (
            f"API token {rec.name!r} of {rec.user!r} was revoked by {revoke.actor} (audit entry {revoke.seq}), but "
            "its row in the store says otherwise (put back behind the admins' back): it does not authenticate; "
            f"an admin creates a new one: podium tokens create {rec.user}"
        )
    return rec, None


async def account(gov: Governance, token: str) -> tuple[TokenRecord, User]:
    """The token record and the user API token ``token`` stands for; raises :class:`AuthError` when
    it may not act (a refused row the log does not back is audited, as ``access.denied`` of ``account:USER``)."""
    store, audited = gov.store, gov.audit_enabled

    async def sealed(rec: TokenRecord, entry: AuditEntry) -> None:  # a token of an earlier release, on first use
        await gov.record("token.seal", f"user:{rec.user}", actor="engine", token=rec.name, entry=entry.seq)

    async def refuse(problem: str, user: str) -> AuthError:
        await gov.record("access.denied", f"account:{user}", actor=user, reason="record not backed by the audit log", problem=problem)  # not user:NAME, whose entries back the row
        return AuthError(problem)

    text = await store.kv_get(TOKENS, key := token_hash(token))
    if text is None:
        raise AuthError(UNKNOWN_TOKEN)
    read: list[list[AuditEntry]] = []
    rec, problem = await token_problem(store, key, text, audited=audited, on_seal=sealed, read=read)
    if rec is None:
        raise AuthError(problem or UNREADABLE)
    if problem:
        raise await refuse(problem, rec.user)
    if rec.revoked:
        raise AuthError(f"API token {rec.name!r} of {rec.user!r} was revoked; an admin creates a new one: podium tokens create {shlex.quote(rec.user)}")
    if rec.expires_at is not None and rec.expires_at < time.time():
        raise AuthError(f"API token {rec.name!r} of {rec.user!r} expired; create a new one")
    user_text = await store.kv_get(USERS, rec.user)
    if user_text is None:
        raise AuthError(f"API token {rec.name!r} belongs to user {rec.user!r}, who no longer exists")
    user, problem = await checked_user(store, rec.user, user_text, audited=audited, entries=read[0] if read else None)
    if problem:
        raise await refuse(problem, rec.user)
    if user.disabled:
        raise AuthError(f"user {user.name!r} is disabled; an admin can enable them again: podium users enable {shlex.quote(user.name)}")
    return rec, user


# -- users and roles ----------------------------------------------------------------------------


def _last(entries: list[AuditEntry], *actions: str) -> AuditEntry | None:
    found = [e for e in entries if e.action in actions]
    return found[-1] if found else None


def user_problem(name: str, user: User, entries: list[AuditEntry]) -> str | None:
    """Why user ``name``'s row (``user``) is not what the signed entries about them say, or None."""
    put = _last(entries, "user.put")
    where = "is in the store but no signed user.put entry of the audit log made it"
    if put is not None:
        d = put.details()
        logged = d.get("roles")
        if not isinstance(logged, list) or not set(user.roles) <= set(map(str, logged)):
            where = f"holds roles {', '.join(user.roles) or 'none'}, not the {', '.join(map(str, logged or [])) or 'none'} of audit entry {put.seq}"
        elif user.service and not d.get("service"):
            where = f"is marked a service account, which audit entry {put.seq} did not make it"
        else:
            switch = _last(entries, "user.disable", "user.enable")
            if switch is None or switch.action == "user.enable" or user.disabled:
                return None
            where = f"is enabled, but audit entry {switch.seq} disabled them"
    return (
        f"the record of user {name!r} {where}: it was edited behind the admins' back (the audit log, signed with a "
        f"key kept outside the store, says otherwise) and grants nothing; an admin writes it again: "
        f"podium users add {name} --role ROLE"
    )


async def checked_user(
    store: Store, name: str, stored: str, *, audited: bool, entries: list[AuditEntry] | None = None
) -> tuple[User, str | None]:
    """User ``name`` as stored, and why their row may not be taken (None: it may); ``entries``: the
    signed entries about them, when the caller has just read them."""
    user = User.from_json(name, stored)
    if not audited:
        return user, None
    return user, user_problem(name, user, entries if entries is not None else await signed(store, f"user:{name}"))


def role_problem(name: str, permissions: frozenset[str], entries: list[AuditEntry]) -> str | None:
    put = _last(entries, "role.put")
    logged = put.details().get("permissions") if put is not None else None
    if isinstance(logged, list) and permissions <= set(map(str, logged)):
        return None
    said = "no signed role.put entry made it" if put is None else f"audit entry {put.seq} gave it {', '.join(map(str, logged or [])) or 'nothing'}"
    return (
        f"custom role {name!r} holds {', '.join(sorted(permissions)) or 'nothing'} in the store, but {said}: it was "
        f"edited behind the admins' back and grants nothing; an admin defines it again: podium users role {name} PERMISSION..."
    )


async def custom_roles(store: Store, *, audited: bool, held: Iterable[str] | None = None) -> dict[str, frozenset[str]]:
    """The custom roles the signed log backs, by name (only those ``held``, if given: the log is read
    for each); a role edited in the store grants nothing."""
    out = {}
    wanted = None if held is None else set(held)
    for name, text in (await store.kv_list(ROLES)).items():
        if wanted is not None and name not in wanted:
            continue
        perms = frozenset(json.loads(text))
        problem = role_problem(name, perms, await signed(store, f"role:{name}")) if audited else None
        if problem:
            log.warning("%s", problem)
            perms = frozenset()
        out[name] = perms
    return out


# -- podium audit verify ------------------------------------------------------------------------


async def problems(store: Store) -> list[str]:
    """Every user, token and custom role row that the signed audit log does not back."""
    found = []
    for name, text in sorted((await store.kv_list(USERS)).items()):
        _, problem = await checked_user(store, name, text, audited=True)
        found += [problem] if problem else []
    for name, text in sorted((await store.kv_list(ROLES)).items()):
        problem = role_problem(name, frozenset(json.loads(text)), await signed(store, f"role:{name}"))
        found += [problem] if problem else []
    for key, text in (await store.kv_list(TOKENS)).items():
        _, problem = await token_problem(store, key, text, audited=True)
        found += [f"{problem} (row {key[:12]}...)"] if problem else []
    return found


__all__ = [
    "ROLES", "TOKENS", "USERS", "account", "checked_user", "custom_roles", "problems",
    "seal_token", "token_problem", "unseal_token", "user_problem",
]  # fmt: skip
