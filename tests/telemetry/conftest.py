"""Telemetry tests: OpenTelemetry spans, JSON logs, and alerts delivered to real local receivers
(an HTTP server and an aiosmtpd SMTP server on 127.0.0.1). Nothing leaves this machine."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from netguard import guard_loopback

import podium
from podium.models import set_default_gateway


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but this machine."""
    guard_loopback(monkeypatch)
    set_default_gateway(None)


@pytest.fixture
async def client() -> AsyncIterator[podium.Client]:
    async with podium.Client("memory://") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
