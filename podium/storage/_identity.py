"""A store's id: a random name made with the store, that every seal of a row covers.

The engine seals the rows it later acts on (API tokens, ML outcomes and predictions, quarantined
rows, file marks, dead letters, fire times, learned contracts, capabilities, the outbox's seals and
delivery notes) with the audit key, kept outside the store. One key file may serve many stores
(``~/.podium/audit.key`` is every store's of an OS user), so a seal names its store too
(:meth:`podium._auditkey.AuditKeys.seal`): a row sealed in staging, copied into production's
database, does not hold there.

The id lives in the store (namespace ``podium.store``), where whoever writes the database could
set it to another store's. So the first open on a machine pins it beside the head log
(``audit-heads/STORE.id``, signed with the key), and an open that finds another id, or none, in a
store that has one pinned is refused (:func:`bind`). A store created again where one was deleted
(its schema made by this open) gets a new id and a new pin.

An id this machine pinned for another store is refused where a store is first pinned (a database
made with staging's id row in it). Seals of a release before store ids (``KEYID:INNER``) are
sealed again for the store once, by the machine that began the upgrade (its pin, written before
the id row, says so until it is done: an id row set back to ``resealing`` makes no other machine
seal anything), and refused afterwards; entries of that release hold as the entries the log had
then, by number and fingerprint (:func:`legacy_entries`); ``podium db migrate-to`` seals what it
copies again for the target (:func:`rebind_text`). A seal is moved to
another store without reading what it seals (its INNER part still has to match the row wherever
the row is read), so both work on every kind of row in one place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from typing import Any
from urllib.parse import quote

from .._auditkey import FINGERPRINT, AuditKeys, former_identity, ranges_digest, store_identity
from ..errors import StoreError
from ._names import implied_schema, in_schema

NAMESPACE = "podium.store"
"""The key-value namespace of the store's id (key :data:`KEY`: ``{"id", "state"}``)."""
KEY = "id"
ID_MIGRATION = 3
"""The schema version whose migration makes the key-value table, with the store's id row in it."""
ID_ROW = f"SELECT value FROM kv WHERE ns = '{NAMESPACE}' AND key = '{KEY}'"
FINISH_ENV = "PODIUM_FINISH_UPGRADE"
"""Set to a store's id, lets this process finish the store's upgrade from seals without an id that
a machine now gone began (only the machine that began it does so by itself)."""
SEALED = (
    "tokens", "capabilities", "deadletters", "schedules", "connector.contracts", "ml_outcomes", "ml_predictions",
    "ml_quarantine", "sealed_tallies", "filedrops", "outbox_sent",
)  # fmt: skip
"""The key-value namespaces whose rows hold seals (sealed again at the upgrade and by migrate-to)."""
_SEAL = re.compile(r"(?<![0-9a-f:.])[0-9a-f]{12}:[0-9a-f]{32}(?:\.[0-9a-f]{16})?(?![0-9a-f:.])")
log = logging.getLogger("podium.audit")


def rebind_text(keys: AuditKeys, text: str, source: str | None) -> str:
    """``text`` (a stored row) with each seal of store ``source`` in it (None: each seal of a
    release before store ids) bound to the store of ``keys`` instead; other seals left as they are."""

    def moved(m: re.Match[str]) -> str:
        return keys.rebind(m.group(0), source) or m.group(0)

    return _SEAL.sub(moved, text)


async def reseal(store: Any, source: str | None = None) -> int:
    """Seal the sealed rows of ``store`` that are sealed for store ``source`` (None: by a release
    before store ids) for ``store`` itself; how many rows changed."""
    keys, n = store.audit_keys, 0
    for ns in SEALED:
        for key, value in (await store.kv_list(ns)).items():
            new = rebind_text(keys, value, source)
            if new != value and await store.kv_swap(ns, key, value, new):
                n += 1
    return n


def _refused(keys: AuditKeys, what: str) -> StoreError:
    return StoreError(
        f"store {keys.store}: {what}. Someone who can write the database may have given it the id of another store "
        "on this audit key, to make rows sealed there hold here; the store is not opened. If the database was "
        f"replaced on purpose (another store restored in its place), delete {keys.id_path} and open it again"
    )


