"""The secret store: named secrets (API keys, OAuth2 client secrets, refresh tokens) kept in the
run store, encrypted at rest.

Each value is sealed with AES-256-GCM under a key kept OUTSIDE the store, the same way as the audit
key: ``PODIUM_SECRETS_KEY`` (the key itself: 64 hex digits, or 32 bytes in URL-safe base64), else
the file ``PODIUM_SECRETS_KEY_FILE``, else ``secrets.key`` beside the audit key (``~/.podium/`` by
default), created mode 0600 on first use. The secret's name is the GCM associated data, so a sealed
value moved under another name does not open. A row holds the key id (12 hex digits of the key's
SHA-256), a random nonce, the ciphertext and metadata (version, when, by whom), never the value.

Values come back as :class:`~podium.secret.Secret` (shown as ``***`` everywhere), and every value
read or set is masked by content from then on in this process (:func:`podium.secret.remember`: in
errors, logs, audit entries and alerts, whatever its shape; not under 8 characters). Reads are cached
for ``ttl`` seconds (one store read per secret per ``ttl``), so a secret set again by another
process (``podium secrets set``) is used at most ``ttl`` seconds later, at once after
:meth:`SecretStore.forget` (which connectors call on an HTTP 401). The store works on every backend
(``memory://``, SQLite, PostgreSQL) through its key-value table. Permission checks and the audit
entries of set and delete are the governance layer's (``client.secrets``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets as _random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..secret import Secret, remember
from ._base import Store

NAMESPACE = "secrets"
"""The key-value namespace the sealed values live in."""
KEY_ENV = "PODIUM_SECRETS_KEY"
"""Environment variable holding the key itself."""
KEY_FILE_ENV = "PODIUM_SECRETS_KEY_FILE"
"""Environment variable naming the key file."""
REF = "secret:"
"""The prefix of a reference to a stored secret in connector settings (``secret:CRM_TOKEN``)."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


class SecretNotFound(ConfigError):
    """No secret of that name is stored (the message says how to set it)."""


class SecretKeyError(ConfigError):
    """The secrets key is missing, malformed, or not the one a value was sealed with."""


def check_name(name: str) -> str:
    """``name`` if it is a valid secret name (a letter, then letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"secret name {name!r}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter (CRM_TOKEN)"
        )
    return name


def secret_ref(value: Any) -> str | None:
    """The secret name ``value`` refers to (``"secret:CRM_TOKEN"`` -> ``"CRM_TOKEN"``), else None."""
    if isinstance(value, str) and value.startswith(REF):
        return check_name(value[len(REF) :].strip())
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretInfo:
    """What may be shown about a stored secret: never its value."""

    name: str
    version: int
    """1 when first set, then one more each time it is set again (rotated)."""
    updated_at: float
    """Unix time it was last set."""
    updated_by: str
    """Who set it last."""
    key_id: str
    """Which secrets key sealed it (12 hex digits of the key's SHA-256)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if re.fullmatch(r"[0-9a-fA-F]{64}", text) else base64.urlsafe_b64decode(text)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise SecretKeyError(
            f"the secrets key in {where} is not 32 bytes as 64 hex digits or URL-safe base64; "
            'make one with: python -c "import secrets; print(secrets.token_hex(32))"'
        )
    return raw


