"""Reading a file that was checked to lie inside a registered folder, so that the file read is the
file checked.

A workflow file may read only under folders an admin registered (``files`` capabilities): a path
is resolved (links, ``..``) and refused outside its folder. Resolving, then opening by name, leaves
a gap: whoever can write in the folder can swap the checked file, or a folder on its path, for a
link to a file outside between the check and the read. A :class:`Confined` path carries the folder
it was checked against, and :func:`open_confined` opens it beneath that folder one component at a
time with ``O_NOFOLLOW``: no link is followed anywhere on the way, so a swapped path fails instead
of being read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from ..errors import CapabilityDenied

_LINK = {errno.ELOOP, errno.ENOTDIR, errno.EMLINK}
"""What opening a link with ``O_NOFOLLOW`` (or a link where a folder was) raises."""


class Confined(str):
    """A path (as a ``str``) checked to lie inside the folder ``root``: read it with
    :func:`open_confined`, never by name."""

    root: str

    def __new__(cls, path: str, root: str = "") -> Confined:
        self = super().__new__(cls, path)
        self.root = root
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Confined, (str(self), self.root))


def open_confined(path: Confined) -> int:
    """A read-only descriptor of ``path``, opened beneath ``path.root`` without following any link;
    a regular file (a FIFO or a device is never opened for reading). Raises
    :class:`~podium.CapabilityDenied` if the path has changed into a link (or a link now stands on
    its way) since it was checked."""
    root = path.root
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if rel == os.curdir or any(p in ("", os.curdir, os.pardir) for p in parts):
        raise CapabilityDenied(f"{path} is not inside the registered folder {root}, so it is not read")
    nofollow = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if os.open not in os.supports_dir_fd:  # no openat (Windows): open, then check what was opened
        return _reopened(path, nofollow)
    folder = os.O_DIRECTORY
    fd = os.open(root, os.O_RDONLY | folder)
    try:
        for name in parts[:-1]:
            nxt = os.open(name, nofollow | folder, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(parts[-1], nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=fd)
    except OSError as exc:
        if exc.errno in _LINK:
            raise CapabilityDenied(_changed(path)) from None
        raise
    finally:
        os.close(fd)
    return _regular(out, path)


def _reopened(path: Confined, flags: int) -> int:
    fd = os.open(path, flags)
    real = os.path.realpath(path)
    root = path.root.rstrip(os.sep) + os.sep
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(real))
    except OSError:
        same = False
    if not (real.startswith(root) and same):
        os.close(fd)
        raise CapabilityDenied(_changed(path))
    return _regular(fd, path)


def _regular(fd: int, path: str) -> int:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CapabilityDenied(f"{path} is not a regular file, so it is not read")
    return fd


def _changed(path: Confined) -> str:
    return (
        f"{path} changed after it was checked: it (or a folder on its way) is now a link, so it is not "
        f"read; links are not followed inside the registered folder {path.root}"
    )


__all__ = ["Confined", "open_confined"]
