"""Podium's errors as HTTP responses: ``{"error": {"code": "not_found", "message": "..."}}``.

The code is stable (clients switch on it); the message is the engine's one paragraph that says what
is wrong and how to fix it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import (
    AuthError,
    ConfigError,
    DefinitionError,
    InputValidationError,
    KillSwitchActive,
    NotFound,
    PermissionDenied,
    PodiumError,
    RunFailed,
    SerializationError,
    StoreError,
)
from ..models._errors import ModelNotAvailable
from ._run_paths import hint

log = logging.getLogger("podium.server")

#: Most specific first: (error class, HTTP status, stable code).
ERROR_CODES: tuple[tuple[type[BaseException], int, str], ...] = (
    (PermissionDenied, 403, "permission_denied"),
    (AuthError, 401, "unauthorized"),
    (NotFound, 404, "not_found"),
    (KillSwitchActive, 409, "kill_switch_active"),
    (InputValidationError, 422, "invalid_input"),
    (ConfigError, 400, "bad_request"),
    (DefinitionError, 422, "invalid_workflow"),
    (SerializationError, 422, "not_serializable"),
    (RunFailed, 409, "run_failed"),
    (StoreError, 503, "store_unavailable"),
    (ModelNotAvailable, 503, "model_unavailable"),
    (PodiumError, 400, "podium_error"),
    (ImportError, 503, "dependency_missing"),
)


class ApiError(Exception):
    """An error the server itself raises (a bad header, a conflict), with its status and code."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra
        """More fields of the error body (``problems``: each bad item of a batch)."""


def body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def status_and_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ApiError):
        return exc.status, body(exc.code, str(exc), **exc.extra)
    for cls, status, code in ERROR_CODES:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if isinstance(exc, DefinitionError) and len(exc.problems) > 1:
                extra["problems"] = exc.problems
            return status, body(code, str(exc), **extra)
    log.exception("unexpected error", exc_info=exc)
    return 500, body("internal", f"the server failed unexpectedly ({type(exc).__name__}); see its log")


def install(app: Any) -> None:
    """Register the handlers that turn every error into the JSON shape above."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def respond(exc: BaseException) -> JSONResponse:
        status, content = status_and_body(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(content, status_code=status, headers=headers)

    async def podium_error(request: Any, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound) and (more := hint(request.scope)):  # a run named like the route?
            exc = NotFound(f"{exc}{more}")
        return respond(exc)

    async def validation_error(request: Any, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
        )
        message = f"the request does not match the API: {where or exc}"
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if any(e.get("loc", ("",))[0] == "body" for e in errors) and kind and kind != "application/json":
            # curl -d sends a form: the JSON text arrived but was not read as JSON
            message += (
                f"; the body was sent as {kind}, which is not read as JSON: send it with "
                "'Content-Type: application/json' (curl: -H 'Content-Type: application/json', or --json)"
            )
        return JSONResponse(body("invalid_request", message), status_code=422)

    async def http_error(request: Any, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "permission_denied"}
        message = str(exc.detail) if exc.status_code != 404 else f"no such endpoint: {request.url.path}"
        return JSONResponse(
            body(codes.get(exc.status_code, "http_error"), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(PodiumError, podium_error)
    app.add_exception_handler(ApiError, podium_error)
    app.add_exception_handler(Exception, podium_error)
