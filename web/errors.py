"""Every error answers `{"error": {"code", "message"}}`; unexpected ones never show internals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from db import errors

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_OF = {
    errors.InvalidInput: 400,
    errors.AuthenticationFailed: 401,
    errors.LimitReached: 402,
    errors.AccessDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyAttempts: 429,
    errors.CapacityExceeded: 503,
    errors.Unavailable: 503,
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ServiceError as exc:
        response = error_response(STATUS_OF.get(type(exc), 400), exc.code, exc.message, exc.field)
        if isinstance(exc, errors.TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = exc.reason.lower().replace(" ", "_")
        default_text = f"{exc.status}: {exc.reason}"  # what aiohttp says when the raiser said nothing
        message = exc.reason if exc.text in (None, "", default_text) else exc.text
        return error_response(exc.status, code, message)
    except Exception:
        log.exception("unhandled error", method=request.method, path=request.path)
        return error_response(500, "internal_error", "Something went wrong on our side. Please try again.")
