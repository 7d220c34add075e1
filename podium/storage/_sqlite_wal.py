"""Noticing that a SQLite store's ``-wal`` file was deleted under a running process.

A process that has the store open keeps writing its commits to the WAL file it opened, also once
someone has deleted it (to free space, or cleaning up): the data then lives in a file no other
process can see. Another process opening the store meanwhile starts a new WAL from the main file
and does not see those runs (an acknowledged run is "not found"), and if the first process dies,
its commits are gone. The store looks at the file's inode now and then (from the claim and lease
calls of a driving engine, at most once a second) and, when it changed, writes what it holds back
into the main file (a checkpoint) and opens the store again, so that every process shares one WAL
again. Between the deletion and that moment, another process may have seen an old state."""

from __future__ import annotations

import os
import time

#: Seconds between two looks at the file.
EVERY = 1.0


class WalWatch:
    """Whether the ``-wal`` file beside ``path`` is still the one this process opened."""

    def __init__(self, path: str) -> None:
        self.wal = path + "-wal"
        self.inode: int | None = None
        self._next = 0.0

    def note(self) -> None:
        """Remember the file now open (after the store opened and read it)."""
        self.inode = self._inode()
        self._next = time.monotonic() + EVERY

    def replaced(self) -> bool:
        """True once the file this process opened is gone or is another file (looked at most every
        :data:`EVERY` seconds)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + EVERY
        if self.inode is None:  # not there when the store opened (it appears with the first write)
            self.inode = self._inode()
            return False
        return self._inode() != self.inode

    def _inode(self) -> int | None:
        try:
            return os.stat(self.wal).st_ino
        except OSError:
            return None
