"""Tests reach nothing beyond this machine: one guard, used by every conftest that needs it."""

from __future__ import annotations

import ipaddress
import socket

import pytest


def loopback(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def guard_loopback(monkeypatch: pytest.MonkeyPatch, *, hide: tuple[str, ...] = ()) -> None:
    """Refuse connections to anything but loopback, and unset the environment variables ``hide``."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: object) -> None:
        if not loopback(address):
            raise ConnectionRefusedError(f"tests may not connect to {address!r}: only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if not loopback(address):
            raise ConnectionRefusedError(f"tests may not connect to {address!r}: only loopback is allowed")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for key in hide:
        monkeypatch.delenv(key, raising=False)
