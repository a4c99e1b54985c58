"""Who is calling: `Authorization: Bearer <token>` resolved to a user for every API request."""

from __future__ import annotations

from aiohttp import web

from db.errors import AuthenticationFailed
from db.models import User
from web.errors import Handler
from web.keys import SERVICES, USER

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


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bearer_token(request)
    if token is not None:
        user = await request.app[SERVICES].accounts.user_for_token(token)
        if user is not None:
            request[USER] = user
    return await handler(request)


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise AuthenticationFailed("Log in first: send Authorization: Bearer <token>.", field=AUTHORIZATION)
    return user
