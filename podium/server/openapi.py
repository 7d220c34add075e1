"""The OpenAPI document that generates a working typed client, and the offline API docs.

* Every route names itself: ``@router.get(path, **documented("listRuns", RunList, 404))`` sets a
  stable camelCase ``operationId``, the success model (described only: the route's own JSON is sent
  as it is), and :class:`~podium.server.schemas.ErrorBody` for each error status it can answer.
  Routes that authenticate (``Depends(acting)``) also answer 400 (a value the engine refuses), 401,
  403 and 503 (the store).
* What the server answers to every request, whatever the route, is added to the document here:
  the request limits (``limits.py``: 400, 413, 422 on a request with a body) and 422 for a request
  that does not match the route's parameters (FastAPI's ``HTTPValidationError`` never appears: the
  server's handler answers with ``ErrorBody``).
* ``/docs`` (Swagger UI) and ``/redoc`` load their scripts from this server (the ``fastapi-offline``
  package ships them), so they work without the internet.
"""

from __future__ import annotations

import os
from typing import Any

from .schemas import ErrorBody

#: Why each error status is answered; the body is always ``ErrorBody``.
ERRORS: dict[int, str] = {
    400: "A malformed or inconsistent request (`bad_request`, `invalid_request`, `podium_error`).",
    401: "No valid API token (`unauthorized`): send 'Authorization: Bearer pod_...'.",
    403: "The token's roles lack the permission (`permission_denied`).",
    404: "The run, workflow, approval or other object does not exist (`not_found`).",
    409: "Refused in the current state: a kill switch is on (`kill_switch_active`) or the run failed.",
    413: "The request body is larger than the server accepts (`request_too_large`).",
    422: "The request does not match the API or the workflow's input (`invalid_request`, `invalid_input`, "
    "`invalid_workflow`, `invalid_policy`).",
    503: "The store, a model or an optional dependency is unavailable (`store_unavailable`...).",
}
# 400: a value the engine refuses (ConfigError: an unknown status, scope...) on any route.
AUTH_ERRORS = (400, 401, 403, 503)
BODY_METHODS = ("post", "put", "patch", "delete")
BODY_ERRORS = (400, 413, 422)
ERROR_REF = "#/components/schemas/ErrorBody"

BEARER_DESCRIPTION = (
    "An API token, sent as 'Authorization: Bearer pod_...' (an admin creates one with "
    "'podium tokens create USER'). A store without users is in local mode: requests without a token "
    "act as the local user, and any token sent must still be valid."
)


def documented(
    operation_id: str,
    model: Any,
    *errors: int,
    status: int = 200,
    auth: bool = True,
    description: str = "Successful response",
    content: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its operationId, success model and error statuses.
    ``content`` names a media type answered instead of a JSON model (``text/event-stream``)."""
    codes = sorted(set(errors) | (set(AUTH_ERRORS) if auth else set()))
    success: dict[str, Any] = {"description": description}
    if content is None:
        success["model"] = model
    else:
        success["content"] = {content: {"schema": {"type": "string"}}}
    responses: dict[int | str, Any] = {status: success}
    responses.update({code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes})
    return {
        "operation_id": operation_id,
        "status_code": status,
        "response_model": None,  # described, not re-serialized: the JSON sent stays the route's own
        "responses": responses,
    }


def _error(code: int, description: str | None = None) -> dict[str, Any]:
    if description in (None, "", "Validation Error"):  # FastAPI's own 422 text
        description = None
    text = description or ERRORS.get(code) or "An error (ErrorBody)."
    return {"description": text, "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def finish(spec: dict[str, Any]) -> dict[str, Any]:
    """Add what every request may be answered (see the module docstring) and drop FastAPI's own
    validation error models, which the server never sends."""
    for path_item in spec.get("paths", {}).values():
        for method, op in path_item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            for code in list(responses):
                # Errors are always JSON ErrorBody: FastAPI would give a text/plain route (/metrics)
                # text/plain errors, and a 422 its own HTTPValidationError.
                if code[0] in "45" and code.isdigit():
                    responses[code] = _error(int(code), responses[code].get("description"))
            needed = list(BODY_ERRORS) if method in BODY_METHODS else []
            if op.get("parameters"):
                needed.append(422)
            for code in needed:
                responses.setdefault(str(code), _error(code))
            op["responses"] = dict(sorted(responses.items()))
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return spec


def install(app: Any) -> None:
    """The finished OpenAPI document at ``/openapi.json``, and ``/docs`` and ``/redoc`` offline."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi
    _docs(app)


STATIC = "/static-docs"


def _docs(app: Any) -> None:
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    try:
        import fastapi_offline
    except ImportError:  # the server extra has it; without it say so rather than load scripts from a CDN
        missing = HTMLResponse(
            "<!doctype html><title>Podium API</title><p>The API docs need the package fastapi-offline "
            "(<code>pip install fastapi-offline</code>, part of the server extra). The OpenAPI "
            "document is at <a href='/openapi.json'>/openapi.json</a>.</p>",
            status_code=503,
        )

        async def no_docs(request: Any) -> HTMLResponse:
            return missing

        app.add_route("/docs", no_docs, include_in_schema=False)
        app.add_route("/redoc", no_docs, include_in_schema=False)
        return

    folder = os.path.join(os.path.dirname(fastapi_offline.__file__), "static")
    app.mount(STATIC, StaticFiles(directory=folder), name="static-docs")

    # Plain routes, as FastAPI's own docs pages are (not API operations).
    async def swagger(request: Any) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            # null: no badge fetched from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    async def redoc(request: Any) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
