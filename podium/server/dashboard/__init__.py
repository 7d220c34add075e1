"""The dashboard: static HTML, CSS and vanilla JavaScript (no build step) over the JSON API."""

from __future__ import annotations

import os
from typing import Any

HERE = os.path.dirname(__file__)


def mount(app: Any) -> None:
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=HERE), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(os.path.join(HERE, "index.html"), headers={"Cache-Control": "no-cache"})
