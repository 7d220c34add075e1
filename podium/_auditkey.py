"""The audit log's key and its head log: the part of the audit trail kept OUTSIDE the database.

An attacker who can write the database can rewrite a plain hash chain and recompute every hash.
So every audit entry is chained with HMAC-SHA256 under a secret key kept in a file, not in the
store (``PODIUM_AUDIT_KEY``, or ``Client(audit_key=PATH)``; default ``~/.podium/audit.key``). The
file is created, mode 0600, the first time an entry is written.

A keyed hash reads ``hmac:KEYID:HEX``; KEYID (12 hex digits of the key's SHA-256) names the key, so
a rotated key (``podium audit rotate-key``: the old key is kept beside the new one as
``audit.key.KEYID``) still verifies the entries it signed; a file whose key does not hash to the
KEYID in its name is ignored, with a warning. A hash without the prefix is a legacy
entry (plain SHA-256, written before keys existed), accepted only before the first keyed entry.

A chain, keyed or not, cannot show that its LAST entries were deleted. So every append also adds a
line ``{"seq", "hash", "mac"}`` to this store's head log, ``audit-heads/STORE.jsonl`` beside the
key: every line must still be in the store (the log is compacted to its last line after a clean
``podium audit verify``: to the heads that pin every chain down). A store deleted and created again on purpose leaves a head log that no
longer fits: delete the file named in the message.

One key file may serve many stores (the default one every store of an OS user), so what is signed
or sealed names its store too: each store has a random id (``podium/storage/_identity.py``, pinned
in ``audit-heads/STORE.id``), audit entries are signed with the key bound to it
(:meth:`AuditKeys.sign`, :func:`entry_holds`), and rows are sealed over it (:meth:`AuditKeys.seal`).
:meth:`AuditKeys.mac` (not bound) signs what is kept outside the store and names the store in its
text already: the head log, checkpoints, the pin itself, start logs.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

try:
    import _hashlib  # OpenSSL's HMAC objects (CPython's hmac module wraps them)
except ImportError:  # pragma: no cover
    _hashlib = None  # type: ignore[assignment]

KEY_ENV = "PODIUM_AUDIT_KEY"
"""Environment variable naming the key file."""
DEFAULT_KEY = "~/.podium/audit.key"
PREFIX = "hmac:"
_KEYID = re.compile(r"^[0-9a-f]{12}$")
log = logging.getLogger("podium.audit")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def default_key_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    from .settings import setting

    return Path(setting("audit_key") or DEFAULT_KEY).expanduser()


def _keyed_hmac(key: bytes) -> Any:
    """An HMAC-SHA256 keyed with ``key``, to be copied for each message: OpenSSL's own object where
    CPython exposes it (its copy, update and hexdigest without the ``hmac`` module's Python wrapper
    around each: ~0.5 us a signature), else ``hmac.new``'s."""
    make = getattr(_hashlib, "hmac_new", None) if _hashlib is not None else None
    if make is not None:
        try:
            return make(key, digestmod="sha256")
        except (TypeError, ValueError):  # pragma: no cover (an OpenSSL without it)
            pass
    return hmac.new(key, digestmod=hashlib.sha256)


