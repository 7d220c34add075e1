"""``client.secrets``: the secret store as people and programs manage it, with the permission check
(``secrets.manage``, admins) and the audit entries (``secret.set``, ``secret.delete``,
``secret.read``: names, versions and key ids, never values). Connectors read the same store through
:attr:`Secrets.source`, without a permission check: the engine runs them."""

from __future__ import annotations

from ..secret import Secret
from ..storage import Store
from ..storage.secrets import SecretInfo, SecretStore, check_name, secret_store
from .service import Governance

PERMISSION = "secrets.manage"


class Secrets:
    """Set, list, read and delete the secrets of the client's store (see docs/connectors.md)."""

    def __init__(self, store: Store, governance: Governance) -> None:
        self._store = store
        self._gov = governance

    @property
    def source(self) -> SecretStore:
        """The store's secret store, as connectors read it (``secret:NAME`` settings)."""
        return secret_store(self._store)

    async def set(self, name: str, value: str | Secret) -> SecretInfo:
        """Store ``value`` as ``name``, encrypted; the next connector call uses it (a rotation)."""
        who = await self._gov.authorize(PERMISSION, f"secret:{check_name(name)}")
        info = await self.source.put(name, value, by=who.name)
        await self._gov.record("secret.set", f"secret:{name}", version=info.version, key_id=info.key_id)
        return info

    async def delete(self, name: str) -> bool:
        """Remove ``name``; False when it was not set."""
        await self._gov.authorize(PERMISSION, f"secret:{check_name(name)}")
        gone = await self.source.delete(name)
        if gone:
            await self._gov.record("secret.delete", f"secret:{name}")
        return gone

    async def list(self) -> list[SecretInfo]:
        """Names and metadata (version, when, by whom, key id) of every secret; never a value."""
        await self._gov.authorize(PERMISSION, "secrets")
        return await self.source.list()

    async def get(self, name: str) -> Secret:
        """The secret ``name`` as a :class:`~podium.secret.Secret` (audited as ``secret.read``)."""
        await self._gov.authorize(PERMISSION, f"secret:{check_name(name)}")
        value = await self.source.fresh(name)
        await self._gov.record("secret.read", f"secret:{name}")
        return value