class SecretsKey:
    """The key that seals a store's secrets: from ``PODIUM_SECRETS_KEY``, a file, or (``memory://``
    stores) random and held in memory."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, ephemeral: bool = False) -> None:
        self.path = Path(path).expanduser() if path else None
        self._key: tuple[str, bytes] | None = None
        self.where = "memory"
        """Where the key comes from, for messages (an environment variable or a file; never the key)."""
        env = os.environ.get(KEY_ENV)
        if env:
            self.where = f"${KEY_ENV}"
            raw = _parse_key(env, self.where)
            self._key = (key_id(raw), raw)
        elif ephemeral and path is None:
            raw = _random.token_bytes(32)
            self._key = (key_id(raw), raw)
        else:
            self.path = self.path or Path(os.environ.get(KEY_FILE_ENV) or "~/.podium/secrets.key").expanduser()
            self.where = str(self.path)

    def current(self, *, create: bool) -> tuple[str, bytes] | None:
        """(key id, key): read from the key file, created 0600 if missing and ``create``."""
        if self._key is None and self.path is not None:
            try:
                raw = _parse_key(self.path.read_text(), str(self.path))
            except FileNotFoundError:
                if not create:
                    return None
                raw = self._create(self.path)
            self._key = (key_id(raw), raw)
        return self._key

    @staticmethod
    def _create(path: Path) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw = _random.token_bytes(32)
        tmp = path.with_name(f".{path.name}.{_random.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(raw.hex() + "\n")
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            raw = _parse_key(path.read_text(), str(path))
        finally:
            tmp.unlink()
        return raw


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"podium-secrets|" + key).hexdigest()[:12]


def _aad(name: str) -> bytes:
    return f"podium-secret|{name}".encode()


class SecretStore:
    """Named secrets sealed in ``store`` (see the module docstring). No permission checks here:
    this is what connectors resolve ``secret:NAME`` through; people go through ``client.secrets``."""

    def __init__(self, store: Store, *, key: SecretsKey | None = None, ttl: float = 2.0) -> None:
        self.store = store
        self.key = key or SecretsKey(_default_key_path(store), ephemeral=store.in_process)
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Secret]] = {}

    def _aes(self, *, create: bool) -> tuple[str, Any]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        found = self.key.current(create=create)
        if found is None:
            raise SecretKeyError(
                f"no secrets key: {self.key.where} does not exist and no secret was ever set with it; "
                f"set {KEY_ENV} or {KEY_FILE_ENV} to the key the secrets were set with"
            )
        return found[0], AESGCM(found[1])

    async def get(self, name: str) -> Secret:
        """The secret ``name`` (cached for :attr:`ttl` seconds). Raises :class:`SecretNotFound`
        naming it and how to set it, or :class:`SecretKeyError` when the key does not open it."""
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        value = await self.fresh(name)
        self._cache[name] = (time.monotonic(), value)
        return value

    async def fresh(self, name: str) -> Secret:
        """The secret ``name`` read from the store now (no cache)."""
        check_name(name)
        text = await self.store.kv_get(NAMESPACE, name)
        if text is None:
            raise SecretNotFound(
                f"secret {name!r} is not set in this store; an admin sets it with: "
                f"podium secrets set {name} (the value is read from stdin), or client.secrets.set({name!r}, value)"
            )
        row = json.loads(text)
        kid, aes = self._aes(create=False)
        if row["kid"] != kid:
            raise SecretKeyError(
                f"secret {name!r} was sealed with secrets key {row['kid']}, but this process has key {kid} "
                f"(from {self.key.where}); use the key it was set with ({KEY_ENV} or {KEY_FILE_ENV}), "
                f"or set it again: podium secrets set {name}"
            )
        from cryptography.exceptions import InvalidTag

        try:
            plain = aes.decrypt(base64.b64decode(row["nonce"]), base64.b64decode(row["sealed"]), _aad(name))
        except InvalidTag:
            raise SecretKeyError(
                f"secret {name!r} does not open with secrets key {kid}: the stored value was altered or "
                f"copied from another name; set it again: podium secrets set {name}"
            ) from None
        value = Secret(plain.decode())
        remember(value)  # masked by content from now on, in errors, logs, audit entries and alerts
        return value

    async def info(self, name: str) -> SecretInfo | None:
        """What may be shown about ``name``, or None when it is not set."""
        text = await self.store.kv_get(NAMESPACE, check_name(name))
        return None if text is None else _info(name, json.loads(text))

    async def put(self, name: str, value: str | Secret, *, by: str = "") -> SecretInfo:
        """Seal and store ``value`` as ``name`` (replacing the old value: the next read uses it)."""
        check_name(name)
        plain = value.reveal() if isinstance(value, Secret) else str(value)
        if not plain:
            raise ConfigError(f"secret {name!r}: the value is empty")
        remember(plain)
        kid, aes = self._aes(create=True)
        old = await self.store.kv_get(NAMESPACE, name)
        nonce = _random.token_bytes(12)
        row = {
            "v": 1,
            "kid": kid,
            "nonce": base64.b64encode(nonce).decode(),
            "sealed": base64.b64encode(aes.encrypt(nonce, plain.encode(), _aad(name))).decode(),
            "version": (json.loads(old).get("version", 0) if old else 0) + 1,
            "updated_at": time.time(),
            "updated_by": by,
        }
        await self.store.kv_put(NAMESPACE, name, json.dumps(row))
        self._cache.pop(name, None)
        return _info(name, row)

    async def delete(self, name: str) -> bool:
        """Remove ``name``; False when it was not set."""
        if await self.store.kv_get(NAMESPACE, check_name(name)) is None:
            return False
        await self.store.kv_put(NAMESPACE, name, None)
        self._cache.pop(name, None)
        return True

    async def list(self) -> list[SecretInfo]:
        """Every stored secret's name and metadata, by name."""
        rows = await self.store.kv_list(NAMESPACE)
        return [_info(n, json.loads(t)) for n, t in sorted(rows.items())]

    def forget(self, name: str | None = None) -> None:
        """Drop the cached value of ``name`` (or of every secret): the next read goes to the store."""
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)


def _info(name: str, row: dict[str, Any]) -> SecretInfo:
    return SecretInfo(
        name=name,
        version=int(row.get("version", 1)),
        updated_at=float(row.get("updated_at", 0)),
        updated_by=str(row.get("updated_by", "")),
        key_id=str(row.get("kid", "")),
    )


def _default_key_path(store: Store) -> Path | None:
    """``secrets.key`` beside the store's audit key, unless the environment names the key."""
    if os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV) or store.in_process:
        return None
    audit = store.audit_keys.path
    return audit.parent / "secrets.key" if audit is not None else None


def secret_store(store: Store) -> SecretStore:
    """The one :class:`SecretStore` of ``store`` (made on first use and kept with it, so that every
    connector of a client shares one cache)."""
    made: SecretStore | None = store.__dict__.get("_secret_store")
    if made is None:
        made = SecretStore(store)
        store.__dict__["_secret_store"] = made
    return made


__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "NAMESPACE",
    "REF",
    "SecretInfo",
    "SecretKeyError",
    "SecretNotFound",
    "SecretStore",
    "SecretsKey",
    "check_name",
    "secret_ref",
    "secret_store",
]
