"""Cross-site request forgery: a state-changing request that a browser could have sent on its
own (a form post, or anything carrying the session cookie) must come from our own pages.

Two checks, both needed: the Origin (or, failing it, the Referer) must be ours, and a request
the session cookie signs must carry the session's CSRF token (the form field `csrf_token` or the
header X-CSRF-Token). The token is derived from the session token, so it needs no storage, ends
with the session, and tells nothing about the token it comes from. Requests with a bearer token
and no cookie are an API client's: no browser sends those unasked."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from db.errors import AccessDenied
from web.auth import bearer_token, session_cookie
from web.errors import Handler
from web.forms import CSRF_FIELD, FORM_TYPE, form_pairs
from web.keys import CONFIG, VIA_COOKIE

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
BROWSER_FORM_TYPES = {FORM_TYPE, "multipart/form-data", "text/plain"}  # what a form can send cross-site
FOREIGN = "This form was sent from another site, so it was not accepted. Reload the page and try again."
EXPIRED = "This page has expired (your session changed since it was opened). Reload it and try again."


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"clawfleet csrf", hashlib.sha256).hexdigest()


def request_csrf_token(request: web.Request) -> str:
    """The token forms on this page must carry ("" before sign-in: only the Origin is checked)."""
    token = session_cookie(request) if request.get(VIA_COOKIE) else None
    return csrf_token(token) if token else ""


@web.middleware
async def forgery_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS or not _browser_could_send(request):
        return await handler(request)
    if not _same_origin(request):
        return _refused(request, FOREIGN)
    if request.get(VIA_COOKIE):
        sent = request.headers.get(CSRF_HEADER) or await _form_token(request)
        if not hmac.compare_digest(sent.encode(), request_csrf_token(request).encode()):
            return _refused(request, EXPIRED)
    return await handler(request)


def _browser_could_send(request: web.Request) -> bool:
    """A request carrying the session cookie, or a form posted to a page (signing in someone
    as someone else is forgery too). Anything else under /api/ carries no credential a
    browser adds by itself: webhooks and API clients prove themselves with secrets."""
    if bearer_token(request) is not None:
        return False
    if request.get(VIA_COOKIE) or session_cookie(request):
        return True
    return not request.path.startswith("/api/") and request.content_type in BROWSER_FORM_TYPES


def _same_origin(request: web.Request) -> bool:
    sent = request.headers.get("Origin") or _origin_of(request.headers.get("Referer", ""))
    if not sent or sent == "null":
        return False
    ours = {_origin_of(request.app[CONFIG].public_url), f"{request.scheme}://{request.host}"}
    return sent.lower() in {origin.lower() for origin in ours if origin}


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _form_token(request: web.Request) -> str:
    """The form's csrf_token ("" when it has none); the page reads the same parse after."""
    if request.content_type != FORM_TYPE:
        return ""
    sent = [value for name, value in await form_pairs(request) if name == CSRF_FIELD]
    return sent[0] if len(sent) == 1 and sent[0].isascii() else ""


def _refused(request: web.Request, message: str) -> web.StreamResponse:
    field = CSRF_HEADER if request.path.startswith("/api/") else CSRF_FIELD
    raise AccessDenied(message, field=field)  # as JSON under /api/, as a page elsewhere
