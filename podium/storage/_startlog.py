"""The start log: run starts acknowledged before their rows commit (SQLite, crash-safe durability).

Runs started one after the other in one turn of the event loop (a script starting thousands, a
batch endpoint) would each cost a commit of their own, since each start is acknowledged only once
it is durable. Instead the engine writes each such start as one line to its process's start log
(one ``O_APPEND`` write: in the operating system's cache at once, so it survives a crash of the
process exactly as a WAL commit at ``synchronous=NORMAL`` does), acknowledges it, and commits the
runs of that turn together in the next one (``podium/engine/bursts.py``). A log is deleted once its
runs are committed. A process that dies leaves its log behind; the next engine that opens the store
(or the sweep of one already running) finds it unlocked, checks every line against the audit key,
and creates the runs it names that are not in the store yet, as their engine started them: they are
then resumed as any run of an engine that died.

Each line is ``MAC<TAB>RECORD``: the MAC (the audit key's, over the store's identity and the record) is
what lets a replaying engine sign the run's ``run.start`` entry: a line written by anyone without
the key is refused, and audited. Files are ``<owner>-<n>.log`` in ``<database>-starts/`` (0700,
lines 0600); a live engine holds an exclusive ``flock`` on each of its files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import marshal
import os
import stat
from base64 import b64decode, b64encode
from collections.abc import Iterator
from typing import BinaryIO

from .._auditkey import AuditKeys
from ..records import AuditEntry, Event, EventType, RunRecord, RunStatus

log = logging.getLogger("podium.storage")

FORMAT = 1
_RUN_FIELDS = (
    "id", "workflow", "version", "status", "input", "output", "error", "created_at", "started_at", "finished_at",
    "parent_run_id", "parent_step", "forked_from", "fork_step", "workflow_ref", "owner", "lease_expires_at",
    "cancel_requested", "wake_at", "queue", "priority", "tenant", "labels",
)  # fmt: skip
"""A run's fields in a start record of :data:`FORMAT` (a release that adds one writes a new format)."""

NewRun = tuple[RunRecord, list[Event], AuditEntry | None]

MAX_LINE = 64 << 20
"""The longest line of a start log: a start whose line would be longer is committed on its own
instead, so a longer line (one huge file) is nobody's start: it is refused, and the rest of its file
not read (a replaying engine reads a log line by line, never more than this at once)."""
MAX_REFUSALS = 1000
"""Refused lines named one by one in a replay's report (the others counted)."""


def encode(run: RunRecord, first: Event, anchor: AuditEntry | None) -> str:
    """One start as text: :data:`FORMAT`, the run's fields, its first event, its anchor, as a
    ``marshal``-ed tuple of plain values (six times faster than JSON here) in base64. Read back only
    once its line's MAC checks out: marshal is not meant for bytes of unknown origin."""
    r, a = run, anchor
    rec = (
        FORMAT, r.id, r.workflow, r.version, r.status.value, r.input, r.output, r.error, r.created_at, r.started_at,
        r.finished_at, r.parent_run_id, r.parent_step, r.forked_from, r.fork_step, r.workflow_ref, r.owner,
        r.lease_expires_at, r.cancel_requested, r.wake_at, r.queue, r.priority, r.tenant, r.labels,
        str(first.type), first.ts, first.data, None if a is None else (a.ts, a.actor, a.action, a.target, a.data),
    )  # fmt: skip
    try:
        raw = marshal.dumps(rec, 4)
    except ValueError:  # a subclass of str or int (an enum) among the values: as plain values
        raw = marshal.dumps(_plain(rec), 4)  # type: ignore[arg-type]
    return b64encode(raw).decode()


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    raise ValueError(f"a start record cannot hold a {type(value).__name__}")


def decode(text: str) -> NewRun:
    """A start as written by :func:`encode`: the run as its engine started it (owner, lease), so
    that, its engine gone, it is resumed as any run of an engine that died is. Raises ValueError
    naming what is wrong."""
    try:
        rec = marshal.loads(b64decode(text, validate=True))
    except (ValueError, EOFError, TypeError) as exc:
        raise ValueError(f"not a start record: {exc}") from None
    n = len(_RUN_FIELDS)
    if not isinstance(rec, tuple) or not rec or rec[0] != FORMAT:
        fmt = rec[0] if isinstance(rec, tuple) and rec else None
        raise ValueError(f"a start record of format {fmt!r}, this release reads format {FORMAT}")
    if len(rec) != n + 5:
        raise ValueError(f"a start record of {len(rec)} fields, format {FORMAT} has {n + 5}")
    fields = dict(zip(_RUN_FIELDS, rec[1 : n + 1], strict=True))
    etype, ets, edata, a = rec[n + 1 :]
    try:
        fields["status"] = RunStatus(fields["status"])
        run = RunRecord(**fields)
        anchor = None if a is None else AuditEntry(ts=a[0], actor=a[1], action=a[2], target=a[3], data=a[4])
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"a start record that does not make a run: {exc}") from None
    if etype not in (EventType.RUN_STARTED, EventType.RUN_QUEUED):
        raise ValueError(f"a start record whose first event is {etype!r}")
    return run, [Event(run_id=run.id, seq=1, type=etype, ts=ets, data=edata)], anchor