async def bind(store: Any, *, fresh: bool) -> str:
    """Read (or make) the id of ``store``, check it against the pin, and set it on its audit keys;
    ``fresh``: the store's schema was created by this open (no row of an earlier release is in it)."""
    store.schema, others, owned, hidden = await store.placement()  # its name gains the schema its tables are in (_names.py)
    if hidden:
        raise StoreError(
            f"store {store_identity(store.url)}: its search path finds objects of the store in another schema before "
            f"its own ({store.schema!r}): {'; '.join(hidden)}. Someone who may create schemas (one named after the "
            "role, reached through \"$user\") can have the store read and write tables of theirs so; the store is not "
            f"opened. Drop them if they are not yours; else put the store's schema first in its role's search path "
            f"(ALTER ROLE ... IN DATABASE ... SET search_path = {store.schema}: the store keeps its name)"
        )
    keys: AuditKeys = store.audit_keys
    if keys.id_path is None and keys.store_id is not None:  # in memory: an id of its own, nothing to pin
        return keys.store_id
    url = getattr(store, "url", None)
    former, base = (former_identity(url), store_identity(url)) if url else (None, None)
    adopt_former_names(keys, former, fresh=fresh, base=base, others=others)
    if fresh and others and base is not None and keys.store == base:
        _pin_of_another_schema(keys, store.schema, others)
    # Before the row: a pin is written after its row (but for an upgrade begun here, whose pin says so), so a
    # row missing now was deleted.
    pinned, bad = keys.pinned()
    # A new store's id row is written with its tables (the migration that makes the key-value table), so no
    # process sees a new store's tables without its id (taking it for one of an earlier release to upgrade).
    if fresh:  # the schema was made by this open: a pin here is of a store deleted before (a new id, a new pin)
        pinned, bad = None, None
    raw = await store.kv_get(NAMESPACE, KEY)
    try:
        rec = json.loads(raw) if raw is not None else None
        sid, through, state = (str(rec["id"]), int(rec["through"]), str(rec["state"])) if rec is not None else (None, 0, "")
        held = None if rec is None or rec.get("held") is None else [(int(a), int(b), str(f)) for a, b, f in rec["held"]]
        if held is not None and any(len(f) != (b - a + 1) * FINGERPRINT for a, b, f in held):
            raise ValueError("a range's fingerprints do not fit it")
    except (ValueError, TypeError, KeyError, AttributeError):
        raise _refused(keys, f"its id in the database ({raw[:80]!r}) is not an id Podium wrote") from None
    if sid is None:
        ours = pinned is not None and pinned[2] and not fresh  # an upgrade begun here, its row not written yet
        if not fresh and not ours and (pinned is not None or bad is not None):
            was = pinned[0] if pinned else "?"
            raise _refused(keys, f"its id was deleted from the database (this machine pinned {was} in {keys.id_path})")
        # a store of an earlier release: its seals are sealed again, its entries so far hold as they are
        through, held = (0, None) if fresh else await legacy_entries(store)
        made = pinned[0] if pinned is not None and ours else secrets.token_hex(16)
        if not fresh and not ours:  # pinned before its row: only a machine whose pin says so seals again (see below)
            keys.pin(made, through, upgrading=True, held=ranges_digest(held))
        state = "ready" if fresh else "resealing"
        row: dict[str, Any] = {"id": made, "through": through, "state": state}
        if held is not None:
            row["held"] = held
        if not await store.kv_swap(NAMESPACE, KEY, None, json.dumps(row)):
            if not ours and not fresh:
                keys.unpin(made)
            return await bind(store, fresh=False)  # another process made it first: take that one
        # an upgrade begun here keeps its pin: a log changed since (entries put in) does not fit it
        sid, pinned, bad = made, None if fresh else pinned if ours else (made, through, True, ranges_digest(held)), None
    if bad is not None:
        raise _refused(keys, bad)
    # An id drawn by this open (its tables' migration, read back in that migration's transaction): no pin here
    # can name it, and the look-up reads every pin file of this machine (one per store it ever opened). Not
    # merely a fresh open's: what the database held before it (a trigger of a table made in advance) or a
    # writer between its migrations can have put another store's id in the row since.
    drew = fresh and sid == getattr(store, "drawn_id", None)
    # A new store drawn here is concerned too where its role does not own the schema (one named after the role by
    # whoever may create schemas, an empty schema_migrations of theirs in it: production's next tables made there).
    if pinned is None and (not drew or not owned) and base is not None and keys.store != base:
        _schema_not_named(keys, store.schema, base, former)
    if drew and not owned and base is not None and in_schema(base, store.schema) != base:
        raise StoreError(
            f"store {keys.store}: its tables were just made in schema {store.schema!r} of the database, which its URL "
            f"does not name (it implies {implied_schema(base)!r}) and its role does not own: someone who may create "
            "schemas can make one named after the role (an empty schema_migrations in it) to have a new store made "
            "there, apart from the one in use; the store is not opened. If that schema is meant, name it in the URL "
            f"(?options=-csearch_path%3D{quote(str(store.schema), safe='')}); else drop it"
        )
    other = keys.pinned_elsewhere(sid) if pinned is None and not drew else None
    if other is not None:  # the first open here of a store that already has an id: is it another store's?
        raise StoreError(
            f"store {keys.store}: its id in the database ({sid}) is the id of store {other[0]}, pinned on this "
            f"machine in {other[1]}: the database is a copy of that store, or someone who can write it gave it "
            "that store's id, to make rows sealed there hold here; the store is not opened. To make a separate "
            "store from another one, copy it with podium db migrate-to into a new database. If it is the same "
            "database under another name (a file moved, its server named another way: a Unix socket for localhost, "
            f"an IP address for a host name), delete {other[1]} and open it again (and use one name for it)"
        )
    if pinned is not None and (pinned[:2] != (sid, through) or pinned[3] != ranges_digest(held)):
        raise _refused(
            keys, f"its id in the database ({sid}, entries before store ids up to {through}) is not the id this machine "
            f"pinned ({pinned[0]}, up to {pinned[1]}, in {keys.id_path}), or the entries it had then are not the ones "
            "pinned",
        )  # fmt: skip
    keys.store_id, keys.through, keys.held = sid, through, held
    if state == "resealing" and os.environ.get(FINISH_ENV) == sid:
        pinned = (sid, through, True, ranges_digest(held))  # the key's holder takes over an upgrade whose machine is gone
    if pinned is not None and pinned[2] and state == "resealing":  # the upgrade this machine began
        n = await reseal(store)
        ready = {"id": sid, "through": through, "state": "ready"} | ({"held": held} if held is not None else {})
        await store.kv_put(NAMESPACE, KEY, json.dumps(ready))
        log.info("store %s: %d row(s) sealed by an earlier release sealed again for this store (id %s)", keys.store, n, sid)
    elif pinned is None and state == "resealing":
        # Not sealed again here: the id row says so, and whoever writes the database can say it (a seal of
        # another store with its outer part cut off reads as one of an earlier release). The machine that
        # began the upgrade (its pin says so) finishes it.
        log.warning(
            "store %s is being upgraded from seals without a store id by another machine (or its id row was set "
            "back to it): its rows are not sealed again here. Open it on the machine that began the upgrade (its "
            "audit-heads/ pin says so) to finish it; if that machine is gone, stop every engine of the earlier "
            "release and run %s=%s podium db upgrade", keys.store, FINISH_ENV, sid,
        )  # fmt: skip
    if pinned is None or pinned[2]:
        keys.pin(sid, through, held=ranges_digest(held))
    return sid


