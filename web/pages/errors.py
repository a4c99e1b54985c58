"""Errors on pages are pages: what went wrong in words, and a way on. The API keeps its JSON
errors (web/errors.py); a form's own mistakes are shown next to their field by its page."""

from __future__ import annotations

import structlog
from aiohttp import web

from db import errors
from web.errors import STATUS_OF, Handler, http_error_message, unreadable_input
from web.pages.render import render

log = structlog.get_logger(__name__)

NOT_PAGES = ("/api/", "/static/", "/healthz", "/metrics")
TITLES = {400: "That did not work", 401: "Please sign in", 403: "Not allowed", 404: "Page not found",
          405: "Not allowed here", 409: "That cannot be done right now", 413: "Too much at once",
          429: "Too many attempts", 500: "Something went wrong", 503: "Not available right now"}


def is_page(request: web.Request) -> bool:
    return not request.path.startswith(NOT_PAGES)


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_page(request):
        return await handler(request)
    try:
        return await handler(request)
    except errors.ServiceError as exc:
        status = STATUS_OF.get(type(exc), 400)
        response = _error_page(request, status, exc.message)
        if isinstance(exc, errors.TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = http_error_message(exc)
        if exc.status == 404:
            message = "There is nothing at this address. It may have moved, or it is not yours to see."
        response = _error_page(request, exc.status, message)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if unreadable_input(exc):
            return _error_page(request, 400, "The form could not be read. Reload the page and try again.")
        log.exception("unhandled error", method=request.method, path=request.path)
        return _error_page(request, 500, "Something went wrong on our side. Please try again in a moment.")


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = TITLES.get(status, "That did not work")
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)
