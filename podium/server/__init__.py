"""Podium as a service: the HTTP API, triggers, dashboard and metrics (``podium serve``).

Needs the ``server`` extra: ``pip install 'podium[server]'``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Podium server needs FastAPI and uvicorn: pip install 'podium[server]'") from exc

from .app import Settings, create_app
from .triggers import Rule

__all__ = ["Rule", "Settings", "create_app"]
