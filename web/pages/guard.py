"""Pages for signed-in people only: anyone else is sent to sign in, and back here after."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from db.models import User
from web.keys import USER


def signed_in(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    return user
