"""Learned contracts as the store keeps them, sealed with the audit key.

A contract learned from recorded results (``podium connectors learn``) is what a business
system's results are validated against when none is declared. Its row (key-value namespace
``connector.contracts``, key ``CONNECTOR.OPERATION``) can be edited by whoever writes the
database: a schema every value matches, or the row deleted, let results of any shape into runs.
So the row is sealed with the audit key (an HMAC over the key and the schema, as dead letters
are), the signed ``connector.learn`` entry records the schema's SHA-256, written before the row,
and a contract is taken only when its seal holds (:func:`open_contract`); a missing row that a
signed entry says was learned is refused too (:func:`learned_in_log`). A refused contract is not
replaced by a looser one (the connector's own, or none): every result of the operation drifts,
saying why, until it is learned again. Here, in the plug-in layer, the entries' signatures are
checked with the store's keys directly (the governance layer sits above).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from .._auditkey import PREFIX, entry_holds
from ..records import AuditEntry, chain_body

LEARN = "connector.learn"


def canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True)


def digest(schema: Any) -> str:
    return hashlib.sha256(canonical(schema).encode()).hexdigest()


def _text(key: str, schema: Any) -> str:
    return f"contract\x1f{key}\x1f{canonical(schema)}"


def seal(store: Any, key: str, schema: Any, samples: int) -> str:
    """The stored form of the contract ``schema`` learned for ``key`` (``CONNECTOR.OPERATION``)."""
    return json.dumps({"schema": schema, "samples": samples, "learned_at": time.time(), "mac": store.audit_keys.seal(_text(key, schema))})


def refused(connector: str, operation: str, why: str) -> str:
    return (
        f"connector {connector!r}: the learned contract of {operation} in the store {why}, so results of {operation} "
        f"are not taken as matching it (nor checked by a looser contract); learn it again: podium connectors learn "
        f"{connector} {operation}"
    )


def open_contract(store: Any, connector: str, operation: str, text: str) -> tuple[Any, str | None]:
    """The schema stored under ``CONNECTOR.OPERATION`` and why it is not taken (None: its seal holds)."""
    try:
        stored = json.loads(text)
        schema, mac = stored["schema"], stored.get("mac")
    except (ValueError, TypeError, KeyError):
        return None, refused(connector, operation, "is not readable")
    key = f"{connector}.{operation}"
    if not isinstance(mac, str) or store.audit_keys.verify_seal(_text(key, schema), mac) is not True:
        why = (
            "is not sealed with this store's audit key (it was written or edited behind the engine's back, or learned "
            "by a release before contracts were sealed)"
        )
        return None, refused(connector, operation, why)
    return schema, None


def _signed(store: Any, e: AuditEntry) -> bool:
    if not e.hash.startswith(PREFIX):
        return False
    kid, _, tag = e.hash[len(PREFIX) :].partition(":")
    return entry_holds(store.audit_keys.all(), kid, e.seq, chain_body(e.prev_hash, e), tag) is True


async def learned_in_log(store: Any, connector: str, operation: str) -> AuditEntry | None:
    """The newest signed ``connector.learn`` entry of ``operation`` (None: it was never learned)."""
    found = None
    for e in await store.audit_for(f"capability:{connector}"):
        if e.action == LEARN and e.details().get("operation") == operation and _signed(store, e):
            found = e
    return found


def not_newest(connector: str, operation: str, schema: Any, entry: AuditEntry) -> str | None:
    """Why a sealed ``schema`` is not the one the newest signed entry learned (an older one put back)."""
    want = entry.details().get("hash")
    if want is None or want == digest(schema):  # an entry of an earlier release records no hash
        return None
    return refused(connector, operation, f"is not the one audit entry {entry.seq} learned last (an older one put back?)")


def deleted(connector: str, operation: str, entry: AuditEntry) -> str:
    return refused(connector, operation, f"is missing, though audit entry {entry.seq} learned it (deleted behind the engine's back)")


__all__ = ["LEARN", "deleted", "digest", "learned_in_log", "not_newest", "open_contract", "refused", "seal"]
