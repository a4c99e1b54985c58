"""Who is calling: `Authorization: Bearer <token>`, or the dashboard's session cookie, resolved
to a user and the token they presented for every request. A bearer token wins when both come:
it is what an API client meant."""

from __future__ import annotations

from aiohttp import web

from db.errors import AuthenticationFailed
from db.models import User
from web.errors import Handler
from web.keys import CONFIG, CREDENTIAL, SERVICES, USER, VIA_COOKIE

AUTHORIZATION = "Authorization"


def credential_header(request: web.Request, name: str) -> str:
    """A header that carries a token or a secret, as sent; "" when absent or when it holds
    anything but ASCII, as no credential of ours does. aiohttp hands on bytes that are not
    UTF-8 as lone surrogates, which hashing or comparing would fail to encode."""
    value = request.headers.get(name, "")
    return value if value.isascii() else ""


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = credential_header(request, AUTHORIZATION).partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def session_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(request.app[CONFIG].session_cookie, "")
    return value if value and value.isascii() else None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    token, via_cookie = bearer_token(request), False
    if token is None:
        token, via_cookie = session_cookie(request), True
    if token is not None:
        credential = await request.app[SERVICES].accounts.credential_for_token(token)
        if credential is not None and (credential.token.kind == "session" or not via_cookie):
            request[USER], request[CREDENTIAL], request[VIA_COOKIE] = credential.user, credential, via_cookie
    return await handler(request)


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise AuthenticationFailed("Log in first: send Authorization: Bearer <token>.", field=AUTHORIZATION)
    return user