_held: set[int] = set()
"""The descriptors of this process's own start logs (each holding its file's lock)."""


def _forked() -> None:
    """In a child of :func:`os.fork` (a step's ``multiprocessing`` worker): close the copies of the
    parent's start log descriptors, so that its locks go with the parent (a copy shares the lock:
    a child that outlives a parent killed would keep its log from being replayed)."""
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forked)


class StartLog:
    """One engine's start log (see the module's doc): :meth:`add` a start, :meth:`cut` before the
    starts added so far are committed, :meth:`done` with a cut once they are."""

    def __init__(self, folder: str, owner: str, keys: AuditKeys) -> None:
        self.folder = folder
        self.owner = owner
        self.keys = keys
        self._n = 0
        self._fd: int | None = None  # the file being added to
        self._added = 0
        self._size = 0  # bytes in the file being added to (this engine its only writer)
        self._pid = os.getpid()  # a forked child (its descriptors closed: _forked) adds nothing

    def _open(self) -> int:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        st = os.lstat(self.folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise OSError(
                f"start log folder {self.folder} is not a directory of this user's that only it may write "
                f"({stat.filemode(st.st_mode)}, owner uid {st.st_uid}): anyone who may could delete the starts "
                "acknowledged in it; 'chmod 700' it, or remove it (this engine creates it)"
            )  # fmt: skip
        self._n += 1
        path = self._path()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else should hold it
            if os.fstat(fd).st_nlink == 0:  # taken for an empty dead log, and deleted, before the lock
                raise OSError(f"start log {path} was deleted as it was created")
        except OSError:
            os.close(fd)
            raise
        self._fd, self._size = fd, 0
        _held.add(fd)
        return fd

    def _path(self) -> str:
        return os.path.join(self.folder, f"{self.owner.replace(os.sep, '_')}-{self._n}.log")

    def add(self, run: RunRecord, first: Event, anchor: AuditEntry | None) -> None:
        """Write one start (durable against a crash of this process once this returns)."""
        if os.getpid() != self._pid:
            raise OSError(f"start log {self.folder}: this process is a fork of the engine that keeps it")
        fd = self._fd if self._fd is not None else self._open()
        text = encode(run, first, anchor)
        line = f"{self.keys.mac(f'{self.keys.store}|{text}')}\t{text}\n".encode()
        if len(line) > MAX_LINE:
            raise ValueError(f"a start of {len(line)} bytes, longer than a start log's line ({MAX_LINE})")
        written = os.write(fd, line)
        if written != len(line):  # the disk full, or a file size limit reached, mid-line: not written
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)  # the lines before it stay whole, the last one complete
            raise OSError(errno.ENOSPC, f"start log {self._path()}: {written} of {len(line)} bytes of a line written")
        self._size += written
        self._added += 1

    def cut(self) -> tuple[int, str] | None:
        """The file of the starts added so far (its descriptor and path; None if none): later starts
        go to a new file. Hand it to :meth:`done` once its runs are committed."""
        fd = self._fd
        if fd is None or not self._added or os.getpid() != self._pid:
            return None
        self._fd, self._added = None, 0
        return fd, self._path()

    def done(self, cut: tuple[int, str]) -> None:
        """The runs of ``cut`` are committed: its file goes."""
        fd, path = cut
        if fd not in _held:  # this process is a child of the engine's (forked): the file is the parent's
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _held.discard(fd)
        os.close(fd)

    def release(self, cut: tuple[int, str]) -> None:
        """Leave ``cut``'s file for the next engine that opens the store (its runs were not committed)."""
        if cut[0] in _held:  # (not in a forked child: closed there already)
            _held.discard(cut[0])
            os.close(cut[0])  # the lock goes with it

    def close(self) -> None:
        """Stop adding (an empty file goes; one with starts stays for the next engine)."""
        cut = self.cut()
        if os.getpid() != self._pid:  # a forked child: the files are the parent's
            self._fd = None
        elif cut is not None:
            self.release(cut)
        elif self._fd is not None:
            self.done((self._fd, self._path()))
            self._fd = None