def adopt_former_names(
    keys: AuditKeys, former: str | None, *, fresh: bool, base: str | None = None, others: frozenset[str] = frozenset()
) -> None:
    """Move this store's pin and head log from the names an earlier release gave it to its name now
    (:func:`podium._auditkey.store_identity`: one name per database, whatever its URL's spelling): those of
    ``former`` (the name this URL had) and ``base`` (its name without the schema its tables are in:
    ``podium/storage/_names.py``) at every open, and, at the first open under the new name
    here (no pin yet), those of every pin of this machine whose store is this one spelled another
    way. A pin is moved only where it is signed with the key, and never over a pin of the new name;
    the id it pins is then checked against the database's as always (by :func:`bind`), so a copy
    is still refused. Whoever writes only the database has no say in any of this.

    ``others``: the other schemas of the database that may hold a Podium store. Those names say no
    schema, so they may be another schema's store's (production's in ``public``, for a role's own
    schema): nothing is moved from them, nor dropped. A pin there holding this store's id then
    refuses the open, naming it (:meth:`AuditKeys.pinned_elsewhere`)."""
    if keys.id_path is None:
        return
    base = base or keys.store
    if others:
        left = [n for n in dict.fromkeys((former, base)) if n and n != keys.store and AuditKeys(keys.path, n).id_path.exists()]  # type: ignore[union-attr]
        if left:
            log.warning(
                "store %s: the pin under %s (a name without schema) is not moved to it: other schemas of its database "
                "(%s) hold tables of Podium, whose store that name may be", keys.store, " and ".join(left),
                ", ".join(sorted(others)),
            )  # fmt: skip
        return
    for name in dict.fromkeys(n for n in (former, base) if n is not None and n != keys.store and _certain(n)):
        old = AuditKeys(keys.path, name)
        keys.adopt_heads(old)
        pinned, bad = old.pinned()
        if fresh and old.id_path is not None:  # a pin of the database deleted before this open made it again
            old.id_path.unlink(missing_ok=True)
        elif bad is not None and not keys.id_path.exists():  # one under the new name is checked as always
            raise _refused(keys, f"{bad} (its pin under the name an earlier release gave it, {name})")
        elif pinned is not None:
            _move_pin(keys, old, pinned)
    if fresh or keys.id_path.exists():
        return
    alike: dict[tuple[str, int, bool, str], list[AuditKeys]] = {}
    for other in _pins_named_alike(keys, base):
        pinned, _ = other.pinned()
        if pinned is not None:  # a pin not signed with the key names no store (its "store" field is anyone's)
            alike.setdefault(pinned, []).append(other)
    if len(alike) > 1:
        raise StoreError(
            f"store {keys.store}: this machine pinned it under several spellings of its URL, with different ids ("
            + "; ".join(f"{p[0]} in {o.id_path}" for p, found in alike.items() for o in found)
            + "): all but one are of a database deleted and made again since, or of another database that the "
            "spellings named then. The store is not opened. Delete the pins of a database deleted since, or of another "
            "database, and open it again (with all of them deleted, the id the database holds is pinned, as at a "
            "first open on a machine)"
        )
    for pinned, found in alike.items():
        for other in found:
            keys.adopt_heads(other)
            _move_pin(keys, other, pinned)


