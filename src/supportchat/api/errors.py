"""Every failure becomes the envelope with the right status; nothing leaks a stack trace."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..domain.errors import ChatError, InvalidInput, RateLimited
from .envelope import failure

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ChatError)
    async def _chat_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ChatError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 503:
            headers = {"Retry-After": "5"}
        if isinstance(exc, RateLimited):
            headers = {
                "Retry-After": str(exc.retry_after),
                "X-RateLimit-Limit": str(exc.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(exc.reset_at)),
            }
        return failure(exc.status, exc.message, code=exc.code, errors=exc.errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: Exception) -> Response:
        # The API answers 400 for every malformed request, never FastAPI's 422.
        assert isinstance(exc, RequestValidationError)
        err = _as_invalid(exc)
        return failure(400, err.message, code=err.code, errors=err.errors)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        return failure(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return failure(500, "Internal server error", code="INTERNAL_ERROR")


def _as_invalid(exc: RequestValidationError) -> InvalidInput:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            errors.append({"field": "body", "message": "Request body is not valid JSON"})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        message = str(err.get("msg", "invalid"))
        errors.append({"field": field, "message": message})
    summary = "; ".join(
        e["message"] if e["field"] == "body" else f"{e['field']}: {e['message']}"
        for e in errors[:3]
    )
    return InvalidInput(f"Invalid request: {summary}", errors=errors)
