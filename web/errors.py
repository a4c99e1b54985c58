"""Every error answers `{"error": {"code", "message"}}` (with the `field` to fix, when one is
known); unexpected ones never show internals. A client's bad input is answered, never logged as
an error: it is theirs to fix, and anyone could fill the log with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from db import errors
from web.api.bodies import UnknownField

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BILLING_OFF = "This ClawFleet runs without billing: everything is included."


class BillingOff(errors.NotFound):
    """A billing route of a platform that runs without billing (no CLAWFLEET_STRIPE_SECRET_KEY)."""

    code = "billing_off"

    def __init__(self, message: str = BILLING_OFF, *, field: str | None = None) -> None:
        super().__init__(message, field=field)


STATUS_OF = {
    BillingOff: 404,
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


def error_response(status: int, code: str, message: str, field: str | None = None, *,
                   allowed: list[str] | None = None) -> web.Response:
    body: dict = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if allowed is not None:
        body["allowed"] = allowed
    return web.json_response({"error": body}, status=status)


def unreadable_input(exc: Exception) -> bool:
    """What decoding a client's bytes raises, in a route that read them by hand: JSON that does
    not parse, text that is not UTF-8 (or a header's lone surrogates, re-encoded), a charset no
    codec knows, a body aiohttp could not take apart (one that does not decompress, say)."""
    unknown_charset = type(exc) is LookupError  # codecs' own; KeyError and IndexError are bugs
    return unknown_charset or isinstance(
        exc, (json.JSONDecodeError, UnicodeError, HttpProcessingError, web.RequestPayloadError))


def http_error_message(exc: web.HTTPException) -> str:
    """What the raiser said, or the status's reason when it said nothing."""
    default_text = f"{exc.status}: {exc.reason}"  # what aiohttp says when the raiser said nothing
    return exc.reason if exc.text in (None, "", default_text) else exc.text


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ServiceError as exc:
        allowed = exc.allowed if isinstance(exc, UnknownField) else None
        response = error_response(STATUS_OF.get(type(exc), 400), exc.code, exc.message, exc.field, allowed=allowed)
        if isinstance(exc, errors.TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = exc.reason.lower().replace(" ", "_")
        response = error_response(exc.status, code, http_error_message(exc))
        if "Allow" in exc.headers:  # a 405 says which methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if unreadable_input(exc):
            log.info("unreadable request", method=request.method, path=request.path, error=type(exc).__name__)
            status = exc.code if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500 else 400
            return error_response(status, "invalid_input", "The request could not be read: send UTF-8 JSON.")
        log.exception("unhandled error", method=request.method, path=request.path)
        return error_response(500, "internal_error", "Something went wrong on our side. Please try again.")


class UnparsedRequestsAsInfo(logging.Filter):
    """For aiohttp's server logger: a request it cannot parse (a control character in a header,
    a line too long) is answered 400 before any route runs, and logged as an error with its
    traceback, for anyone who sends one. It is the client's doing: one info line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        problem = record.exc_info[1] if record.exc_info else None
        if not isinstance(problem, HttpProcessingError):
            return True
        record.msg, record.args = f"{record.getMessage()}: {type(problem).__name__}", ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


UNPARSED_REQUESTS_AS_INFO = UnparsedRequestsAsInfo()  # one instance, so adding it twice adds it once
