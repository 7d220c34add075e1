"""Telemetry tests: OpenTelemetry spans, JSON logs, and alerts delivered to real local receivers
(an HTTP server and an aiosmtpd SMTP server on 127.0.0.1). Nothing leaves this machine."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest

import podium
from podium.models import set_default_gateway


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple):
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but this machine."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if not _loopback(address):
            raise ConnectionRefusedError(f"tests may not connect to {address!r}: only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    set_default_gateway(None)


@pytest.fixture
async def client() -> AsyncIterator[podium.Client]:
    async with podium.Client("memory://") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