def _schema_not_named(keys: AuditKeys, schema: str, base: str, former: str | None) -> None:
    """Refuse the first pin of a store whose name gained its schema from the database (not from its
    URL) where this machine pinned the database under its name without schema (a pin not moved to
    this name: another schema holds tables of Podium). Else whoever may change the search path (a
    schema named after the role made by someone who may create schemas, ``ALTER ROLE ... SET
    search_path``) would point the store at tables of their making under a name no pin holds, with
    an id this machine does not know."""
    for name in dict.fromkeys(n for n in (base, former) if n is not None):
        path = AuditKeys(keys.path, name).id_path
        if path is not None and path.exists():
            raise StoreError(
                f"store {keys.store}: its tables are in schema {schema!r} of the database, not in "
                f"{implied_schema(base)!r} where its URL puts them, and this machine pinned the database's store under "
                f"{name} (in {path}), which another schema of it may hold: the search path may have been changed (a "
                "schema named after the role, ALTER ROLE or ALTER DATABASE ... SET search_path) to point this URL at "
                "other tables than the pinned store's; the store is not opened. If the store in that schema is meant, "
                f"name the schema in the URL (?options=-csearch_path%3D{quote(schema, safe='')}: a name of its own, "
                "pinned at its first open); else restore the search path"
            )


def _pin_of_another_schema(keys: AuditKeys, schema: str | None, others: frozenset[str]) -> None:
    """Refuse a new store (its tables made by this open) named without schema where this machine
    holds a pin under that name while other schemas of its database hold Podium's tables: the
    release before named every schema's store so (a role's own, through ``"$user"``), so the pin may
    be theirs. A new store replaces a pin under its name (of a store deleted before): it would have
    replaced theirs with its id, and taken their head log (``tests/test_attack_schema_names_review.py``)."""
    if keys.id_path is not None and keys.id_path.exists():
        raise StoreError(
            f"store {keys.store}: its tables were just made in schema {schema!r} of the database, and this machine "
            f"holds a pin under its name ({keys.id_path}) that may be another schema's store's: other schemas of "
            f"the database hold tables of Podium ({', '.join(sorted(others))}), and the release before this one "
            "named each schema's store without its schema; the pin is left as it is. Open the store it pins first "
            f"(its pin moves to a name of its own once no other schema holds Podium's tables: drop the ones just "
            f"made in {schema!r}); if it pins a store of {schema!r} deleted since, delete {keys.id_path} and open "
            "this one again"
        )


