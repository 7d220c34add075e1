"""Identity and access: roles, principals, API tokens (stored hashed), and the permission check.

Every action a surface can take maps to one permission. A principal (a user, a service account,
or the local single user) holds roles; a token may narrow them further with scopes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: Every permission, one per action a surface can take.
PERMISSIONS: tuple[str, ...] = (
    "workflows.read",
    "workflows.deploy",
    "runs.read",
    "payloads.read",
    "runs.start",
    "runs.cancel",
    "runs.resume",
    "runs.fork",
    "runs.signal",
    "memory.read",
    "memory.write",
    "memory.prune",  # retention: delete expired memories and old finished runs (podium memory prune)
    "memory.forget",  # erasure: redact an entity everywhere (podium memory forget)
    "data.export",  # copy the whole store, payloads included, elsewhere (podium db migrate-to)
    "store.manage",  # schema migrations (podium db upgrade)
    "approvals.read",
    "approvals.decide",
    "policies.write",
    "killswitch.use",
    "audit.read",
    "users.manage",
    "tools.manage",
    "secrets.manage",  # the secret store: set, list, read, delete (podium secrets)
)

_VIEW = {"workflows.read", "runs.read", "approvals.read"}
#: Built-in roles. Custom roles are stored beside them (``podium users role NAME PERM...``).
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEW),
    "operator": frozenset(
        _VIEW
        | {"payloads.read", "runs.start", "runs.cancel", "runs.resume", "runs.fork", "runs.signal"}
        | {"memory.read", "memory.write"}
    ),
    "approver": frozenset(_VIEW | {"payloads.read", "approvals.decide", "memory.read"}),
    "admin": frozenset(PERMISSIONS),
    "worker": frozenset(
        {"workflows.read", "runs.read", "payloads.read", "runs.resume", "runs.signal", "memory.read", "memory.write"}
    ),
}

TOKEN_PREFIX = "pod_"
#: How often a long-lived client (``podium mcp``, a worker, a script) checks its own token again:
#: a token revoked or expired, or a user disabled, stops it within this many seconds.
RECHECK_SECONDS = 5.0
UNKNOWN_TOKEN = (
    "unknown API token: check the token you sent (PODIUM_TOKEN for the CLI and workers, the "
    "'Authorization: Bearer pod_...' header over HTTP), or ask an admin for a new one (podium tokens create USER)"
)


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is acting, and what they may do."""

    name: str
    roles: tuple[str, ...] = ()
    permissions: frozenset[str] = frozenset()
    """The union of the roles' permissions, narrowed by the token's scopes."""
    local: bool = False
    """True in local mode: no users are defined in the store, and the single local user may do everything."""
    service: bool = False
    token_name: str | None = None
    whole_roles: tuple[str, ...] | None = None
    """The roles a token's scopes leave whole (every permission of the role in scope), when the
    token has scopes; None: all of :attr:`roles`. What acts later on this principal's behalf (the
    ``run.start`` entry that a goal's planner reads) counts only these."""

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @classmethod
    def local_user(cls) -> Principal:
        return cls(name="local", roles=("admin",), permissions=frozenset(PERMISSIONS), local=True)

    @classmethod
    def engine(cls) -> Principal:
        return cls(name="engine", roles=("admin",), permissions=frozenset(PERMISSIONS), service=True)


@dataclass(kw_only=True)
class User:
    name: str
    roles: list[str] = field(default_factory=list)
    service: bool = False
    disabled: bool = False

    def to_json(self) -> str:
        return json.dumps({"roles": self.roles, "service": self.service, "disabled": self.disabled})

    @classmethod
    def from_json(cls, name: str, text: str) -> User:
        d = json.loads(text)
        return cls(
            name=name,
            roles=list(d.get("roles", [])),
            service=bool(d.get("service")),
            disabled=bool(d.get("disabled")),
        )


def check_new_token(user: str, stored: str | None, scopes: list[str] | None, ttl: float | None) -> None:
    """Refuse a token for ``user`` (``stored``: their record, None if there is none) that could not
    stand, or should not: no such user, a disabled one (a token made now would stand the moment they
    are enabled again, which nobody who disabled them asked for), unknown scopes, a ttl that is not
    a number of seconds > 0."""
    from ..errors import ConfigError, NotFound

    if stored is None:
        raise NotFound(f"no user {user!r}; create it first with 'podium users add {user} --role ROLE'")
    if User.from_json(user, stored).disabled:
        raise ConfigError(
            f"user {user!r} is disabled, so no token is made for them; enable them first "
            f"(podium users enable {shlex.quote(user)}), then create the token"
        )
    bad = [p for p in scopes or () if p not in PERMISSIONS]
    if bad:
        raise ConfigError(f"unknown scope(s) {', '.join(bad)}; scopes are permissions: {', '.join(PERMISSIONS)}")
    if ttl is not None and not (isinstance(ttl, int | float) and 0 < ttl < float("inf")):  # 0 or NaN: forever
        raise ConfigError(f"token ttl must be a number of seconds > 0 (None: no expiry), got {ttl!r}")


def new_token() -> str:
    """A new API token: shown once, stored only as its hash."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(kw_only=True)
class TokenRecord:
    user: str
    name: str
    scopes: list[str] | None = None
    """Permissions the token is limited to (None: all of the user's)."""
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    revoked: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "user": self.user,
                "name": self.name,
                "scopes": self.scopes,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "revoked": self.revoked,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TokenRecord:
        return cls(**json.loads(text))


def role_permissions(roles: list[str] | tuple[str, ...], custom: dict[str, frozenset[str]]) -> frozenset[str]:
    perms: set[str] = set()
    for role in roles:
        perms |= BUILTIN_ROLES.get(role) or custom.get(role) or frozenset()
    return frozenset(perms)


REFUSED_SUFFIX = (
    ": this client authenticated with that token when it opened and may no longer act; "
    "start it again with a valid token (PODIUM_TOKEN; an admin creates one with 'podium tokens create USER')"
)
"""What :attr:`OwnToken.refused` adds to the token's refusal (an engine's audit entries keep the refusal alone)."""


@dataclass(kw_only=True)
class OwnToken:
    """A client's own API token, checked again while the client is open (it authenticated once, on
    open, and may stay open for days): see :data:`RECHECK_SECONDS`."""

    token: str
    checked: float = field(default_factory=time.monotonic)
    refused: str | None = None
    """Why the token no longer stands (it was revoked, expired, its user disabled); None while it does."""

    def stands_for(self, who: Principal, own: Principal) -> bool:
        """Whether ``who`` is the client acting with this token (itself, or as itself for a tool call)."""
        return who is own or (not who.local and (who.name, who.token_name) == (own.name, own.token_name))

    async def check(self, authenticate: Callable[[str], Awaitable[Principal]], own: Principal) -> Principal:
        """``own`` as of now: authenticated again if due; with no permission once refused."""
        if time.monotonic() - self.checked < RECHECK_SECONDS:
            return own
        self.checked = time.monotonic()
        from ..errors import AuthError

        try:
            fresh = await authenticate(self.token)
        except AuthError as exc:
            self.refused = f"{exc}{REFUSED_SUFFIX}"
            return Principal(name=own.name, roles=(), service=own.service, token_name=own.token_name)
        self.refused = None
        return fresh
