"""The dashboard: static HTML, CSS and vanilla JavaScript (no build step) over the JSON API."""

from __future__ import annotations

import os
from typing import Any

HERE = os.path.dirname(__file__)

#: The dashboard page runs its own scripts only (/static/*.js; none inline, no eval): a text from a
#: run, a model or a user that ever reached the page as HTML (an ``esc()`` forgotten) runs nothing,
#: and the page sends nothing to another site. Not framed by anyone (as every answer: app.SafeHeaders).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def mount(app: Any) -> None:
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=HERE), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(os.path.join(HERE, "index.html"), headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})
