"""The proxy's own answers: short plain text a person can read, naming no address or internals."""

from __future__ import annotations

import aiohttp
from aiohttp import web

RETRY_AFTER_S = 5

MESSAGES = {
    400: "This request could not be understood.",
    408: "The request took too long to arrive. Please try again.",
    502: "This assistant is not reachable right now. Please try again in a moment.",
    503: "This assistant is busy right now. Please try again in a few seconds.",
    504: "This assistant took too long to answer. Please try again in a moment.",
}


def error_page(status: int, headers: dict[str, str] | None = None) -> web.Response:
    text = MESSAGES.get(status, "This request could not be completed.")
    response = web.Response(status=status, text=text + "\n", content_type="text/plain", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def failure_page(error: OSError | aiohttp.ClientError) -> web.Response:
    """The answer when the gateway could not be asked: 504 if it took too long to answer once
    connected, else 502 (not listening, not accepting, or gone before answering)."""
    too_slow = isinstance(error, TimeoutError) and not isinstance(error, aiohttp.ConnectionTimeoutError)
    return error_page(504 if too_slow else 502)
