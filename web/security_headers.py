"""Security headers on every response, pages and API alike. A route that needs a looser policy
(the API docs page's renderer) sets its own Content-Security-Policy; nothing else may."""

from __future__ import annotations

from aiohttp import web

from web.keys import CONFIG, INSTANCE_HOST

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",  # no inline script anywhere: every script is a file the app serves
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HSTS = "max-age=31536000"  # the dashboard host only: instance hosts answer for themselves


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` signal: it sees every response, streams and errors included,
    just before its headers go out."""
    if INSTANCE_HOST in request:  # an instance's site sets its own (web.instance_site)
        return
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # links out never carry a token-bearing URL
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.content_type == "text/html":
        headers.setdefault("Cache-Control", "no-store")  # pages show a person's own data
    if request.app[CONFIG].secure:
        headers.setdefault("Strict-Transport-Security", HSTS)