def set_aside(path: str) -> str:
    """Move a replayed log with refused lines to ``refused/`` beside it (0700), for a person to read:
    nothing in it is trusted, nothing deleted. Returns the new path. A ``refused`` that is not a
    directory of this user's (a symlink someone put there) is not followed: the file is renamed
    where it is, to ``<name>.refused`` (no longer read as a log)."""
    folder = os.path.join(os.path.dirname(path), "refused")
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    target = os.path.join(folder, os.path.basename(path))
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        target = f"{path}.refused"
    base, n = target, 1
    while os.path.lexists(target):  # one set aside before under the same name is kept too
        n += 1
        target = f"{base}.{n}"
    os.rename(path, target)
    return target


def orphans(folder: str, keys: AuditKeys) -> Iterator[tuple[str, list[NewRun], list[str], int | None]]:
    """The start logs of engines that are gone (no lock held): each as (path, the runs it names, the
    lines refused with why, the file's descriptor, locked). Close the descriptor (after deleting
    the file once its runs are committed). An entry that is not a regular file (a FIFO, a symlink:
    opening or reading it could wait or read forever) is neither opened nor read: it comes with no
    descriptor and one refusal, to be set aside."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".log"):
            continue
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            yield path, [], [f"{name}: not a regular file ({stat.filemode(st.st_mode)}), not read, refused"], None
            continue
        try:  # neither following a symlink nor waiting on a FIFO swapped in since
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its engine is alive
            os.close(fd)
            continue
        st = os.fstat(fd)
        try:  # replayed, deleted or set aside by another engine meanwhile: its path names another file, or none
            moved = st.st_nlink == 0 or not stat.S_ISREG(st.st_mode) or os.lstat(path).st_ino != st.st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            os.close(fd)
            continue
        with os.fdopen(os.dup(fd), "rb") as fh:
            runs, bad, foreign = _read(fh, keys, name)
        if foreign:  # no line this engine can check: left for an engine that holds the key
            os.close(fd)
            if path not in _left:
                _left.add(path)
                log.warning(
                    "start log %s: %d line(s) signed with an audit key this engine does not hold; the file is left "
                    "for an engine that holds the store's key (set PODIUM_AUDIT_KEY or Client(audit_key=...))",
                    path, foreign,
                )  # fmt: skip
            continue
        yield path, runs, bad, fd


_left: set[str] = set()  # the logs left for an engine holding another key (warned of once)


def _read(fh: BinaryIO, keys: AuditKeys, name: str) -> tuple[list[NewRun], list[str], int]:
    """The runs of a log, its lines refused (with why), and, when every line is signed with a key not
    held here (the log of an engine with another key), how many."""
    runs: list[NewRun] = []
    bad: list[str] = []
    refused = foreign = 0

    def refuse(why: str) -> None:
        nonlocal refused
        refused += 1
        if len(bad) < MAX_REFUSALS:
            bad.append(why)

    n = 0
    while line := fh.readline(MAX_LINE + 1):
        n += 1
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE:
                refuse(f"{name}:{n}: longer than {MAX_LINE} bytes (no start is), refused; the rest of the file is not read")
            else:  # a last line cut short: its write never returned, nothing was acknowledged
                refuse(f"{name}:{n}: cut short (written when the machine stopped), skipped")
            break
        if not line.strip():
            continue
        mac, tab, body = line[:-1].decode("utf-8", errors="replace").partition("\t")
        signed = keys.verify_mac(f"{keys.store}|{body}", mac) if tab else False
        if signed is None:
            foreign += 1
            refuse(f"{name}:{n}: signed with an audit key this engine does not hold ({mac.partition(':')[0][:40]}), refused")
            continue
        if not signed:
            refuse(f"{name}:{n}: not signed with this store's audit key, refused")
            continue
        try:
            runs.append(decode(body))
        except ValueError as exc:
            refuse(f"{name}:{n}: {exc}")
    if refused > len(bad):
        bad.append(f"{name}: {refused - len(bad)} more line(s) refused")
    return runs, bad, foreign if not runs and refused == foreign else 0


class StartLogs:
    """A file store's start logs (mixed into :class:`~podium.storage.sqlite.SQLiteStore`): kept only
    at crash-safe durability (power-loss safety would need an fsync per start, as a commit does)."""

    path: str
    durability: str
    audit_keys: AuditKeys

    def start_log_folder(self) -> str | None:
        """Where this store's start logs are (read at any durability: an engine restarted power-loss
        safe still replays the logs of crash-safe engines that stopped)."""
        if self.path == ":memory:" or self.path.startswith("file:"):
            return None
        if self.audit_keys.path is None:  # a key held in memory: no other engine could check the lines
            return None
        return os.path.realpath(self.path) + "-starts"

    def start_log(self, owner: str) -> StartLog | None:
        folder = self.start_log_folder() if self.durability == "crash" else None
        return None if folder is None else StartLog(folder, owner, self.audit_keys)
