"""The dashboard's session cookie: it holds a session token (accounts/tokens.py), so the
session itself lives on the server and can be revoked there. HttpOnly, SameSite=Lax, path /;
`__Host-` prefixed and Secure over HTTPS, which also keeps it host-only, so a browser never
sends it to an instance's host."""

from __future__ import annotations

from aiohttp import web

from accounts.tokens import SESSION_TTL, IssuedToken
from web.keys import CONFIG


def start_session(request: web.Request, response: web.StreamResponse, issued: IssuedToken) -> None:
    config = request.app[CONFIG]
    response.set_cookie(config.session_cookie, issued.token, max_age=int(SESSION_TTL.total_seconds()),
                        path="/", httponly=True, samesite="Lax", secure=config.secure)


def end_session(request: web.Request, response: web.StreamResponse) -> None:
    config = request.app[CONFIG]
    response.del_cookie(config.session_cookie, path="/", secure=config.secure, httponly=True, samesite="Lax")
