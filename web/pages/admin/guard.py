"""Who may see the admin section: signed-in admins. Anyone else gets the same 404 as for a page
that does not exist, so the section's existence is not told."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from admin.tools import AdminTools
from db.models import User
from web.keys import SERVICES, USER


def admin_only(request: web.Request) -> tuple[User, AdminTools]:
    user, tools = request.get(USER), request.app[SERVICES].admin
    if user is None or not user.is_admin or tools is None:
        raise web.HTTPNotFound()
    return user, tools


def query_value(request: web.Request, name: str) -> str:
    """A query parameter as text ("" when absent); the use cases check what it holds."""
    return request.query.get(name, "")


def list_address(request: web.Request, names: tuple[str, ...]) -> str:
    """This list's address with its filters (those given), without the page: where paging starts."""
    kept = urlencode({name: request.query[name] for name in names if request.query.get(name)})
    return f"{request.path}?{kept}" if kept else request.path
