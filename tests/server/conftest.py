"""An app per test, on each store kind, driven in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server needs the 'server' extra: pip install 'podium[server]'")

from podium.server import Settings, create_app


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield app, http


@pytest.fixture
def server(tmp_path: Any) -> Callable[..., Any]:
    """``async with server(store_url, workflows=[...]) as (app, http):``"""

    def make(store: str, **kw: Any) -> Any:
        kw.setdefault("deploy_dir", str(tmp_path / "deployed"))
        kw.setdefault("trigger_interval", 0.05)
        return serve(Settings(store=store, **kw))

    return make
