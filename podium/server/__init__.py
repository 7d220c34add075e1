"""Podium as a service: the HTTP API, triggers, dashboard and metrics (``podium serve``).

Needs the ``server`` extra: ``pip install 'podium[server]'``.
"""

from __future__ import annotations

from ..errors import install_hint

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"the Podium server needs FastAPI and uvicorn: {install_hint('server')}") from exc

from .app import Settings, create_app
from .triggers import Rule

__all__ = ["Rule", "Settings", "create_app"]