def _move_pin(keys: AuditKeys, old: AuditKeys, pinned: tuple[str, int, bool, str]) -> None:
    """Pin ``pinned`` (read from ``old``'s pin, signed) under this store's name unless a pin is
    there, then remove ``old``'s if the two agree (a different one is left, and named)."""
    assert old.id_path is not None
    if keys.pin(*pinned, replace=False):
        log.info("store %s: its id pinned in %s (under %s) moved to %s", keys.store, old.id_path, old.store, keys.id_path)
    mine, _ = keys.pinned()
    if mine == pinned:
        old.id_path.unlink(missing_ok=True)
    else:  # not ours to judge here: bind checks the new pin against the database
        log.warning(
            "store %s: a pin of it under the name an earlier release gave it (%s, in %s) names another id than its "
            "pin %s; it is left as it is: delete it if it is of a database deleted since",
            keys.store, old.store, old.id_path, keys.id_path,
        )  # fmt: skip


def _pins_named_alike(keys: AuditKeys, base: str) -> list[AuditKeys]:
    """The keys of the pins of this machine whose store is this one (named ``base`` without its
    schema) under another spelling."""
    assert keys.id_path is not None
    if not keys.id_path.parent.is_dir():
        return []
    out = []
    for path in sorted(keys.id_path.parent.glob("*.id")):
        try:
            name = json.loads(path.read_text())["store"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (
            isinstance(name, str) and name != keys.store and name.startswith("postgres") and "#" not in name
            and _certain(name) and store_identity(name) == base
        ):  # fmt: skip
            other = AuditKeys(keys.path, name)
            if other.id_path == path:  # the file is where that name's pin belongs
                out.append(other)
    return out

def drawn(row: tuple[Any, ...] | None) -> str | None:
    """The id in the row of :data:`ID_ROW` read by the migration that made it (None: none)."""
    try:
        return str(json.loads(row[0])["id"]) if row else None
    except (ValueError, TypeError, KeyError):
        return None


async def legacy_entries(store: Any) -> tuple[int, list[tuple[int, int, str]] | None]:
    """The number of the store's last audit entry (0: none), and its entries as ranges (first,
    last, a fingerprint of each one's hash: :func:`podium._auditkey.held_entry`; None: no entry).
    An entry of another store's earlier release numbered into a gap (PostgreSQL's numbers have
    them) or put in place of one of these must not hold as this store's. One read of the whole
    log, once, at the upgrade."""
    ranges: list[tuple[int, int, list[str]]] = []
    after = 0
    while page := await store.list_audit(after=after, limit=5000):
        for e in page:
            fp = e.hash.rpartition(":")[2][:FINGERPRINT].ljust(FINGERPRINT, "-")
            if ranges and e.seq == ranges[-1][1] + 1:
                ranges[-1] = (ranges[-1][0], e.seq, ranges[-1][2])
                ranges[-1][2].append(fp)
            else:
                ranges.append((e.seq, e.seq, [fp]))
        after = page[-1].seq
    return (ranges[-1][1], [(a, b, "".join(f)) for a, b, f in ranges]) if ranges else (0, None)


__all__ = ["FINISH_ENV", "KEY", "NAMESPACE", "SEALED", "adopt_former_names", "bind", "drawn", "legacy_entries", "rebind_text", "reseal"]


def _certain(name: str) -> bool:
    """Whether ``name`` (an earlier release's name of a store) names one database whatever libpq's
    environment: that release left out what ``$PGPORT``, ``$PGHOST``, ``$PGDATABASE`` or
    ``$PGOPTIONS`` fill in, so under a variable set now it may have been another server's (pinned
    where the variable was not set): its pin and head log are then not moved to this one's name
    (where this database has that store's id, the open is refused as "a copy", naming the pin)."""
    return store_identity(name) == store_identity(name, {})