class HeldKeys(dict[str, bytes]):
    """Key id -> key, every key this machine holds (:meth:`AuditKeys.all`), with what checks this
    store's audit entries (:func:`entry_holds`)."""

    bound: dict[str, bytes]
    """Key id -> that key bound to the store (signs its audit entries); empty: no id yet."""
    through: int | None = None
    """Entries signed with a key alone hold up to this number (None: any)."""
    held: Sequence[tuple[int, int, str]] | None = None
    """The entries the store had when it was upgraded (:func:`held_entry`)."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        super().__init__(keys)
        self.bound = {}


def entry_holds(keys: Mapping[str, bytes], kid: str, seq: int, body: bytes, tag: str) -> bool | None:
    """Whether ``tag`` (of key ``kid``) signs the chained ``body`` of audit entry ``seq``: under the
    key bound to this store, or, up to :attr:`HeldKeys.through`, under the key alone (an entry of a
    release before store ids). None: the key is not held here."""
    key = keys.get(kid)
    if key is None:
        return None
    bound = getattr(keys, "bound", None)
    if bound:
        if hmac.compare_digest(hmac.new(bound[kid], body, hashlib.sha256).hexdigest(), tag):
            return True
        through = getattr(keys, "through", None)
        if through is not None and (seq > through or not held_entry(getattr(keys, "held", None), seq, tag)):
            return False
    return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), tag)


OUTER = 16
"""Hex digits of a seal's outer part (64 bits: it only names the store, and can only be guessed
online, a row written and refused per guess; the inner part, over what is sealed, keeps 128 bits).
A seal then fits the 64 characters an outbox table keeps for it."""


SEALED = b"podium.seal\x1f"
"""What the inner part of a seal of this release signs before the row's text: the inner part of a
seal cut short (its outer part removed) is then not the seal a release before store ids made (the
key's MAC of the text alone), which such a release, or the upgrade from it, would take."""


def outer_body(store_id: str, kid: str, inner: str, *, legacy: bool = False) -> bytes:
    """What the outer part of a seal signs (:meth:`AuditKeys.seal`): the store's id and the inner
    part; ``legacy``: a seal of a release before store ids sealed again (:meth:`AuditKeys.rebind`),
    whose inner part is the key's MAC of the text alone."""
    return f"podium.store-seal{'-legacy' if legacy else ''}\x1f{store_id}\x1f{kid}:{inner}".encode()


FINGERPRINT = 8
"""Hex digits of an entry's hash kept per entry of an earlier release at the upgrade (32 bits: an
entry of another store put in place of one must match them, one audit entry written per guess)."""


def held_entry(held: Sequence[tuple[int, int, str]] | None, seq: int, tag: str) -> bool:
    """Whether an entry numbered ``seq`` whose hash ends in ``tag`` is one the store had when it was
    upgraded: ``held`` lists them as ranges (first, last, the first :data:`FINGERPRINT` hex digits
    of each one's tag, in order); None: any (a store upgraded before they were kept)."""
    if held is None:
        return True
    i = bisect.bisect_right(held, (seq, math.inf)) - 1
    if i < 0 or not held[i][0] <= seq <= held[i][1]:
        return False
    at = (seq - held[i][0]) * FINGERPRINT
    return hmac.compare_digest(held[i][2][at : at + FINGERPRINT], tag[:FINGERPRINT])


def ranges_digest(ranges: Sequence[tuple[int, int, str]] | None) -> str:
    """A short digest of ``ranges`` (:func:`held_entry`) for the pin ("": None)."""
    return "" if ranges is None else hashlib.sha256(json.dumps([list(r) for r in ranges]).encode()).hexdigest()[:32]


def _pin_text(store: str, store_id: str, through: int, upgrading: bool, held: str) -> str:
    """What the pin of a store's id signs (:meth:`AuditKeys.pin`)."""
    return f"{store}|store-id|{store_id}|{through}" + (f"|held:{held}" if held else "") + ("|upgrading" if upgrading else "")


# -- a store's name: the key of its pin and head log (store_identity) -----------------------------

#: Connection options of a database URL that change which database is reached: kept in a store's
#: name. The others (``application_name``, timeouts, ``sslmode``...) are not (a worker connecting
#: with its own ``application_name``, or ``options=-c statement_timeout=...``, reaches the same store;
#: ``options`` setting a ``search_path`` may reach other tables, and is kept).
_TARGET_OPTIONS = frozenset({"host", "hostaddr", "port", "dbname", "service"})
_SCHEMES = {"postgres": "postgresql"}
"""Scheme aliases libpq (and :func:`podium.storage.open_store`) take for one another."""
LOOPBACK = "localhost"
"""How the loopback of this machine is written in a store's name (``127.0.0.1`` and ``::1`` too)."""
_LOOPBACK_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
DEFAULT_PORT = 5432
"""libpq's port when neither the URL nor ``$PGPORT`` gives one."""


def store_identity(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The name of the store behind ``url``: the key of its pin and head log on a machine. One
    database has one name, whatever its URL's spelling (or its pin, written under one spelling,
    refuses it under another as "a copy of that store"); what certainly names the same database is
    written one way:

    - SQLite: the file's real path (a symlink or a relative path names the file it leads to).
    - PostgreSQL: ``postgres://`` is ``postgresql://``; the user and password are left out (roles
      of one database reach one store), and of the connection options only those that choose the
      database or its tables are kept (an option given twice: its last value), sorted; ``options``
      where it sets the search path or the role (in any spelling), from ``$PGOPTIONS`` where the URL
      has none. Each host is in lower case, with its port (an omitted host is ``$PGHOST``'s, an
      omitted port libpq's: ``$PGPORT``, else 5432); ``localhost``, ``127.0.0.1`` and ``::1`` (in any spelling)
      are ``localhost``, the loopback of this machine; an omitted database is the one libpq
      connects to (``$PGDATABASE``, else the URL's user, else ``$PGUSER``; else left empty).

    Not merged, not being certainly the same server: another loopback address (``127.0.0.2`` may be
    another server), a Unix socket (an empty host or a folder) and a TCP host, two socket folders, a
    host's other DNS names or its external address. Two stores given one name do not merely refuse
    each other: one made by an open (a new id) pins its id over the other's pin, whose database then
    passes with that id (``tests/test_attack_revname.py``). So only what certainly reaches the same
    tables is merged; two names of one store are refused as "a copy" and say how to fix it.

    Pins and head logs written under the name the previous release gave a URL
    (:func:`former_identity`) are moved to this one at open (``podium/storage/_identity.py``)."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(url[len("sqlite:///") :])
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme, parts.scheme)
    if scheme != "postgresql":
        return former_identity(url) or url
    env = os.environ if environ is None else environ
    options = _options(parts.query)
    if not any(k == "options" for k, _ in parse_qsl(parts.query)):  # libpq's options then (the tables they choose)
        options = sorted(options + _options(urlencode({"options": env.get("PGOPTIONS", "")})))
    user = unquote(parts.netloc.rpartition("@")[0].partition(":")[0]) if "@" in parts.netloc else ""
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts and not any(k in ("host", "hostaddr", "service") for k, _ in options):  # libpq's host then
        hosts = quote(env.get("PGHOST", ""), safe=",")
    netloc = ",".join(_host(h, env) for h in hosts.split(",")) if hosts else f":{_default_port(env)}"
    db = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if not db and not any(k == "dbname" for k, _ in options):
        db = env.get("PGDATABASE") or user or env.get("PGUSER") or ""
    return urlunsplit((scheme, netloc, "/" + quote(db, safe="") if db else "", urlencode(options), ""))


def _options(query: str) -> list[tuple[str, str]]:
    """The options of ``query`` that choose the database or its tables, sorted by name. An option
    given twice is libpq's last one (sorting the pairs would make ``port=5433&port=5432`` and
    ``port=5432&port=5433``, two servers, one name). ``options`` is kept where it sets the tables'
    schema or the role (``$user`` in the search path) in any spelling PostgreSQL takes: a setting's
    name in any case, ``-`` for ``_`` (``--search-path=...``)."""
    last = dict(parse_qsl(query, keep_blank_values=True))
    return sorted(
        (k, v) for k, v in last.items()
        if k.lower() in _TARGET_OPTIONS or (k.lower() == "options" and any(s in v.lower().replace("-", "_") for s in _TABLE_SETTINGS))
    )  # fmt: skip


def _former_options(query: str) -> list[tuple[str, str]]:
    """The options the release before one name per store kept in a name (as it wrote them)."""
    return sorted(
        (k, v) for k, v in parse_qsl(query, keep_blank_values=True)
        if k.lower() in _TARGET_OPTIONS or (k.lower() == "options" and "search_path" in v)
    )  # fmt: skip


_TABLE_SETTINGS = ("search_path", "role", "session_authorization")
"""Settings that ``options`` may pass which change the tables a store's unqualified names reach."""


def _default_port(environ: Mapping[str, str]) -> str:
    env = environ.get("PGPORT", "").strip()
    return env if env.isdigit() else str(DEFAULT_PORT)


def _host(spec: str, env: Mapping[str, str]) -> str:
    """One ``host[:port]`` of a URL's host list, written one way."""
    if spec.startswith("["):  # an IPv6 address
        host, _, rest = spec[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = spec.partition(":")
    port = str(int(port)) if port.isdigit() else port or _default_port(env)
    plain = unquote(host)
    if plain.startswith("/") or plain.startswith("@"):  # a Unix socket's folder (or abstract name): case matters
        return f"{quote(plain, safe='')}:{port}"
    plain = plain.lower()
    try:
        ip = ipaddress.ip_address(plain)
    except ValueError:
        return f"{LOOPBACK if plain == LOOPBACK else quote(plain, safe='')}:{port}"
    mapped = getattr(ip, "ipv4_mapped", None)
    if ip in _LOOPBACK_IPS or mapped in _LOOPBACK_IPS:
        return f"{LOOPBACK}:{port}"
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def former_identity(url: str) -> str | None:
    """The name the release before one name per store gave ``url`` (pins and head logs written by it
    are under it); None: that release could not name it."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(url[len("sqlite:///") :])
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        if parts.query or parts.fragment:
            parts = parts._replace(query=urlencode(_former_options(parts.query)), fragment="")
        return urlunsplit(parts)
    except ValueError:  # a port that is not a number, a host list with a user: that release failed on it
        return None


class AuditKeys:
    """The audit key of one store: signs new entries, checks old ones, and keeps the head log.

    ``path=None`` with ``ephemeral=True`` (``memory://`` stores) holds a random key in memory and
    keeps no head log: such a store dies with its process."""

    def __init__(self, path: str | os.PathLike[str] | None, store: str, *, ephemeral: bool = False) -> None:
        self.path = None if ephemeral else Path(path).expanduser() if path else default_key_path()
        self.store = store
        self._key: tuple[str, bytes] | None = None
        if ephemeral:
            raw = secrets.token_bytes(32)
            self._key = (key_id(raw), raw)
            self.store_id, self.through = secrets.token_hex(16), 0  # the key dies with the process: so does the store

    # -- the key --------------------------------------------------------------------------------

    recheck_seconds = 1.0
    """How often a key in use is checked against its file: a key rotated by another process
    (``podium audit rotate-key``) is signed with from then on, not only after a restart."""

    def current(self, *, create: bool = True) -> tuple[str, bytes] | None:
        """(key id, key): read from the key file, created 0600 if missing and ``create``."""
        if self._key is not None and self.path is not None:
            now = time.monotonic()
            if now >= self.__dict__.get("_checked", 0.0) + self.recheck_seconds:
                self.__dict__["_checked"] = now
                if self._stamp() != self.__dict__.get("_read"):
                    self._key = None  # the file changed: read it again
        if self._key is None and self.path is not None:
            self.__dict__["_read"] = self._stamp()
            try:
                raw = bytes.fromhex(self.path.read_text().strip())
            except FileNotFoundError:
                if not create:
                    return None
                raw = self._create()
            except ValueError as exc:
                raise ValueError(f"audit key file {self.path} is not a hex key: {exc}") from exc
            self._key = (key_id(raw), raw)
        return self._key

    def _stamp(self) -> tuple[int, int] | None:
        """The key file's identity and last change (None: no file)."""
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _create(self) -> bytes:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw = secrets.token_bytes(32)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(raw.hex() + "\n")
        try:
            os.link(tmp, self.path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            raw = bytes.fromhex(self.path.read_text().strip())
        finally:
            tmp.unlink()
        return raw

    def all(self) -> HeldKeys:
        """Every key this machine holds for verifying: the current one and the retired ones, each
        with its key bound to this store (:class:`HeldKeys`). Read again only when the key folder or
        the key file changed (each resumed run asks)."""
        if self.path is None:
            return self._held(self._read_all())
        try:
            stamp = (self.path.parent.stat().st_mtime_ns, self.path.stat().st_mtime_ns)
        except OSError:
            return self._held(self._read_all())
        cached = self.__dict__.get("_all")
        if cached is None or cached[0] != stamp:
            cached = self.__dict__["_all"] = (stamp, self._read_all())
        return self._held(cached[1])

    def _held(self, keys: dict[str, bytes]) -> HeldKeys:
        held = HeldKeys(keys)
        if self.store_id is not None:
            held.bound = {kid: self._bound_key(kid, key) for kid, key in keys.items()}
            held.through, held.held = self.through, self.held
        return held

    def _bound_key(self, kid: str, key: bytes) -> bytes:
        """The key that signs this store's audit entries: ``key`` bound to the store's id (so an
        entry signed in another store on the same key file does not hold here)."""
        cache: dict[tuple[str, str], bytes] = self.__dict__.setdefault("_bound_keys", {})
        sid = self._bound()
        if (kid, sid) not in cache:
            cache[(kid, sid)] = hmac.new(key, f"podium.store-key\x1f{sid}".encode(), hashlib.sha256).digest()
        return cache[(kid, sid)]

    def _read_all(self) -> dict[str, bytes]:
        keys: dict[str, bytes] = {}
        cur = self.current(create=False)
        if cur:
            keys[cur[0]] = cur[1]
        if self.path is not None and self.path.parent.is_dir():
            for old in self.path.parent.glob(self.path.name + ".*"):
                kid = old.name.rsplit(".", 1)[-1]
                if not _KEYID.match(kid) or kid in keys:
                    continue
                raw = bytes.fromhex(old.read_text().strip())
                if key_id(raw) != kid:
                    # A key verifies only what claims its own id (the hash of the key): a file named
                    # for another key would let whoever wrote it sign as that key. Ignored, not
                    # fatal (a stray file must not stop every resume): what claims the id in its
                    # name is then reported as signed with a key this machine does not hold.
                    log.warning(
                        "audit key file %s is named for key %s but holds another key (%s): it is ignored. If it is "
                        "a genuine retired key, rename it %s.%s; otherwise someone who can write %s put it there",
                        old, kid, key_id(raw), self.path.name, key_id(raw), self.path.parent,
                    )  # fmt: skip
                    continue
                keys[kid] = raw
        return keys

    def rotate(self) -> tuple[str | None, str]:
        """Retire the current key (kept as ``audit.key.KEYID`` to verify what it signed) and create a
        new one. Returns (old key id, new key id)."""
        if self.path is None:
            raise ValueError("an in-memory store's key cannot be rotated")
        old = self.current(create=False)
        if old is not None:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.{old[0]}"))
        self._key = None
        new = self.current()
        assert new is not None
        pinned, _ = self.pinned()
        if pinned is not None:  # signed again with the new key: the old one may be moved away
            self.pin(*pinned)
        return (old[0] if old else None), new[0]

    # -- hashing --------------------------------------------------------------------------------

    def _signing_key(self) -> tuple[str, bytes]:
        key = self.current()
        assert key is not None  # create=True
        return key

    def _keyed(self, body: bytes, *, bound: bool = False) -> tuple[str, str]:
        """(key id, HMAC-SHA256 of ``body`` in hex) under the current key (``bound``: the current
        key bound to this store), from a copy of an HMAC keyed once (the key's padding is not hashed
        again for every entry)."""
        kid, key = self._signing_key()
        slot = "_hmac_bound" if bound else "_hmac"
        base = self.__dict__.get(slot)
        if base is None or base[0] != (kid, self.store_id):
            keyed = self._bound_key(kid, key) if bound else key
            base = self.__dict__[slot] = ((kid, self.store_id), _keyed_hmac(keyed))
        h = base[1].copy()
        h.update(body)
        return kid, h.hexdigest()

    def sign(self, body: bytes) -> str:
        """The hash of an audit entry whose chained body is ``body``: ``hmac:KEYID:HEX`` under the
        current key bound to this store (:meth:`_bound_key`)."""
        kid, digest = self._keyed(body, bound=True)
        return f"{PREFIX}{kid}:{digest}"

    def mac(self, text: str) -> str:
        kid, digest = self._keyed(text.encode())
        return f"{kid}:{digest[:32]}"

    def verify_mac(self, text: str, mac: str) -> bool | None:
        """Whether ``mac`` (made by :meth:`mac`, maybe under a key since retired) signs ``text``;
        None when the key it names is not held here (:meth:`all`)."""
        kid, _, tag = mac.partition(":")
        key = self.all().get(kid)
        if key is None:
            return None
        want = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(want.encode(), tag.encode(errors="replace"))  # bytes: a forged tag may be any text

    # -- bound to the store: audit entries and seals of rows -------------------------------------

    through: int | None = None
    """Audit entries signed with a key alone (by a release before store ids) hold up to this entry
    number: the store's last entry when it was upgraded (None: no id yet, 0: a store made with one)."""
    held: Sequence[tuple[int, int, str]] | None = None
    """With :attr:`through`: the entries the store had at its upgrade, by number and fingerprint
    (:func:`held_entry`): an entry of another store's earlier release numbered into a gap (PostgreSQL
    numbers with gaps) or put in place of one does not hold."""
    store_id: str | None = None
    """This store's random id (``podium/storage/_identity.py``), set when it opens; every seal of a
    row covers it, so a row sealed in another store on the same key does not hold here."""

    def seal(self, text: str) -> str:
        """The seal of a row whose content reads ``text``: ``KEYID:INNER.OUTER``, INNER the MAC of
        :data:`SEALED` and the text, OUTER the MAC of INNER and this store's id. The two parts let a
        seal be moved to another store by the one who holds the key (:meth:`rebind`: ``podium db
        migrate-to``) without reading what it seals."""
        kid, digest = self._keyed(SEALED + text.encode())
        inner = digest[:32]
        return f"{kid}:{inner}.{self._outer(kid, inner, self._bound())}"

    def verify_seal(self, text: str, seal: str) -> bool | None:
        """Whether ``seal`` (made by :meth:`seal` in this store, or a seal of a release before store
        ids sealed again for it at the upgrade) seals ``text``; None when the key it names is not
        held here. A seal of another store, or of no store (a release before store ids), does not
        hold."""
        kid, _, tags = seal.partition(":")
        inner, dot, outer = tags.partition(".")
        key = self.all().get(kid)
        if key is None:
            return None
        if not dot or self.store_id is None:
            return False
        legacy = self._domain(kid, inner, outer, self.store_id)
        if legacy is None:
            return False
        want = hmac.new(key, (b"" if legacy else SEALED) + text.encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(want.encode(), inner.encode(errors="replace"))  # bytes: a forged tag may be any text

    def _domain(self, kid: str, inner: str, outer: str, store_id: str) -> bool | None:
        """Whether the outer part binds a seal of a release before store ids (True) or of this one
        (False) to ``store_id``; None: neither."""
        for legacy in (False, True):
            if hmac.compare_digest(self._outer(kid, inner, store_id, legacy=legacy).encode(), outer.encode(errors="replace")):
                return legacy
        return None

    def outer_holds(self, seal: str, store_id: str) -> bool:
        """Whether ``seal`` is bound to store ``store_id`` (its text is not read: :meth:`verify_seal`
        checks it where the row is read)."""
        kid, _, tags = seal.partition(":")
        inner, dot, outer = tags.partition(".")
        if not dot or self.all().get(kid) is None:
            return False
        return self._domain(kid, inner, outer, store_id) is not None

    def rebind(self, seal: str, source: str | None) -> str | None:
        """``seal`` bound to this store instead of store ``source`` (None: a seal of a release
        before store ids, ``KEYID:INNER``), or None when it is not a seal of ``source`` under a key
        held here. What it seals is not checked here: INNER still has to match the row's text
        wherever the row is read (as the key's MAC of the text alone for a seal of an earlier
        release: the outer part says which)."""
        kid, _, tags = seal.partition(":")
        inner, dot, outer = tags.partition(".")
        if self.all().get(kid) is None or len(inner) != 32 or bool(dot) != (source is not None):
            return None
        legacy = True if source is None else self._domain(kid, inner, outer, source)
        if legacy is None:
            return None
        return f"{kid}:{inner}.{self._outer(kid, inner, self._bound(), legacy=legacy)}"

    def _bound(self) -> str:
        if self.store_id is None:
            from .errors import StoreError

            raise StoreError(
                f"store {self.store} has no id yet, so nothing can be sealed for it: open the store first "
                "(with auto_migrate=False: run podium db upgrade)"
            )
        return self.store_id

    def _outer(self, kid: str, inner: str, store_id: str, *, legacy: bool = False) -> str:
        key = self.all().get(kid)
        assert key is not None
        return hmac.new(key, outer_body(store_id, kid, inner, legacy=legacy), hashlib.sha256).hexdigest()[:OUTER]

    # -- the head log ---------------------------------------------------------------------------

    @functools.cached_property
    def head_path(self) -> Path | None:
        if self.path is None:
            return None
        name = hashlib.sha256(self.store.encode()).hexdigest()[:20]
        return self.path.parent / "audit-heads" / f"{name}.jsonl"

    def rename(self, store: str) -> None:
        """Name the store ``store`` from now on (its schema, read at open: ``podium/storage/_names.py``)."""
        self.store = store
        for cached in ("head_path", "id_path", "_head_file"):
            self.__dict__.pop(cached, None)

    @functools.cached_property
    def id_path(self) -> Path | None:
        """Where this machine pins the store's id (``audit-heads/STORE.id``, beside the head log)."""
        return None if self.head_path is None else self.head_path.with_suffix(".id")

    def pinned(self) -> tuple[tuple[str, int, bool, str] | None, str | None]:
        """((id, through, upgrading, held) pinned for this store, or None: none; why the pin cannot
        be taken). ``upgrading``: this machine began the store's upgrade from seals without an id
        and has not finished it (:func:`podium.storage._identity.bind`); ``held``: the digest of
        :attr:`held` ("": none)."""
        path = self.id_path
        if path is None or not path.exists():
            return None, None
        try:
            rec = json.loads(path.read_text())
            sid, through, mac = str(rec["id"]), int(rec["through"]), str(rec["mac"])
            upgrading, held = rec.get("upgrading", False) is True, str(rec.get("held", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return None, f"the store's id pinned in {path} cannot be read ({exc})"
        if self.verify_mac(_pin_text(self.store, sid, through, upgrading, held), mac) is False:  # None: a key retired and removed since
            return None, f"the store's id pinned in {path} is not signed with the audit key"
        return (sid, through, upgrading, held), None

    def pin(self, store_id: str, through: int, upgrading: bool = False, held: str = "", *, replace: bool = True) -> bool:
        """Pin ``store_id`` as this store's id on this machine, with the last entry signed before it
        (:attr:`through`), replacing the pin atomically (``replace=False``: only where there is none;
        False when there was one); ``upgrading``: this machine is sealing the store's rows of an
        earlier release again (only the machine whose pin says so does); ``held``: the digest of the
        numbers of the entries it had then (:func:`ranges_digest`)."""
        path = self.id_path
        if path is None:
            return False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mac = self.mac(_pin_text(self.store, store_id, through, upgrading, held))
        rec: dict[str, object] = {"store": self.store, "id": store_id, "through": through, "mac": mac}
        if held:
            rec["held"] = held
        if upgrading:
            rec["upgrading"] = True
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(rec) + "\n")
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic, and never replaces a pin another process made first
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def pinned_elsewhere(self, store_id: str) -> tuple[str, Path] | None:
        """(store, pin file) of another store for which this machine pinned ``store_id``, if any."""
        if self.id_path is None or not self.id_path.parent.is_dir():
            return None
        for path in sorted(self.id_path.parent.glob("*.id")):
            if path == self.id_path:
                continue
            try:
                rec = json.loads(path.read_text())
                text = _pin_text(
                    str(rec["store"]), str(rec["id"]), int(rec["through"]), rec.get("upgrading", False) is True,
                    str(rec.get("held", "")),
                )  # fmt: skip
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if rec["id"] == store_id and rec["store"] != self.store and self.verify_mac(text, str(rec.get("mac"))):
                return str(rec["store"]), path
        return None

    def unpin(self, store_id: str) -> None:
        """Remove this machine's pin of ``store_id`` (a pin of another id is left)."""
        pinned, _ = self.pinned()
        if self.id_path is not None and pinned is not None and pinned[0] == store_id:
            self.id_path.unlink(missing_ok=True)

    def adopt_heads(self, former: AuditKeys) -> int:
        """Move the head log of ``former`` (this store under another name: the one an earlier release
        gave its URL) into this store's: a line signed for that name is signed again for this one, a
        line that is not (unreadable, not signed with a key held here) is kept as it is, for
        ``podium audit verify`` to report. How many lines were moved."""
        src, dst = former.head_path, self._head_file
        if src is None or dst is None or os.fspath(src) == dst:
            return 0
        try:
            text = src.read_text()
        except FileNotFoundError:
            return 0
        out = []
        for line in filter(str.strip, text.splitlines()):
            try:
                rec = json.loads(line)
                seq, h, mac = int(rec["seq"]), str(rec["hash"]), str(rec["mac"])
            except (ValueError, KeyError, TypeError):
                out.append(line)
                continue
            signed = former.verify_mac(f"{former.store}|{seq}|{h}", mac)
            out.append(json.dumps({"seq": seq, "hash": h, "mac": self.mac(f"{self.store}|{seq}|{h}")}) if signed else line)
        if out:
            os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
            fd = os.open(dst, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, "".join(f"{line}\n" for line in out).encode())
            finally:
                os.close(fd)
        src.unlink(missing_ok=True)  # a second process moving it too appends the same lines again: harmless
        return len(out)

    @functools.cached_property
    def _head_file(self) -> str | None:
        return None if self.head_path is None else os.fspath(self.head_path)

    def note_head(self, seq: int, hash: str) -> None:
        """Append (seq, hash) of an entry just committed to the head log (one small O_APPEND write,
        atomic between processes)."""
        path = self._head_file
        if path is None:
            return
        line = f'{{"seq": {seq}, "hash": "{hash}", "mac": "{self.mac(f"{self.store}|{seq}|{hash}")}"}}\n'
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def heads(self, path: Path | None = None) -> tuple[list[tuple[int, str]], list[str]]:
        """The head log (or a checkpoint file written by :meth:`checkpoint`): (seq, hash) of entries
        written, and the lines that are not genuine (bad mac, unreadable). Lines of other stores
        in a checkpoint file are skipped; lines of this store under the name an earlier release
        gave it (the URL spelled another way) are read as its own."""
        path = path or self.head_path
        out: list[tuple[int, str]] = []
        bad: list[str] = []
        if path is None or not path.exists():
            return out, bad
        keys = self.all()
        alike: dict[str, bool] = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                name = str(rec.get("store", self.store))
                if name != self.store and not self._named_alike(name, alike):
                    continue
                seq, h, mac = int(rec["seq"]), str(rec["hash"]), str(rec["mac"])
                kid, _, tag = mac.partition(":")
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(f"line {n} is unreadable")
                continue
            key = keys.get(kid)
            want = hmac.new(key, f"{name}|{seq}|{h}".encode(), hashlib.sha256).hexdigest()[:32] if key else ""
            if not key or not hmac.compare_digest(want, tag):
                bad.append(f"line {n} (entry {seq}) is not signed with the audit key")
                continue
            out.append((seq, h))
        return out, bad

    def _named_alike(self, name: str, seen: dict[str, bool]) -> bool:
        """Whether ``name`` (a store's name in a checkpoint file) is this PostgreSQL store's name as
        an earlier release spelled it (:func:`store_identity`)."""
        if name not in seen:
            seen[name] = name.startswith("postgres") and "#" not in name and store_identity(name) == self.store
        return seen[name]

    def checkpoint(self, path: Path, seq: int, hash: str) -> dict[str, object]:
        """Append a signed checkpoint of this store's head to ``path`` (a file to keep elsewhere:
        another host, WORM storage); ``podium audit verify --checkpoints PATH`` checks it."""
        import time

        rec: dict[str, object] = {"store": self.store, "seq": seq, "hash": hash, "at": time.time()}
        rec["mac"] = self.mac(f"{self.store}|{seq}|{hash}")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        return rec

    def compact(self, heads: Sequence[tuple[int, str]]) -> None:
        """Replace the head log by ``heads`` (the entries that pin the log down, see
        :attr:`podium.governance.audit.ChainCheck.heads`), once every line was found in the store."""
        path = self.head_path
        if path is None or not path.exists() or not heads:
            return
        lines = "".join(
            json.dumps({"seq": seq, "hash": h, "mac": self.mac(f"{self.store}|{seq}|{h}")}) + "\n" for seq, h in heads
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(lines)
        os.replace(tmp, path)
